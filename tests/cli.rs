//! The command-line contract: every command, documented error and exit code.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{assert_same_tree, fails, names, pack_cmd, passes, pouch, unpack_cmd, verify_cmd};
use common::{output, stderr_of, Keys, World};
use predicates::prelude::*;
use predicates::str::contains;

/// Writes `f.txt` and packs it as bundle `b`, signed by `from` for `to`;
/// returns the manifest.
fn small_bundle(w: &World, from: &Keys, to: &Keys, extra: &[&str]) -> std::path::PathBuf {
    let f = w.write("f.txt", "f");
    w.pack(&[&f], "b", from, &[to], extra)
}

/// The plaintext of `payload` (zstd of the tar), opened with `k`.
fn decrypted(payload: &Path, k: &Keys) -> Vec<u8> {
    use std::io::Read;
    let ids = pouch::payload::crypto::read_identity_file(&k.identity).expect("identity");
    let file = fs::File::open(payload).expect("open");
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).expect("header");
    let mut r = dec
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .expect("decrypt");
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).expect("read");
    buf
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
    passes(pouch!("--help"), &["Exit codes"]);
}

#[test]
fn usage_errors_exit_2() {
    fails(pouch!("frobnicate"), 2, &[]);
    fails(pouch!("pack", "x"), 2, &[]);
    let w = World::new();
    let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    let verify = pouch!("verify", w.join("missing.toml"), "--trust", key);
    fails(verify, 2, &["missing.toml", "hint:"]);
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

    passes(verify_cmd(&m, &clerk), &["verdict    OK", "not decrypted"]);
    let with_key = args!(verify_cmd(&m, &clerk); "-i", &partner.identity);
    passes(with_key, &["every entry matches"]);
    let out = output(unpack_cmd(&m, &clerk, &partner, &d.join("inbox")));
    assert!(out.status.success(), "unpack failed: {}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        d.join("inbox/b1").display().to_string()
    );
    assert_same_tree(&case, &d.join("inbox/b1/case 0142"));
    // Nothing else appears in DEST: no staging folder is left behind.
    assert_eq!(names(&d.join("inbox")), ["b1"]);
    let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
    for (file, want) in [
        ("collect.sh", 0o755),
        ("empty.txt", 0o644),
        ("empty folder", 0o755),
    ] {
        assert_eq!(mode(&d.join("inbox/b1/case 0142").join(file)), want);
    }
}

#[test]
fn several_sources_and_a_single_file() {
    let w = World::new();
    let clerk = w.keys("clerk");
    w.write("a/folder/x.txt", "x");
    let b = w.write("b.txt", "b");
    let m = w.pack(&[&w.join("a/folder"), &b], "two", &clerk, &[&clerk], &[]);
    passes(unpack_cmd(&m, &clerk, &clerk, &w.join("in")), &[]);
    assert_eq!(fs::read(w.join("in/two/folder/x.txt")).expect("read"), b"x");
    assert_eq!(fs::read(w.join("in/two/b.txt")).expect("read"), b"b");
}

#[test]
fn colliding_sources_are_refused() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let one = w.write("one/report.txt", "one");
    let two = w.write("two/report.txt", "two");
    let out = w.dir("out");
    let pack = pack_cmd(&[&one, &two], &out, &clerk, &[]);
    fails(pack, 2, &["both be stored as \"report.txt\""]);
    assert_eq!(names(&out).len(), 0, "nothing written");
}

#[test]
fn special_files_are_refused_or_skipped_with_a_warning() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let src = w.dir("case");
    w.write("case/real.txt", "real");
    std::os::unix::fs::symlink("/etc/passwd", src.join("link")).expect("symlink");
    let out = w.dir("out");
    let base = |extra: &[&str]| pack_cmd(&[&src], &out, &clerk, extra);
    fails(base(&[]), 2, &["case/link", "symbolic link"]);
    assert_eq!(names(&out).len(), 0, "nothing written");
    let skipping = base(&["--skip-special", "--name", "s"]);
    passes(skipping, &[]).stderr(contains("skipped"));
    let manifest = fs::read_to_string(out.join("s.toml")).expect("manifest");
    assert!(
        manifest.contains("case/real.txt") && !manifest.contains("case/link"),
        "{manifest}"
    );
}

#[test]
fn pack_refuses_to_overwrite_a_bundle() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let f = w.write("f.txt", "f");
    w.pack(&[&f], "same", &clerk, &[&clerk], &[]);
    let before = fs::read(w.join("out/same.age")).expect("read");
    let again = pack_cmd(&[&f], &w.join("out"), &clerk, &["--name", "same"]);
    fails(again, 2, &["already exists"]);
    assert_eq!(fs::read(w.join("out/same.age")).expect("read"), before);
    assert_eq!(names(&w.join("out")).len(), 3, "no temporary files left");
}

#[test]
fn flipped_payload_byte_fails_naming_the_payload_hash() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let case = w.tree();
    let m = w.pack(&[&case], "b", &clerk, &[&clerk], &[]);
    let payload = w.join("out/b.age");
    let mut bytes = fs::read(&payload).expect("read");
    let i = bytes.len() / 3;
    bytes[i] ^= 0x10;
    fs::write(&payload, &bytes).expect("write");
    fails(verify_cmd(&m, &clerk), 1, &["sha256 mismatch"]);
    // With a key, too, the root cause is named, and unpack commits nothing.
    let dest = w.join("in");
    fails(
        unpack_cmd(&m, &clerk, &clerk, &dest),
        1,
        &["sha256 mismatch"],
    );
    assert!(!dest.exists(), "DEST created by unpack is removed again");
}

#[test]
fn edited_manifest_fails_naming_the_signature() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let m = small_bundle(&w, &clerk, &clerk, &["--marking", "RESTRICTED"]);
    let text = fs::read_to_string(&m).expect("read");
    fs::write(&m, text.replace("RESTRICTED", "UNCLASSIFIED")).expect("write");
    for verb in ["verify", "inspect"] {
        fails(pouch!(verb, &m, "--trust", &clerk.public), 1, &[])
            .stderr(contains("signature").or(contains("FAILED")))
            .stdout(contains("INVALID").or(predicates::str::is_empty()));
    }
}

#[test]
fn untrusted_signer_is_refused() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let m = small_bundle(&w, &w.keys("mallory"), &clerk, &[]);
    fails(verify_cmd(&m, &clerk), 1, &["not among the trusted keys"]);
    fails(pouch!("verify", &m), 2, &["--trust"]);
    let unchecked = pouch!("verify", &m, "--insecure-skip-signature");
    passes(unchecked, &["NOT CHECKED"]).stderr(contains("NOT checked"));
}

#[test]
fn wrong_identity_fails_and_leaves_dest_untouched() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let m = small_bundle(&w, &clerk, &w.keys("partner"), &[]);
    let dest = w.dir("dest");
    w.write("dest/already-here.txt", "keep");
    let unpack = unpack_cmd(&m, &clerk, &w.keys("stranger"), &dest);
    fails(unpack, 1, &["no identity matched", "-i"]);
    assert_eq!(names(&dest), ["already-here.txt"], "DEST is as it was");
}

#[test]
fn unpack_refuses_an_existing_target_and_a_symlinked_dest() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let m = small_bundle(&w, &clerk, &clerk, &[]);
    let unpack = |dest: &Path| unpack_cmd(&m, &clerk, &clerk, dest);
    w.dir("dest/b");
    fails(unpack(&w.join("dest")), 2, &["already exists"]);
    std::os::unix::fs::symlink(w.join("dest"), w.join("link")).expect("symlink");
    fails(unpack(&w.join("link")), 2, &["symbolic link"]);
}

#[test]
fn sealed_names_stay_out_of_the_outer_manifest() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let case = w.tree();
    let m = w.pack(&[&case], "sealed", &clerk, &[&clerk], &["--seal-names"]);
    let text = fs::read_to_string(&m).expect("read");
    assert!(
        !text.contains("Müller") && !text.contains("[[entries]]"),
        "{text}"
    );
    assert!(text.contains("sealed_names = true"));
    passes(pouch!("inspect", &m), &["names        sealed"]);
    passes(unpack_cmd(&m, &clerk, &clerk, &w.join("in")), &[]);
    assert_same_tree(&case, &w.join("in/sealed/case 0142"));
}

#[test]
fn json_reports_parse_and_carry_the_documented_fields() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let m = small_bundle(&w, &clerk, &clerk, &[]);
    let json = |verb: &str| output(pouch!(verb, &m, "--trust", &clerk.public, "--json"));
    let run = |verb: &str| -> serde_json::Value {
        let out = json(verb);
        assert!(out.status.success(), "{verb}: {}", stderr_of(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let v = run("verify");
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
    let i = run("inspect");
    assert_eq!(i["manifest"]["entries"][0]["path"], "f.txt");
    assert_eq!(i["signature"]["status"], "trusted");
    // Errors under --json are JSON on stdout, with the same exit code.
    fs::remove_file(w.join("out/b.age")).expect("rm");
    let out = json("verify");
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
    let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&k.identity), 0o600);
    assert_eq!(mode(&k.secret), 0o600);
    assert!(fs::read_to_string(&k.public)
        .expect("read")
        .starts_with("untrusted comment: minisign public key"));
    let again = pouch!("keygen", "--name", "clerk", "--no-passphrase", "--out", d);
    fails(again, 2, &["already exists"]);
    // Without a terminal and without a passphrase file, keygen says what to do.
    let no_passphrase = pouch!("keygen", "--name", "other", "--out", d);
    fails(no_passphrase, 2, &["--passphrase-file"]);
    assert!(!d.join("other.age-identity").exists());
}

#[test]
fn passphrase_protected_signing_key() {
    let w = World::new();
    let d = w.path();
    let pass = w.write("pass", "correct horse battery staple\n");
    let keygen = pouch!(
        "keygen",
        "--name",
        "clerk",
        "--passphrase-file",
        &pass,
        "--out",
        d
    );
    passes(keygen, &[]);
    let recipient = fs::read_to_string(d.join("clerk.age-recipient")).expect("read");
    let f = w.write("f.txt", "f");
    let out = w.dir("out");
    let key = d.join("clerk.minisign.key");
    let pack = |extra: &[&str]| {
        let mut c = pouch!("pack", &f, "-o", &out, "-r", recipient.trim(), "-s", &key);
        c.args(extra);
        c
    };
    fails(pack(&[]), 2, &["passphrase"]);
    let wrong = w.write("wrong", "nope\n");
    let wrong = ["--passphrase-file", wrong.to_str().expect("utf8")];
    fails(pack(&wrong), 2, &["passphrase"]);
    let right = [
        "--passphrase-file",
        pass.to_str().expect("utf8"),
        "--name",
        "ok",
    ];
    passes(pack(&right), &[]);
    let verify = pouch!(
        "verify",
        out.join("ok.toml"),
        "--trust",
        d.join("clerk.minisign.pub")
    );
    passes(verify, &[]);
}

#[test]
fn same_tree_packs_to_identical_plaintext_with_source_date_epoch() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let case = w.tree();
    let mut plaintexts = Vec::new();
    for name in ["one", "two"] {
        let mut pack = pack_cmd(&[&case], d, &clerk, &["--name", name]);
        pack.env("SOURCE_DATE_EPOCH", "1700000000");
        let out = output(pack);
        assert!(out.status.success(), "{}", stderr_of(&out));
        plaintexts.push(decrypted(&d.join(format!("{name}.age")), &clerk));
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
    passes(
        pouch!("demo", w.join("demo")),
        &[
            "identical to the source: yes",
            "refused, exit code 1",
            "$ pouch unpack",
        ],
    );
}

#[test]
fn already_compressed_files_get_their_own_fast_frame() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let src = w.dir("case");
    let text = |line: &str| line.repeat(60_000);
    w.write(
        "case/a-report.txt",
        text("witness statement, line after line\n"),
    );
    w.write("case/b-photo.jpg", common::noise(2 << 20, 4));
    w.write(
        "case/c-report.txt",
        text("another report, line after line\n"),
    );
    let m = w.pack(&[&src], "f", &clerk, &[&clerk], &[]);
    let z = decrypted(&w.join("out/f.age"), &clerk);
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
    let missing = w.join("keys");
    let keygen = pouch!(
        "keygen",
        "--name",
        "clerk",
        "--no-passphrase",
        "--out",
        &missing
    );
    let out = output(keygen);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist; create it first"), "{err}");
    assert!(!missing.exists());
    assert_eq!(fs::read_dir(w.path()).expect("read").count(), 0);
}
