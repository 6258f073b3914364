//! Hostile bundles, swept by one test. Each case builds a bundle the way an
//! attacker could (most are correctly signed and encrypted, as with a stolen
//! signing key, so they reach the layer under test) and states the outcome it
//! must have. For every case, `unpack` and `verify -i` must both exit with the
//! stated code and name the check; DEST must be left exactly as it was, with
//! no staging folder; nothing may appear outside DEST.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::forge::{self, Member};
use common::{pouch, Keys, World};
use pouch::format::manifest::{Contents, Entry, InnerManifest};

struct Ctx {
    clerk: Keys,
    stranger: Keys,
}

type Build = Box<dyn Fn(&Ctx, &Path) -> PathBuf>;

struct Case {
    name: &'static str,
    build: Build,
    /// Exit code both commands must give.
    code: i32,
    /// Text the error must contain.
    expect: &'static str,
}

/// Generous signed counts for sealed-names bundles, so that the check under
/// test, not the counts, decides.
fn counts() -> Contents {
    Contents {
        files: 8,
        folders: 8,
        total_bytes: 4096,
        entries_sha256: "0".repeat(64),
        sealed_names: true,
    }
}

/// A case whose archive is the given members (with the end marker).
fn members(name: &'static str, m: Vec<Member>, expect: &'static str) -> Case {
    let tar = forge::tar(&m);
    raw_tar(name, tar, expect)
}

/// A case whose archive is the given raw bytes.
fn raw_tar(name: &'static str, tar: Vec<u8>, expect: &'static str) -> Case {
    Case {
        name,
        build: Box::new(move |c, dir| {
            forge::bundle(
                dir,
                "evil",
                &tar,
                counts(),
                &c.clerk.recipient,
                &c.clerk.secret,
            )
        }),
        code: 1,
        expect,
    }
}

/// A case whose age plaintext (normally zstd of a tar) is the given bytes.
fn plaintext(name: &'static str, bytes: Vec<u8>, expect: &'static str) -> Case {
    Case {
        name,
        build: Box::new(move |c, dir| {
            forge::bundle_from_plaintext(
                dir,
                "evil",
                &bytes,
                Contents {
                    total_bytes: 1 << 20,
                    ..counts()
                },
                &c.clerk.recipient,
                &c.clerk.secret,
            )
        }),
        code: 1,
        expect,
    }
}

/// A case whose payload (the age file) is made from a valid one by `edit`,
/// and then signed as it is.
fn payload(name: &'static str, edit: fn(Vec<u8>) -> Vec<u8>, expect: &'static str) -> Case {
    Case {
        name,
        build: Box::new(move |c, dir| {
            let good = forge::encrypt(
                &zstd::encode_all(&forge::tar(&big_members())[..], 1).expect("zstd"),
                &c.clerk.recipient,
            );
            let bad = edit(good);
            forge::bundle_from_payload(
                dir,
                "evil",
                &bad,
                Contents {
                    total_bytes: 1 << 20,
                    ..counts()
                },
                &c.clerk.recipient,
                &c.clerk.secret,
            )
        }),
        code: 1,
        expect,
    }
}

/// A case whose manifest text is made from a valid one by `edit`, then signed
/// with the trusted key, so that parsing is reached.
fn manifest(name: &'static str, edit: fn(String) -> String, expect: &'static str) -> Case {
    Case {
        name,
        build: Box::new(move |c, dir| {
            let m = forge::bundle(
                dir,
                "evil",
                &forge::tar(&[Member::file("a", b"x")]),
                counts(),
                &c.clerk.recipient,
                &c.clerk.secret,
            );
            let text = edit(fs::read_to_string(&m).expect("read"));
            forge::signed_manifest(
                dir,
                "evil",
                text.as_bytes(),
                forge::BUNDLE_ID,
                &forge::key(&c.clerk.secret),
            )
        }),
        code: 1,
        expect,
    }
}

/// 200 KiB of incompressible data: several 64 KiB age chunks.
fn big_members() -> Vec<Member> {
    vec![Member::file("big", &common::noise(200 * 1024, 3))]
}

fn raw_member(name: &[u8], kind: u8, data: &[u8]) -> Member {
    Member {
        name: name.to_vec(),
        kind,
        data: data.to_vec(),
        link: Vec::new(),
        mode: 0o644,
    }
}

/// A consistent inner manifest for `entries`, as a tar member.
fn inner(entries: Vec<Entry>) -> Member {
    let text = InnerManifest {
        format_version: 1,
        entries,
    }
    .to_toml();
    Member::file(".pouch-manifest.toml", text.as_bytes())
}

/// The offset just past the age header (the line ending in the MAC) plus the
/// 16-byte stream nonce: where the first 64 KiB chunk starts.
fn payload_start(age: &[u8]) -> usize {
    let mac = age
        .windows(4)
        .position(|w| w == b"\n---")
        .expect("age header");
    let end = mac
        + age[mac + 1..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("mac line")
        + 2;
    end + 16
}

const CHUNK: usize = 64 * 1024 + 16;

fn cases() -> Vec<Case> {
    let big = 1u64 << 30;
    let mut v = vec![
        // 1. names that escape or deceive
        members(
            "dotdot",
            vec![Member::file("../escape.txt", b"x")],
            "\"..\" component",
        ),
        members(
            "dotdot-deep",
            vec![
                Member::folder("a"),
                Member::file("a/../../escape.txt", b"x"),
            ],
            "\"..\" component",
        ),
        members(
            "absolute",
            vec![Member::file("/tmp/pouch-escape.txt", b"x")],
            "absolute path",
        ),
        members(
            "double-slash",
            vec![Member::file("//tmp/pouch-escape.txt", b"x")],
            "absolute path",
        ),
        members(
            "drive-slash",
            vec![Member::file("C:/escape.txt", b"x")],
            "drive-letter",
        ),
        members(
            "drive-backslash",
            vec![Member::file("C:\\escape.txt", b"x")],
            "backslash",
        ),
        members(
            "unc",
            vec![Member::file("\\\\server\\share\\x", b"x")],
            "backslash",
        ),
        members(
            "home",
            vec![Member::file("~root/escape.txt", b"x")],
            "home-folder",
        ),
        members(
            "empty-name",
            vec![raw_member(b"", b'0', b"x")],
            "empty name",
        ),
        members("dot", vec![raw_member(b".", b'5', b"")], "\".\" component"),
        members(
            "control",
            vec![Member::file("a\x1b[2Jb", b"x")],
            "control character",
        ),
        members(
            "nul-in-long-name",
            vec![raw_member(
                &[b"a\0b".as_slice(), &[b'c'; 120]].concat(),
                b'0',
                b"x",
            )],
            "control character",
        ),
        members(
            "non-utf8",
            vec![raw_member(b"\xff\xfe", b'0', b"x")],
            "not UTF-8",
        ),
        members(
            "too-deep",
            vec![Member::file("a/".repeat(129).trim_end_matches('/'), b"x")],
            "deeper than 128",
        ),
        // 2. links of every kind
        members(
            "symlink-absolute",
            vec![Member::special("link", b'2', "/etc")],
            "symbolic link",
        ),
        members(
            "symlink-relative",
            vec![Member::special("link", b'2', "../..")],
            "symbolic link",
        ),
        members(
            "symlink-dangling",
            vec![Member::special("link", b'2', "nowhere")],
            "symbolic link",
        ),
        members(
            "symlink-then-write-through",
            vec![
                Member::special("link", b'2', "/tmp"),
                Member::file("link/x", b"x"),
            ],
            "symbolic link",
        ),
        members(
            "symlink-then-folder",
            vec![Member::special("d", b'2', "/tmp"), Member::folder("d")],
            "symbolic link",
        ),
        members(
            "hardlink",
            vec![Member::file("a", b"x"), Member::special("b", b'1', "a")],
            "hard link",
        ),
        members(
            "hardlink-outside",
            vec![Member::special("b", b'1', "/etc/passwd")],
            "hard link",
        ),
        // 3. special files and unknown types
        members("fifo", vec![Member::special("fifo", b'6', "")], "FIFO"),
        members(
            "chardev",
            vec![Member::special("null", b'3', "")],
            "character device",
        ),
        members(
            "blockdev",
            vec![Member::special("sda", b'4', "")],
            "block device",
        ),
        members(
            "unknown-type",
            vec![Member::special("odd", b'Z', "")],
            "unsupported type",
        ),
        members(
            "sparse",
            vec![Member::special("s", b'S', "")],
            "sparse file",
        ),
        // 5. duplicates
        members(
            "duplicate",
            vec![Member::file("a", b"x"), Member::file("a", b"y")],
            "appears twice",
        ),
        members(
            "duplicate-case",
            vec![
                Member::file("Report.txt", b"x"),
                Member::file("report.txt", b"y"),
            ],
            "collides with",
        ),
        members(
            "duplicate-nfc",
            vec![
                Member::file("caf\u{e9}", b"x"),
                Member::file("cafe\u{301}", b"y"),
            ],
            "collides with",
        ),
        // Pairs that only full Unicode case folding joins: NTFS, APFS and
        // exFAT hold each pair as one file.
        members(
            "duplicate-fold-sigma",
            vec![
                Member::file("\u{3c3}.txt", b"x"),
                Member::file("\u{3c2}.txt", b"y"),
            ],
            "collides with",
        ),
        members(
            "duplicate-fold-micro",
            vec![Member::file("\u{b5}", b"x"), Member::file("\u{3bc}", b"y")],
            "collides with",
        ),
        members(
            "duplicate-fold-long-s",
            vec![Member::file("s", b"x"), Member::file("\u{17f}", b"y")],
            "collides with",
        ),
        members(
            "duplicate-fold-kelvin",
            vec![Member::file("k", b"x"), Member::file("\u{212a}", b"y")],
            "collides with",
        ),
        members(
            "folder-twice",
            vec![Member::folder("d"), Member::folder("d")],
            "appears twice",
        ),
        members(
            "orphan",
            vec![Member::file("nofolder/a", b"x")],
            "folder does not come before it",
        ),
        members(
            "folder-with-data",
            vec![raw_member(b"d", b'5', b"data")],
            "folder with data",
        ),
        // 6. parser differentials
        raw_tar(
            "missing-end-marker",
            forge::tar_body(&[Member::file("a", b"x")]),
            "end-of-archive marker",
        ),
        raw_tar(
            "half-end-marker",
            [forge::tar_body(&[Member::file("a", b"x")]), vec![0u8; 512]].concat(),
            "end-of-archive marker",
        ),
        raw_tar(
            "data-after-end",
            [forge::tar(&[Member::file("a", b"x")]), b"PAYLOAD".to_vec()].concat(),
            "data follows the end",
        ),
        raw_tar(
            "member-after-end",
            [
                forge::tar(&[Member::file("a", b"x")]),
                forge::tar(&[Member::file("b", b"y")]),
            ]
            .concat(),
            "data follows the end",
        ),
        raw_tar(
            "pax-size",
            [
                forge::header(b"././@PaxHeader", b'x', 12, 0o644, b"").to_vec(),
                b"12 size=99\n\0".to_vec(),
                vec![0u8; 500],
                forge::tar(&[Member::file("a", b"x")]),
            ]
            .concat(),
            "PAX",
        ),
        raw_tar(
            "global-pax",
            [
                forge::header(b"pax_global", b'g', 0, 0o644, b"").to_vec(),
                forge::tar(&[]),
            ]
            .concat(),
            "PAX",
        ),
        raw_tar(
            "pax-before-long-name",
            {
                let mut t = forge::header(b"././@PaxHeader", b'x', 0, 0o644, b"").to_vec();
                t.extend(forge::tar(&[raw_member(&[b'a'; 150], b'0', b"x")]));
                t
            },
            "PAX",
        ),
        raw_tar(
            "doubled-long-name",
            {
                let mut t = Vec::new();
                for _ in 0..2 {
                    t.extend_from_slice(&forge::header(b"././@LongLink", b'L', 4, 0o644, b""));
                    t.extend_from_slice(b"abc\0");
                    t.resize(t.len().div_ceil(512) * 512, 0);
                }
                t.extend(forge::tar(&[Member::file("a", b"x")]));
                t
            },
            "two long-name records",
        ),
        raw_tar(
            "long-name-1-gib",
            [
                forge::header(b"././@LongLink", b'L', big, 0o644, b"").to_vec(),
                vec![b'a'; 4096],
            ]
            .concat(),
            "long-name record of 1073741824",
        ),
        raw_tar(
            "size-u64-max",
            {
                let mut h = forge::header(b"a", b'0', 0, 0o644, b"");
                h[124..136].copy_from_slice(&[
                    0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ]);
                h[148..156].copy_from_slice(b"        ");
                let sum: u32 = h.iter().map(|&b| b as u32).sum();
                h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
                [h.to_vec(), vec![0u8; 1024]].concat()
            },
            "more bytes than the signed manifest counts",
        ),
        raw_tar(
            "bad-checksum",
            {
                let mut t = forge::tar(&[Member::file("a", b"x")]);
                t[0] = b'b';
                t
            },
            "checksum",
        ),
        // 8. contents that disagree with what was signed
        members(
            "no-inner-manifest",
            vec![Member::file("a", b"x")],
            "no inner manifest",
        ),
        members(
            "after-inner-manifest",
            vec![
                Member::file("a", b"x"),
                inner(vec![Entry::file(
                    "a".into(),
                    1,
                    pouch::payload::hashing::sha256_hex(b"x"),
                    false,
                )]),
                Member::file("b", b"y"),
            ],
            "comes after the inner manifest",
        ),
        members(
            "inner-manifest-lies",
            vec![
                Member::file("a", b"y"),
                inner(vec![Entry::file(
                    "a".into(),
                    1,
                    pouch::payload::hashing::sha256_hex(b"x"),
                    false,
                )]),
            ],
            "inner manifest differs",
        ),
        members(
            "inner-manifest-short",
            vec![
                Member::file("a", b"x"),
                Member::file(".pouch-manifest.toml", b"format_version = 1\n"),
            ],
            "does not list the entries",
        ),
        members(
            "counts-exceeded",
            (0..17)
                .map(|i| Member::file(&format!("f{i}"), b"x"))
                .collect(),
            "more entries than the signed manifest counts",
        ),
        members(
            "consistent-but-not-signed",
            vec![
                Member::file("a", b"x"),
                inner(vec![Entry::file(
                    "a".into(),
                    1,
                    pouch::payload::hashing::sha256_hex(b"x"),
                    false,
                )]),
            ],
            "counts",
        ),
        // 9. zstd layer
        plaintext(
            "zstd-huge-window",
            {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
                e.set_parameter(zstd::zstd_safe::CParameter::WindowLog(31))
                    .expect("window");
                e.long_distance_matching(true).expect("ldm");
                e.write_all(&forge::tar(&[Member::file("a", b"x")]))
                    .expect("write");
                e.finish().expect("finish")
            },
            "zstd: ",
        ),
        plaintext(
            "zstd-bomb",
            zstd::encode_all(
                &[forge::tar(&[Member::file("a", b"x")]), vec![0u8; 256 << 20]].concat()[..],
                3,
            )
            .expect("zstd"),
            "larger than the signed manifest allows",
        ),
        plaintext(
            "zstd-truncated",
            {
                let z = zstd::encode_all(&forge::tar(&big_members())[..], 1).expect("zstd");
                z[..z.len() / 2].to_vec()
            },
            "zstd: ",
        ),
        plaintext(
            "zstd-trailing-garbage",
            [
                zstd::encode_all(&forge::tar(&[Member::file("a", b"x")])[..], 1).expect("zstd"),
                b"garbage!".to_vec(),
            ]
            .concat(),
            "zstd: ",
        ),
        plaintext("not-zstd", forge::tar(&[Member::file("a", b"x")]), "zstd: "),
        // 10. age layer (the manifest is re-signed over the damaged payload)
        payload(
            "age-truncated-at-chunk",
            |p| {
                let s = payload_start(&p);
                p[..s + CHUNK].to_vec()
            },
            "age: ",
        ),
        payload(
            "age-truncated-off-chunk",
            |p| {
                let s = payload_start(&p);
                p[..s + CHUNK + 1000].to_vec()
            },
            "age: ",
        ),
        payload(
            "age-missing-final-chunk",
            |p| {
                let s = payload_start(&p);
                let n = (p.len() - s) / CHUNK;
                p[..s + n * CHUNK].to_vec()
            },
            "age: ",
        ),
        payload(
            "age-appended-bytes",
            |mut p| {
                p.extend_from_slice(b"more");
                p
            },
            "age: ",
        ),
        payload(
            "age-flipped-bit",
            |mut p| {
                let i = p.len() / 2;
                p[i] ^= 0x04;
                p
            },
            "age: ",
        ),
        payload(
            "age-flipped-header-mac",
            |mut p| {
                let i = p.windows(4).position(|w| w == b"\n---").expect("mac") + 6;
                p[i] = if p[i] == b'A' { b'B' } else { b'A' };
                p
            },
            "age: ",
        ),
        payload(
            "age-reordered-chunks",
            |p| {
                let s = payload_start(&p);
                let mut q = p[..s].to_vec();
                q.extend_from_slice(&p[s + CHUNK..s + 2 * CHUNK]);
                q.extend_from_slice(&p[s..s + CHUNK]);
                q.extend_from_slice(&p[s + 2 * CHUNK..]);
                q
            },
            "age: ",
        ),
        payload(
            "age-passphrase-absurd-work",
            |_| {
                let pass = age::secrecy::SecretString::from("hunter2".to_string());
                let mut out = Vec::new();
                let mut w = age::Encryptor::with_user_passphrase(pass)
                    .wrap_output(&mut out)
                    .expect("wrap");
                w.write_all(b"x").expect("write");
                w.finish().expect("finish");
                // Raise the stanza's work factor to 2^40.
                let start = out
                    .windows(10)
                    .position(|w| w == b"-> scrypt ")
                    .expect("scrypt stanza");
                let eol = start + out[start..].iter().position(|&b| b == b'\n').expect("eol");
                let sp = start
                    + out[start..eol]
                        .iter()
                        .rposition(|&b| b == b' ')
                        .expect("space");
                [&out[..sp + 1], b"40".as_slice(), &out[eol..]].concat()
            },
            "passphrase-encrypted",
        ),
        // 12. manifest layer (signed, so parsing is reached)
        manifest(
            "manifest-not-toml",
            |_| "this is { not toml".into(),
            "manifest",
        ),
        manifest(
            "manifest-bom",
            |t| format!("\u{feff}{t}"),
            "byte order mark",
        ),
        manifest(
            "manifest-unknown-key",
            |t| t.replace("marking =", "colour = \"red\"\nmarking ="),
            "colour",
        ),
        manifest(
            "manifest-unknown-version",
            |t| t.replace("format_version = 1", "format_version = 2"),
            "format_version 2",
        ),
        manifest(
            "manifest-negative-size",
            |t| t.replacen("size = ", "size = -", 1),
            "manifest",
        ),
        manifest(
            "manifest-huge-number",
            |t| t.replacen("size = ", "size = 99999999999999999999999", 1),
            "manifest",
        ),
        manifest(
            "manifest-non-hex-hash",
            |t| t.replacen("sha256 = \"", "sha256 = \"zz", 1),
            "64 lowercase hex",
        ),
        manifest(
            "manifest-nested",
            |t| format!("{t}\nx = {}1{}\n", "[".repeat(10_000), "]".repeat(10_000)),
            "manifest",
        ),
        manifest(
            "manifest-unsafe-path",
            |t| {
                let t = t.replace("sealed_names = true", "sealed_names = false");
                format!("{t}\n[[entries]]\npath = \"../x\"\nkind = \"folder\"\nmode = \"0755\"\n")
            },
            "\"..\" component",
        ),
        manifest(
            "manifest-duplicate-paths",
            |t| {
                let t = t.replace("sealed_names = true", "sealed_names = false");
                format!("{t}\n[[entries]]\npath = \"d\"\nkind = \"folder\"\nmode = \"0755\"\n\n[[entries]]\npath = \"d\"\nkind = \"folder\"\nmode = \"0755\"\n")
            },
            "listed twice",
        ),
    ];
    // 8. entries that disagree with a signed list of names
    let x = || {
        Entry::file(
            "a".into(),
            1,
            pouch::payload::hashing::sha256_hex(b"x"),
            false,
        )
    };
    let y = || {
        Entry::file(
            "b".into(),
            1,
            pouch::payload::hashing::sha256_hex(b"y"),
            false,
        )
    };
    let listed: Vec<(&'static str, Vec<Member>, Vec<Entry>, &'static str)> = vec![
        (
            "listed-extra-file",
            vec![
                Member::file("a", b"x"),
                Member::file("b", b"y"),
                inner(vec![x(), y()]),
            ],
            vec![x()],
            "is not in the signed manifest",
        ),
        (
            "listed-missing-file",
            vec![Member::file("a", b"x"), inner(vec![x()])],
            vec![x(), y()],
            "listed in the signed manifest but missing",
        ),
        (
            "listed-other-size",
            vec![Member::file("a", b"xx"), inner(vec![x()])],
            vec![x()],
            "size 2 differs from the signed 1",
        ),
        (
            "listed-other-hash",
            vec![Member::file("a", b"z"), inner(vec![x()])],
            vec![x()],
            "sha256 differs from the signed manifest",
        ),
        (
            "listed-other-order",
            vec![
                Member::file("b", b"y"),
                Member::file("a", b"x"),
                inner(vec![y(), x()]),
            ],
            vec![x(), y()],
            "the signed manifest lists \"a\"",
        ),
        (
            "listed-other-type",
            vec![Member::folder("a"), inner(vec![Entry::folder("a".into())])],
            vec![x()],
            "the signed manifest lists \"a\" (File)",
        ),
        (
            "listed-other-mode",
            vec![
                Member {
                    mode: 0o755,
                    ..Member::file("a", b"x")
                },
                inner(vec![Entry::file(
                    "a".into(),
                    1,
                    pouch::payload::hashing::sha256_hex(b"x"),
                    true,
                )]),
            ],
            vec![x()],
            "mode differs",
        ),
    ];
    for (name, members, entries, expect) in listed {
        let tar = forge::tar(&members);
        v.push(Case {
            name,
            build: Box::new(move |c, dir| {
                forge::bundle_listed(
                    dir,
                    "evil",
                    &tar,
                    entries.clone(),
                    &c.clerk.recipient,
                    &c.clerk.secret,
                )
            }),
            code: 1,
            expect,
        });
    }
    // 11. signature layer
    v.push(Case {
        name: "signed-by-untrusted-key",
        build: Box::new(|c, dir| {
            forge::bundle(
                dir,
                "evil",
                &forge::tar(&[Member::file("a", b"x")]),
                counts(),
                &c.clerk.recipient,
                &c.stranger.secret,
            )
        }),
        code: 1,
        expect: "not among the trusted keys",
    });
    v.push(Case {
        name: "signature-from-another-bundle",
        build: Box::new(|c, dir| {
            let other = dir.join("other");
            fs::create_dir(&other).expect("mkdir");
            forge::bundle(
                &other,
                "evil",
                &forge::tar(&[Member::file("b", b"y")]),
                counts(),
                &c.clerk.recipient,
                &c.clerk.secret,
            );
            let m = forge::bundle(
                dir,
                "evil",
                &forge::tar(&[Member::file("a", b"x")]),
                counts(),
                &c.clerk.recipient,
                &c.stranger.secret,
            );
            fs::copy(
                other.join("evil.toml.minisig"),
                dir.join("evil.toml.minisig"),
            )
            .expect("copy");
            m
        }),
        code: 1,
        expect: "does not match the manifest",
    });
    v.push(Case {
        name: "edited-trusted-comment",
        build: Box::new(|c, dir| {
            let m = forge::bundle(
                dir,
                "evil",
                &forge::tar(&[Member::file("a", b"x")]),
                counts(),
                &c.clerk.recipient,
                &c.clerk.secret,
            );
            let sig = dir.join("evil.toml.minisig");
            let text = fs::read_to_string(&sig)
                .expect("read")
                .replace("name:evil", "name:good");
            fs::write(&sig, text).expect("write");
            m
        }),
        code: 1,
        expect: "signature",
    });
    v.push(Case {
        name: "signature-missing",
        build: Box::new(|c, dir| {
            let m = forge::bundle(
                dir,
                "evil",
                &forge::tar(&[Member::file("a", b"x")]),
                counts(),
                &c.clerk.recipient,
                &c.clerk.secret,
            );
            fs::remove_file(dir.join("evil.toml.minisig")).expect("rm");
            m
        }),
        code: 1,
        expect: "missing",
    });
    v.push(Case {
        name: "for-another-recipient",
        build: Box::new(|c, dir| {
            forge::bundle(
                dir,
                "evil",
                &forge::tar(&[Member::file("a", b"x")]),
                counts(),
                &c.stranger.recipient,
                &c.clerk.secret,
            )
        }),
        code: 1,
        expect: "no identity matched",
    });
    v.push(Case {
        name: "manifest-of-1-gib",
        build: Box::new(|_, dir| {
            let m = dir.join("evil.toml");
            fs::File::create(&m)
                .expect("create")
                .set_len(1 << 30)
                .expect("sparse");
            m
        }),
        code: 1,
        expect: "larger than",
    });
    v
}

#[test]
fn hostile_bundles_fail_safely() {
    let w = World::new();
    let d = w.path();
    let ctx = Ctx {
        clerk: w.keys("clerk"),
        stranger: w.keys("stranger"),
    };
    let mut failures = Vec::new();
    let all = cases();
    let mut names = std::collections::HashSet::new();
    for case in &all {
        assert!(names.insert(case.name), "case {} twice", case.name);
        let work = d.join(case.name);
        fs::create_dir_all(work.join("bundle")).expect("mkdir");
        let dest = work.join("dest");
        fs::create_dir(&dest).expect("mkdir");
        fs::write(dest.join("marker"), "was here").expect("write");
        let m = (case.build)(&ctx, &work.join("bundle"));
        for verb in ["unpack", "verify"] {
            let mut cmd = pouch();
            cmd.arg(verb)
                .arg(&m)
                .arg("-i")
                .arg(&ctx.clerk.identity)
                .arg("--trust")
                .arg(&ctx.clerk.public);
            if verb == "unpack" {
                cmd.arg("-d").arg(&dest);
            }
            let out = cmd.output().expect("runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(case.code) || !stderr.contains(case.expect) {
                failures.push(format!(
                    "case {} ({verb}): exit {:?}, wanted {} and an error containing {:?}; stderr: {}",
                    case.name,
                    out.status.code(),
                    case.code,
                    case.expect,
                    stderr.trim()
                ));
            }
            if stderr.contains("panicked") {
                failures.push(format!("case {} ({verb}): panicked", case.name));
            }
        }
        let left: Vec<_> = fs::read_dir(&dest)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        if left != [std::ffi::OsString::from("marker")] {
            failures.push(format!("case {}: DEST holds {left:?}", case.name));
        }
        let around: Vec<_> = fs::read_dir(&work)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        if around.len() != 2 {
            failures.push(format!("case {}: beside DEST: {around:?}", case.name));
        }
    }
    for escaped in ["/tmp/pouch-escape.txt", "/tmp/x"] {
        assert!(
            !Path::new(escaped).exists() || escaped == "/tmp/x",
            "{escaped} was created"
        );
    }
    assert!(!d.join("escape.txt").exists());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn a_replaced_untrusted_comment_does_not_matter() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::write(d.join("f.txt"), "f").expect("write");
    let m = w.pack(&[&d.join("f.txt")], "b", &clerk, &[&clerk], &[]);
    let sig = d.join("out/b.toml.minisig");
    let text = fs::read_to_string(&sig).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[0] = "untrusted comment: anything at all, even lies";
    fs::write(&sig, lines.join("\n") + "\n").expect("write");
    common::ok(
        "verify -i",
        common::verify(&m, &clerk.public, Some(&clerk.identity)),
    );
}

#[test]
fn privileged_mode_bits_and_foreign_owners_are_dropped() {
    // A consistent, correctly signed bundle whose headers ask for setuid,
    // setgid and sticky bits and a foreign owner: the files come out 0755
    // and 0644, folders 0755, owned by whoever runs pouch.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let entries = vec![
        Entry::folder("d".into()),
        Entry::file(
            "d/suid".into(),
            1,
            pouch::payload::hashing::sha256_hex(b"x"),
            true,
        ),
        Entry::file(
            "d/plain".into(),
            1,
            pouch::payload::hashing::sha256_hex(b"y"),
            false,
        ),
    ];
    let mut m = vec![
        Member {
            mode: 0o1777,
            ..Member::folder("d")
        },
        Member {
            mode: 0o6755,
            ..Member::file("d/suid", b"x")
        },
        Member {
            mode: 0o2644,
            ..Member::file("d/plain", b"y")
        },
    ];
    m.push(inner(entries.clone()));
    let mut tar = forge::tar(&m);
    // Foreign uid/gid in every header: rewrite the owner fields and checksums.
    let mut off = 0;
    while off + 512 <= tar.len() && tar[off..off + 512].iter().any(|&b| b != 0) {
        let h = &mut tar[off..off + 512];
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0001750\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let size = u64::from_str_radix(std::str::from_utf8(&h[124..135]).expect("ascii"), 8)
            .expect("octal");
        off += 512 + (size as usize).div_ceil(512) * 512;
    }
    let contents = forge::contents_of(&entries, true);
    fs::create_dir(d.join("b")).expect("mkdir");
    let manifest = forge::bundle(
        &d.join("b"),
        "modes",
        &tar,
        contents,
        &clerk.recipient,
        &clerk.secret,
    );
    pouch()
        .arg("unpack")
        .arg(&manifest)
        .arg("-i")
        .arg(&clerk.identity)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-d")
        .arg(d.join("in"))
        .assert()
        .success();
    let meta = |p: &str| fs::metadata(d.join("in/modes").join(p)).expect("stat");
    assert_eq!(meta("d").permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta("d/suid").permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta("d/plain").permissions().mode() & 0o7777, 0o644);
    let me = fs::metadata(d).expect("stat").uid();
    assert_eq!(meta("d/suid").uid(), me);
}
