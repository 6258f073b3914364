//! Hostile media cannot hang pouch: a FIFO, a device or a symlink to one in
//! the place of any file pouch reads from the medium is refused at once
//! (exit 1, naming it), by every command that reads it.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{fails, output, pouch, Keys, World};
use predicates::str::contains;

/// A command that would block forever on a FIFO is killed after this long,
/// failing the test.
const PATIENCE: Duration = Duration::from_secs(20);

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
}

/// A world with the clerk's keys and his bundle `b` on `stick/`, split into
/// parts when `split`; returns the manifest too.
fn clerk_bundle(split: bool) -> (World, Keys, PathBuf) {
    let w = World::new();
    let clerk = w.keys("clerk");
    let m = bundle(&w, &clerk, split);
    (w, clerk, m)
}

/// A bundle `b` for the clerk on `stick/`, split into parts when `split`.
fn bundle(w: &World, clerk: &Keys, split: bool) -> PathBuf {
    let f = w.write("src/blob.bin", common::noise(3 << 20, 5));
    let extra: &[&str] = if split { &["--split", "1M"] } else { &[] };
    common::pack(&[&f], &w.join("stick"), "b", clerk, &[clerk], extra)
}

/// `pouch ARGS --trust CLERK`, killed (failing the test) if it blocks.
fn patient(args: &[&dyn AsRef<std::ffi::OsStr>], clerk: &Keys) -> assert_cmd::Command {
    let mut c = pouch();
    for a in args {
        c.arg(a);
    }
    c.arg("--trust").arg(&clerk.public).timeout(PATIENCE);
    c
}

/// Runs `args` (with the clerk trusted and his identity where it applies)
/// and expects a prompt exit 1 whose error names `what`.
fn refused(w: &World, clerk: &Keys, args: &[&str], what: &str) {
    let mut c = patient(&[&args[0], &args[1]], clerk);
    if matches!(args[0], "verify" | "unpack") {
        c.arg("-i").arg(&clerk.identity);
    }
    if args[0] == "unpack" {
        c.arg("-d").arg(w.join("inbox"));
    }
    fails(c, 1, &[FIFO, what]);
}

/// What pouch says of a FIFO where it reads a file.
const FIFO: &str = "a FIFO, not a regular file";

#[test]
fn a_fifo_for_the_payload_or_the_signature_is_refused_without_blocking() {
    let (w, clerk, m) = clerk_bundle(false);
    let manifest = m.to_str().expect("utf-8 path");
    let stick = w.join("stick");
    for file in ["b.age", "b.toml.minisig"] {
        let real = stick.join(file);
        let kept = w.join(file);
        std::fs::rename(&real, &kept).expect("move aside");
        mkfifo(&real);
        for cmd in ["verify", "unpack", "inspect"] {
            if cmd == "inspect" && file == "b.age" {
                continue; // inspect does not read the payload
            }
            refused(&w, &clerk, &[cmd, manifest], file);
        }
        assert!(!w.join("inbox/b").exists(), "nothing unpacked");
        let staging = std::fs::read_dir(w.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains("staging"));
        assert!(!staging, "no staging folder left");
        fails(patient(&[&"audit", &stick], &clerk), 1, &[]).stdout(contains(FIFO));
        std::fs::remove_file(&real).expect("rm fifo");
        std::fs::rename(&kept, &real).expect("move back");
    }
    // A symlink to a device is refused the same way.
    let sig = stick.join("b.toml.minisig");
    std::fs::remove_file(&sig).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &sig).expect("symlink");
    let device = "a device, not a regular file";
    fails(patient(&[&"verify", &manifest], &clerk), 1, &[device]);
}

#[test]
fn a_fifo_for_a_part_is_refused_without_blocking() {
    let (w, clerk, m) = clerk_bundle(true);
    let manifest = m.to_str().expect("utf-8 path");
    mkfifo(&w.join("stick/b.age.002"));
    for cmd in ["verify", "unpack"] {
        refused(&w, &clerk, &[cmd, manifest], "b.age.002");
    }
    assert!(!w.join("inbox/b").exists(), "nothing unpacked");
}

#[test]
fn a_fifo_for_a_receipt_or_its_signature_is_refused_without_blocking() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let dir = w.join("receipts");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let receipt = dir.join("b.receipt.toml");
    for fifo in [receipt.clone(), dir.join("b.receipt.toml.minisig")] {
        w.write("receipts/b.receipt.toml", "format_version = 1\n");
        mkfifo(&fifo);
        fails(
            patient(&[&"receipt", &"import", &receipt], &clerk),
            1,
            &[FIFO],
        );
        std::fs::remove_file(&fifo).expect("rm fifo");
    }
}

#[test]
fn files_no_signature_vouches_for_are_capped_before_they_are_parsed() {
    let w = World::new();
    // Over the unvouched cap: refused before the parser sees it.
    let big = w.write("big.toml", format!("x = [{}0]\n", "0,".repeat(3 << 20)));
    let unvouched = "too large to read without checking its signature";
    fails(pouch!("inspect", &big), 1, &[unvouched]);
    // Under it, but with more items than a parse may cost.
    let items = w.write("items.toml", format!("x = [{}0]\n", "0,".repeat(50_000)));
    fails(
        pouch!("inspect", &items),
        1,
        &["more than 40000 TOML items"],
    );
    // A parser message quoting a megabyte-long line is cut short.
    let long = w.write("long.toml", format!("x = \"{}\n", "a".repeat(1 << 20)));
    let out = output(pouch!("inspect", &long));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.len() < 2000,
        "{} bytes of error",
        out.stderr.len()
    );
    // A ledger is read a record at a time, each capped.
    let ledger = w.write(
        "ledger.jsonl",
        format!("{{\"notes\":[\"{}\"]}}\n", "a".repeat(100_000)),
    );
    for cmd in ["show", "verify", "gaps"] {
        fails(
            pouch!("ledger", cmd, "--ledger", &ledger),
            1,
            &["longer than 64 KiB"],
        );
    }
}

#[test]
fn dotted_keys_count_as_the_tables_they_make() {
    let w = World::new();
    let line = format!("k{}= 1\n", ".a".repeat(60));
    let dotted = w.write("dotted.toml", line.repeat(30_000));
    fails(pouch!("inspect", &dotted), 1, &["TOML items"]);
}

#[test]
fn stray_parts_cannot_write_a_record_the_ledger_refuses() {
    let (w, clerk, m) = clerk_bundle(true);
    for i in 100..1600 {
        w.write(format!("stick/b.age.{i}"), "");
    }
    let home = w.home_dir("clerk");
    let unpack =
        args!(w.home("clerk"); "unpack", &m, "--trust", &clerk.public, "-i", &clerk.identity);
    fails(args!(unpack; "-d", w.join("inbox")), 1, &["and 1490 more"]);
    let ledger = home.join("ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).expect("ledger");
    assert!(text.contains("\"event\":\"rejected\""), "{text}");
    assert!(
        text.lines().all(|l| l.len() < 16 * 1024),
        "records stay small"
    );
    common::passes(
        pouch!("ledger", "verify", "--ledger", &ledger),
        &["hash chain intact"],
    );
}

#[test]
fn files_of_the_kernels_own_filesystems_are_refused() {
    let (w, clerk, m) = clerk_bundle(false);
    let sig = w.join("stick/b.toml.minisig");
    std::fs::remove_file(&sig).expect("rm");
    std::os::unix::fs::symlink("/proc/self/status", &sig).expect("symlink");
    let kernel = "a file of the kernel's own filesystems, not a regular file";
    fails(patient(&[&"verify", &m], &clerk), 1, &[kernel]);
}
