//! Interoperability with Debian's stock tools: `age`, `age-keygen`,
//! `minisign`, `zstd` and `tar`. A missing tool fails the test, never skips it.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[macro_use]
mod common;

use common::{assert_same_tree, describe, ok, pouch, run, World};

/// The path of a stock tool; fails the test with an install hint when it is missing.
fn require(tool: &str) -> PathBuf {
    common::require(tool, if tool == "age-keygen" { "age" } else { tool })
}

/// A party's key files as (age identity, age recipient, minisign secret key,
/// minisign public key).
fn parts(k: common::Keys) -> (PathBuf, String, PathBuf, PathBuf) {
    assert!(
        k.recipient.starts_with("age1"),
        "recipient: {:?}",
        k.recipient
    );
    (k.identity, k.recipient, k.secret, k.public)
}

/// `pouch pack SOURCE -o OUT --name NAME -s KEY -r …`; returns the manifest path.
fn pack(source: &Path, out: &Path, name: &str, key: &Path, recipients: &[&str]) -> PathBuf {
    fs::create_dir_all(out).expect("out dir");
    let mut c = args!(pouch(); "pack", source, "-o", out, "--name", name, "-s", key);
    for r in recipients {
        c.args(["-r", r]);
    }
    let output = ok("pouch pack", c.output().expect("pouch runs"));
    let manifest = out.join(format!("{name}.toml"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().last().map(Path::new),
        Some(manifest.as_path())
    );
    for ext in ["age", "toml", "toml.minisig"] {
        assert!(
            out.join(format!("{name}.{ext}")).is_file(),
            "no {name}.{ext}"
        );
    }
    manifest
}

/// `pouch unpack MANIFEST -i IDENTITY --trust PUB -d DEST`.
/// Unpacks as the holder of `identity`, with that recipient's own ledger.
fn unpack(manifest: &Path, identity: &Path, trust: &Path, dest: &Path) -> Output {
    let ledger = identity.with_extension("ledger.jsonl");
    args!(pouch(); "unpack", manifest, "-i", identity, "--trust", trust, "-d", dest, "--ledger", &ledger)
        .output()
        .expect("pouch runs")
}

/// A tree under `root/case`: nested folders, a non-ASCII name, an empty
/// file and folder, an executable and ~3 MiB of pseudo-random bytes.
fn make_tree(root: &Path) -> PathBuf {
    let case = root.join("case");
    fs::create_dir_all(case.join("a/b/c")).expect("mkdir");
    fs::create_dir_all(case.join("empty folder")).expect("mkdir");
    fs::write(case.join("Müller bericht.txt"), "Bericht\n").expect("write");
    fs::write(case.join("a/b/c/deep.txt"), "deep\n").expect("write");
    fs::write(case.join("a/empty"), "").expect("write");
    let script = case.join("a/run.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    fs::write(case.join("a/b/noise.bin"), noise).expect("write");
    case
}

/// A fresh world with the [`make_tree`] case in it.
fn tree_world() -> (World, PathBuf) {
    let w = World::new();
    let case = make_tree(w.path());
    (w, case)
}

/// Runs `age -d -i IDENTITY PAYLOAD | zstd -d | tar TAR_ARGS…` with stock tools.
fn stock_open(identity: &Path, payload: &Path, tar_args: &[&OsStr]) -> Output {
    let script = r#"set -o pipefail; "$1" -d -i "$2" "$3" | "$4" -d | "$5" "${@:6}""#;
    let (age, zstd, tar) = (require("age"), require("zstd"), require("tar"));
    let c = args!(Command::new(require("bash")); "-c", script, "stock-open", age, identity);
    let mut c = args!(c; payload, zstd, tar);
    c.args(tar_args);
    run(c)
}

#[test]
#[should_panic(expected = "no-such-tool not found: install Debian's no-such-tool package")]
fn a_missing_tool_fails_loudly() {
    require("no-such-tool");
}

#[test]
fn stock_tools_recover_a_bundle() {
    let (w, case) = tree_world();
    let d = w.path();
    let (identity, recipient, secret, _) = parts(w.keys("clerk"));
    pack(&case, &d.join("out"), "b1", &secret, &[&recipient]);
    let payload = d.join("out/b1.age");
    let x = d.join("x");
    fs::create_dir(&x).expect("mkdir");
    let tar_x = [OsStr::new("-x"), OsStr::new("-C"), x.as_os_str()];
    ok(
        "age -d | zstd -d | tar -x",
        stock_open(&identity, &payload, &tar_x),
    );

    let mut top: Vec<_> = fs::read_dir(&x)
        .expect("read extracted")
        .map(|e| e.expect("entry").file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [".pouch-manifest.toml", "case"].map(OsString::from),
        "top level"
    );
    assert!(
        x.join(".pouch-manifest.toml").is_file(),
        "the manifest is no file"
    );
    assert_same_tree(&case, &x.join("case"));

    let listing = ok(
        "... | tar -t",
        stock_open(&identity, &payload, &[OsStr::new("-t")]),
    );
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert_eq!(
        listing.lines().last(),
        Some(".pouch-manifest.toml"),
        "the manifest is not the last tar member:\n{listing}"
    );
}

#[test]
fn stock_minisign_verifies_the_signature() {
    require("minisign");
    let (w, case) = tree_world();
    let d = w.path();
    let (_, recipient, secret, public) = parts(w.keys("clerk"));
    let manifest = pack(&case, &d.join("out"), "b1", &secret, &[&recipient]);
    let sig = d.join("out/b1.toml.minisig");
    ok(
        "minisign -V on the manifest",
        minisign_verify(&manifest, &sig, &public),
    );

    let tampered = d.join("tampered.toml");
    let mut bytes = fs::read(&manifest).expect("read manifest");
    bytes.push(b'\n');
    fs::write(&tampered, bytes).expect("write");
    let bad = minisign_verify(&tampered, &sig, &public);
    assert!(
        !bad.status.success(),
        "{}",
        describe("minisign -V accepted a tampered manifest", &bad)
    );
}

/// `minisign -V -m FILE -x SIG -p PUB`.
fn minisign_verify(file: &Path, sig: &Path, public: &Path) -> Output {
    let minisign = Command::new(require("minisign"));
    run(args!(minisign; "-V", "-m", file, "-x", sig, "-p", public))
}

#[test]
fn keys_from_age_keygen_and_minisign_work_in_pouch() {
    let (age_keygen, minisign) = (require("age-keygen"), require("minisign"));
    let (w, case) = tree_world();
    let d = w.path();
    let id = d.join("id.txt");
    ok(
        "age-keygen -o",
        run(args!(Command::new(&age_keygen); "-o", &id)),
    );
    let out = ok(
        "age-keygen -y",
        run(args!(Command::new(&age_keygen); "-y", &id)),
    );
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        recipient.starts_with("age1"),
        "age-keygen -y printed {recipient:?}"
    );
    let (public, secret) = (d.join("m.pub"), d.join("m.key"));
    let gen = args!(Command::new(&minisign); "-G", "-W", "-p", &public, "-s", &secret);
    ok("minisign -G -W", run(gen));

    let manifest = pack(&case, &d.join("out"), "b3", &secret, &[&recipient]);
    let verify = args!(pouch(); "verify", &manifest, "--trust", &public, "-i", &id).output();
    ok("pouch verify with stock keys", verify.expect("pouch runs"));
    ok(
        "pouch unpack with stock keys",
        unpack(&manifest, &id, &public, &d.join("in")),
    );
    assert_same_tree(&case, &d.join("in/b3/case"));
}

#[test]
fn bundle_for_two_recipients_opens_with_either() {
    let (w, case) = tree_world();
    let d = w.path();
    let (_, _, secret, public) = parts(w.keys("clerk"));
    let (id_a, rec_a, _, _) = parts(w.keys("alice"));
    let (id_b, rec_b, _, _) = parts(w.keys("bob"));
    let (id_c, _, _, _) = parts(w.keys("carol"));
    let manifest = pack(&case, &d.join("out"), "b4", &secret, &[&rec_a, &rec_b]);
    for (who, id) in [("alice", &id_a), ("bob", &id_b)] {
        let dest = d.join(format!("in-{who}"));
        ok(
            &format!("pouch unpack as {who}"),
            unpack(&manifest, id, &public, &dest),
        );
        assert_same_tree(&case, &dest.join("b4/case"));
    }
    let dest = d.join("in-carol");
    let out = unpack(&manifest, &id_c, &public, &dest);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("pouch unpack as carol", &out)
    );
    assert!(
        !dest.join("b4").exists(),
        "carol's failed unpack left {}",
        dest.join("b4").display()
    );
}

#[test]
fn pouch_keys_work_with_stock_tools() {
    let (age, minisign) = (require("age"), require("minisign"));
    let w = World::new();
    let d = w.path();
    let (identity, recipient, secret, public) = parts(w.keys("clerk"));
    let plain = d.join("letter.txt");
    fs::write(&plain, "Sehr geehrte Frau Müller,\n").expect("write");
    let sealed = d.join("letter.txt.age");
    let enc = args!(Command::new(&age); "-e", "-r", &recipient, "-o", &sealed, &plain);
    ok("age -e -r <pouch recipient>", run(enc));
    let dec = args!(Command::new(&age); "-d", "-i", &identity, &sealed);
    let out = ok("age -d -i <pouch identity>", run(dec));
    assert_eq!(
        out.stdout,
        fs::read(&plain).expect("read"),
        "age decrypted other bytes"
    );

    let sign = args!(Command::new(&minisign); "-S", "-s", &secret, "-m", &plain);
    ok("minisign -S with a pouch key", run(sign));
    let sig = d.join("letter.txt.minisig");
    ok(
        "minisign -V with a pouch key",
        minisign_verify(&plain, &sig, &public),
    );
}

/// pouch's age payload (its own STREAM over ring's ChaCha20-Poly1305) and
/// stock `age` read each other's files at every length where the chunking
/// has an edge: empty, one byte, a chunk less one, exactly one and two
/// chunks of 64 KiB, one more byte, and many chunks.
#[test]
fn stock_age_and_pouchs_payload_stream_read_each_other() {
    use pouch::payload::crypto;
    use std::io::{Read, Write};
    let age = require("age");
    let w = World::new();
    let k = w.keys("reader");
    let identities = crypto::read_identity_file(&k.identity).expect("identity");
    let recipients = [crypto::parse_recipient(&k.recipient).expect("recipient")];
    const CHUNK: usize = 64 << 10;
    for len in [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        2 * CHUNK + 1,
        40 * CHUNK + 3,
    ] {
        let plain = common::noise(len, len as u64 + 1);
        let plain_path = w.write(format!("plain-{len}"), &plain);

        // Stock age seals, pouch opens.
        let by_age = w.join(format!("by-age-{len}.age"));
        let enc = args!(Command::new(&age); "-e", "-r", &k.recipient, "-o", &by_age, &plain_path);
        ok("age -e", run(enc));
        let file = fs::read(&by_age).expect("read");
        let mut opened = Vec::new();
        crypto::open(file.as_slice(), &identities)
            .unwrap_or_else(|_| panic!("pouch opens stock age's {len} bytes"))
            .read_to_end(&mut opened)
            .expect("pouch reads the payload");
        assert!(
            opened == plain,
            "{len} bytes sealed by age: pouch read other bytes"
        );

        // pouch seals, stock age opens.
        let mut sealed = Vec::new();
        let mut writer = crypto::encrypt(&recipients, &mut sealed).expect("encrypt");
        writer.write_all(&plain).expect("write");
        writer.finish().expect("finish");
        let by_pouch = w.write(format!("by-pouch-{len}.age"), &sealed);
        let dec = args!(Command::new(&age); "-d", "-i", &k.identity, &by_pouch);
        let out = ok("age -d", run(dec));
        assert!(
            out.stdout == plain,
            "{len} bytes sealed by pouch: age read other bytes"
        );
    }
}
