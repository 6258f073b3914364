//! Key lifecycle: fingerprints to compare by phone, rotation, revocation,
//! removing single keys, and keys given in the wrong place named as such.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{fails, passes, require, stderr_of, stdout_of, trusts, Keys, World};
use predicates::prelude::*;
use predicates::str::contains;
use sha2::Digest;

/// Packs bundle `name` signed by `signer` for `to`, on channel alice:bob,
/// from a home of its own, onto the world's stick.
fn pack(w: &World, name: &str, signer: &Keys, to: &Keys) -> PathBuf {
    let f = w.write(format!("src/{name}.txt"), format!("{name}\n"));
    let stick = w.dir("stick");
    let home = w.home(&format!("packer-{name}"));
    let flags = ["--from", "alice", "--to", "bob", "-r", &to.recipient];
    passes(
        args!(home; "pack", &f, "-o", &stick, "--name", name, "-s", &signer.secret).args(flags),
        &[],
    );
    w.join(format!("stick/{name}.toml"))
}

/// A minisign key pair made by the stock `minisign -G -W` in `dir`.
fn stock_minisign(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let minisign = require("minisign", "minisign");
    let (public, secret) = (
        dir.join(format!("{name}.pub")),
        dir.join(format!("{name}.key")),
    );
    let gen = args!(std::process::Command::new(minisign); "-G", "-W", "-p", &public, "-s", &secret);
    common::ok("minisign -G -W", common::run(gen));
    (public, secret)
}

/// The base64 key line of a `.pub` file.
fn key_line(public: &Path) -> String {
    let text = fs::read_to_string(public).expect("pub");
    text.lines().nth(1).expect("key line").trim().to_string()
}

fn grouped_sha256(text: &str) -> String {
    let hex = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    pouch::signature::group(&hex)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    pouch::format::manifest::format_time(t)
}

#[test]
fn keyring_add_prints_full_fingerprints_to_read_out_by_phone() {
    let w = World::new();
    let (public, _) = stock_minisign(w.path(), "desk");
    let age = w.keys("desk");
    let out = passes(
        args!(w.home("bob"); "keyring", "add", "desk", "--sign-pub", &public, "--recipient", &age.recipient),
        &[],
    );
    let stdout = stdout_of(&out.get_output().clone());
    // What the party computes on its side with sha256sum alone.
    let signing = grouped_sha256(&key_line(&public));
    let recipient = grouped_sha256(&age.recipient);
    assert!(
        stdout.contains(&format!("desk signing key fingerprint: {signing}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("fingerprint: {recipient}")),
        "{stdout}"
    );
    assert_eq!(signing.split(' ').count(), 16, "the full 32 bytes");
    // Adding a key later prints all of the party's, to read out again.
    let other = w.keys("other");
    passes(
        args!(w.home("bob"); "keyring", "add", "desk", "--recipient", &other.recipient),
        &[&signing, &recipient, &grouped_sha256(&other.recipient)],
    );
}

#[test]
fn rotation_keeps_old_bundles_and_refuses_keys_outside_their_time() {
    let w = World::new();
    let [alice, alice2, bob] = ["alice", "alice2", "bob"].map(|n| w.keys(n));
    let old = pack(&w, "old", &alice, &bob);
    let new = pack(&w, "new", &alice2, &bob);
    let now = time::OffsetDateTime::now_utc();
    // bob rotates alice's key from an hour from now: the bundle the old key
    // made now still verifies; the new key's, dated now, is not yet hers.
    trusts(&w, "bob", "alice", &alice);
    let later = rfc3339(now + time::Duration::hours(1));
    passes(
        args!(w.home("bob"); "keyring", "rotate", "alice", "--sign-pub", &alice2.public, "--valid-from", &later),
        &["alice signing key fingerprint: "],
    );
    passes(args!(w.home("bob"); "verify", &old), &["signed by alice"]);
    fails(
        args!(w.home("bob"); "verify", &new),
        1,
        &[
            "of party alice, which is its key only from",
            "hint: the key was not the party's signing key",
        ],
    );
    // carol's keyring rotated an hour ago: the old key's bundle of now is
    // refused, the new key's verifies.
    trusts(&w, "carol", "alice", &alice);
    let earlier = rfc3339(now - time::Duration::hours(1));
    passes(
        args!(w.home("carol"); "keyring", "rotate", "alice", "--sign-pub", &alice2.public, "--valid-from", &earlier),
        &[],
    );
    fails(args!(w.home("carol"); "verify", &old, "--json"), 1, &[]).stdout(
        contains("\"kind\":\"key_not_in_force\"").or(contains("\"kind\": \"key_not_in_force\"")),
    );
    passes(args!(w.home("carol"); "verify", &new), &["signed by alice"]);
    let ring = fs::read_to_string(w.join("carol-home/keyring.toml")).expect("keyring");
    assert!(
        ring.contains("[[party.previous_key]]")
            && ring.contains(&format!("valid_until = \"{earlier}\"")),
        "{ring}"
    );
    // A --valid-from not after the current key's own is refused.
    fails(
        args!(w.home("carol"); "keyring", "rotate", "alice", "--sign-pub", &bob.public, "--valid-from", "2020-01-01"),
        2,
        &["must be later"],
    );
}

/// bob trusts alice, receives bundle b1 with a receipt, then learns that
/// alice's key was stolen and revokes it.
fn revoked_world() -> (World, [Keys; 2], PathBuf) {
    let w = World::new();
    let [alice, bob] = ["alice", "bob"].map(|n| w.keys(n));
    trusts(&w, "bob", "alice", &alice);
    let m = pack(&w, "b1", &alice, &bob);
    passes(args!(w.home("bob"); "verify", &m), &["signed by alice"]);
    passes(
        args!(w.home("bob"); "keyring", "revoke", "alice", "--reason", "laptop stolen"),
        &[],
    )
    .stderr(contains("revoked; nothing it signed is accepted"));
    (w, [alice, bob], m)
}

#[test]
fn nothing_signed_by_a_revoked_key_is_accepted_anywhere() {
    let (w, [alice, bob], m) = revoked_world();
    let revoked = "is revoked in the keyring (revoked 20";
    let home = || w.home("bob");
    fails(
        args!(home(); "verify", &m),
        1,
        &[revoked, "laptop stolen", "hint: the party revoked this key"],
    );
    let inbox = w.join("inbox");
    fails(
        args!(home(); "unpack", &m, "-i", &bob.identity, "-d", &inbox),
        1,
        &[revoked],
    );
    assert!(!inbox.join("b1.txt").exists());
    fails(args!(home(); "inspect", &m), 1, &["revoked"]);
    fails(args!(home(); "audit", w.join("stick")), 1, &[]).stdout(contains("FAILED"));
    // Given outright, as a file or as text, it is refused before anything is read.
    let text = key_line(&alice.public);
    for given in [alice.public.to_string_lossy().into_owned(), text] {
        fails(
            args!(home(); "verify", &m, "--trust", &given),
            1,
            &[revoked],
        );
        fails(
            args!(home(); "ledger", "verify", "--trust", &given),
            1,
            &[revoked],
        );
    }
    // A ledger signed by the revoked key does not verify.
    let ledger = w.join("alice-ledger.jsonl");
    let alice_home = || args!(w.home("alice-side"); "--ledger", &ledger);
    let f = w.write("src/l.txt", "l\n");
    passes(
        args!(alice_home(); "pack", &f, "-o", w.dir("out"), "-s", &alice.secret, "-r", &bob.recipient),
        &[],
    );
    passes(
        args!(alice_home(); "ledger", "sign", "-s", &alice.secret),
        &[],
    );
    // audit refuses both the bundle and the ledger the revoked key signed.
    let audit = fails(
        args!(home(); "audit", w.join("out"), "--ledger", &ledger),
        1,
        &[],
    );
    let report = stdout_of(audit.get_output());
    let ledger_line = report
        .lines()
        .find(|l| l.starts_with("ledger "))
        .unwrap_or("");
    assert!(
        ledger_line.contains("FAILED") && ledger_line.contains(revoked),
        "{report}"
    );
    assert!(
        report.contains("problem: ") && report.contains("2 failed"),
        "{report}"
    );
}

/// `side` trusts `name`'s key `old`, rotated to `new` from `from`.
fn rotated(w: &World, side: &str, name: &str, old: &Keys, new: &Keys, from: &str) {
    trusts(w, side, name, old);
    let rotate = args!(w.home(side); "keyring", "rotate", name, "--sign-pub", &new.public, "--valid-from", from);
    passes(rotate, &[]);
}

#[test]
fn receipts_and_ledgers_follow_rotation_and_revocation() {
    let w = World::new();
    let [alice, bob, bob2] = ["alice", "bob", "bob2"].map(|n| w.keys(n));
    trusts(&w, "bob", "alice", &alice);
    let m = pack(&w, "b1", &alice, &bob);
    let receipts = w.dir("receipts");
    passes(
        args!(w.home("bob"); "unpack", &m, "-i", &bob.identity, "-d", w.join("inbox"), "--receipt-out", &receipts, "-s", &bob.secret),
        &[],
    );
    passes(
        args!(w.home("bob"); "ledger", "sign", "-s", &bob.secret),
        &[],
    );
    let r = receipts.join("b1.receipt.toml");
    let ledger = w.join("bob-home/ledger.jsonl");
    // Imported into the ledger that packed b1, with each side's keyring.
    let sent = w.join("packer-b1-home/ledger.jsonl");
    let import = |side: &str| args!(w.home(side); "--ledger", &sent, "receipt", "import", &r);
    let now = time::OffsetDateTime::now_utc();
    // Rotated after the receipt and the ledger's head were made: both stand.
    let later = rfc3339(now + time::Duration::hours(1));
    rotated(&w, "early", "bob", &bob, &bob2, &later);
    passes(import("early"), &[]);
    let verify = |side: &str| args!(w.home(side); "--ledger", &ledger, "ledger", "verify", "--trust", &bob.public);
    passes(verify("early"), &[]);
    // Rotated before they were made: the old key no longer spoke for bob.
    let earlier = rfc3339(now - time::Duration::hours(1));
    rotated(&w, "late", "bob", &bob, &bob2, &earlier);
    let replaced = "which its next key replaced from";
    fails(
        args!(w.home("late"); "receipt", "import", &r),
        1,
        &[replaced],
    );
    fails(verify("late"), 1, &[replaced]);
    // Revoked: refused whatever the dates.
    passes(
        args!(w.home("early"); "keyring", "revoke", "bob", "--sign-pub", &bob.public),
        &[],
    );
    let revoked = "is revoked in the keyring";
    fails(
        args!(w.home("early"); "receipt", "import", &r),
        1,
        &[revoked],
    );
    fails(verify("early"), 1, &[revoked]);
}

#[test]
fn a_revoked_key_never_comes_back() {
    let (w, [alice, bob], m) = revoked_world();
    let home = || w.home("bob");
    passes(args!(home(); "keyring", "list"), &["alice", "revoked key "]);
    // Nor does it sign anything where the keyring knows it is revoked.
    let f = w.write("src/new.txt", "new\n");
    let pack =
        args!(home(); "pack", &f, "-o", w.dir("again"), "-s", &alice.secret, "-r", &bob.recipient);
    let own = [
        "which this keyring marks revoked",
        "hint: sign with the party's current key",
    ];
    fails(pack, 2, &own);
    let resplit = args!(home(); "resplit", &m, "-o", w.dir("dvd"), "-s", &alice.secret);
    fails(resplit, 2, &own);
    let resplit = args!(home(); "resplit", &m, "-o", w.dir("dvd"), "-s", &bob.secret, "--trust", &alice.public);
    fails(resplit, 1, &["--trust ", "is revoked in the keyring"]);
    let never = "a revoked key is never trusted again";
    // Re-added to its party, or added to another party.
    fails(
        args!(home(); "keyring", "add", "alice", "--sign-pub", &alice.public),
        2,
        &[never],
    );
    fails(
        args!(home(); "keyring", "add", "mallory", "--sign-pub", &alice.public),
        2,
        &[never],
    );
    // As someone's new key.
    trusts(&w, "bob", "bob", &bob);
    fails(
        args!(home(); "keyring", "rotate", "bob", "--sign-pub", &alice.public),
        2,
        &[never],
    );
    // Removing the party keeps the revocation.
    passes(args!(home(); "keyring", "remove", "alice"), &[]);
    fails(
        args!(home(); "keyring", "add", "alice", "--sign-pub", &alice.public),
        2,
        &[never],
    );
    fails(
        args!(home(); "verify", &m, "--trust", &alice.public),
        1,
        &["is revoked in the keyring"],
    );
    // A different key made with the revoked key's id (minisign -G and a hex editor).
    let forged = w.join("forged.pub");
    let mut raw = pouch::signature::TrustedKey::load(bob.public.to_str().expect("utf8"))
        .expect("bob")
        .to_base64();
    raw = with_key_id_of(&raw, &key_line(&alice.public));
    fs::write(&forged, format!("untrusted comment: forged\n{raw}\n")).expect("write");
    fails(
        args!(home(); "keyring", "add", "carol", "--sign-pub", &forged),
        2,
        &["key id", "revoked key"],
    );
    // A hand-edited second entry for the revoked key spoils the keyring.
    let ring = w.join("bob-home/keyring.toml");
    let mut text = fs::read_to_string(&ring).expect("keyring");
    text.push_str(&format!(
        "\n[[party]]\nname = \"mallory\"\nsign_pub = \"{}\"\n",
        key_line(&alice.public)
    ));
    fs::write(&ring, text).expect("write");
    fails(
        args!(home(); "verify", &m),
        2,
        &["party mallory's signing key: this signing key is party alice's revoked key"],
    );
}

/// `key` (base64) with the key id of `other` (base64): bytes 2..10.
fn with_key_id_of(key: &str, other: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut k = b64.decode(key).expect("b64");
    let o = b64.decode(other).expect("b64");
    k[2..10].copy_from_slice(&o[2..10]);
    b64.encode(k)
}

#[test]
fn remove_can_drop_one_recipient_or_one_signing_key() {
    let w = World::new();
    let [a, b] = ["a", "b"].map(|n| w.keys(n));
    let home = || w.home("bob");
    passes(
        args!(home(); "keyring", "add", "desk", "--sign-pub", &a.public, "--recipient", &a.recipient, "--recipient", &b.recipient),
        &[],
    );
    // Removes `key` (`--recipient` or `--sign-pub`) from desk; the keyring after.
    let removes = |flag: &str, key: &std::ffi::OsStr, said: &str| {
        passes(args!(home(); "keyring", "remove", "desk", flag, key), &[]).stderr(contains(said));
        fs::read_to_string(w.join("bob-home/keyring.toml")).expect("keyring")
    };
    let ring = removes("--recipient", a.recipient.as_ref(), "removed recipient");
    assert!(
        !ring.contains(&a.recipient) && ring.contains(&b.recipient) && ring.contains("sign_pub"),
        "{ring}"
    );
    fails(
        args!(home(); "keyring", "remove", "desk", "--recipient", &a.recipient),
        2,
        &["has no recipient"],
    );
    let ring = removes("--sign-pub", a.public.as_os_str(), "removed signing key");
    assert!(
        !ring.contains("sign_pub") && ring.contains("name = \"desk\""),
        "{ring}"
    );
}

#[test]
fn post_quantum_beside_classic_warns_and_the_mix_error_names_the_parties() {
    let w = World::new();
    let (classic, pq) = (w.keys("c"), w.keys_pq("q"));
    let home = || w.home("alice");
    let add = |party: &str, r: &Keys| {
        passes(
            args!(home(); "keyring", "add", party, "--recipient", &r.recipient),
            &[],
        )
    };
    add("desk", &classic).stderr(contains("warning").not());
    add("desk", &pq).stderr(contains(
        "warning: party desk now has post-quantum and classic recipients",
    ));
    add("pqdesk", &pq);
    let f = w.write("src/f.txt", "f\n");
    fails(
        args!(home(); "pack", &f, "-o", w.dir("out"), "-s", &classic.secret, "--to", "pqdesk", "-r", &classic.recipient),
        2,
        &["cannot mix post-quantum", "(keyring party pqdesk)", "(-r)"],
    );
}

#[test]
fn keys_given_in_the_wrong_place_are_named() {
    let w = World::new();
    let (public, secret) = stock_minisign(w.path(), "stock");
    let k = w.keys("k");
    let f = w.write("src/f.txt", "f\n");
    let out = w.dir("out");
    let pack = |extra: &[&std::ffi::OsStr]| {
        let mut c = args!(common::pouch(); "pack", &f, "-o", &out);
        c.args(extra);
        c
    };
    // The public key to -s.
    fails(
        pack(&[
            "-r".as_ref(),
            k.recipient.as_ref(),
            "-s".as_ref(),
            public.as_os_str(),
        ]),
        2,
        &["this is the public key; pass stock.key"],
    );
    // A file, a minisign key, ssh and plugin recipients to -r.
    let r = |given: &str, want: &[&str]| {
        fails(
            pack(&[
                "-s".as_ref(),
                k.secret.as_os_str(),
                "-r".as_ref(),
                given.as_ref(),
            ]),
            2,
            want,
        )
        .stderr(contains("Bech32").not());
    };
    r(
        k.recipient_file.to_str().expect("utf8"),
        &["looks like a file: use -R FILE"],
    );
    r(
        &key_line(&public),
        &["minisign signing key", "not an age recipient"],
    );
    r("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host", &["ssh recipients are not supported yet", "age1pq1"]);
    r(
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC user@host",
        &["ssh recipients are not supported yet"],
    );
    r(
        "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t",
        &["age plugin recipients (age-plugin-yubikey) are not supported yet"],
    );
    // A signing key's file to -R.
    let file = |given: &Path, want: &[&str]| {
        let c = pack(&[
            "-s".as_ref(),
            k.secret.as_os_str(),
            "-R".as_ref(),
            given.as_os_str(),
        ]);
        fails(c, 2, want);
    };
    file(
        &public,
        &[
            "not a file of age recipients",
            "hint: -R takes a file of age recipients",
        ],
    );
    file(
        &secret,
        &["this is a SECRET signing key; never hand it around"],
    );
    // Secret keys to --trust: named, never echoed.
    let m = common::pack(&[&f], &w.join("b"), "b", &k, &[&k], &[]);
    let secret_line = fs::read_to_string(&secret)
        .expect("key")
        .lines()
        .nth(1)
        .expect("line")
        .to_string();
    let out = fails(
        args!(common::pouch(); "verify", &m, "--trust", &secret),
        2,
        &["this is a SECRET key; never hand it around"],
    );
    assert!(!stderr_of(out.get_output()).contains(&secret_line[..20]));
    let age_keygen = require("age-keygen", "age");
    let identity = w.join("id.txt");
    common::ok(
        "age-keygen",
        common::run(args!(std::process::Command::new(age_keygen); "-o", &identity)),
    );
    let id_text = fs::read_to_string(&identity).expect("identity");
    let id_line = id_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("secret line");
    for given in [identity.to_string_lossy().into_owned(), id_line.to_string()] {
        let out = fails(
            args!(common::pouch(); "verify", &m, "--trust", &given, "--json"),
            2,
            &[],
        );
        let text = format!(
            "{}{}",
            stdout_of(out.get_output()),
            stderr_of(out.get_output())
        );
        assert!(
            text.contains("SECRET key; never hand it around") && text.contains("wrong_file"),
            "{text}"
        );
        assert!(
            !text.contains(&id_line[15..]),
            "the secret is echoed: {text}"
        );
    }
}

#[test]
fn a_wrong_passphrase_from_a_file_is_not_retried_and_says_check_the_passphrase() {
    let w = World::new();
    let right = w.write("right.txt", "correct horse\n");
    let wrong = w.write("wrong.txt", "battery staple\n");
    passes(
        args!(common::pouch(); "keygen", "--name", "p", "--out", w.path(), "--passphrase-file", &right),
        &[],
    );
    let k = w.join("p.minisign.key");
    let f = w.write("src/f.txt", "f\n");
    let r = fs::read_to_string(w.join("p.age-recipient")).expect("recipient");
    let pack = |pass: &Path| args!(common::pouch(); "pack", &f, "-o", w.dir("out"), "-s", &k, "--passphrase-file", pass, "-r", r.trim());
    let out = fails(
        pack(&wrong),
        2,
        &[
            "the passphrase does not decrypt it",
            "hint: check the passphrase",
        ],
    );
    assert!(!stderr_of(out.get_output()).contains("try again"));
    passes(pack(&right), &[]);
}
