//! Removable media: split parts on a real FAT32 image (mtools), bad parts
//! named one by one, parts spread over several folders, resplit, automatic
//! splitting on a FAT mount, and the name-portability policy.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_same_tree, noise, pouch, require, Keys, World};
use predicates::prelude::*;
use predicates::str::contains;

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A source tree of about 3 MiB and a bundle of it split into 1 MiB parts.
fn split_bundle(w: &World, clerk: &Keys) -> (PathBuf, PathBuf) {
    let d = w.path();
    let src = d.join("src/case");
    fs::create_dir_all(src.join("sub")).expect("mkdir");
    fs::write(src.join("sub/blob.bin"), noise(3 << 20, 11)).expect("write");
    fs::write(src.join("note.txt"), "note\n").expect("write");
    let m = w.pack(&[&src], "b", clerk, &[clerk], &["--split", "1M"]);
    (src, m)
}

fn verify(m: &Path, k: &Keys) -> assert_cmd::Command {
    let mut c = pouch();
    c.arg("verify").arg(m).arg("--trust").arg(&k.public);
    c
}

fn unpack(m: &Path, k: &Keys, dest: &Path) -> assert_cmd::Command {
    let mut c = pouch();
    c.arg("unpack")
        .arg(m)
        .arg("--trust")
        .arg(&k.public)
        .arg("-i")
        .arg(&k.identity)
        .arg("-d")
        .arg(dest);
    c
}

#[test]
fn split_parts_survive_a_real_fat32_image() {
    let mkfs = require("mkfs.vfat", "dosfstools");
    let mcopy = require("mcopy", "mtools");
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let (src, m) = split_bundle(&w, &clerk);
    let parts: Vec<PathBuf> = (1..=4)
        .map(|i| d.join(format!("out/b.age.{i:03}")))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(
        parts.len(),
        4,
        "3 MiB of noise plus headers makes 4 parts of 1 MiB"
    );
    for p in &parts {
        assert!(fs::metadata(p).expect("stat").len() <= 1 << 20);
    }
    assert!(!d.join("out/b.age").exists());

    let img = d.join("stick.img");
    run(Command::new(mkfs)
        .arg("-C")
        .arg("-F")
        .arg("32")
        .arg(&img)
        .arg("65536"));
    let mut copy_in = Command::new(&mcopy);
    copy_in
        .arg("-i")
        .arg(&img)
        .args(&parts)
        .arg(d.join("out/b.toml"))
        .arg(d.join("out/b.toml.minisig"))
        .arg("::/");
    run(&mut copy_in);
    let back = d.join("back");
    fs::create_dir(&back).expect("mkdir");
    run(Command::new(&mcopy)
        .arg("-i")
        .arg(&img)
        .arg("::/*")
        .arg(&back));
    let listed = Command::new(require("mdir", "mtools"))
        .arg("-i")
        .arg(&img)
        .arg("-b")
        .arg("::/")
        .output()
        .expect("mdir");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("b.age.004"),
        "parts are on the image"
    );

    let m2 = back.join("b.toml");
    verify(&m2, &clerk).assert().success();
    verify(&m2, &clerk)
        .arg("-i")
        .arg(&clerk.identity)
        .assert()
        .success();
    unpack(&m2, &clerk, &d.join("in")).assert().success();
    assert_same_tree(&src, &d.join("in/b/case"));
    // The parts concatenate to the single-file payload the manifest hashes.
    let joined: Vec<u8> = parts
        .iter()
        .flat_map(|p| fs::read(p).expect("read"))
        .collect();
    let text = fs::read_to_string(&m).expect("read");
    let sha = pouch::payload::hashing::sha256_hex(&joined);
    assert!(
        text.contains(&format!("sha256 = \"{sha}\"")),
        "whole-payload hash listed"
    );
}

#[test]
fn every_bad_part_is_named_and_unpack_fails_cleanly() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let (_, m) = split_bundle(&w, &clerk);
    let part = |i: usize| d.join(format!("out/b.age.{i:03}"));
    let pristine: Vec<Vec<u8>> = (1..=4).map(|i| fs::read(part(i)).expect("read")).collect();
    let restore = || {
        for (i, bytes) in pristine.iter().enumerate() {
            fs::write(part(i + 1), bytes).expect("restore");
        }
        let _ = fs::remove_file(part(5));
    };
    type Damage<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Damage<'_>, Vec<&str>)> = vec![
        (
            "corrupted",
            Box::new(|| {
                let mut b = fs::read(part(2)).expect("read");
                b[1000] ^= 1;
                fs::write(part(2), b).expect("write");
            }),
            vec!["b.age.002: wrong sha256"],
        ),
        (
            "missing",
            Box::new(|| fs::remove_file(part(3)).expect("rm")),
            vec!["b.age.003: missing"],
        ),
        (
            "truncated",
            Box::new(|| {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(part(1))
                    .expect("open");
                f.set_len(1000).expect("truncate");
            }),
            vec!["b.age.001: wrong size"],
        ),
        (
            "extra",
            Box::new(|| fs::write(part(5), b"extra").expect("write")),
            vec!["b.age.005: unexpected part"],
        ),
        (
            "swapped",
            Box::new(|| {
                fs::write(part(1), &pristine[1]).expect("write");
                fs::write(part(2), &pristine[0]).expect("write");
            }),
            vec!["b.age.001: wrong sha256", "b.age.002: wrong sha256"],
        ),
        (
            "several at once",
            Box::new(|| {
                fs::remove_file(part(1)).expect("rm");
                let mut b = fs::read(part(4)).expect("read");
                b[10] ^= 1;
                fs::write(part(4), b).expect("write");
            }),
            vec!["b.age.001: missing", "b.age.004: wrong sha256"],
        ),
    ];
    for (name, damage, expect) in cases {
        restore();
        damage();
        let out = verify(&m, &clerk).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        for e in &expect {
            assert!(stderr.contains(e), "{name}: {stderr} lacks {e}");
        }
        let dest = d.join(format!("dest-{}", name.replace(' ', "-")));
        fs::create_dir(&dest).expect("mkdir");
        let out = unpack(&m, &clerk, &dest).output().expect("runs");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name} unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            fs::read_dir(&dest).expect("ls").count(),
            0,
            "{name}: DEST untouched"
        );
    }
    restore();
    verify(&m, &clerk).assert().success();
}

#[test]
fn parts_spread_over_several_folders_are_found_with_parts_from() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let (src, m) = split_bundle(&w, &clerk);
    for (i, disc) in [(2, "disc2"), (3, "disc3"), (4, "disc3")] {
        fs::create_dir_all(d.join(disc)).expect("mkdir");
        fs::rename(
            d.join(format!("out/b.age.{i:03}")),
            d.join(disc).join(format!("b.age.{i:03}")),
        )
        .expect("move");
    }
    verify(&m, &clerk)
        .assert()
        .code(1)
        .stderr(contains("b.age.002: missing"));
    let with_discs = |mut c: assert_cmd::Command| {
        c.arg("--parts-from")
            .arg(d.join("disc2"))
            .arg("--parts-from")
            .arg(d.join("disc3"));
        c
    };
    with_discs(verify(&m, &clerk)).assert().success();
    with_discs(unpack(&m, &clerk, &d.join("in")))
        .assert()
        .success();
    assert_same_tree(&src, &d.join("in/b/case"));
}

#[test]
fn resplit_recuts_and_resigns_without_reencrypting() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let (src, m) = split_bundle(&w, &clerk);
    let old = fs::read_to_string(&m).expect("read");
    fs::create_dir(d.join("dvd")).expect("mkdir");
    pouch()
        .arg("resplit")
        .arg(&m)
        .arg("-o")
        .arg(d.join("dvd"))
        .arg("-s")
        .arg(&clerk.secret)
        .args(["--split", "700K"])
        .assert()
        .success();
    let m2 = d.join("dvd/b.toml");
    let new = fs::read_to_string(&m2).expect("read");
    let payload_sha = |t: &str| {
        t.lines()
            .skip_while(|l| *l != "[payload]")
            .find(|l| l.starts_with("sha256"))
            .map(str::to_string)
    };
    assert_eq!(payload_sha(&old), payload_sha(&new), "same payload hash");
    assert!(new.contains("b.age.005") && !old.contains("b.age.005"));
    let id = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("bundle_id"))
            .map(str::to_string)
    };
    assert_eq!(id(&old), id(&new), "same bundle");
    assert_ne!(
        fs::read(d.join("out/b.toml.minisig")).expect("read"),
        fs::read(d.join("dvd/b.toml.minisig")).expect("read")
    );
    verify(&m2, &clerk)
        .arg("-i")
        .arg(&clerk.identity)
        .assert()
        .success();
    unpack(&m2, &clerk, &d.join("in")).assert().success();
    assert_same_tree(&src, &d.join("in/b/case"));
    // Joining the parts back into one file works too, and refuses to overwrite.
    fs::create_dir(d.join("disk")).expect("mkdir");
    pouch()
        .arg("resplit")
        .arg(&m2)
        .arg("-o")
        .arg(d.join("disk"))
        .arg("-s")
        .arg(&clerk.secret)
        .assert()
        .success();
    assert!(d.join("disk/b.age").is_file());
    verify(&d.join("disk/b.toml"), &clerk).assert().success();
    pouch()
        .arg("resplit")
        .arg(&m2)
        .arg("-o")
        .arg(d.join("disk"))
        .arg("-s")
        .arg(&clerk.secret)
        .assert()
        .code(2)
        .stderr(contains("already exists"));
}

#[test]
fn media_presets_and_sizes_are_accepted_and_bad_ones_refused() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::write(d.join("f.txt"), "f").expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    let pack = |extra: &[&str]| {
        let mut c = pouch();
        c.arg("pack")
            .arg(d.join("f.txt"))
            .arg("-o")
            .arg(d.join("out"))
            .args(["-r", &clerk.recipient, "-s"])
            .arg(&clerk.secret)
            .args(extra);
        c
    };
    pack(&["--media", "dvd", "--name", "dvd"])
        .assert()
        .success();
    assert!(
        d.join("out/dvd.age.001").is_file(),
        "a small payload is one part"
    );
    pack(&["--media", "exfat", "--name", "exfat"])
        .assert()
        .success();
    assert!(d.join("out/exfat.age").is_file(), "exfat needs no split");
    pack(&["--media", "floppy"])
        .assert()
        .code(2)
        .stderr(contains("unknown --media"));
    pack(&["--split", "12 parsecs"])
        .assert()
        .code(2)
        .stderr(contains("not understood"));
    pack(&["--split", "100"])
        .assert()
        .code(2)
        .stderr(contains("minimum"));
    pack(&["--split", "1M", "--media", "dvd"]).assert().code(2);
}

#[test]
fn pack_splits_by_itself_on_a_fat_mount() {
    let mkfs = require("mkfs.vfat", "dosfstools");
    let fusefat = require("fusefat", "fusefat");
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let img = d.join("stick.img");
    run(Command::new(mkfs)
        .arg("-C")
        .arg("-F")
        .arg("32")
        .arg(&img)
        .arg("65536"));
    let mnt = d.join("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    run(Command::new(fusefat)
        .arg("-o")
        .arg("rw+")
        .arg(&img)
        .arg(&mnt));
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let quiet = |c: &mut Command| {
                c.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
            };
            if !quiet(Command::new("fusermount").arg("-u").arg(&self.0)).is_ok_and(|s| s.success())
            {
                let _ = quiet(Command::new("umount").arg("-l").arg(&self.0));
            }
        }
    }
    let _guard = Unmount(mnt.clone());
    assert!(
        pouch::disk::media::is_fat(&mnt),
        "the FUSE mount is recognised as FAT"
    );
    assert!(!pouch::disk::media::is_fat(d), "the temp folder is not FAT");
    fs::write(d.join("f.txt"), "f").expect("write");
    pouch()
        .arg("pack")
        .arg(d.join("f.txt"))
        .arg("-o")
        .arg(&mnt)
        .args(["--name", "auto", "-r", &clerk.recipient, "-s"])
        .arg(&clerk.secret)
        .assert()
        .success()
        .stderr(contains("on FAT"));
    assert!(mnt.join("auto.age.001").is_file() && !mnt.join("auto.age").exists());
    let text = fs::read_to_string(mnt.join("auto.toml")).expect("read");
    assert!(text.contains("[[payload.parts]]"), "{text}");
    pouch()
        .arg("pack")
        .arg(d.join("f.txt"))
        .arg("-o")
        .arg(&mnt)
        .args([
            "--name",
            "big",
            "--split",
            "5G",
            "-r",
            &clerk.recipient,
            "-s",
        ])
        .arg(&clerk.secret)
        .assert()
        .code(2)
        .stderr(contains("no file may reach 4 GiB"));
    verify(&mnt.join("auto.toml"), &clerk)
        .arg("-i")
        .arg(&clerk.identity)
        .assert()
        .success();
}

#[test]
fn verify_after_write_reads_every_file_back() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    fs::write(d.join("f.txt"), "f").expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    pouch()
        .arg("pack")
        .arg(d.join("f.txt"))
        .arg("-o")
        .arg(d.join("out"))
        .args([
            "--verify-after-write",
            "--split",
            "4K",
            "-r",
            &clerk.recipient,
            "-s",
        ])
        .arg(&clerk.secret)
        .assert()
        .success()
        .stderr(contains("read back from the device"));
}

#[test]
fn unportable_names_are_refused_with_every_path_listed() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let src = d.join("case");
    fs::create_dir(&src).expect("mkdir");
    let bad = [
        "CON", "nul.txt", "a<b", "a>b", "a:b", "a\"b", "a|b", "a?b", "a*b", "dot.", "space ",
        "Lpt1.log",
    ];
    for name in bad {
        fs::write(src.join(name), "x").expect("write");
    }
    fs::write(src.join("fine.txt"), "x").expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    let pack = |extra: &[&str]| {
        let mut c = pouch();
        c.arg("pack")
            .arg(&src)
            .arg("-o")
            .arg(d.join("out"))
            .args(["-r", &clerk.recipient, "-s"])
            .arg(&clerk.secret)
            .args(extra);
        c
    };
    let out = pack(&[]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for name in bad {
        let shown = pouch::format::names::escape(&format!("case/{name}"));
        assert!(stderr.contains(&shown), "{shown} not listed in: {stderr}");
    }
    assert!(!stderr.contains("fine.txt"));
    assert_eq!(fs::read_dir(d.join("out")).expect("ls").count(), 0);
    pack(&["--allow-unportable-names", "--name", "linux-only"])
        .assert()
        .success();
    // Backslashes and control characters are never packed: the path policy
    // that unpack applies would refuse them.
    fs::write(src.join("a\\b"), "x").expect("write");
    pack(&["--allow-unportable-names"])
        .assert()
        .code(2)
        .stderr(contains("backslash"));
}

#[test]
fn names_colliding_by_case_or_normalisation_are_refused_and_names_are_stored_nfc() {
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    for (sub, a, b) in [
        ("case", "Report.txt", "report.txt"),
        ("nfc", "caf\u{e9}.txt", "cafe\u{301}.txt"),
    ] {
        let src = d.join(sub);
        fs::create_dir(&src).expect("mkdir");
        fs::write(src.join(a), "a").expect("write");
        fs::write(src.join(b), "b").expect("write");
        fs::create_dir_all(d.join("out")).expect("mkdir");
        pouch()
            .arg("pack")
            .arg(&src)
            .arg("-o")
            .arg(d.join("out"))
            .args(["-r", &clerk.recipient, "-s"])
            .arg(&clerk.secret)
            .assert()
            .code(2)
            .stderr(contains("collides with").or(contains("would both be stored as")));
    }
    let src = d.join("decomposed");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("cafe\u{301}.txt"), "x").expect("write");
    let m = common::pack(&[&src], &d.join("out2"), "n", &clerk, &[&clerk], &[]);
    let text = fs::read_to_string(&m).expect("read");
    assert!(
        text.contains("decomposed/caf\u{e9}.txt"),
        "stored in NFC: {text}"
    );
    unpack(&m, &clerk, &d.join("in")).assert().success();
    assert!(d.join("in/n/decomposed/caf\u{e9}.txt").is_file());
}
