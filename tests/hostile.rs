//! Hostile bundles: correctly signed and encrypted (as with a stolen signing
//! key), but with archives built to escape the destination or smuggle in
//! links and devices. Each case must fail with exit 1 and an error naming the
//! entry, leaving nothing in DEST and nothing outside it.

mod common;

use std::fs;
use std::path::Path;

use common::forge::{self, Member};
use common::{keygen, pouch};
use pouch::manifest::Contents;

struct Case {
    name: &'static str,
    members: Vec<Member>,
    /// Text the error must contain.
    expect: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "dotdot",
            members: vec![Member::file("../escape.txt", b"x")],
            expect: "\"..\" component",
        },
        Case {
            name: "dotdot-deep",
            members: vec![
                Member::folder("a"),
                Member::file("a/../../escape.txt", b"x"),
            ],
            expect: "\"..\" component",
        },
        Case {
            name: "absolute",
            members: vec![Member::file("/tmp/pouch-escape.txt", b"x")],
            expect: "absolute path",
        },
        Case {
            name: "double-slash",
            members: vec![Member::file("//tmp/pouch-escape.txt", b"x")],
            expect: "absolute path",
        },
        Case {
            name: "drive",
            members: vec![Member::file("C:/escape.txt", b"x")],
            expect: "drive-letter",
        },
        Case {
            name: "backslash",
            members: vec![Member::file("..\\escape.txt", b"x")],
            expect: "backslash",
        },
        Case {
            name: "home",
            members: vec![Member::file("~root/escape.txt", b"x")],
            expect: "home-folder",
        },
        Case {
            name: "control",
            members: vec![Member::file("a\x1b[2Jb", b"x")],
            expect: "control character",
        },
        Case {
            name: "symlink",
            members: vec![Member::special("link", b'2', "/etc")],
            expect: "symbolic link",
        },
        Case {
            name: "hardlink",
            members: vec![Member::file("a", b"x"), Member::special("b", b'1', "a")],
            expect: "hard link",
        },
        Case {
            name: "fifo",
            members: vec![Member::special("fifo", b'6', "")],
            expect: "FIFO",
        },
        Case {
            name: "chardev",
            members: vec![Member::special("null", b'3', "")],
            expect: "character device",
        },
        Case {
            name: "blockdev",
            members: vec![Member::special("sda", b'4', "")],
            expect: "block device",
        },
        Case {
            name: "unknown-type",
            members: vec![Member::special("odd", b'Z', "")],
            expect: "unsupported type",
        },
        Case {
            name: "duplicate",
            members: vec![Member::file("a", b"x"), Member::file("a", b"y")],
            expect: "appears twice",
        },
        Case {
            name: "orphan",
            members: vec![Member::file("nofolder/a", b"x")],
            expect: "folder does not come before it",
        },
        Case {
            name: "no-inner-manifest",
            members: vec![Member::file("a", b"x")],
            expect: "no inner manifest",
        },
    ]
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let clerk = keygen(d, "clerk");
    let contents = Contents {
        files: 2,
        folders: 1,
        total_bytes: 10,
        entries_sha256: "0".repeat(64),
        sealed_names: true,
    };
    let mut failures = Vec::new();
    for case in cases() {
        let work = d.join(case.name);
        fs::create_dir_all(work.join("bundle")).expect("mkdir");
        let dest = work.join("dest");
        fs::create_dir(&dest).expect("mkdir");
        let m = forge::bundle(
            &work.join("bundle"),
            "evil",
            &forge::tar(&case.members),
            contents.clone(),
            &clerk.recipient,
            &clerk.secret,
        );
        let out = pouch()
            .arg("unpack")
            .arg(&m)
            .arg("-i")
            .arg(&clerk.identity)
            .arg("--trust")
            .arg(&clerk.public)
            .arg("-d")
            .arg(&dest)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let left: Vec<_> = fs::read_dir(&dest)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        if out.status.code() != Some(1) || !stderr.contains(case.expect) || !left.is_empty() {
            failures.push(format!(
                "case {}: exit {:?}, DEST holds {left:?}, expected error containing {:?}, stderr: {stderr}",
                case.name,
                out.status.code(),
                case.expect
            ));
        }
        // verify -i applies the same policy without writing anything.
        let v = pouch()
            .arg("verify")
            .arg(&m)
            .arg("-i")
            .arg(&clerk.identity)
            .arg("--trust")
            .arg(&clerk.public)
            .output()
            .expect("runs");
        if v.status.code() != Some(1) {
            failures.push(format!(
                "case {}: verify -i exit {:?}",
                case.name,
                v.status.code()
            ));
        }
        for escaped in [
            work.join("escape.txt"),
            d.join("escape.txt"),
            work.join("link"),
        ] {
            if escaped.exists() {
                failures.push(format!(
                    "case {}: {} was created",
                    case.name,
                    escaped.display()
                ));
            }
        }
    }
    assert!(
        !Path::new("/tmp/pouch-escape.txt").exists(),
        "an absolute path escaped"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_entry_that_differs_from_the_signed_list_is_refused() {
    // A clerk's real bundle whose payload is replaced by another real payload
    // for the same recipient, re-signed with the stolen key: the entries no
    // longer match the signed list.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let clerk = keygen(d, "clerk");
    fs::create_dir(d.join("b")).expect("mkdir");
    let claimed = pouch::manifest::Entry::file(
        "a".into(),
        1,
        "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881".into(),
        false,
    );
    let inner = pouch::manifest::InnerManifest {
        format_version: 1,
        entries: vec![claimed.clone()],
    }
    .to_toml();
    let members = vec![
        Member::file("a", b"y"),
        Member::file(".pouch-manifest.toml", inner.as_bytes()),
    ];
    let contents = Contents {
        files: 1,
        folders: 0,
        total_bytes: 1,
        entries_sha256: pouch::manifest::entries_digest(&[pouch::manifest::Entry::file(
            "a".into(),
            1,
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881".into(),
            false,
        )]),
        sealed_names: true,
    };
    let m = forge::bundle(
        &d.join("b"),
        "swap",
        &forge::tar(&members),
        contents,
        &clerk.recipient,
        &clerk.secret,
    );
    pouch()
        .arg("unpack")
        .arg(&m)
        .arg("-i")
        .arg(&clerk.identity)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-d")
        .arg(d.join("dest"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "inner manifest differs from the entries",
        ));
    assert!(!d.join("dest").exists());
}
