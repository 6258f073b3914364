//! The command-line contract: every command, documented error and exit code.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{assert_same_tree, pouch, World};
use predicates::prelude::*;
use predicates::str::contains;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in ["keygen", "pack", "verify", "unpack", "inspect", "demo"] {
        let out = pouch().args([sub, "--help"]).output().expect("runs");
        assert!(out.status.success(), "{sub} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: pouch"), "{sub} --help: {text}");
        if sub != "demo" {
            assert!(
                text.contains("Example"),
                "{sub} --help has no example: {text}"
            );
        }
    }
    pouch()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Exit codes"));
}

#[test]
fn usage_errors_exit_2() {
    pouch().arg("frobnicate").assert().code(2);
    pouch().args(["pack", "x"]).assert().code(2);
    let w = World::new();
    pouch()
        .arg("verify")
        .arg(w.path().join("missing.toml"))
        .args([
            "--trust",
            "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
        ])
        .assert()
        .code(2)
        .stderr(contains("missing.toml"))
        .stderr(contains("hint:"));
}

#[test]
fn round_trip_preserves_the_tree() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let partner = w.keys("partner");
    let case = w.tree();
    let m = w.pack(
        &[&case],
        "b1",
        &clerk,
        &[&partner],
        &["--marking", "RESTRICTED", "--from", "bka", "--to", "fedpol"],
    );

    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&clerk.public)
        .assert()
        .success()
        .stdout(contains("verdict    OK"))
        .stdout(contains("not decrypted"));
    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-i")
        .arg(&partner.identity)
        .assert()
        .success()
        .stdout(contains("every entry matches"));
    let out = pouch()
        .arg("unpack")
        .arg(&m)
        .arg("-i")
        .arg(&partner.identity)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-d")
        .arg(d.join("inbox"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "unpack failed: {}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        d.join("inbox/b1").display().to_string()
    );
    assert_same_tree(&case, &d.join("inbox/b1/case 0142"));
    // Nothing else appears in DEST: no staging folder is left behind.
    let names: Vec<_> = fs::read_dir(d.join("inbox"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("b1")]);
    let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode(&d.join("inbox/b1/case 0142/collect.sh")), 0o755);
    assert_eq!(mode(&d.join("inbox/b1/case 0142/empty.txt")), 0o644);
    assert_eq!(mode(&d.join("inbox/b1/case 0142/empty folder")), 0o755);
}

#[test]
fn several_sources_and_a_single_file() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::create_dir_all(d.join("a/folder")).expect("mkdir");
    fs::write(d.join("a/folder/x.txt"), "x").expect("write");
    fs::write(d.join("b.txt"), "b").expect("write");
    let m = w.pack(
        &[&d.join("a/folder"), &d.join("b.txt")],
        "two",
        &clerk,
        &[&clerk],
        &[],
    );
    pouch()
        .arg("unpack")
        .arg(&m)
        .arg("-i")
        .arg(&clerk.identity)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-d")
        .arg(d.join("in"))
        .assert()
        .success();
    assert_eq!(fs::read(d.join("in/two/folder/x.txt")).expect("read"), b"x");
    assert_eq!(fs::read(d.join("in/two/b.txt")).expect("read"), b"b");
}

#[test]
fn colliding_sources_are_refused() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    for sub in ["one", "two"] {
        fs::create_dir_all(d.join(sub)).expect("mkdir");
        fs::write(d.join(sub).join("report.txt"), sub).expect("write");
    }
    fs::create_dir(d.join("out")).expect("mkdir");
    pouch()
        .arg("pack")
        .arg(d.join("one/report.txt"))
        .arg(d.join("two/report.txt"))
        .arg("-o")
        .arg(d.join("out"))
        .args(["-r", &clerk.recipient, "-s"])
        .arg(&clerk.secret)
        .assert()
        .code(2)
        .stderr(contains("both be stored as \"report.txt\""));
    assert_eq!(
        fs::read_dir(d.join("out")).expect("ls").count(),
        0,
        "nothing written"
    );
}

#[test]
fn special_files_are_refused_or_skipped_with_a_warning() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let src = d.join("case");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("real.txt"), "real").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", src.join("link")).expect("symlink");
    fs::create_dir(d.join("out")).expect("mkdir");
    let base = || {
        let mut c = pouch();
        c.arg("pack")
            .arg(&src)
            .arg("-o")
            .arg(d.join("out"))
            .args(["-r", &clerk.recipient, "-s"])
            .arg(&clerk.secret);
        c
    };
    base()
        .assert()
        .code(2)
        .stderr(contains("case/link"))
        .stderr(contains("symbolic link"));
    assert_eq!(
        fs::read_dir(d.join("out")).expect("ls").count(),
        0,
        "nothing written"
    );
    base()
        .args(["--skip-special", "--name", "s"])
        .assert()
        .success()
        .stderr(contains("skipped"));
    let manifest = fs::read_to_string(d.join("out/s.toml")).expect("manifest");
    assert!(
        manifest.contains("case/real.txt") && !manifest.contains("case/link"),
        "{manifest}"
    );
}

#[test]
fn pack_refuses_to_overwrite_a_bundle() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::write(d.join("f.txt"), "f").expect("write");
    w.pack(&[&d.join("f.txt")], "same", &clerk, &[&clerk], &[]);
    let before = fs::read(d.join("out/same.age")).expect("read");
    pouch()
        .arg("pack")
        .arg(d.join("f.txt"))
        .arg("-o")
        .arg(d.join("out"))
        .args(["--name", "same", "-r", &clerk.recipient, "-s"])
        .arg(&clerk.secret)
        .assert()
        .code(2)
        .stderr(contains("already exists"));
    assert_eq!(fs::read(d.join("out/same.age")).expect("read"), before);
    assert_eq!(
        fs::read_dir(d.join("out")).expect("ls").count(),
        3,
        "no temporary files left"
    );
}

#[test]
fn flipped_payload_byte_fails_naming_the_payload_hash() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let case = w.tree();
    let m = w.pack(&[&case], "b", &clerk, &[&clerk], &[]);
    let payload = d.join("out/b.age");
    let mut bytes = fs::read(&payload).expect("read");
    let i = bytes.len() / 3;
    bytes[i] ^= 0x10;
    fs::write(&payload, &bytes).expect("write");
    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&clerk.public)
        .assert()
        .code(1)
        .stderr(contains("sha256 mismatch"));
    // With a key, too, the root cause is named, and unpack commits nothing.
    pouch()
        .arg("unpack")
        .arg(&m)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-i")
        .arg(&clerk.identity)
        .arg("-d")
        .arg(d.join("in"))
        .assert()
        .code(1)
        .stderr(contains("sha256 mismatch"));
    assert!(
        !d.join("in").exists(),
        "DEST created by unpack is removed again"
    );
}

#[test]
fn edited_manifest_fails_naming_the_signature() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::write(d.join("f.txt"), "f").expect("write");
    let m = w.pack(
        &[&d.join("f.txt")],
        "b",
        &clerk,
        &[&clerk],
        &["--marking", "RESTRICTED"],
    );
    let text = fs::read_to_string(&m).expect("read");
    fs::write(&m, text.replace("RESTRICTED", "UNCLASSIFIED")).expect("write");
    for args in [vec!["verify"], vec!["inspect"]] {
        pouch()
            .args(&args)
            .arg(&m)
            .arg("--trust")
            .arg(&clerk.public)
            .assert()
            .code(1)
            .stderr(contains("signature").or(contains("FAILED")))
            .stdout(contains("FAILED").or(predicates::str::is_empty()));
    }
}

#[test]
fn untrusted_signer_is_refused() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let mallory = w.keys("mallory");
    fs::write(d.join("f.txt"), "f").expect("write");
    let m = w.pack(&[&d.join("f.txt")], "b", &mallory, &[&clerk], &[]);
    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&clerk.public)
        .assert()
        .code(1)
        .stderr(contains("not among the trusted keys"));
    pouch()
        .arg("verify")
        .arg(&m)
        .assert()
        .code(2)
        .stderr(contains("--trust"));
    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--insecure-skip-signature")
        .assert()
        .success()
        .stderr(contains("NOT checked"))
        .stdout(contains("NOT CHECKED"));
}

#[test]
fn wrong_identity_fails_and_leaves_dest_untouched() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let partner = w.keys("partner");
    let stranger = w.keys("stranger");
    fs::write(d.join("f.txt"), "f").expect("write");
    let m = w.pack(&[&d.join("f.txt")], "b", &clerk, &[&partner], &[]);
    let dest = d.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    fs::write(dest.join("already-here.txt"), "keep").expect("write");
    pouch()
        .arg("unpack")
        .arg(&m)
        .arg("-i")
        .arg(&stranger.identity)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-d")
        .arg(&dest)
        .assert()
        .code(1)
        .stderr(contains("no identity matched"))
        .stderr(contains("-i"));
    let names: Vec<_> = fs::read_dir(&dest)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("already-here.txt")],
        "DEST is as it was"
    );
}

#[test]
fn unpack_refuses_an_existing_target_and_a_symlinked_dest() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::write(d.join("f.txt"), "f").expect("write");
    let m = w.pack(&[&d.join("f.txt")], "b", &clerk, &[&clerk], &[]);
    let unpack = |dest: &Path| {
        let mut c = pouch();
        c.arg("unpack")
            .arg(&m)
            .arg("-i")
            .arg(&clerk.identity)
            .arg("--trust")
            .arg(&clerk.public)
            .arg("-d")
            .arg(dest);
        c
    };
    fs::create_dir_all(d.join("dest/b")).expect("mkdir");
    unpack(&d.join("dest"))
        .assert()
        .code(2)
        .stderr(contains("already exists"));
    std::os::unix::fs::symlink(d.join("dest"), d.join("link")).expect("symlink");
    unpack(&d.join("link"))
        .assert()
        .code(2)
        .stderr(contains("symbolic link"));
}

#[test]
fn sealed_names_stay_out_of_the_outer_manifest() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let case = w.tree();
    let m = w.pack(&[&case], "sealed", &clerk, &[&clerk], &["--seal-names"]);
    let text = fs::read_to_string(&m).expect("read");
    assert!(
        !text.contains("Müller") && !text.contains("[[entries]]"),
        "{text}"
    );
    assert!(text.contains("sealed_names = true"));
    pouch()
        .arg("inspect")
        .arg(&m)
        .assert()
        .success()
        .stdout(contains("names        sealed"));
    pouch()
        .arg("unpack")
        .arg(&m)
        .arg("-i")
        .arg(&clerk.identity)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("-d")
        .arg(d.join("in"))
        .assert()
        .success();
    assert_same_tree(&case, &d.join("in/sealed/case 0142"));
}

#[test]
fn json_reports_parse_and_carry_the_documented_fields() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::write(d.join("f.txt"), "f").expect("write");
    let m = w.pack(&[&d.join("f.txt")], "b", &clerk, &[&clerk], &[]);
    let run = |args: &[&str]| -> serde_json::Value {
        let out = pouch()
            .args(args)
            .arg(&m)
            .arg("--trust")
            .arg(&clerk.public)
            .arg("--json")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let v = run(&["verify"]);
    for field in [
        "bundle_id",
        "name",
        "manifest_sha256",
        "payload_sha256",
        "payload_size",
        "contents_checked",
        "files",
    ] {
        assert!(v.get(field).is_some(), "verify --json lacks {field}: {v}");
    }
    assert_eq!(v["signature"]["status"], "trusted");
    let i = run(&["inspect"]);
    assert_eq!(i["manifest"]["entries"][0]["path"], "f.txt");
    assert_eq!(i["signature"]["status"], "trusted");
    // Errors under --json are JSON on stdout, with the same exit code.
    fs::remove_file(d.join("out/b.age")).expect("rm");
    let out = pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&clerk.public)
        .arg("--json")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert_eq!(e["error"]["exit_code"], 1);
    assert!(e["error"]["message"]
        .as_str()
        .expect("message")
        .contains("missing"));
}

#[test]
fn keygen_writes_stock_formats_and_refuses_to_overwrite() {
    let w = World::new();
    let d = w.path();
    let k = w.keys("clerk");
    let identity = fs::read_to_string(&k.identity).expect("read");
    assert!(
        identity.contains(&format!("# public key: {}", k.recipient)),
        "{identity}"
    );
    assert!(identity.lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")));
    assert_eq!(
        fs::metadata(&k.identity)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&k.secret).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&k.public)
        .expect("read")
        .starts_with("untrusted comment: minisign public key"));
    pouch()
        .args(["keygen", "--name", "clerk", "--no-passphrase", "--out"])
        .arg(d)
        .assert()
        .code(2)
        .stderr(contains("already exists"));
    // Without a terminal and without a passphrase file, keygen says what to do.
    pouch()
        .args(["keygen", "--name", "other", "--out"])
        .arg(d)
        .assert()
        .code(2)
        .stderr(contains("--passphrase-file"));
    assert!(!d.join("other.age-identity").exists());
}

#[test]
fn passphrase_protected_signing_key() {
    let w = World::new();
    let d = w.path();
    fs::write(d.join("pass"), "correct horse battery staple\n").expect("write");
    pouch()
        .args(["keygen", "--name", "clerk", "--passphrase-file"])
        .arg(d.join("pass"))
        .arg("--out")
        .arg(d)
        .assert()
        .success();
    let recipient = fs::read_to_string(d.join("clerk.age-recipient")).expect("read");
    fs::write(d.join("f.txt"), "f").expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    let pack = |extra: &[&str]| {
        let mut c = pouch();
        c.arg("pack")
            .arg(d.join("f.txt"))
            .arg("-o")
            .arg(d.join("out"))
            .args(["-r", recipient.trim(), "-s"])
            .arg(d.join("clerk.minisign.key"));
        c.args(extra);
        c
    };
    pack(&[]).assert().code(2).stderr(contains("passphrase"));
    fs::write(d.join("wrong"), "nope\n").expect("write");
    pack(&["--passphrase-file", d.join("wrong").to_str().expect("utf8")])
        .assert()
        .code(2)
        .stderr(contains("passphrase"));
    pack(&[
        "--passphrase-file",
        d.join("pass").to_str().expect("utf8"),
        "--name",
        "ok",
    ])
    .assert()
    .success();
    pouch()
        .arg("verify")
        .arg(d.join("out/ok.toml"))
        .arg("--trust")
        .arg(d.join("clerk.minisign.pub"))
        .assert()
        .success();
}

#[test]
fn same_tree_packs_to_identical_plaintext_with_source_date_epoch() {
    use std::io::Read;
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let case = w.tree();
    let mut plaintexts = Vec::new();
    for name in ["one", "two"] {
        let out = pouch()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .arg("pack")
            .arg(&case)
            .arg("-o")
            .arg(d)
            .args(["--name", name, "-r", &clerk.recipient, "-s"])
            .arg(&clerk.secret)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
        let ids = pouch::payload::crypto::read_identity_file(&clerk.identity).expect("identity");
        let file = fs::File::open(d.join(format!("{name}.age"))).expect("open");
        let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).expect("header");
        let mut r = dec
            .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
            .expect("decrypt");
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).expect("read");
        plaintexts.push(buf);
    }
    assert!(plaintexts[0] == plaintexts[1], "decrypted payloads differ");
    assert_ne!(
        fs::read(d.join("one.age")).expect("read"),
        fs::read(d.join("two.age")).expect("read"),
        "ciphertexts use fresh keys"
    );
}

#[test]
fn demo_runs_the_full_round_trip() {
    let w = World::new();
    pouch()
        .arg("demo")
        .arg(w.path().join("demo"))
        .assert()
        .success()
        .stdout(contains("identical to the source: yes"))
        .stdout(contains("refused, exit code 1"))
        .stdout(contains("$ pouch unpack"));
}

#[test]
fn already_compressed_files_get_their_own_fast_frame() {
    use std::io::Read;
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let src = d.join("case");
    fs::create_dir(&src).expect("mkdir");
    fs::write(
        src.join("a-report.txt"),
        "witness statement, line after line\n".repeat(60_000),
    )
    .expect("write");
    fs::write(src.join("b-photo.jpg"), common::noise(2 << 20, 4)).expect("write");
    fs::write(
        src.join("c-report.txt"),
        "another report, line after line\n".repeat(60_000),
    )
    .expect("write");
    let m = w.pack(&[&src], "f", &clerk, &[&clerk], &[]);
    let ids = pouch::payload::crypto::read_identity_file(&clerk.identity).expect("identity");
    let file = fs::File::open(d.join("out/f.age")).expect("open");
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).expect("header");
    let mut r = dec
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .expect("decrypt");
    let mut z = Vec::new();
    r.read_to_end(&mut z).expect("read");
    let mut frames = 0;
    let mut rest = &z[..];
    while !rest.is_empty() {
        let n = zstd::zstd_safe::find_frame_compressed_size(rest).expect("a whole zstd frame");
        rest = &rest[n..];
        frames += 1;
    }
    assert_eq!(
        frames, 3,
        "text, then the photo at the fast level, then text again"
    );
    common::ok(
        "verify -i",
        common::verify(&m, &clerk.public, Some(&clerk.identity)),
    );
}

#[test]
fn keygen_into_a_missing_folder_says_so_and_writes_nothing() {
    let w = World::new();
    let missing = w.path().join("keys");
    let out = pouch()
        .args(["keygen", "--name", "clerk", "--no-passphrase", "--out"])
        .arg(&missing)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist; create it first"), "{err}");
    assert!(!missing.exists());
    assert_eq!(fs::read_dir(w.path()).expect("read").count(), 0);
}
