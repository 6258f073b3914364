//! Manifests too large to read whole (a million files make 150 MB): read
//! from a private copy only when their signature is checked, and held to
//! every check a small one gets. The large manifests here are real bundles'
//! manifests padded past the in-memory limit with comment lines, which TOML
//! allows between entries, and signed again with the sender's key.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::path::PathBuf;

use common::forge;
use common::{fails, passes, unpack_cmd, verify_cmd, Keys, World};
use pouch::format::manifest::MAX_MANIFEST_BYTES;

/// A bundle of a few files from `alice` to `bob`, its manifest padded past
/// [`MAX_MANIFEST_BYTES`] and passed through `edit`, then signed again.
fn large_bundle(w: &World, alice: &Keys, bob: &Keys, edit: impl Fn(String) -> String) -> PathBuf {
    padded_bundle(w, alice, bob, MAX_MANIFEST_BYTES as usize, edit)
}

/// [`large_bundle`], padded past `bytes`.
fn padded_bundle(
    w: &World,
    alice: &Keys,
    bob: &Keys,
    bytes: usize,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let src = w.dir("case");
    fs::write(src.join("report.txt"), "witness statement\n").expect("write");
    fs::create_dir(src.join("photos")).expect("mkdir");
    fs::write(src.join("photos/scene.jpg"), vec![7u8; 5000]).expect("write");
    let out = w.dir("out");
    let mut pack = common::pouch();
    pack.arg("pack")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .args(["--name", "b", "-r", &bob.recipient]);
    passes(pack.arg("-s").arg(&alice.secret), &[]);
    let manifest = out.join("b.toml");
    let text = fs::read_to_string(&manifest).expect("manifest");
    let line = format!("# {}\n", "padding ".repeat(1000));
    let pad = line.repeat(bytes / line.len() + 16);
    let at = text.rfind("\n[[entries]]").expect("entries");
    let padded = edit(format!("{}\n{pad}{}", &text[..at], &text[at..]));
    let table: toml::Table = toml::from_str(&text).expect("toml");
    let id = table["bundle_id"].as_str().expect("id").to_string();
    forge::signed_manifest(
        &out,
        "b",
        padded.as_bytes(),
        &id,
        &forge::key(&alice.secret),
    )
}

fn setup() -> (World, Keys, Keys) {
    let w = World::new();
    let (alice, bob) = (w.keys("alice"), w.keys("bob"));
    (w, alice, bob)
}

#[test]
fn a_signed_manifest_past_the_in_memory_limit_verifies_and_unpacks() {
    let (w, alice, bob) = setup();
    let m = large_bundle(&w, &alice, &bob, |t| t);
    assert!(fs::metadata(&m).expect("size").len() > MAX_MANIFEST_BYTES);
    passes(verify_cmd(&m, &alice), &["verdict    OK"]);
    passes(
        verify_cmd(&m, &alice).arg("-i").arg(&bob.identity),
        &["every entry matches the manifest"],
    );
    let dest = w.join("inbox");
    passes(unpack_cmd(&m, &alice, &bob, &dest), &[]);
    assert_eq!(
        fs::read(dest.join("b/case/report.txt")).expect("unpacked"),
        b"witness statement\n"
    );
    assert_eq!(
        fs::read(dest.join("b/case/photos/scene.jpg"))
            .expect("unpacked")
            .len(),
        5000
    );
}

/// A signed manifest of some megabytes (tens of thousands of files) is
/// followed from its private copy too, so memory stays flat; without a
/// signature check it is over the 4 MiB a manifest may then have.
#[test]
fn a_signed_manifest_of_some_megabytes_is_followed_from_a_copy() {
    let (w, alice, bob) = setup();
    let m = padded_bundle(&w, &alice, &bob, 6 << 20, |t| t);
    let size = fs::metadata(&m).expect("size").len();
    assert!(size > 6 << 20 && size < MAX_MANIFEST_BYTES, "{size}");
    passes(
        verify_cmd(&m, &alice).arg("-i").arg(&bob.identity),
        &["every entry matches the manifest"],
    );
    let dest = w.join("inbox");
    passes(unpack_cmd(&m, &alice, &bob, &dest), &[]);
    assert!(dest.join("b/case/photos/scene.jpg").is_file());
    let mut insecure = common::pouch();
    insecure
        .args(["verify", "--insecure-skip-signature"])
        .arg(&m);
    fails(&mut insecure, 1, &["larger than 4 MiB"]);
    // Changed after signing: refused, as a small manifest would be.
    let text = fs::read_to_string(&m).expect("manifest");
    fs::write(&m, text.replacen("# padding", "# paddinG", 1)).expect("tamper");
    fails(&mut verify_cmd(&m, &alice), 1, &["signature"]);
}

#[test]
fn a_large_manifest_is_read_only_to_check_its_signature() {
    let (w, alice, bob) = setup();
    let m = large_bundle(&w, &alice, &bob, |t| t);
    fails(
        common::pouch()
            .arg("verify")
            .arg(&m)
            .arg("--insecure-skip-signature"),
        1,
        &["only to check it against its signature"],
    );
    // A byte changed after signing: the copy's signature check fails.
    let mut bytes = fs::read(&m).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    fs::write(&m, &bytes).expect("write");
    fails(verify_cmd(&m, &alice), 1, &["does not match the manifest"]);
    // Signed by someone else.
    let carol = w.keys("carol");
    fails(verify_cmd(&m, &carol), 1, &["not among the trusted keys"]);
}

#[test]
fn a_signed_large_manifest_is_held_to_every_check_of_its_entries() {
    let (w, alice, bob) = setup();
    for (edit, why) in [
        (
            Box::new(|t: String| t.replacen("size = 18\n", "size = 19\n", 1))
                as Box<dyn Fn(String) -> String>,
            "entries list",
        ),
        (
            Box::new(|t: String| {
                t.replacen(
                    "kind = \"file\"\n",
                    "kind = \"file\"\nowner = \"root\"\n",
                    1,
                )
            }),
            "unknown key \"owner\"",
        ),
        (
            Box::new(|t: String| format!("{t}\n[payload]\nsize = 1\n")),
            "only [[entries]] tables may follow",
        ),
        (
            Box::new(|t: String| {
                format!("{t}\n[[entries]]\npath = \"case\"\nkind = \"folder\"\nmode = \"0755\"\n")
            }),
            "listed twice",
        ),
    ] {
        let _ = fs::remove_dir_all(w.join("out"));
        let _ = fs::remove_dir_all(w.join("case"));
        let m = large_bundle(&w, &alice, &bob, edit);
        fails(verify_cmd(&m, &alice), 1, &[why]);
    }
}
