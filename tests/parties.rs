//! Claims on the medium are believed only when the key of the party they
//! name vouches for them: a channel belongs to its sender party.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Keys, World};
use predicates::prelude::*;
use predicates::str::contains;

/// Three agencies: alice sends to bob on channel alice:bob; carol is
/// another party bob trusts, on her own channel carol:bob.
struct Parties {
    w: World,
    alice: Keys,
    bob: Keys,
    carol: Keys,
}

impl Parties {
    fn new() -> Parties {
        let w = World::new();
        let (alice, bob, carol) = (w.keys("alice"), w.keys("bob"), w.keys("carol"));
        let p = Parties {
            w,
            alice,
            bob,
            carol,
        };
        for (name, k) in [("alice", &p.alice), ("carol", &p.carol)] {
            p.bob_home()
                .args(["keyring", "add", name, "--sign-pub"])
                .arg(&k.public)
                .assert()
                .success();
        }
        p
    }

    fn bob_home(&self) -> assert_cmd::Command {
        self.w.home("bob")
    }

    /// A bundle `name` claiming channel alice:bob, sequence 1, signed with
    /// `signer`'s key, on the stick.
    fn claim(&self, name: &str, signer: &Keys) -> PathBuf {
        claim(&self.w, name, signer, &self.bob)
    }

    /// `unpack` as bob, trusting his keyring only, into `inbox/`.
    fn unpack(&self, manifest: &Path) -> assert_cmd::Command {
        let mut c = self.bob_home();
        c.arg("unpack")
            .arg(manifest)
            .arg("-i")
            .arg(&self.bob.identity)
            .arg("-d")
            .arg(self.w.join("inbox"));
        c
    }

    fn ledger(&self) -> String {
        fs::read_to_string(self.w.join("bob-home/ledger.jsonl")).unwrap_or_default()
    }
}

/// Packs bundle `name` for `to` claiming channel alice:bob, signed with
/// `signer`'s key, from a fresh home (so its sequence number is 1), onto
/// the world's stick.
fn claim(w: &World, name: &str, signer: &Keys, to: &Keys) -> PathBuf {
    let f = w.write(format!("src/{name}.txt"), format!("{name}\n"));
    fs::create_dir_all(w.join("stick")).expect("mkdir");
    w.home(&format!("packer-{name}"))
        .arg("pack")
        .arg(&f)
        .arg("-o")
        .arg(w.join("stick"))
        .args(["--name", name, "--from", "alice", "--to", "bob"])
        .args(["-r", &to.recipient, "-s"])
        .arg(&signer.secret)
        .assert()
        .success();
    w.join(format!("stick/{name}.toml"))
}

#[test]
fn another_party_cannot_speak_for_a_channel() {
    let p = Parties::new();
    let forged = p.claim("forged", &p.carol);
    p.unpack(&forged).assert().code(1).stderr(contains(
        "signed by party carol, but claims channel alice:bob",
    ));
    assert!(!p.w.join("inbox/forged").exists(), "DEST untouched");
    let ledger = p.ledger();
    assert!(ledger.contains("\"event\":\"rejected\""), "{ledger}");
    assert!(!ledger.contains("\"event\":\"accepted\""), "{ledger}");
    // verify, inspect and audit report the same binding.
    p.bob_home()
        .arg("verify")
        .arg(&forged)
        .assert()
        .code(1)
        .stderr(contains(
            "signed by party carol, but claims channel alice:bob",
        ));
    p.bob_home()
        .arg("inspect")
        .arg(&forged)
        .assert()
        .code(1)
        .stdout(contains("alice -> bob \u{2717} signed by party carol"));
    p.bob_home()
        .arg("audit")
        .arg(p.w.join("stick"))
        .assert()
        .code(1)
        .stdout(contains("alice:bob \u{2717}"))
        .stdout(contains("FAILED"));
    // alice's genuine bundle 1 is not a replay: carol took nothing from her channel.
    let genuine = p.claim("genuine", &p.alice);
    p.unpack(&genuine)
        .assert()
        .success()
        .stderr(contains("replay").not());
    p.bob_home()
        .arg("verify")
        .arg(&genuine)
        .assert()
        .success()
        .stdout(contains("alice -> bob, signed by alice \u{2713}"));
    p.bob_home()
        .arg("inspect")
        .arg(&genuine)
        .assert()
        .success()
        .stdout(contains("alice -> bob, signed by alice \u{2713}"))
        .stdout(contains(
            "header       X25519, grease stanza: each a listed recipient (or age's grease)",
        ));
}

#[test]
fn a_trusted_key_that_is_not_the_named_partys_cannot_claim_its_channel() {
    let p = Parties::new();
    let dave = p.w.keys("dave");
    let forged = p.claim("forged", &dave);
    // dave's key is given with --trust, but alice is a keyring party and
    // this is not her key.
    p.unpack(&forged)
        .arg("--trust")
        .arg(&dave.public)
        .assert()
        .code(1)
        .stderr(contains("which is not one of alice's keys"))
        .stderr(contains("claims channel alice:bob"));
    assert!(!p.w.join("inbox/forged").exists());
}

#[test]
fn with_trust_only_a_channel_is_accepted_without_touching_its_sequence_numbers() {
    let w = World::new();
    let (alice, bob, carol) = (w.keys("alice"), w.keys("bob"), w.keys("carol"));
    let claim = |name: &str, signer: &Keys| claim(&w, name, signer, &bob);
    let unpack = |m: &Path, trust: &Keys| {
        let mut c = w.home("bob");
        c.arg("unpack").arg(m).arg("--trust").arg(&trust.public);
        c.arg("-i")
            .arg(&bob.identity)
            .arg("-d")
            .arg(w.join("inbox"));
        c
    };
    // No keyring: carol's claim on alice's channel is accepted as a bundle,
    // with a warning, and consumes nothing.
    unpack(&claim("by-carol", &carol), &carol)
        .assert()
        .success()
        .stderr(contains("channel alice:bob is not vouched for"));
    unpack(&claim("by-alice", &alice), &alice)
        .assert()
        .success()
        .stderr(contains("replay").not());
    w.home("bob")
        .args(["ledger", "gaps"])
        .assert()
        .success()
        .stdout(contains("no channels with sequence numbers"));
    // Once alice is a keyring party, her channel counts from her own bundles.
    w.home("bob")
        .args(["keyring", "add", "alice", "--sign-pub"])
        .arg(&alice.public)
        .assert()
        .success();
    unpack(&claim("by-alice-again", &alice), &alice)
        .assert()
        .success();
    unpack(&claim("by-alice-replayed", &alice), &alice)
        .assert()
        .code(1)
        .stderr(contains(
            "sequence 1 of channel alice:bob was already accepted",
        ));
}

/// Rewrites every record of a ledger (renaming each bundle) and re-chains
/// them, as someone without the owner's key can.
fn rewrite_and_rechain(ledger: &Path) {
    let text = fs::read_to_string(ledger).expect("ledger");
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).expect("record");
        v["name"] = serde_json::Value::String("rewritten".into());
        v["prev"] = serde_json::Value::String(prev.clone());
        let new = serde_json::to_string(&v).expect("json");
        prev = pouch::payload::hashing::sha256_hex(new.as_bytes());
        out.push_str(&new);
        out.push('\n');
    }
    fs::write(ledger, out).expect("write");
}

#[test]
fn a_ledger_rewritten_wholesale_fails_against_its_owners_key() {
    let w = World::new();
    let (alice, bob, carol) = (w.keys("alice"), w.keys("bob"), w.keys("carol"));
    let home = w.join("alice-home");
    fs::create_dir_all(w.join("stick")).expect("mkdir");
    for name in ["c1", "c2"] {
        let f = w.write(format!("src/{name}.txt"), name);
        w.home("alice")
            .arg("pack")
            .arg(&f)
            .arg("-o")
            .arg(w.join("stick"))
            .args(["--name", name, "-r", &bob.recipient, "-s"])
            .arg(&alice.secret)
            .assert()
            .success();
    }
    let ledger = home.join("ledger.jsonl");
    assert!(
        home.join("ledger.jsonl.minisig").is_file(),
        "pack signs the ledger"
    );
    let verify = |trust: &Keys| {
        let mut c = w.home("auditor");
        c.args(["ledger", "verify", "--ledger"]).arg(&ledger);
        c.arg("--trust").arg(&trust.public);
        c
    };
    verify(&alice)
        .assert()
        .success()
        .stdout(contains("2 records, hash chain intact"))
        .stdout(contains("records 0 to 1 as they stand"));
    // Signed by alice, not by carol.
    verify(&carol)
        .assert()
        .code(1)
        .stderr(contains("not among the trusted keys"));
    // An auditor with alice in the keyring sees who wrote the ledger.
    w.home("auditor")
        .args(["keyring", "add", "alice", "--sign-pub"])
        .arg(&alice.public)
        .assert()
        .success();
    let audit = || {
        let mut c = w.home("auditor");
        c.arg("audit")
            .arg(w.join("stick"))
            .arg("--ledger")
            .arg(&ledger);
        c
    };
    audit()
        .assert()
        .success()
        .stdout(contains("records 0 to 1 signed by alice"));
    let kept = fs::read(&ledger).expect("read");
    let sig = home.join("ledger.jsonl.minisig");
    let kept_sig = fs::read(&sig).expect("read");
    // Rewritten and re-chained: the chain alone says intact, the owner's
    // signature does not.
    rewrite_and_rechain(&ledger);
    w.home("auditor")
        .args(["ledger", "verify", "--ledger"])
        .arg(&ledger)
        .assert()
        .success();
    verify(&alice)
        .assert()
        .code(1)
        .stderr(contains("does not match record 1"));
    audit()
        .assert()
        .code(1)
        .stdout(contains("does not match record 1"));
    // Re-signed by the rewriter: not the owner's key.
    w.home("auditor")
        .args(["ledger", "sign", "--ledger"])
        .arg(&ledger)
        .arg("-s")
        .arg(&carol.secret)
        .assert()
        .success();
    verify(&alice).assert().code(1);
    // The newest record dropped: alice's signature names more records.
    fs::write(&ledger, &kept).expect("restore");
    fs::write(&sig, &kept_sig).expect("restore");
    verify(&alice).assert().success();
    let first_line = String::from_utf8(kept.clone()).expect("utf-8");
    let first_line = first_line.lines().next().expect("a record");
    fs::write(&ledger, format!("{first_line}\n")).expect("truncate");
    verify(&alice)
        .assert()
        .code(1)
        .stderr(contains("its signature covers 2 records, but it holds 1"));
}
