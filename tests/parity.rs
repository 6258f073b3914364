//! PAR 2.0 recovery files (`pack --parity`) against Debian's stock `par2`
//! (par2cmdline): they verify on a fresh bundle, and after bytes are
//! corrupted, a part is truncated or a whole part is lost (within the
//! redundancy) `par2 repair` restores the parts and `pouch verify` passes;
//! also through a real FAT32 image (mtools). The manifest lists every PAR2
//! file with its size and sha256.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_same_tree, fails, noise, pack_cmd, passes, require, unpack_cmd, verify_cmd};
use common::{Keys, World};

/// A tree of about 3 MiB packed into 1 MiB parts with `pct` of parity.
fn bundle(w: &World, clerk: &Keys, pct: &str) -> (PathBuf, PathBuf) {
    let src = case(w, 3 << 20);
    w.write("src/case/note.txt", "note\n");
    let m = w.pack(
        &[&src],
        "b",
        clerk,
        &[clerk],
        &["--split", "1M", "--parity", pct],
    );
    (src, m)
}

/// `src/case` with `len` bytes of noise in `blob.bin`.
fn case(w: &World, len: usize) -> PathBuf {
    let src = w.dir("src/case");
    w.write("src/case/blob.bin", noise(len, len as u64));
    src
}

/// A world with the clerk's keys.
fn world() -> (World, Keys) {
    let w = World::new();
    let keys = w.keys("clerk");
    (w, keys)
}

/// XORs `mask` into the bytes of `path` from `at` on: damage on the medium.
fn damage(path: &Path, at: usize, mask: &[u8]) {
    let mut bytes = fs::read(path).expect("read");
    for (b, m) in bytes[at..].iter_mut().zip(mask) {
        *b ^= m;
    }
    fs::write(path, bytes).expect("damage");
}

/// Runs a stock tool; fails the test unless it succeeds.
fn tool(what: &str, cmd: Command) {
    common::ok(what, common::run(cmd));
}

/// `par2 ARGS…` run in `dir`; returns whether it succeeded, and its output.
fn par2(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut c = Command::new(require("par2", "par2"));
    c.current_dir(dir).args(args);
    let out = c.output().expect("par2 runs");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    (out.status.success(), text)
}

/// `par2 repair` in `dir` succeeds, and then the bundle is [`intact`].
fn repaired(w: &World, dir: &Path, m: &Path, (src, k): (&Path, &Keys)) {
    let (ok, text) = par2(dir, &["repair", "b.par2"]);
    assert!(
        ok && text.contains("Repair complete"),
        "par2 repair: {text}"
    );
    intact(w, m, src, k);
}

/// Verifies the bundle with its contents, and unpacks it to match `src`.
fn intact(w: &World, m: &Path, src: &Path, k: &Keys) {
    passes(
        args!(verify_cmd(m, k); "-i", &k.identity),
        &["verdict    OK"],
    );
    let dest = w.join("in");
    passes(unpack_cmd(m, k, k, &dest), &[]);
    assert_same_tree(src, &dest.join("b/case"));
}

/// The `[[payload.parity.files]]` of a manifest: (file, size, sha256).
fn listed(m: &Path) -> Vec<(String, u64, String)> {
    let text = fs::read_to_string(m).expect("manifest");
    let head = text.split("[[entries]]").next().expect("head");
    let t: toml::Table = head.parse().expect("toml");
    let files = t["payload"]["parity"]["files"].as_array().expect("files");
    files
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().expect(k).to_string();
            (
                s("file"),
                f["size"].as_integer().expect("size") as u64,
                s("sha256"),
            )
        })
        .collect()
}

#[test]
fn stock_par2_verifies_a_fresh_bundle_and_the_manifest_lists_every_par2_file() {
    let (w, clerk) = world();
    let (_, m) = bundle(&w, &clerk, "10%");
    let out = w.join("out");
    let (ok, text) = par2(&out, &["verify", "b.par2"]);
    assert!(ok, "par2 verify: {text}");
    assert!(text.contains("All files are correct"), "{text}");
    let files = listed(&m);
    assert_eq!(files[0].0, "b.par2");
    assert!(files.len() >= 2, "index and at least one volume: {files:?}");
    let mut on_disk: Vec<String> = fs::read_dir(&out)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".par2"))
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    names.sort();
    assert_eq!(on_disk, names, "exactly the listed PAR2 files are written");
    for (name, size, sha) in &files {
        let bytes = fs::read(out.join(name)).expect("par2 file");
        assert_eq!(bytes.len() as u64, *size, "{name}");
        assert_eq!(&pouch::payload::hashing::sha256_hex(&bytes), sha, "{name}");
        assert_eq!(&bytes[..8], b"PAR2\0PKT", "{name}");
    }
}

#[test]
fn stock_par2_repairs_corrupted_and_truncated_parts() {
    let (w, clerk) = world();
    let (src, m) = bundle(&w, &clerk, "20%");
    let out = w.join("out");
    damage(&out.join("b.age.002"), 5000, &[0xAA; 16]);
    damage(&out.join("b.age.002"), 700_000, &[1]);
    let p4 = out.join("b.age.004");
    let len = fs::metadata(&p4).expect("stat").len();
    fs::File::options()
        .write(true)
        .open(&p4)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    fails(verify_cmd(&m, &clerk), 1, &["b.age.00"]);
    repaired(&w, &out, &m, (&src, &clerk));
}

#[test]
fn stock_par2_restores_a_deleted_part_within_the_redundancy_and_refuses_beyond() {
    let (w, clerk) = world();
    let (src, m) = bundle(&w, &clerk, "40%");
    let lose = |parts: &[u32]| {
        for i in parts {
            fs::remove_file(w.join(format!("out/b.age.{i:03}"))).expect("lose a part");
        }
        w.join("out")
    };
    let out = lose(&[3]);
    repaired(&w, &out, &m, (&src, &clerk));
    // Two whole parts of four are more than 40 % can restore.
    lose(&[1, 2]);
    let (ok, text) = par2(&out, &["repair", "b.par2"]);
    assert!(!ok, "par2 cannot repair beyond the redundancy: {text}");
    assert!(
        text.contains("not possible") || text.contains("need"),
        "{text}"
    );
}

#[test]
fn a_single_file_payload_gets_parity_too() {
    let (w, clerk) = world();
    let src = case(&w, 1 << 20);
    let m = w.pack(&[&src], "b", &clerk, &[&clerk], &["--parity", "5%"]);
    let out = w.join("out");
    damage(&out.join("b.age"), 100_000, &[0xFF]);
    repaired(&w, &out, &m, (&src, &clerk));
}

#[test]
fn stock_par2_repairs_parts_damaged_on_a_real_fat32_image() {
    let mcopy = require("mcopy", "mtools");
    let mdel = require("mdel", "mtools");
    let (w, clerk) = world();
    let (src, _) = bundle(&w, &clerk, "40%");
    let img = w.join("stick.img");
    let mkfs = Command::new(require("mkfs.vfat", "dosfstools"));
    tool("mkfs.vfat", args!(mkfs; "-C", "-F", "32", &img, "65536"));
    let mut copy_in = args!(Command::new(&mcopy); "-i", &img);
    for e in fs::read_dir(w.join("out")).expect("ls") {
        copy_in.arg(e.expect("entry").path());
    }
    tool("mcopy in", args!(copy_in; "::/"));
    // The stick loses a part and another reads back damaged.
    tool(
        "mdel",
        args!(Command::new(&mdel); "-i", &img, "::/b.age.002"),
    );
    let back = w.dir("back");
    tool(
        "mcopy out",
        args!(Command::new(&mcopy); "-i", &img, "::/*", &back),
    );
    damage(&back.join("b.age.004"), 10, &[0x55]);
    let m = back.join("b.toml");
    fails(verify_cmd(&m, &clerk), 1, &[]);
    // pouch's own repair, on a second copy off the stick.
    let again = w.dir("again");
    tool(
        "mcopy out",
        args!(Command::new(&mcopy); "-i", &img, "::/*", &again),
    );
    damage(&again.join("b.age.004"), 10, &[0x55]);
    let m2 = again.join("b.toml");
    passes(
        pouch!("repair", &m2, "--trust", &clerk.public),
        &["b.age.002", "b.age.004"],
    );
    passes(verify_cmd(&m2, &clerk), &["verdict    OK"]);
    repaired(&w, &back, &m, (&src, &clerk));
}

#[test]
fn parity_values_out_of_range_are_usage_errors() {
    let (w, clerk) = world();
    let src = case(&w, 10);
    let out = w.dir("out");
    for bad in ["0%", "101%", "ten", "-5%", "1.5%"] {
        let flag = format!("--parity={bad}");
        fails(pack_cmd(&[&src], &out, &clerk, &[&flag]), 2, &["--parity"]);
    }
    assert_eq!(
        fs::read_dir(&out).expect("ls").count(),
        0,
        "nothing written"
    );
}

#[test]
fn verify_says_whether_damage_is_repairable_and_ignores_par2_files_that_do_not_match() {
    let (w, clerk) = world();
    let (_, m) = bundle(&w, &clerk, "20%");
    let out = m.parent().expect("the bundle's folder").to_path_buf();
    damage(&out.join("b.age.002"), 5000, &[0xAA; 4]);
    let said = fails(
        verify_cmd(&m, &clerk),
        1,
        &["damaged but repairable (1 of "],
    );
    said.stderr(predicates::str::contains("par2 repair"));
    // A forged index and volume are left out, named; the other volumes
    // (which carry the index's packets too) still count.
    damage(&out.join("b.par2"), 100, &[1]);
    damage(&out.join("b.vol00+01.par2"), 100, &[1]);
    fails(
        verify_cmd(&m, &clerk),
        1,
        &[
            "repairable (1 of ",
            "b.par2: does not match the manifest",
            "b.vol00+01.par2",
        ],
    );
    // A volume grown huge (sparse: 64 GiB claimed) is left out by its size,
    // never read.
    let huge = fs::File::options()
        .write(true)
        .open(out.join("b.vol01+02.par2"));
    huge.and_then(|f| f.set_len(64 << 30)).expect("grow");
    let started = std::time::Instant::now();
    fails(
        verify_cmd(&m, &clerk),
        1,
        &["b.vol01+02.par2: does not match"],
    );
    assert!(started.elapsed().as_secs() < 20, "the huge file was read");
    fs::remove_file(out.join("b.age.001")).expect("lose a part");
    fs::remove_file(out.join("b.age.003")).expect("lose a part");
    let json = common::output(args!(verify_cmd(&m, &clerk); "--json"));
    let text = common::stdout_of(&json);
    assert!(
        text.contains("\"kind\": \"damaged_unrecoverable\""),
        "{text}"
    );
    assert!(text.contains("unrecoverable ("), "{text}");
}

#[test]
fn resplit_parity_covers_the_new_parts_and_is_signed_in_the_parts_list() {
    let (w, clerk) = world();
    let (src, m) = bundle(&w, &clerk, "10%");
    let recut = w.dir("recut");
    let resplit = pouch!("resplit", &m, "-o", &recut, "-s", &clerk.secret);
    passes(args!(resplit; "--split", "512K", "--parity", "40%"), &[]);
    let list = fs::read_to_string(recut.join("b.parts.toml")).expect("parts list");
    assert!(
        list.contains("[parity]") && list.contains("b.vol00+01.par2"),
        "{list}"
    );
    // The manifest is copied unchanged: its own parity names the old cut.
    assert_eq!(
        fs::read(&m).expect("old"),
        fs::read(recut.join("b.toml")).expect("new")
    );
    let (ok, text) = par2(&recut, &["verify", "b.par2"]);
    assert!(ok, "par2 verify of the re-cut: {text}");
    fs::remove_file(recut.join("b.age.002")).expect("lose a part");
    let m2 = recut.join("b.toml");
    fails(verify_cmd(&m2, &clerk), 1, &["damaged but repairable"]);
    repaired(&w, &recut, &m2, (&src, &clerk));
}

/// Every file in `dir` with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .expect("ls")
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, fs::read(&p).expect("read"))
        })
        .collect();
    all.sort();
    all
}

#[test]
fn pouch_repair_restores_parts_without_par2_and_never_touches_the_manifest() {
    let (w, clerk) = world();
    let (src, m) = bundle(&w, &clerk, "40%");
    let out = m.parent().expect("folder").to_path_buf();
    let manifest = fs::read(&m).expect("manifest");
    fs::remove_file(out.join("b.age.002")).expect("lose a part");
    damage(&out.join("b.age.001"), 777, &[0xFF; 3]);
    // A forged volume is named and left out; the others suffice.
    damage(&out.join("b.vol00+01.par2"), 90, &[1]);
    let repair = pouch!("repair", &m, "--trust", &clerk.public);
    let said = passes(repair, &["b.age.001", "b.age.002"]);
    said.stderr(predicates::str::contains("b.vol00+01.par2: does not match"));
    assert_eq!(
        fs::read(&m).expect("manifest"),
        manifest,
        "the manifest is never rewritten"
    );
    intact(&w, &m, &src, &clerk);
    passes(pouch!("repair", &m, "--trust", &clerk.public), &[])
        .stderr(predicates::str::contains("nothing to repair"));
    assert!(
        !contents(&out).iter().any(|f| f.0.ends_with(".tmp")),
        "no temporary file is left"
    );
}

#[test]
fn pouch_repair_refuses_damage_beyond_the_recovery_data_and_changes_nothing() {
    let (w, clerk) = world();
    let (_, m) = bundle(&w, &clerk, "20%");
    let out = m.parent().expect("folder").to_path_buf();
    fs::remove_file(out.join("b.age.003")).expect("lose a part");
    damage(&out.join("b.age.001"), 10, &[1]);
    let before = contents(&out);
    let repair = pouch!("repair", &m, "--trust", &clerk.public);
    fails(
        repair,
        1,
        &[
            "nothing was changed",
            "b.age.003: 32 of 32 slices lost",
            "unrecoverable (",
        ],
    );
    assert_eq!(contents(&out), before, "nothing changed");
}

#[test]
fn pouch_repair_writes_into_another_folder_and_reads_parts_from_several() {
    let (w, clerk) = world();
    let (src, m) = bundle(&w, &clerk, "40%");
    let out = m.parent().expect("folder").to_path_buf();
    // The second disc's part lies elsewhere; the third is lost.
    let disc2 = w.dir("disc2");
    fs::rename(out.join("b.age.002"), disc2.join("b.age.002")).expect("move");
    fs::remove_file(out.join("b.age.003")).expect("lose a part");
    let fixed = w.dir("fixed");
    let repair = pouch!(
        "repair",
        &m,
        "--trust",
        &clerk.public,
        "-o",
        &fixed,
        "--parts-from",
        &disc2
    );
    passes(repair, &["b.age.003"]);
    assert_eq!(
        contents(&fixed).len(),
        1,
        "only the lost part is written there"
    );
    let verify = args!(verify_cmd(&m, &clerk); "--parts-from", &disc2, "--parts-from", &fixed);
    passes(args!(verify; "-i", &clerk.identity), &["verdict    OK"]);
    let dest = w.join("in");
    let unpack = unpack_cmd(&m, &clerk, &clerk, &dest);
    passes(
        args!(unpack; "--parts-from", &disc2, "--parts-from", &fixed),
        &[],
    );
    assert_same_tree(&src, &dest.join("b/case"));
}

#[test]
fn pouch_repair_of_a_bundle_without_parity_is_refused() {
    let (w, clerk) = world();
    let src = case(&w, 10_000);
    let m = w.pack(&[&src], "b", &clerk, &[&clerk], &[]);
    damage(&w.join("out/b.age"), 100, &[1]);
    fails(
        pouch!("repair", &m, "--trust", &clerk.public),
        2,
        &["no PAR2 recovery files"],
    );
}

#[test]
fn audit_shows_whether_parity_is_present_and_damage_repairable() {
    let (w, clerk) = world();
    let (_, m) = bundle(&w, &clerk, "20%");
    let out = m.parent().expect("folder").to_path_buf();
    let audit = || pouch!("audit", &out, "--trust", &clerk.public);
    passes(audit(), &["parity: present"]).stdout(predicates::prelude::PredicateBooleanExt::not(
        predicates::str::contains("ignored"),
    ));
    damage(&out.join("b.age.002"), 5000, &[0xAA; 4]);
    let json = common::stdout_of(&common::output(args!(audit(); "--json")));
    assert!(json.contains("\"parity\": \"repairable (1 of "), "{json}");
    fs::remove_file(out.join("b.age.001")).expect("lose a part");
    fs::remove_file(out.join("b.age.003")).expect("lose a part");
    fails(audit(), 1, &[]).stdout(predicates::str::contains("parity: unrecoverable ("));
}
