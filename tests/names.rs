//! The one name policy at pack time: names that are one file on the
//! recipient's disk, or that Windows reserves, are refused before anything
//! is written.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;

use common::{pouch, World};
use predicates::str::contains;

#[test]
fn names_equal_under_full_case_folding_are_refused_by_pack_and_dry_run() {
    for (a, b) in [
        ("\u{3c3}.txt", "\u{3c2}.txt"),
        ("\u{b5}m", "\u{3bc}m"),
        ("s", "\u{17f}"),
        ("k.txt", "\u{212a}.txt"),
    ] {
        let d = World::new();
        let keys = d.keys("k");
        let src = d.path().join("case");
        fs::create_dir(&src).expect("mkdir");
        fs::write(src.join(a), "one").expect("write");
        fs::write(src.join(b), "two").expect("write");
        let out = d.path().join("out");
        fs::create_dir(&out).expect("mkdir");
        for dry in [true, false] {
            let mut c = pouch();
            c.arg("pack").arg(&src).arg("-o").arg(&out);
            c.args(["-r", &keys.recipient]).arg("-s").arg(&keys.secret);
            if dry {
                c.arg("--dry-run");
            }
            c.assert()
                .code(2)
                .stderr(contains("collides with"))
                .stderr(contains("ignore case or Unicode normalisation"));
        }
        assert_eq!(
            fs::read_dir(&out).expect("ls").count(),
            0,
            "{a:?}/{b:?}: nothing written"
        );
    }
}

#[test]
fn superscript_com_and_lpt_names_are_unportable() {
    let d = World::new();
    let keys = d.keys("k");
    let src = d.path().join("case");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("COM\u{b9}"), "x").expect("write");
    fs::write(src.join("lpt\u{b3}.log"), "x").expect("write");
    pouch()
        .arg("pack")
        .arg(&src)
        .args(["--dry-run", "-r", &keys.recipient])
        .assert()
        .code(2)
        .stdout(contains("reserved device name"));
}
