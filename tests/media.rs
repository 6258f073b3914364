//! Removable media: split parts on a real FAT32 image (mtools), bad parts
//! named one by one, parts spread over several folders, resplit, automatic
//! splitting on a FAT mount, and the name-portability policy.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_same_tree, fails, names, noise, output, pack_cmd, passes, require};
use common::{stderr_of, unpack_cmd, verify_cmd, Keys, World};
use predicates::prelude::*;
use predicates::str::contains;

/// Runs a stock tool; fails the test unless it succeeds.
fn run(cmd: Command) {
    let what = format!("{cmd:?}");
    common::ok(&what, common::run(cmd));
}

/// `stick.img` in the world: a fresh FAT32 image of 64 MiB.
fn fat32_image(w: &World) -> PathBuf {
    let img = w.join("stick.img");
    let mkfs = Command::new(require("mkfs.vfat", "dosfstools"));
    run(args!(mkfs; "-C", "-F", "32", &img, "65536"));
    img
}

/// A source tree of about 3 MiB and a bundle of it split into 1 MiB parts.
fn split_bundle(w: &World, clerk: &Keys) -> (PathBuf, PathBuf) {
    let src = w.dir("src/case");
    w.write("src/case/sub/blob.bin", noise(3 << 20, 11));
    w.write("src/case/note.txt", "note\n");
    let m = w.pack(&[&src], "b", clerk, &[clerk], &["--split", "1M"]);
    (src, m)
}

/// `pouch verify MANIFEST --trust K.public -i K.identity`: the contents too.
fn verify_all(m: &Path, k: &Keys) -> assert_cmd::Command {
    args!(verify_cmd(m, k); "-i", &k.identity)
}

#[test]
fn split_parts_survive_a_real_fat32_image() {
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

    let img = fat32_image(&w);
    let mut copy_in = args!(Command::new(&mcopy); "-i", &img);
    copy_in.args(&parts);
    run(args!(copy_in; d.join("out/b.toml"), d.join("out/b.toml.minisig"), "::/"));
    let back = w.dir("back");
    run(args!(Command::new(&mcopy); "-i", &img, "::/*", &back));
    let mdir = Command::new(require("mdir", "mtools"));
    let listed = common::run(args!(mdir; "-i", &img, "-b", "::/"));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("b.age.004"),
        "parts are on the image"
    );

    let m2 = back.join("b.toml");
    passes(verify_cmd(&m2, &clerk), &[]);
    passes(verify_all(&m2, &clerk), &[]);
    passes(unpack_cmd(&m2, &clerk, &clerk, &d.join("in")), &[]);
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
    let clerk = w.keys("clerk");
    let (_, m) = split_bundle(&w, &clerk);
    let part = |i: usize| w.join(format!("out/b.age.{i:03}"));
    let pristine: Vec<Vec<u8>> = (1..=4).map(|i| fs::read(part(i)).expect("read")).collect();
    let restore = || {
        for (i, bytes) in pristine.iter().enumerate() {
            fs::write(part(i + 1), bytes).expect("restore");
        }
        let _ = fs::remove_file(part(5));
    };
    let flip = |i: usize, at: usize| {
        let mut b = fs::read(part(i)).expect("read");
        b[at] ^= 1;
        fs::write(part(i), b).expect("write");
    };
    type Damage<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Damage<'_>, Vec<&str>)> = vec![
        (
            "corrupted",
            Box::new(|| flip(2, 1000)),
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
                flip(4, 10);
            }),
            vec!["b.age.001: missing", "b.age.004: wrong sha256"],
        ),
    ];
    for (name, damage, expect) in cases {
        restore();
        damage();
        let out = output(verify_cmd(&m, &clerk));
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        for e in &expect {
            assert!(stderr.contains(e), "{name}: {stderr} lacks {e}");
        }
        let dest = w.dir(format!("dest-{}", name.replace(' ', "-")));
        let out = output(unpack_cmd(&m, &clerk, &clerk, &dest));
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{name} unpack: {stderr}");
        assert_eq!(names(&dest).len(), 0, "{name}: DEST untouched");
    }
    restore();
    passes(verify_cmd(&m, &clerk), &[]);
}

#[test]
fn parts_spread_over_several_folders_are_found_with_parts_from() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let (src, m) = split_bundle(&w, &clerk);
    for (i, disc) in [(2, "disc2"), (3, "disc3"), (4, "disc3")] {
        let part = format!("b.age.{i:03}");
        fs::rename(w.join("out").join(&part), w.dir(disc).join(&part)).expect("move");
    }
    fails(verify_cmd(&m, &clerk), 1, &["b.age.002: missing"]);
    let (disc2, disc3) = (w.join("disc2"), w.join("disc3"));
    let with_discs =
        |c: assert_cmd::Command| args!(c; "--parts-from", &disc2, "--parts-from", &disc3);
    passes(with_discs(verify_cmd(&m, &clerk)), &[]);
    passes(
        with_discs(unpack_cmd(&m, &clerk, &clerk, &w.join("in"))),
        &[],
    );
    assert_same_tree(&src, &w.join("in/b/case"));
}

#[test]
fn resplit_recuts_without_reencrypting_and_keeps_the_manifest() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let (src, m) = split_bundle(&w, &clerk);
    let resplit = |m: &Path, out: &Path| pouch!("resplit", m, "-o", out, "-s", &clerk.secret);
    passes(args!(resplit(&m, &w.dir("dvd")); "--split", "700K"), &[]);
    let m2 = w.join("dvd/b.toml");
    for file in ["b.toml", "b.toml.minisig"] {
        assert_eq!(
            fs::read(w.join("out").join(file)).expect("read"),
            fs::read(w.join("dvd").join(file)).expect("read"),
            "{file} is copied byte for byte"
        );
    }
    let list = fs::read_to_string(w.join("dvd/b.parts.toml")).expect("parts list");
    assert!(list.contains("b.age.005") && w.join("dvd/b.age.005").is_file());
    passes(verify_all(&m2, &clerk), &[]);
    passes(unpack_cmd(&m2, &clerk, &clerk, &w.join("in")), &[]);
    assert_same_tree(&src, &w.join("in/b/case"));
    // Joining the parts back into one file works too, and refuses to overwrite.
    let disk = w.dir("disk");
    passes(resplit(&m2, &disk), &[]);
    assert!(disk.join("b.age").is_file());
    passes(verify_cmd(&disk.join("b.toml"), &clerk), &[]);
    fails(resplit(&m2, &disk), 2, &["already exists"]);
}

#[test]
fn media_presets_and_sizes_are_accepted_and_bad_ones_refused() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let f = w.write("f.txt", "f");
    let out = w.dir("out");
    let pack = |extra: &[&str]| pack_cmd(&[&f], &out, &clerk, extra);
    passes(pack(&["--media", "dvd", "--name", "dvd"]), &[]);
    assert!(
        out.join("dvd.age").is_file() && !out.join("dvd.age.001").exists(),
        "a payload that fits in one part is one file"
    );
    passes(pack(&["--media", "exfat", "--name", "exfat"]), &[]);
    assert!(out.join("exfat.age").is_file(), "exfat needs no split");
    for (extra, error) in [
        (["--media", "floppy"], "unknown --media"),
        (["--split", "12 parsecs"], "not understood"),
        (["--split", "100"], "minimum"),
    ] {
        fails(pack(&extra), 2, &[error]);
    }
    fails(pack(&["--split", "1M", "--media", "dvd"]), 2, &[]);
}

/// Unmounts a FUSE mount (lazily, if need be) when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let quiet = |c: &mut Command| {
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        };
        if !quiet(Command::new("fusermount").arg("-u").arg(&self.0)).is_ok_and(|s| s.success()) {
            let _ = quiet(Command::new("umount").arg("-l").arg(&self.0));
        }
    }
}

#[test]
fn pack_splits_by_itself_on_a_fat_mount() {
    let fusefat = require("fusefat", "fusefat");
    let w = World::new();
    let clerk = w.keys("clerk");
    let img = fat32_image(&w);
    let mnt = w.dir("mnt");
    run(args!(Command::new(fusefat); "-o", "rw+", &img, &mnt));
    let _guard = Unmount(mnt.clone());
    assert!(
        pouch::disk::media::is_fat(&mnt),
        "the FUSE mount is recognised as FAT"
    );
    assert!(
        !pouch::disk::media::is_fat(w.path()),
        "the temp folder is not FAT"
    );
    let f = w.write("f.txt", "f");
    let pack = |extra: &[&str]| pack_cmd(&[&f], &mnt, &clerk, extra);
    // A bundle that fits in one file is one NAME.age, on FAT too, and
    // inspect finds its payload right after the pack.
    passes(pack(&["--name", "auto"]), &[]);
    assert!(mnt.join("auto.age").is_file() && !mnt.join("auto.age.001").exists());
    let text = fs::read_to_string(mnt.join("auto.toml")).expect("read");
    assert!(!text.contains("[[payload.parts]]"), "{text}");
    let inspected = passes(pouch!("inspect", mnt.join("auto.toml")), &["payload"]);
    inspected.stdout(contains("missing").not());
    let too_big = pack(&["--name", "big", "--split", "5G"]);
    fails(too_big, 2, &["no file may reach 4 GiB"]);
    passes(verify_all(&mnt.join("auto.toml"), &clerk), &[]);
}

#[test]
fn verify_after_write_reads_every_file_back() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let f = w.write("f.txt", "f");
    let extra = ["--verify-after-write", "--split", "4K"];
    passes(pack_cmd(&[&f], &w.dir("out"), &clerk, &extra), &[])
        .stderr(contains("read back from the device"));
}

#[test]
fn unportable_names_are_refused_with_every_path_listed() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let src = w.dir("case");
    let bad = [
        "CON", "nul.txt", "a<b", "a>b", "a:b", "a\"b", "a|b", "a?b", "a*b", "dot.", "space ",
        "Lpt1.log",
    ];
    for name in bad {
        fs::write(src.join(name), "x").expect("write");
    }
    fs::write(src.join("fine.txt"), "x").expect("write");
    let out = w.dir("out");
    let pack = |extra: &[&str]| pack_cmd(&[&src], &out, &clerk, extra);
    let refused = output(pack(&[]));
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    for name in bad {
        let shown = pouch::format::names::escape(&format!("case/{name}"));
        assert!(stderr.contains(&shown), "{shown} not listed in: {stderr}");
    }
    assert!(!stderr.contains("fine.txt"));
    assert_eq!(names(&out).len(), 0);
    passes(
        pack(&["--allow-unportable-names", "--name", "linux-only"]),
        &[],
    );
    // Backslashes and control characters are never packed: the path policy
    // that unpack applies would refuse them.
    fs::write(src.join("a\\b"), "x").expect("write");
    fails(pack(&["--allow-unportable-names"]), 2, &["backslash"]);
}

#[test]
fn names_colliding_by_case_or_normalisation_are_refused_and_names_are_stored_nfc() {
    let w = World::new();
    let clerk = w.keys("clerk");
    for (sub, a, b) in [
        ("case", "Report.txt", "report.txt"),
        ("nfc", "caf\u{e9}.txt", "cafe\u{301}.txt"),
    ] {
        let src = w.dir(sub);
        fs::write(src.join(a), "a").expect("write");
        fs::write(src.join(b), "b").expect("write");
        fails(pack_cmd(&[&src], &w.dir("out"), &clerk, &[]), 2, &[])
            .stderr(contains("collides with").or(contains("would both be stored as")));
    }
    let src = w.dir("decomposed");
    fs::write(src.join("cafe\u{301}.txt"), "x").expect("write");
    let m = common::pack(&[&src], &w.join("out2"), "n", &clerk, &[&clerk], &[]);
    let text = fs::read_to_string(&m).expect("read");
    assert!(
        text.contains("decomposed/caf\u{e9}.txt"),
        "stored in NFC: {text}"
    );
    passes(unpack_cmd(&m, &clerk, &clerk, &w.join("in")), &[]);
    assert!(w.join("in/n/decomposed/caf\u{e9}.txt").is_file());
}

/// A part of the FAT32 preset's size on a real FAT32 image passes
/// `fsck.fat -n`, where a file of 4 GiB − 1 byte (the old part size) is
/// reported broken and would be truncated by a repair.
#[test]
fn a_maximal_fat32_part_passes_fsck_fat() {
    let mcopy = require("mcopy", "mtools");
    let fsck = require("fsck.fat", "dosfstools");
    let w = World::new();
    let img = w.join("big.img");
    // 4.2 GiB in 32 KiB clusters, the largest FAT32 uses on such a size.
    let mkfs = Command::new(require("mkfs.vfat", "dosfstools"));
    run(args!(mkfs; "-C", "-F", "32", "-s", "64", &img, &(4300u64 << 10).to_string()));
    let check = |size: u64| {
        let part = w.join("part");
        fs::File::create(&part)
            .and_then(|f| f.set_len(size))
            .expect("sparse part");
        run(args!(Command::new(&mcopy); "-o", "-i", &img, &part, "::/b.age.001"));
        fs::remove_file(&part).expect("remove");
        common::run(args!(Command::new(&fsck); "-n", &img))
    };
    let preset = pouch::disk::media::preset("fat32")
        .expect("preset")
        .expect("a size");
    let fine = check(preset);
    assert!(
        fine.status.success(),
        "fsck.fat -n refuses a part of {preset} bytes: {}",
        String::from_utf8_lossy(&fine.stdout)
    );
    let broken = check(pouch::disk::media::FAT32_MAX_FILE);
    assert!(
        !broken.status.success() && String::from_utf8_lossy(&broken.stdout).contains("Truncating"),
        "a file of 4 GiB - 1 byte is what fsck.fat reports as broken: {}",
        String::from_utf8_lossy(&broken.stdout)
    );
}

/// The README's DVD recipe runs as written with Debian's xorriso: one ISO
/// 9660 level-3 image per part, each with the manifest and its signature,
/// and the bundle verifies from the discs' contents, read back with
/// osirrox.
#[test]
fn the_readmes_dvd_recipe_makes_images_the_bundle_verifies_from() {
    let xorriso = require("xorriso", "xorriso");
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("### Burning DVDs")
        .nth(1)
        .expect("the DVD section");
    let recipe = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("its shell block");
    let w = World::new();
    let clerk = w.keys("clerk");
    w.write("case/scan.bin", noise(150 << 10, 3));
    let burn = w.dir("burn");
    let m = common::pack(
        &[&w.join("case")],
        &burn,
        "MA-BE-004",
        &clerk,
        &[&clerk],
        &["--split", "64K"],
    );
    let script = w.write("dvd.sh", format!("set -euo pipefail\n{recipe}"));
    let mut sh = Command::new("bash");
    sh.arg(&script).current_dir(w.path());
    run(sh);
    let mut discs = Vec::new();
    for n in ["001", "002", "003"] {
        let iso = w.join(format!("disc-{n}.iso"));
        assert!(iso.is_file(), "disc-{n}.iso made");
        let disc = w.join(format!("disc{n}"));
        run(
            args!(Command::new(&xorriso); "-osirrox", "on", "-indev", &iso, "-extract", "/", &disc),
        );
        assert!(
            disc.join("MA-BE-004.toml").is_file()
                && disc.join(format!("MA-BE-004.age.{n}")).is_file()
        );
        discs.push(disc);
    }
    assert!(!w.join("disc-004.iso").exists());
    let first = discs[0].join("MA-BE-004.toml");
    let verify =
        args!(verify_all(&first, &clerk); "--parts-from", &discs[1], "--parts-from", &discs[2]);
    passes(verify, &[]);
    let _ = m;
}
