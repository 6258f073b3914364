//! Daily operations as the two agencies live them: re-cutting a bundle
//! keeps its custody trail (receipts, the channel's chain, audit).
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::agencies::{Agencies, CHANNEL};
use common::{fails, output, passes, stderr_of, stdout_of};
use predicates::prelude::*;
use predicates::str::contains;

/// Bundle b1 (40 KiB of noise) packed onto the stick on the channel with
/// `extra` flags, then re-cut into parts of 8 KiB in `dvd/`: the agencies,
/// b1's manifest on the stick, and what resplit said.
fn recut_for_a_dvd(extra: &[&str]) -> (Agencies, PathBuf, assert_cmd::assert::Assert) {
    let w = Agencies::new();
    let f = w.source("b1.bin", common::noise(40 << 10, 1));
    let mut pack = w.pack_cmd(&f, &w.clerk.secret, &["--name", "b1"]);
    passes(pack.args(extra).args(CHANNEL), &[]);
    let m1 = w.d.join("stick/b1.toml");
    let dvd = w.w.dir("dvd");
    let resplit = args!(w.sender(); "resplit", &m1, "-o", &dvd, "-s", &w.clerk.secret);
    let done = passes(args!(resplit; "--split", "8K"), &[]);
    (w, m1, done)
}

/// A bundle re-cut for a DVD keeps its manifest byte for byte: the receipt
/// of the re-cut copy is imported, the next bundle's chain link holds, and
/// audit passes against the sender's ledger, with no warning anywhere.
#[test]
fn a_recut_keeps_receipts_the_chain_and_audit() {
    let (w, m1, done) = recut_for_a_dvd(&["--split", "16K"]);
    done.stderr(contains("re-cut"));
    let dvd = w.d.join("dvd");
    let recut = dvd.join("b1.toml");
    assert_eq!(
        fs::read(&m1).expect("manifest"),
        fs::read(&recut).expect("copy"),
        "the manifest is copied byte for byte"
    );
    assert!(dvd.join("b1.parts.toml").is_file() && dvd.join("b1.age.006").is_file());
    // The receiver takes the DVD copy, with a receipt.
    let receipts = w.w.dir("receipts");
    let unpacked = output(w.unpack_with_receipt(&recut, &receipts));
    assert!(unpacked.status.success(), "{}", stderr_of(&unpacked));
    assert!(
        !stderr_of(&unpacked).contains("warning"),
        "{}",
        stderr_of(&unpacked)
    );
    passes(w.import(&receipts.join("b1.receipt.toml")), &["delivered"]);
    // The next bundle's link to b1 holds on the receiver's side.
    let m2 = w.pack("b2");
    let next = output(w.unpack(&m2));
    assert!(next.status.success(), "{}", stderr_of(&next));
    assert!(
        !stderr_of(&next).contains("does not match"),
        "{}",
        stderr_of(&next)
    );
    // audit of the DVD and of the stick against the sender's ledger, by
    // an auditor who knows bka-zd (here with the receiver's keyring).
    let ledger = w.d.join("sender-home/ledger.jsonl");
    for dir in [&dvd, &w.d.join("stick")] {
        let audit = output(args!(w.receiver(); "audit", dir, "--ledger", &ledger));
        assert!(audit.status.success(), "{}", stdout_of(&audit));
        assert!(
            !stdout_of(&audit).contains("warning"),
            "{}",
            stdout_of(&audit)
        );
    }
    // inspect shows the re-cut and finds every part.
    let inspected = passes(pouch!("inspect", &recut), &["re-cut", "in 6 parts"]);
    inspected.stdout(contains("missing").not());
    // Joined into one file: the list says so (the manifest lists parts).
    let resplit = |to: &str, extra: &[&str]| {
        let out = w.w.dir(to);
        let mut c = args!(w.sender(); "resplit", &recut, "-o", &out, "-s", &w.clerk.secret);
        passes(c.args(extra), &[]);
        passes(args!(w.receiver(); "verify", out.join("b1.toml")), &[]);
        out
    };
    let disk = resplit("disk", &[]);
    assert!(disk.join("b1.age").is_file() && !disk.join("b1.age.001").exists());
    assert!(disk.join("b1.parts.toml").is_file());
    // Cut back as the manifest has it: no list is needed.
    let back = resplit("back", &["--split", "16K"]);
    assert!(back.join("b1.age.003").is_file() && !back.join("b1.parts.toml").exists());
}

/// A parts list is believed only when a trusted key signed it for this
/// bundle's manifest: forged, moved or unsigned lists fail the bundle,
/// and no list can make other bytes pass for the signed payload.
#[test]
fn a_forged_or_moved_parts_list_is_refused() {
    let (w, _, _) = recut_for_a_dvd(&[]);
    let dvd = w.d.join("dvd");
    let recut = dvd.join("b1.toml");
    let list = dvd.join("b1.parts.toml");
    let verify = || args!(w.receiver(); "verify", &recut, "-i", &w.recipient.identity);
    passes(verify(), &[]);
    let original = fs::read_to_string(&list).expect("list");
    // Edited (a part's size moved to the next): the signature fails.
    let edited = original.replacen("size = 8192", "size = 8191", 1);
    assert_ne!(edited, original);
    fs::write(&list, &edited).expect("write");
    fails(verify(), 1, &["b1.parts.toml.minisig"]);
    // Signed by a stranger: untrusted.
    let mallory = w.w.keys("mallory");
    let sig = common::forge::key(&mallory.secret)
        .sign_with_comment(edited.as_bytes(), &comment_of(&edited), "forged")
        .expect("sign");
    fs::write(dvd.join("b1.parts.toml.minisig"), sig).expect("write");
    fails(verify(), 1, &["not among the trusted keys"]);
    // Unsigned: refused, not passed over.
    fs::write(&list, &original).expect("write");
    fs::remove_file(dvd.join("b1.parts.toml.minisig")).expect("remove");
    fails(verify(), 1, &["missing"]);
}

/// The trusted comment a parts list's signature carries.
fn comment_of(list: &str) -> String {
    let field = |k: &str| common::field(list, k).expect(k);
    format!(
        "pouch parts bundle_id:{} name:{} manifest:{}",
        field("bundle_id"),
        field("name"),
        field("manifest_sha256")
    )
}

/// Receipts after the fact, and rejections: a bundle unpacked without
/// `--receipt-out` gets its receipt from `receipt make`; one that fails a
/// check on arrival gets a signed rejection saying why, which the sender's
/// ledger records as refused.
#[test]
fn receipts_are_made_later_and_rejections_reach_the_sender() {
    let w = Agencies::new();
    let receipts = w.w.dir("receipts");
    let make = |m: &std::path::Path| args!(w.receiver(); "receipt", "make", m, "-o", &receipts, "-s", &w.recipient.secret);
    // b1: unpacked without a receipt, acknowledged later.
    let m1 = w.pack("b1");
    fails(make(&m1), 2, &["neither accepted nor rejected", "--reject"]);
    passes(w.unpack(&m1), &[]);
    passes(make(&m1), &[]).stderr(contains("receipt written"));
    passes(
        w.import(&receipts.join("b1.receipt.toml")),
        &["b1: delivered"],
    );
    // b2: its payload damaged on the way; unpack refuses it and says so.
    let m2 = w.pack("b2");
    let payload = w.d.join("stick/b2.age");
    let mut bytes = fs::read(&payload).expect("payload");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&payload, bytes).expect("write");
    let refused = output(w.unpack_with_receipt(&m2, &receipts));
    assert_eq!(refused.status.code(), Some(1), "{}", stderr_of(&refused));
    assert!(stderr_of(&refused).contains("rejection receipt written"));
    let text = fs::read_to_string(receipts.join("b2.receipt.toml")).expect("rejection");
    assert!(text.contains("verdict = \"rejected\"") && text.contains("reason = "));
    passes(
        w.import(&receipts.join("b2.receipt.toml")),
        &["b2: REFUSED by fedpol-ic"],
    );
    passes(
        w.import(&receipts.join("b2.receipt.toml")),
        &["already recorded"],
    );
    // b3: sound, but refused on policy, by hand.
    let m3 = w.pack("b3");
    let reject = args!(make(&m3); "--reject", "not covered by the agreement");
    passes(reject, &[]).stderr(contains("rejection receipt written"));
    passes(
        w.import(&receipts.join("b3.receipt.toml")),
        &["not covered by the agreement"],
    );
    let show = stdout_of(&output(args!(w.sender(); "ledger", "show")));
    let line = |name: &str, event: &str| {
        show.lines()
            .find(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(2) == Some(&event) && cols.get(5) == Some(&name)
            })
            .unwrap_or_else(|| panic!("{name} {event} in {show}"))
            .to_string()
    };
    assert!(line("b1", "packed").contains("delivered"));
    assert!(line("b2", "packed").contains("REFUSED"));
    let b3 = line("b3", "refused");
    assert!(b3.contains("not covered by the agreement"), "{show}");
    // The receiver's ledger has both rejections too.
    let theirs = stdout_of(&output(args!(w.receiver(); "ledger", "show")));
    assert_eq!(theirs.matches("rejected").count(), 2, "{theirs}");
}

/// The sender imports the receipts of `bundles` from `receipts`, both sides
/// sign their ledgers, and the sender's side learns bka-zd's key so that it
/// can audit both; returns the sender's and the receiver's ledgers.
fn import_sign_and_audit(w: &Agencies, receipts: &Path, bundles: &[&str]) -> (PathBuf, PathBuf) {
    for b in bundles {
        passes(w.import(&receipts.join(format!("{b}.receipt.toml"))), &[]);
    }
    passes(
        args!(w.sender(); "ledger", "sign", "-s", &w.clerk.secret),
        &[],
    );
    passes(
        args!(w.receiver(); "ledger", "sign", "-s", &w.recipient.secret),
        &[],
    );
    passes(w.add(w.sender(), "bka-zd"), &[]);
    (
        w.d.join("sender-home/ledger.jsonl"),
        w.d.join("receiver-home/ledger.jsonl"),
    )
}

/// `audit --ledger SENDER --ledger RECEIVER` lines up each channel from
/// both sides: delivered, rejected, lost and accepted-without-receipt are
/// named, a contradiction between the ledgers fails the audit, and a
/// ledger speaks only for the party that signed it.
#[test]
fn audit_reconciles_the_senders_and_the_receivers_ledgers() {
    let w = Agencies::new();
    let receipts = w.w.dir("receipts");
    let m: Vec<_> = (1..=5).map(|i| w.pack(&format!("b{i}"))).collect();
    passes(w.unpack_with_receipt(&m[0], &receipts), &[]);
    // b2 arrives damaged and is rejected; the stick's copy is then mended.
    let payload = w.d.join("stick/b2.age");
    let good = fs::read(&payload).expect("payload");
    let mut bad = good.clone();
    bad[good.len() - 1] ^= 1;
    fs::write(&payload, &bad).expect("damage");
    fails(w.unpack_with_receipt(&m[1], &receipts), 1, &[]);
    fs::write(&payload, &good).expect("mend");
    // b3 never arrives; b4 arrives without a receipt; b5 with one.
    passes(w.unpack(&m[3]), &[]);
    passes(w.unpack_with_receipt(&m[4], &receipts), &[]);
    let (sender, receiver) = import_sign_and_audit(&w, &receipts, &["b1", "b2", "b5"]);
    let audit = |extra: &[&str]| {
        let mut c = args!(w.sender(); "audit", w.d.join("stick"), "--ledger", &sender, "--ledger", &receiver);
        c.args(extra);
        output(c)
    };
    let out = audit(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let c = &v["reconciled"][0];
    assert_eq!(c["channel"], "bka-zd:fedpol-ic");
    let status: Vec<&str> = c["sequences"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|s| s["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        status,
        ["delivered", "rejected", "lost", "accepted", "delivered"]
    );
    assert!(c["sequences"][1]["reason"]
        .as_str()
        .expect("reason")
        .contains("sha256"));
    assert_eq!(c["disagreements"].as_array().expect("list").len(), 0);
    let text = stdout_of(&audit(&[]));
    for shown in [
        "2 delivered",
        "1 lost",
        "REJECTED",
        "LOST",
        "receipt is not in the sender's ledger",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
    // The receiver's ledger loses b5's acceptance (restored from an old
    // copy, say) while the sender holds b5's receipt: they disagree.
    let lines: Vec<String> = fs::read_to_string(&receiver)
        .expect("ledger")
        .lines()
        .map(str::to_string)
        .collect();
    let cut = lines
        .iter()
        .position(|l| l.contains("\"b5\"") && l.contains("\"accepting\""))
        .expect("b5's intent");
    fs::write(&receiver, lines[..cut].join("\n") + "\n").expect("roll back");
    passes(
        args!(w.receiver(); "ledger", "sign", "-s", &w.recipient.secret),
        &[],
    );
    let rolled = audit(&[]);
    assert_eq!(rolled.status.code(), Some(1));
    let text = stdout_of(&rolled);
    assert!(
        text.contains("DISAGREEMENT: number 5 (b5): the sender holds a receipt"),
        "{text}"
    );
    // A ledger signed by another party than the receiver speaks for
    // nothing on its side of the channel.
    passes(
        args!(w.receiver(); "ledger", "sign", "-s", &w.clerk.secret),
        &[],
    );
    let mut first = args!(w.sender(); "audit", w.d.join("stick"), "--json");
    let first = output(
        first
            .args(["--ledger", receiver.to_str().expect("utf-8")])
            .args(["--ledger", sender.to_str().expect("utf-8")]),
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json");
    let c = &v["reconciled"][0];
    assert_eq!(c["receiver_ledger"], serde_json::Value::Null, "{c}");
    let theirs = c["sender_ledger"].as_str().expect("the sender's ledger");
    assert!(theirs.ends_with("sender-home/ledger.jsonl"), "{c}");
    assert_eq!(c["disagreements"].as_array().expect("list").len(), 0, "{c}");
}

/// `audit --html FILE` writes one self-contained page: the channel's
/// series as an inline SVG picture, the bundle table and every problem,
/// with no script, style sheet, font or image fetched from anywhere, and
/// what came from the medium escaped (a rejection's reason is the
/// receiver's free text).
#[test]
fn audit_writes_a_self_contained_html_report() {
    let w = Agencies::new();
    let receipts = w.w.dir("receipts");
    let m: Vec<_> = (1..=4).map(|i| w.pack(&format!("b{i}"))).collect();
    passes(w.unpack_with_receipt(&m[0], &receipts), &[]);
    let hostile = "<script>alert(1)</script> & \u{202e}txt.exe";
    let reject = args!(w.receiver(); "receipt", "make", &m[1], "-o", &receipts, "-s", &w.recipient.secret, "--reject", hostile);
    passes(reject, &[]);
    passes(w.unpack(&m[3]), &[]);
    let (sender, receiver) = import_sign_and_audit(&w, &receipts, &["b1", "b2"]);
    let page = w.d.join("report.html");
    let audit = args!(w.sender(); "audit", w.d.join("stick"), &receipts, "--ledger", &sender, "--ledger", &receiver, "--html", &page);
    passes(audit, &[]).stderr(contains("report written"));
    let html = fs::read_to_string(&page).expect("report");
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, options).expect("well-formed");
    let all: Vec<_> = doc.descendants().filter(|n| n.is_element()).collect();
    let named = |tag: &str| all.iter().filter(|n| n.tag_name().name() == tag).count();
    for banned in ["script", "link", "img", "iframe", "object"] {
        assert_eq!(named(banned), 0, "no <{banned}>");
    }
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(
        !html.contains("https://") && !html.contains("url("),
        "nothing fetched"
    );
    let status: Vec<&str> = all
        .iter()
        .filter(|n| n.attribute("class") == Some("seq"))
        .filter_map(|n| n.attribute("data-status"))
        .collect();
    assert_eq!(status, ["delivered", "rejected", "lost", "accepted"]);
    let rows = all
        .iter()
        .filter(|n| n.attribute("class") == Some("bundle"))
        .count();
    assert_eq!(rows, 4, "every bundle on the stick");
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .map(|n| n.text().unwrap_or(""))
        .collect();
    assert!(
        text.contains("<script>alert(1)</script>"),
        "the reason is shown as text"
    );
    assert!(
        !text.contains('\u{202e}'),
        "no bidi override reaches the reader"
    );
    assert!(text.contains("Channel bka-zd:fedpol-ic"));
    // An existing report is not overwritten.
    let again = args!(w.sender(); "audit", w.d.join("stick"), "--html", &page);
    fails(again, 2, &["already exists"]);
}

/// A small filesystem, mounted for the test (CI runs as root).
struct Small(PathBuf);

impl Small {
    fn mount(at: PathBuf, size: &str) -> Small {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a small tmpfs needs root (CI runs as root)"
        );
        Small(at)
    }
}

impl Drop for Small {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// pack, unpack and resplit say before any work that the destination has
/// not the room, with how much is needed and free (exit 2), and write
/// nothing; the dry run says so too.
#[test]
fn a_full_medium_is_refused_before_any_work() {
    let w = common::World::new();
    let clerk = w.keys("clerk");
    let small = Small::mount(w.dir("small"), "1m");
    let big = w.write("case/big.bin", common::noise(3 << 20, 7));
    let pack =
        |out: &std::path::Path, extra: &[&str]| common::pack_cmd(&[&big], out, &clerk, extra);
    fails(
        pack(&small.0, &[]),
        2,
        &["the bundle: needs", "MiB free on"],
    )
    .stderr(contains("--no-space-check"));
    assert!(common::names(&small.0).is_empty(), "nothing written");
    let dry = output(pack(&small.0, &["--dry-run"]));
    assert_eq!(dry.status.code(), Some(2));
    assert!(
        stdout_of(&dry).contains("pack would refuse"),
        "{}",
        stdout_of(&dry)
    );
    // Told to try anyway, it runs out of space and leaves nothing.
    fails(pack(&small.0, &["--no-space-check"]), 2, &[]);
    assert!(common::names(&small.0).is_empty(), "nothing left behind");
    // Packed elsewhere, it is unpacked and re-cut into the small one: refused.
    let m = w.pack(&[&big], "b", &clerk, &[&clerk], &[]);
    let dest = small.0.join("inbox");
    let mut unpack = common::unpack_cmd(&m, &clerk, &clerk, &dest);
    fails(unpack.arg("-q"), 2, &["the unpacked files: needs"]);
    assert!(!dest.exists());
    let resplit = pouch!("resplit", &m, "-o", &small.0, "-s", &clerk.secret);
    fails(resplit, 2, &["the re-cut bundle: needs"]);
    assert!(common::names(&small.0).is_empty());
}

/// What a newcomer meets on the way: inspect shows the manifest whatever
/// its signature, with the status on one line and the exit code the
/// README gives; unpack says what verify says of the bundle (marking,
/// signer party, channel and number); `--to` without `--from` warns; the
/// pack summary says "1 file"; resplit takes its key from the config.
#[test]
fn daily_commands_say_what_happened() {
    let w = Agencies::new();
    let f = w.source("note.txt", "one\n");
    let pack = w.pack_cmd(
        &f,
        &w.clerk.secret,
        &["--name", "b1", "--marking", "RESTRICTED"],
    );
    passes(
        args!(pack; CHANNEL[0], CHANNEL[1], CHANNEL[2], CHANNEL[3]),
        &[],
    )
    .stderr(contains("sealed 1 file and 0 folders"))
    .stderr(contains("read back from the device").or(contains("not read back")));
    let m1 = w.d.join("stick/b1.toml");
    let unpacked = output(w.unpack(&m1));
    let said = stderr_of(&unpacked);
    for shown in [
        "marking    RESTRICTED",
        "(bka-zd)",
        "bka-zd -> fedpol-ic",
        "number 1",
        "unpacked   1 file",
    ] {
        assert!(said.contains(shown), "{shown}: {said}");
    }
    // inspect: valid, untrusted, invalid: the manifest shown every time.
    passes(
        args!(w.receiver(); "inspect", &m1),
        &["VALID, by trusted key", "(bka-zd)", "note.txt"],
    );
    let stranger = w.w.keys("stranger");
    let untrusted = output(pouch!("inspect", &m1, "--trust", &stranger.public));
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        stdout_of(&untrusted).contains("UNTRUSTED SIGNER")
            && stdout_of(&untrusted).contains("note.txt")
    );
    let text = fs::read_to_string(&m1).expect("manifest");
    fs::write(&m1, text.replace("RESTRICTED", "UNCLASSIFIED")).expect("edit");
    let invalid = output(args!(w.receiver(); "inspect", &m1));
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        stdout_of(&invalid).contains("INVALID") && stdout_of(&invalid).contains("UNCLASSIFIED")
    );
    // --to without --from: no channel, and it is said.
    let lone = w.pack_cmd(&f, &w.clerk.secret, &["--name", "b2", "--to", "fedpol-ic"]);
    passes(lone, &[]).stderr(contains("gets no sequence number"));
    // resplit without -s takes the config's signing_key.
    let home = w.d.join("sender-home");
    let config = format!("signing_key = \"{}\"\n", w.clerk.secret.display());
    fs::write(home.join("config.toml"), config).expect("config");
    let dvd = w.w.dir("dvd");
    let resplit =
        args!(w.sender(); "resplit", w.d.join("stick/b2.toml"), "-o", &dvd, "--split", "4K");
    passes(resplit, &[]).stderr(contains("re-cut b2"));
}
