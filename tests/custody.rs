//! Chain of custody: keyring, channels with sequence numbers, the
//! hash-chained ledger, replays and gaps, receipts, and audit.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Keys, World};
use predicates::prelude::*;
use predicates::str::contains;

/// A sending agency and a receiving one, each with its own pouch home.
struct Agencies {
    w: World,
    d: PathBuf,
    clerk: Keys,
    recipient: Keys,
}

impl Agencies {
    fn new() -> Agencies {
        let world = World::new();
        let w = Agencies {
            d: world.path().to_path_buf(),
            clerk: world.keys("clerk"),
            recipient: world.keys("recipient"),
            w: world,
        };
        let d = &w.d;
        // Each side knows the other by name.
        w.sender()
            .args(["keyring", "add", "fedpol-ic", "--sign-pub"])
            .arg(&w.recipient.public)
            .args(["--recipient", &w.recipient.recipient])
            .assert()
            .success();
        w.receiver()
            .args(["keyring", "add", "bka-zd", "--sign-pub"])
            .arg(&w.clerk.public)
            .assert()
            .success();
        fs::create_dir_all(d.join("src")).expect("mkdir");
        fs::create_dir_all(d.join("stick")).expect("mkdir");
        w
    }

    fn sender(&self) -> assert_cmd::Command {
        self.w.home("sender")
    }

    fn receiver(&self) -> assert_cmd::Command {
        self.w.home("receiver")
    }

    /// Packs bundle `name` on channel bka-zd -> fedpol-ic, recipients from the keyring.
    fn pack(&self, name: &str) -> PathBuf {
        let f = self.d.join("src").join(format!("{name}.txt"));
        fs::write(&f, format!("report {name}\n")).expect("write");
        self.sender()
            .arg("pack")
            .arg(&f)
            .arg("-o")
            .arg(self.d.join("stick"))
            .args([
                "--name",
                name,
                "--from",
                "bka-zd",
                "--to",
                "fedpol-ic",
                "-s",
            ])
            .arg(&self.clerk.secret)
            .assert()
            .success();
        self.d.join("stick").join(format!("{name}.toml"))
    }

    /// Unpacks as the recipient, trusting the keyring only.
    fn unpack(&self, manifest: &Path) -> assert_cmd::Command {
        let mut c = self.receiver();
        c.arg("unpack")
            .arg(manifest)
            .arg("-i")
            .arg(&self.recipient.identity)
            .arg("-d")
            .arg(self.d.join("inbox"));
        c
    }
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key} = "))
            .map(|v| v.trim_matches('"').to_string())
    })
}

#[test]
fn a_series_of_five_bundles_gaps_replays_late_arrivals_and_forged_links() {
    let w = Agencies::new();
    let m: Vec<PathBuf> = (1..=5).map(|i| w.pack(&format!("b{i}"))).collect();
    for (i, path) in m.iter().enumerate() {
        let text = fs::read_to_string(path).expect("read");
        assert_eq!(
            field(&text, "sequence").as_deref(),
            Some((i + 1).to_string().as_str()),
            "{text}"
        );
        if i == 0 {
            assert!(field(&text, "previous_manifest_sha256").is_none());
        } else {
            let prev = pouch::payload::hashing::sha256_hex(&fs::read(&m[i - 1]).expect("read"));
            assert_eq!(field(&text, "previous_manifest_sha256"), Some(prev));
        }
    }
    w.unpack(&m[0]).assert().success();
    w.unpack(&m[1])
        .assert()
        .success()
        .stderr(contains("gap").not());
    w.unpack(&m[3])
        .assert()
        .success()
        .stderr(contains("sequence numbers [3] have not arrived"));
    w.receiver()
        .args(["ledger", "gaps"])
        .assert()
        .success()
        .stdout(contains("bka-zd:fedpol-ic: missing [3]"));
    // The same bundle again is a replay, even into another folder.
    fs::remove_dir_all(w.d.join("inbox/b2")).expect("rm");
    w.unpack(&m[1])
        .assert()
        .code(1)
        .stderr(contains("replay"))
        .stderr(contains("--allow-replay"));
    assert!(
        !w.d.join("inbox/b2").exists(),
        "a refused replay writes nothing"
    );
    w.unpack(&m[1]).arg("--allow-replay").assert().success();
    // 3 arrives late: accepted, and the gap is closed.
    w.unpack(&m[2]).assert().success();
    w.receiver()
        .args(["ledger", "gaps"])
        .assert()
        .success()
        .stdout(contains("bka-zd:fedpol-ic: no gaps"));
    // 5 with a forged previous-manifest hash, re-signed with the clerk's key.
    let text = fs::read_to_string(&m[4]).expect("read");
    let prev = field(&text, "previous_manifest_sha256").expect("prev");
    let forged = text.replace(&prev, &"e".repeat(64));
    let id = field(&text, "bundle_id").expect("id");
    let key = common::forge::key(&w.clerk.secret);
    common::forge::signed_manifest(&w.d.join("stick"), "b5", forged.as_bytes(), &id, &key);
    w.unpack(&m[4])
        .assert()
        .success()
        .stderr(contains("previous-manifest hash does not match bundle b4"));
    let ledger = fs::read_to_string(w.d.join("receiver-home/ledger.jsonl")).expect("ledger");
    assert!(ledger
        .lines()
        .last()
        .expect("record")
        .contains("previous-manifest hash does not match"));
    // The replay of a channel sequence under a new bundle id is refused too.
    let replayed = text.replace(&id, &"a".repeat(32));
    common::forge::signed_manifest(
        &w.d.join("stick"),
        "b5",
        replayed.as_bytes(),
        &"a".repeat(32),
        &key,
    );
    w.unpack(&m[4]).assert().code(1).stderr(contains(
        "sequence 5 of channel bka-zd:fedpol-ic was already accepted",
    ));
    w.receiver()
        .args(["ledger", "verify"])
        .assert()
        .success()
        .stdout(contains("hash chain intact"));
}

#[test]
fn ledger_tampering_is_detected_and_located() {
    let w = Agencies::new();
    for i in 1..=4 {
        w.pack(&format!("b{i}"));
    }
    let path = w.d.join("sender-home/ledger.jsonl");
    let original = fs::read_to_string(&path).expect("ledger");
    let lines: Vec<&str> = original.lines().collect();
    assert_eq!(lines.len(), 4);
    let check = |text: String, expect: &str| {
        fs::write(&path, text).expect("write");
        w.sender()
            .args(["ledger", "verify"])
            .assert()
            .code(1)
            .stderr(contains(expect));
    };
    check(
        original.replacen("\"sequence\":2", "\"sequence\":7", 1),
        "record 2: its link to record 1",
    );
    check(
        [lines[0], lines[2], lines[3]].join("\n") + "\n",
        "record 1: says it is record 2",
    );
    check(
        [lines[0], lines[2], lines[1], lines[3]].join("\n") + "\n",
        "record 1: says it is record 2",
    );
    check(
        [lines[0], lines[1], lines[0], lines[2], lines[3]].join("\n") + "\n",
        "record 2: says it is record 0",
    );
    check(
        original[..original.len() - 10].to_string(),
        "record 3: the last record is cut off",
    );
    check(
        [lines[1], lines[2], lines[3]].join("\n") + "\n",
        "record 0: says it is record 1",
    );
    fs::write(&path, &original).expect("restore");
    w.sender()
        .args(["ledger", "verify", "--json"])
        .assert()
        .success()
        .stdout(contains("\"intact\": true"));
    // A broken ledger is not appended to.
    fs::write(&path, &original[..original.len() - 10]).expect("truncate");
    let f = w.d.join("src/more.txt");
    fs::write(&f, "more").expect("write");
    w.sender()
        .arg("pack")
        .arg(&f)
        .arg("-o")
        .arg(w.d.join("stick"))
        .args(["--from", "bka-zd", "--to", "fedpol-ic", "-s"])
        .arg(&w.clerk.secret)
        .assert()
        .code(1)
        .stderr(contains("cut off"));
}

#[test]
fn receipts_round_trip_and_forgeries_are_refused() {
    let w = Agencies::new();
    let m1 = w.pack("b1");
    let m2 = w.pack("b2");
    fs::create_dir(w.d.join("receipts")).expect("mkdir");
    for m in [&m1, &m2] {
        w.unpack(m)
            .arg("--receipt-out")
            .arg(w.d.join("receipts"))
            .arg("-s")
            .arg(&w.recipient.secret)
            .assert()
            .success()
            .stderr(contains("receipt written"));
    }
    let r1 = w.d.join("receipts/b1.receipt.toml");
    let text = fs::read_to_string(&r1).expect("receipt");
    assert!(
        text.contains("verdict = \"accepted\"") && text.contains("kind = \"receipt\""),
        "{text}"
    );
    w.sender()
        .args(["ledger", "show"])
        .assert()
        .success()
        .stdout(contains("outstanding"));
    w.sender()
        .args(["receipt", "import"])
        .arg(&r1)
        .assert()
        .success()
        .stdout(contains("b1: delivered; receipt signed by fedpol-ic"));
    w.sender()
        .args(["receipt", "import"])
        .arg(&r1)
        .assert()
        .success()
        .stdout(contains("already recorded"));
    let shown = w
        .sender()
        .args(["ledger", "show", "--channel", "bka-zd:fedpol-ic", "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    let packed: Vec<&serde_json::Value> = v
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["event"] == "packed")
        .collect();
    assert_eq!(packed[0]["delivered"], true);
    assert_eq!(packed[1]["delivered"], false);
    // An edited field breaks the signature.
    let r2 = w.d.join("receipts/b2.receipt.toml");
    let good = fs::read_to_string(&r2).expect("read");
    fs::write(&r2, good.replace("files = 1", "files = 9")).expect("write");
    w.sender()
        .args(["receipt", "import"])
        .arg(&r2)
        .assert()
        .code(1)
        .stderr(contains("signature"));
    // A receipt signed by a key that is not in the keyring is refused.
    let mallory = w.w.keys_in(&w.d.join("receipts"), "mallory", false);
    fs::write(&r2, &good).expect("restore");
    let forged = mallory_signs(&r2, &mallory, &good);
    w.sender()
        .args(["receipt", "import"])
        .arg(&forged)
        .assert()
        .code(1)
        .stderr(contains("not among the trusted keys"));
    w.sender()
        .args(["receipt", "import"])
        .arg(&r2)
        .assert()
        .success();
}

/// Re-signs a receipt's text with another key (and names that key inside).
fn mallory_signs(receipt: &Path, mallory: &Keys, text: &str) -> PathBuf {
    let key = common::forge::key(&mallory.secret);
    let id_line = text
        .lines()
        .find(|l| l.starts_with("receiver_key_id"))
        .expect("key id line");
    let text = text.replace(id_line, &format!("receiver_key_id = \"{}\"", key.key_id));
    let bundle_id = field(&text, "bundle_id").expect("id");
    let name = field(&text, "name").expect("name");
    let out = receipt.with_file_name("forged.receipt.toml");
    let sig = key
        .sign_with_comment(
            text.as_bytes(),
            &format!("pouch receipt bundle_id:{bundle_id} name:{name}"),
            "x",
        )
        .expect("sign");
    fs::write(&out, text).expect("write");
    fs::write(pouch::signature::signature_path(&out), sig).expect("write");
    out
}

#[test]
fn audit_marks_good_tampered_incomplete_receipts_and_junk() {
    let w = Agencies::new();
    let m1 = w.pack("b1");
    let m2 = w.pack("b2");
    // b3: split, one part will go missing.
    let f = w.d.join("src/big.bin");
    fs::write(&f, common::noise(40_000, 5)).expect("write");
    w.sender()
        .arg("pack")
        .arg(&f)
        .arg("-o")
        .arg(w.d.join("stick"))
        .args([
            "--name",
            "b3",
            "--split",
            "16K",
            "--from",
            "bka-zd",
            "--to",
            "fedpol-ic",
            "-s",
        ])
        .arg(&w.clerk.secret)
        .assert()
        .success();
    fs::remove_file(w.d.join("stick/b3.age.002")).expect("rm part");
    // b2's payload is tampered with.
    let p2 = w.d.join("stick/b2.age");
    let mut bytes = fs::read(&p2).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    fs::write(&p2, bytes).expect("write");
    w.unpack(&m1)
        .arg("--receipt-out")
        .arg(w.d.join("stick"))
        .arg("-s")
        .arg(&w.recipient.secret)
        .assert()
        .success();
    // The auditor here works on the sender's machine, whose keyring also
    // holds its own agency's signing key.
    w.sender()
        .args(["keyring", "add", "bka-zd", "--sign-pub"])
        .arg(&w.clerk.public)
        .assert()
        .success();
    fs::write(w.d.join("stick/notes.txt"), "courier log").expect("write");
    fs::write(w.d.join("stick/settings.toml"), "colour = \"blue\"\n").expect("write");

    let out = w
        .sender()
        .arg("audit")
        .arg(w.d.join("stick"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {text}"))
            .to_string()
    };
    assert!(line("b1").ends_with("OK"), "{text}");
    assert!(line("b2").ends_with("FAILED"), "{text}");
    assert!(line("b3").ends_with("FAILED"), "{text}");
    assert!(text.contains("b3.age.002: missing"), "{text}");
    assert!(text.contains("sha256 mismatch"), "{text}");
    assert!(
        text.contains("receipt") && text.contains("for b1 by fedpol-ic: OK"),
        "{text}"
    );
    assert!(
        text.contains("ignored (not a bundle file)")
            && text.contains("notes.txt")
            && text.contains("settings.toml"),
        "{text}"
    );
    assert!(
        text.contains("signer") && line("b1").contains("bka-zd"),
        "{text}"
    );

    let out = w
        .sender()
        .args(["audit", "--json", "--ledger"])
        .arg(w.d.join("sender-home/ledger.jsonl"))
        .arg(w.d.join("stick"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let verdict = |name: &str| {
        v["bundles"]
            .as_array()
            .expect("bundles")
            .iter()
            .find(|b| b["name"] == name)
            .map(|b| b["verdict"].clone())
            .expect("row")
    };
    assert_eq!(verdict("b1"), "ok");
    assert_eq!(verdict("b2"), "failed");
    assert_eq!(verdict("b3"), "failed");
    assert_eq!(v["failed"], 2);
    assert_eq!(v["receipts"][0]["verdict"], "ok");
    assert_eq!(v["ledger"]["verdict"], "ok");
    assert_eq!(v["channels"][0]["channel"], "bka-zd:fedpol-ic");
    assert_eq!(v["ignored"].as_array().expect("ignored").len(), 2);
    let _ = m2;
}

#[test]
fn keyring_names_recipients_and_signers_and_refuses_strangers() {
    let w = Agencies::new();
    w.sender()
        .args(["keyring", "list"])
        .assert()
        .success()
        .stdout(contains("fedpol-ic"))
        .stdout(contains("1 recipient(s)"));
    let m = w.pack("b1");
    let text = fs::read_to_string(&m).expect("read");
    assert!(text.contains(&pouch::payload::crypto::fingerprint(
        &pouch::payload::crypto::parse_recipient(&w.recipient.recipient).expect("recipient")
    )));
    w.receiver()
        .arg("verify")
        .arg(&m)
        .assert()
        .success()
        .stdout(contains("(bka-zd)"));
    w.unpack(&m).assert().success();
    // A bundle signed by a key nobody added is refused.
    let mallory = w.w.keys_in(&w.d.join("src"), "mallory", false);
    let f = w.d.join("src/evil.txt");
    fs::write(&f, "evil").expect("write");
    w.sender()
        .arg("pack")
        .arg(&f)
        .arg("-o")
        .arg(w.d.join("stick"))
        .args(["--name", "evil", "--to", "fedpol-ic", "-s"])
        .arg(&mallory.secret)
        .assert()
        .success();
    w.unpack(&w.d.join("stick/evil.toml"))
        .assert()
        .code(1)
        .stderr(contains("not among the trusted keys"));
    // Unknown party, no recipients: a clear error.
    w.sender()
        .arg("pack")
        .arg(&f)
        .arg("-o")
        .arg(w.d.join("stick"))
        .args(["--to", "nobody", "-s"])
        .arg(&w.clerk.secret)
        .assert()
        .code(2)
        .stderr(contains("nobody has none in the keyring"));
    w.sender()
        .args(["keyring", "remove", "fedpol-ic"])
        .assert()
        .success();
    w.sender()
        .args(["keyring", "list", "--json"])
        .assert()
        .success()
        .stdout(contains("[]"));
    w.sender()
        .args(["keyring", "remove", "fedpol-ic"])
        .assert()
        .code(2);
}

#[test]
fn a_receipt_signed_by_another_trusted_party_is_refused_and_fails_audit() {
    let w = Agencies::new();
    // carol is a party the sender trusts too, but not the bundle's receiver.
    let carol = w.w.keys("carol");
    w.sender()
        .args(["keyring", "add", "carol", "--sign-pub"])
        .arg(&carol.public)
        .assert()
        .success();
    let m = w.pack("b1");
    fs::create_dir(w.d.join("receipts")).expect("mkdir");
    w.unpack(&m)
        .arg("--receipt-out")
        .arg(w.d.join("receipts"))
        .arg("-s")
        .arg(&w.recipient.secret)
        .assert()
        .success();
    let genuine = w.d.join("receipts/b1.receipt.toml");
    let text = fs::read_to_string(&genuine).expect("receipt");
    // The manifest hash a receipt needs is public: carol signs one herself.
    let forged = mallory_signs(&genuine, &carol, &text);
    w.sender()
        .args(["receipt", "import"])
        .arg(&forged)
        .assert()
        .code(1)
        .stderr(contains(
            "signed by carol, but the bundle's receiver is fedpol-ic",
        ));
    w.sender()
        .args(["ledger", "show"])
        .assert()
        .success()
        .stdout(contains("outstanding"));
    fs::remove_file(&genuine).expect("rm");
    fs::remove_file(pouch::signature::signature_path(&genuine)).expect("rm");
    for with_bundle in [false, true] {
        let mut audit = w.sender();
        audit.arg("audit").arg(w.d.join("receipts"));
        if with_bundle {
            audit
                .arg(w.d.join("stick"))
                .arg("--trust")
                .arg(&w.clerk.public);
        }
        audit
            .assert()
            .code(1)
            .stdout(contains("only fedpol-ic's key can confirm its delivery"));
    }
}
