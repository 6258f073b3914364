//! Claims on the medium are believed only when the key of the party they
//! name vouches for them: a channel belongs to its sender party.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{fails, passes, trusts, Keys, World};
use predicates::prelude::*;
use predicates::str::contains;

/// Three agencies: alice sends to bob on channel alice:bob; carol is
/// another party bob trusts. Each has its own pouch home in the world.
fn parties() -> (World, [Keys; 3]) {
    let w = World::new();
    let keys = ["alice", "bob", "carol"].map(|n| w.keys(n));
    (w, keys)
}

/// Packs bundle `name` for `to` claiming channel alice:bob, signed with
/// `signer`'s key, from a fresh home (so its sequence number is 1), onto
/// the world's stick.
fn claim(w: &World, name: &str, signer: &Keys, to: &Keys) -> PathBuf {
    let f = w.write(format!("src/{name}.txt"), format!("{name}\n"));
    let stick = w.dir("stick");
    let flags = ["--from", "alice", "--to", "bob", "-r", &to.recipient];
    let home = w.home(&format!("packer-{name}"));
    passes(
        args!(home; "pack", &f, "-o", &stick, "--name", name, "-s", &signer.secret).args(flags),
        &[],
    );
    w.join(format!("stick/{name}.toml"))
}

/// `unpack M` as bob into `inbox/`, trusting his keyring and `trust`.
fn unpack(w: &World, m: &Path, bob: &Keys, trust: &[&Keys]) -> assert_cmd::Command {
    let mut c = args!(w.home("bob"); "unpack", m, "-i", &bob.identity, "-d", w.join("inbox"));
    for k in trust {
        c.arg("--trust").arg(&k.public);
    }
    c
}

#[test]
fn another_party_cannot_speak_for_a_channel() {
    let (w, [alice, bob, carol]) = parties();
    trusts(&w, "bob", "alice", &alice);
    trusts(&w, "bob", "carol", &carol);
    let forged = claim(&w, "forged", &carol, &bob);
    let claimed = "signed by party carol, but claims channel alice:bob";
    fails(unpack(&w, &forged, &bob, &[]), 1, &[claimed]);
    assert!(!w.join("inbox/forged").exists(), "DEST untouched");
    let ledger = fs::read_to_string(w.join("bob-home/ledger.jsonl")).unwrap_or_default();
    assert!(ledger.contains("\"event\":\"rejected\""), "{ledger}");
    assert!(!ledger.contains("\"event\":\"accepted\""), "{ledger}");
    // verify, inspect and audit report the same binding.
    fails(args!(w.home("bob"); "verify", &forged), 1, &[claimed]);
    fails(args!(w.home("bob"); "inspect", &forged), 1, &[])
        .stdout(contains("alice -> bob \u{2717} signed by party carol"));
    fails(args!(w.home("bob"); "audit", w.join("stick")), 1, &[])
        .stdout(contains("alice:bob \u{2717}"))
        .stdout(contains("FAILED"));
    // alice's genuine bundle 1 is not a replay: carol took nothing from her channel.
    let genuine = claim(&w, "genuine", &alice, &bob);
    passes(unpack(&w, &genuine, &bob, &[]), &[]).stderr(contains("replay").not());
    let bound = "alice -> bob, signed by alice \u{2713}";
    passes(args!(w.home("bob"); "verify", &genuine), &[bound]);
    let header = "header       X25519, grease stanza: each a listed recipient (or age's grease)";
    passes(args!(w.home("bob"); "inspect", &genuine), &[bound, header]);
}

#[test]
fn a_trusted_key_that_is_not_the_named_partys_cannot_claim_its_channel() {
    let (w, [alice, bob, _]) = parties();
    trusts(&w, "bob", "alice", &alice);
    let dave = w.keys("dave");
    let forged = claim(&w, "forged", &dave, &bob);
    // dave's key is given with --trust, but alice is a keyring party and
    // this is not her key.
    let refused = [
        "which is not one of alice's keys",
        "claims channel alice:bob",
    ];
    fails(unpack(&w, &forged, &bob, &[&dave]), 1, &refused);
    assert!(!w.join("inbox/forged").exists());
}

#[test]
fn with_trust_only_a_channel_is_accepted_without_touching_its_sequence_numbers() {
    let (w, [alice, bob, carol]) = parties();
    // No keyring: carol's claim on alice's channel is accepted as a bundle,
    // with a warning, and consumes nothing.
    let by_carol = claim(&w, "by-carol", &carol, &bob);
    passes(unpack(&w, &by_carol, &bob, &[&carol]), &[])
        .stderr(contains("channel alice:bob is not vouched for"));
    let by_alice = claim(&w, "by-alice", &alice, &bob);
    passes(unpack(&w, &by_alice, &bob, &[&alice]), &[]).stderr(contains("replay").not());
    passes(
        args!(w.home("bob"); "ledger", "gaps"),
        &["no channels with sequence numbers"],
    );
    // Once alice is a keyring party, her channel counts from her own bundles.
    trusts(&w, "bob", "alice", &alice);
    let again = claim(&w, "by-alice-again", &alice, &bob);
    passes(unpack(&w, &again, &bob, &[&alice]), &[]);
    let replayed = claim(&w, "by-alice-replayed", &alice, &bob);
    let taken = "sequence 1 of channel alice:bob was already accepted";
    fails(unpack(&w, &replayed, &bob, &[&alice]), 1, &[taken]);
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
    let (w, [alice, bob, carol]) = parties();
    let stick = w.dir("stick");
    for name in ["c1", "c2"] {
        let f = w.write(format!("src/{name}.txt"), name);
        let pack =
            args!(w.home("alice"); "pack", &f, "-o", &stick, "--name", name, "-s", &alice.secret);
        passes(args!(pack; "-r", &bob.recipient), &[]);
    }
    let ledger = w.join("alice-home/ledger.jsonl");
    let sig = w.join("alice-home/ledger.jsonl.minisig");
    assert!(sig.is_file(), "pack signs the ledger");
    let verify = |trust: &Keys| args!(w.home("auditor"); "ledger", "verify", "--ledger", &ledger, "--trust", &trust.public);
    passes(
        verify(&alice),
        &[
            // Each pack: an intent (reserved) and its settlement (packed).
            "4 records, hash chain intact",
            "records 0 to 3 as they stand",
        ],
    );
    // Signed by alice, not by carol.
    fails(verify(&carol), 1, &["not among the trusted keys"]);
    // An auditor with no keys cannot check who signed it, and says so (the
    // bundles fail: their signatures cannot be checked either).
    let audit = || args!(w.home("auditor"); "audit", &stick, "--ledger", &ledger);
    fails(audit(), 1, &[]).stdout(contains("its signature was not checked (no trusted keys)"));
    // An auditor with alice in the keyring sees who wrote the ledger.
    trusts(&w, "auditor", "alice", &alice);
    passes(audit(), &["records 0 to 3 signed by alice"]);
    let kept = fs::read(&ledger).expect("read");
    let kept_sig = fs::read(&sig).expect("read");
    // Rewritten and re-chained: the chain alone says intact, the owner's
    // signature does not.
    rewrite_and_rechain(&ledger);
    passes(
        args!(w.home("auditor"); "ledger", "verify", "--ledger", &ledger),
        &[],
    );
    fails(verify(&alice), 1, &["does not match record 3"]);
    fails(audit(), 1, &[]).stdout(contains("does not match record 3"));
    // Re-signed by the rewriter: not the owner's key.
    let resign = args!(w.home("auditor"); "ledger", "sign", "--ledger", &ledger);
    passes(args!(resign; "-s", &carol.secret), &[]);
    fails(verify(&alice), 1, &[]);
    // The newest record dropped: alice's signature names more records.
    fs::write(&ledger, &kept).expect("restore");
    fs::write(&sig, &kept_sig).expect("restore");
    passes(verify(&alice), &[]);
    let text = String::from_utf8(kept).expect("utf-8");
    let first = text.lines().next().expect("a record");
    fs::write(&ledger, format!("{first}\n")).expect("truncate");
    fails(
        verify(&alice),
        1,
        &["its signature covers 4 records, but it holds 1"],
    );
}

#[test]
fn a_file_named_after_a_partys_key_does_not_stand_for_the_key() {
    let (w, [alice, bob, _]) = parties();
    let mallory = w.keys("mallory");
    trusts(&w, "bob", "alice", &alice);
    claim(&w, "forged", &mallory, &bob);
    // Beside the bundle, a file whose path is alice's key in base64 and
    // whose content is mallory's public key.
    let alice_b64 = fs::read_to_string(&alice.public).expect("pub");
    let alice_b64 = alice_b64
        .lines()
        .nth(1)
        .expect("key line")
        .trim()
        .to_string();
    // base64 may end in '/', which no file name can: then the file is
    // named by the rest (1 key in 64; without this the test failed then).
    let planted = w.write(
        format!("stick/{}", alice_b64.trim_end_matches('/')),
        fs::read(&mallory.public).expect("pub"),
    );
    assert!(planted.is_file());
    let in_stick = |c: &mut assert_cmd::Command| {
        c.current_dir(w.join("stick"));
    };
    for args in [&["verify", "forged.toml"][..], &["audit", "."][..]] {
        let mut c = w.home("bob");
        c.args(args);
        in_stick(&mut c);
        fails(c, 1, &[]);
    }
    let mut c =
        args!(w.home("bob"); "unpack", "forged.toml", "-i", &bob.identity, "-d", w.join("inbox"));
    in_stick(&mut c);
    fails(c, 1, &[]);
    assert!(!w.join("inbox/forged").exists());
}

#[test]
fn a_ledger_signature_by_another_trusted_party_is_not_the_owners() {
    let (w, [alice, bob, carol]) = parties();
    let stick = w.dir("stick");
    let f = w.write("src/a.txt", "a");
    let pack = args!(w.home("alice"); "pack", &f, "-o", &stick, "--name", "a", "-s", &alice.secret);
    passes(args!(pack; "-r", &bob.recipient), &[]);
    let ledger = w.join("alice-home/ledger.jsonl");
    // The auditor trusts both parties; carol re-signs alice's ledger.
    trusts(&w, "auditor", "alice", &alice);
    trusts(&w, "auditor", "carol", &carol);
    let resign = args!(w.home("auditor"); "ledger", "sign", "--ledger", &ledger);
    passes(args!(resign; "-s", &carol.secret), &[]);
    let verify =
        args!(w.home("auditor"); "ledger", "verify", "--ledger", &ledger, "--trust", &alice.public);
    fails(verify, 1, &["not among the trusted keys"]);
    // Without its signature the ledger fails an audit with a keyring.
    fs::remove_file(w.join("alice-home/ledger.jsonl.minisig")).expect("rm");
    let audit = args!(w.home("auditor"); "audit", &stick, "--ledger", &ledger);
    fails(audit, 1, &[]).stdout(contains("not signed by its owner"));
}
