//! Chain of custody: keyring, channels with sequence numbers, the
//! hash-chained ledger, replays and gaps, receipts, and audit.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{fails, field, output, passes, stdout_of, Keys};
use predicates::prelude::*;
use predicates::str::contains;

use common::agencies::{Agencies, CHANNEL};

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
    let gaps = || args!(w.receiver(); "ledger", "gaps");
    passes(w.unpack(&m[0]), &[]);
    passes(w.unpack(&m[1]), &[]).stderr(contains("gap").not());
    passes(w.unpack(&m[3]), &[]).stderr(contains("sequence numbers [3] have not arrived"));
    // A gap is exit 1, on the recipient's ledger and on the sender's.
    fails(gaps(), 1, &[]).stdout(contains("bka-zd:fedpol-ic: missing [3]"));
    passes(
        args!(w.sender(); "ledger", "gaps"),
        &["bka-zd:fedpol-ic: no gaps"],
    );
    // The same bundle again is a replay, even into another folder.
    fs::remove_dir_all(w.d.join("inbox/b2")).expect("rm");
    fails(w.unpack(&m[1]), 1, &["replay", "--allow-replay"]);
    assert!(
        !w.d.join("inbox/b2").exists(),
        "a refused replay writes nothing"
    );
    passes(args!(w.unpack(&m[1]); "--allow-replay"), &[]);
    // 3 arrives late: accepted, and the gap is closed.
    passes(w.unpack(&m[2]), &[]);
    passes(gaps(), &["bka-zd:fedpol-ic: no gaps"]);
    // 5 with a forged previous-manifest hash, re-signed with the clerk's key.
    let text = fs::read_to_string(&m[4]).expect("read");
    let prev = field(&text, "previous_manifest_sha256").expect("prev");
    let forged = text.replace(&prev, &"e".repeat(64));
    let id = field(&text, "bundle_id").expect("id");
    let key = common::forge::key(&w.clerk.secret);
    let stick = w.d.join("stick");
    common::forge::signed_manifest(&stick, "b5", forged.as_bytes(), &id, &key);
    let forged_link = "previous-manifest hash does not match bundle b4";
    passes(w.unpack(&m[4]), &[]).stderr(contains(forged_link));
    let ledger = fs::read_to_string(w.d.join("receiver-home/ledger.jsonl")).expect("ledger");
    assert!(ledger
        .lines()
        .last()
        .expect("record")
        .contains("previous-manifest hash does not match"));
    // The replay of a channel sequence under a new bundle id is refused too.
    let (new_id, replayed) = ("a".repeat(32), text.replace(&id, &"a".repeat(32)));
    common::forge::signed_manifest(&stick, "b5", replayed.as_bytes(), &new_id, &key);
    let replay = "sequence 5 of channel bka-zd:fedpol-ic was already accepted";
    fails(w.unpack(&m[4]), 1, &[replay]);
    passes(
        args!(w.receiver(); "ledger", "verify"),
        &["hash chain intact"],
    );
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
    // Each pack: its intent (`reserved`) and its settlement (`packed`).
    assert_eq!(lines.len(), 8);
    let verify = || args!(w.sender(); "ledger", "verify");
    let records = |order: &[usize]| {
        let picked: Vec<&str> = order.iter().map(|&i| lines[i]).collect();
        picked.join("\n") + "\n"
    };
    for (text, expect) in [
        (
            original.replacen("\"sequence\":2", "\"sequence\":7", 1),
            "record 3: its link to record 2",
        ),
        (records(&[0, 2, 3]), "record 1: says it is record 2"),
        (records(&[0, 2, 1, 3]), "record 1: says it is record 2"),
        (records(&[0, 1, 0, 2, 3]), "record 2: says it is record 0"),
        (
            original[..original.len() - 10].to_string(),
            "record 7: the last record is cut off",
        ),
        (records(&[1, 2, 3]), "record 0: says it is record 1"),
    ] {
        fs::write(&path, text).expect("write");
        fails(verify(), 1, &[expect]);
    }
    fs::write(&path, &original).expect("restore");
    passes(args!(verify(); "--json"), &["\"intact\": true"]);
    // A broken ledger is not appended to.
    fs::write(&path, &original[..original.len() - 10]).expect("truncate");
    let f = w.source("more.txt", "more");
    fails(
        w.pack_cmd(&f, &w.clerk.secret, &CHANNEL),
        1,
        &["cut off", "pouch ledger repair"],
    );
    // Never a lock-out: repair sets the torn record aside, and work goes
    // on; the pack whose settlement was torn off is recorded again from
    // its intent, since its bundle is there.
    let truncated = &original[..original.len() - 10];
    let torn = &truncated[truncated.rfind('\n').expect("whole records") + 1..];
    passes(args!(w.sender(); "ledger", "repair"), &[])
        .stderr(contains(format!("set aside {} bytes", torn.len())))
        .stderr(contains(
            "the pack of b4 (sequence 4, record 6) was interrupted after its bundle was committed",
        ));
    let aside: Vec<_> = fs::read_dir(w.d.join("sender-home"))
        .expect("home")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("ledger.jsonl.torn-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "one file keeps the torn bytes");
    let kept = fs::read(aside[0].path()).expect("torn bytes");
    assert_eq!(kept, torn.as_bytes());
    passes(args!(verify(); "--json"), &["\"intact\": true"]);
    passes(w.pack_cmd(&f, &w.clerk.secret, &CHANNEL), &[]);
    passes(args!(w.sender(); "ledger", "show"), &["repaired"]);
}

#[test]
fn receipts_round_trip_and_forgeries_are_refused() {
    let w = Agencies::new();
    let m1 = w.pack("b1");
    let m2 = w.pack("b2");
    let receipts = w.w.dir("receipts");
    for m in [&m1, &m2] {
        let unpack = w.unpack_with_receipt(m, &receipts);
        passes(unpack, &[]).stderr(contains("receipt written"));
    }
    let r1 = w.d.join("receipts/b1.receipt.toml");
    let text = fs::read_to_string(&r1).expect("receipt");
    assert!(
        text.contains("verdict = \"accepted\"") && text.contains("kind = \"receipt\""),
        "{text}"
    );
    passes(args!(w.sender(); "ledger", "show"), &["outstanding"]);
    passes(
        w.import(&r1),
        &["b1: delivered; receipt signed by fedpol-ic"],
    );
    passes(w.import(&r1), &["already recorded"]);
    let show = ["ledger", "show", "--channel", "bka-zd:fedpol-ic", "--json"];
    let mut shown = w.sender();
    let shown = output(shown.args(show));
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
    fails(w.import(&r2), 1, &["signature"]);
    // A receipt signed by a key that is not in the keyring is refused.
    let mallory = w.w.keys_in(&receipts, "mallory", false);
    fs::write(&r2, &good).expect("restore");
    let forged = mallory_signs(&r2, &mallory, &good);
    fails(w.import(&forged), 1, &["not among the trusted keys"]);
    passes(w.import(&r2), &[]);
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
    let f = w.source("big.bin", common::noise(40_000, 5));
    let mut split = w.pack_cmd(&f, &w.clerk.secret, &["--name", "b3", "--split", "16K"]);
    passes(split.args(CHANNEL), &[]);
    let stick = w.d.join("stick");
    fs::remove_file(stick.join("b3.age.002")).expect("rm part");
    // b2's payload is tampered with.
    let p2 = stick.join("b2.age");
    let mut bytes = fs::read(&p2).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    fs::write(&p2, bytes).expect("write");
    passes(w.unpack_with_receipt(&m1, &stick), &[]);
    // The auditor here works on the sender's machine, whose keyring also
    // holds its own agency's signing key.
    passes(w.add(w.sender(), "bka-zd"), &[]);
    fs::write(stick.join("notes.txt"), "courier log").expect("write");
    fs::write(stick.join("settings.toml"), "colour = \"blue\"\n").expect("write");

    let out = output(args!(w.sender(); "audit", &stick));
    let text = stdout_of(&out);
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

    let ledger = w.d.join("sender-home/ledger.jsonl");
    let out = output(args!(w.sender(); "audit", "--json", "--ledger", &ledger, &stick));
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
    for (name, want) in [("b1", "ok"), ("b2", "failed"), ("b3", "failed")] {
        assert_eq!(verdict(name), want);
    }
    assert_eq!(v["failed"], 2);
    assert_eq!(v["receipts"][0]["verdict"], "ok");
    assert_eq!(v["ledgers"][0]["verdict"], "ok");
    assert_eq!(v["channels"][0]["channel"], "bka-zd:fedpol-ic");
    assert_eq!(v["ignored"].as_array().expect("ignored").len(), 2);
    let _ = m2;
}

#[test]
fn keyring_names_recipients_and_signers_and_refuses_strangers() {
    let w = Agencies::new();
    let list = args!(w.sender(); "keyring", "list");
    passes(list, &["fedpol-ic", "1 recipient"]);
    let m = w.pack("b1");
    let text = fs::read_to_string(&m).expect("read");
    assert!(text.contains(&pouch::payload::crypto::fingerprint(
        &pouch::payload::crypto::parse_recipient(&w.recipient.recipient).expect("recipient")
    )));
    passes(args!(w.receiver(); "verify", &m), &["(bka-zd)"]);
    passes(w.unpack(&m), &[]);
    // A bundle signed by a key nobody added is refused.
    let mallory = w.w.keys_in(&w.d.join("src"), "mallory", false);
    let f = w.source("evil.txt", "evil");
    let evil = ["--name", "evil", "--to", "fedpol-ic"];
    passes(w.pack_cmd(&f, &mallory.secret, &evil), &[]);
    let unpack = w.unpack(&w.d.join("stick/evil.toml"));
    fails(unpack, 1, &["not among the trusted keys"]);
    // Unknown party, no recipients: a clear error.
    let nobody = w.pack_cmd(&f, &w.clerk.secret, &["--to", "nobody"]);
    fails(nobody, 2, &["nobody has none in the keyring"]);
    let remove = || args!(w.sender(); "keyring", "remove", "fedpol-ic");
    passes(remove(), &[]);
    passes(args!(w.sender(); "keyring", "list", "--json"), &["[]"]);
    fails(remove(), 2, &[]);
}

#[test]
fn a_receipt_signed_by_another_trusted_party_is_refused_and_fails_audit() {
    let w = Agencies::new();
    // carol is a party the sender trusts too, but not the bundle's receiver.
    let carol = w.w.keys("carol");
    let add = args!(w.sender(); "keyring", "add", "carol", "--sign-pub", &carol.public);
    passes(add, &[]);
    let m = w.pack("b1");
    let receipts = w.w.dir("receipts");
    passes(w.unpack_with_receipt(&m, &receipts), &[]);
    let genuine = receipts.join("b1.receipt.toml");
    let text = fs::read_to_string(&genuine).expect("receipt");
    // The manifest hash a receipt needs is public: carol signs one herself.
    let forged = mallory_signs(&genuine, &carol, &text);
    let wrong_party = "signed by carol, but the bundle's receiver is fedpol-ic";
    fails(w.import(&forged), 1, &[wrong_party]);
    passes(args!(w.sender(); "ledger", "show"), &["outstanding"]);
    fs::remove_file(&genuine).expect("rm");
    fs::remove_file(pouch::signature::signature_path(&genuine)).expect("rm");
    // Who received the bundle comes from the verified bundle or the
    // sender's ledger, never from the receipt: without either, the receipt
    // cannot be checked and fails.
    let unknown = "cannot tell who received bundle";
    fails(args!(w.sender(); "audit", &receipts), 1, &[]).stdout(contains(unknown));
    let only_theirs = "only fedpol-ic's key can confirm its delivery";
    let ledger = w.d.join("sender-home/ledger.jsonl");
    let with_ledger = args!(w.sender(); "audit", &receipts, "--ledger", &ledger);
    fails(with_ledger, 1, &[]).stdout(contains(only_theirs));
    let stick = w.d.join("stick");
    let with_bundle = args!(w.sender(); "audit", &receipts, &stick, "--trust", &w.clerk.public);
    fails(with_bundle, 1, &[]).stdout(contains(only_theirs));
}

#[test]
fn a_receipt_can_always_be_made_later_for_an_accepted_bundle_only() {
    let w = Agencies::new();
    let m1 = w.pack("b1");
    let m2 = w.pack("b2");
    passes(w.unpack(&m1), &[]);
    let receipts = w.w.dir("receipts");
    let make = |m: &Path| {
        let key = &w.recipient.secret;
        args!(w.receiver(); "receipt", "make", m, "-s", key, "-o", &receipts)
    };
    passes(make(&m1), &[]).stderr(contains("receipt written"));
    // b2 was never unpacked here: no receipt for it.
    fails(make(&m2), 2, &["neither accepted nor rejected bundle b2"]);
    assert!(!receipts.join("b2.receipt.toml").exists());
    // A rerun of the unpack is a replay, but the receipt needs none.
    fails(w.unpack(&m1), 1, &["already accepted"]);
    passes(w.import(&receipts.join("b1.receipt.toml")), &[]);
    passes(args!(w.sender(); "ledger", "show"), &["delivered"]);
    // A receipt whose signature is missing (a write cut between the two
    // renames) is replaced by the next one.
    fs::remove_file(receipts.join("b1.receipt.toml.minisig")).expect("rm");
    passes(make(&m1), &[]).stderr(contains("unsigned receipt left by an interrupted write"));
    assert!(receipts.join("b1.receipt.toml.minisig").is_file());
}

#[test]
fn leftovers_of_interrupted_runs_are_named_by_audit_and_removed_by_the_next_run() {
    let w = Agencies::new();
    let m1 = w.pack("b1");
    let stick = w.d.join("stick");
    let inbox = w.w.dir("inbox");
    let temp = stick.join(".b9.age.Xy12Ab.tmp");
    fs::write(&temp, "half a payload").expect("temp");
    let staging = inbox.join(".pouch-staging-b9-0123456789ab");
    fs::create_dir(&staging).expect("staging");
    fs::write(staging.join("decrypted.txt"), "secret").expect("file");
    let mine = stick.join("notes.txt.tmp");
    fs::write(&mine, "not pouch's").expect("other");
    // Hostile look-alikes: a link named like a staging folder (to a folder
    // that must survive) and a FIFO named like a temporary file (which must
    // neither be opened nor removed).
    let outside = w.w.dir("outside");
    fs::write(outside.join("keep.txt"), "keep").expect("file");
    std::os::unix::fs::symlink(&outside, inbox.join(".pouch-staging-evil-0123456789ab"))
        .expect("link");
    let fifo = stick.join(".b8.age.Ab12Cd.tmp");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let audit = args!(w.receiver(); "audit", &stick, &inbox);
    passes(
        audit,
        &[
            "left over",
            "b9.age.Xy12Ab.tmp",
            "temporary file of an interrupted pack",
        ],
    )
    .stdout(contains("staging folder of an interrupted unpack"))
    .stdout(contains("decrypted.txt").not());
    // An empty (or unmounted) folder is not a clean audit.
    let empty = w.w.dir("empty");
    fails(
        args!(w.receiver(); "audit", &empty),
        1,
        &["no bundles or receipts found"],
    );
    passes(w.unpack(&m1), &[]).stderr(contains("removed").and(contains(".pouch-staging-b9")));
    assert!(
        !staging.exists(),
        "the staging folder with decrypted files is gone"
    );
    w.pack("b2");
    assert!(!temp.exists(), "the temporary file is gone");
    assert!(mine.is_file(), "a file pouch did not write stays");
    assert!(outside.join("keep.txt").is_file(), "a link is not followed");
    assert!(fifo.exists(), "a FIFO is no leftover");
}

#[test]
fn concurrent_keyring_updates_all_land() {
    let w = Agencies::new();
    for round in 0..12 {
        let names = [format!("a{round}"), format!("b{round}")];
        let children: Vec<_> = names
            .iter()
            .map(|n| {
                let bin = assert_cmd::cargo::cargo_bin("pouch");
                std::process::Command::new(bin)
                    .env("POUCH_HOME", w.d.join("sender-home"))
                    // Recipients only: one signing key belongs to one party.
                    .args(["keyring", "add", n, "--recipient", &w.recipient.recipient])
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for mut c in children {
            assert!(c.wait().expect("wait").success());
        }
        let list = stdout_of(&output(args!(w.sender(); "keyring", "list", "--json")));
        for n in &names {
            assert!(
                list.contains(&format!("\"{n}\"")),
                "round {round}: {n} lost: {list}"
            );
        }
    }
}
