//! The bundle format is a promise: bundles packed by pouch 0.1.0 (format 1),
//! kept in `testdata/v1/` with the keys that open them, must verify and unpack
//! to exactly the tree they were packed from, whatever the code becomes.
//! `testdata/v1/make.sh` tells how they were made.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};

use common::{assert_same_tree, ok, pouch, verify};

fn v1(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/v1")
        .join(rel)
}

/// Verifies (signature, payload and contents) and unpacks `manifest`, and
/// compares the result with the source tree.
fn opens_to_the_original_tree(manifest: &Path) {
    let trust = v1("keys/clerk.minisign.pub");
    let identity = v1("keys/fedpol.age-identity");
    ok("verify", verify(manifest, &trust, Some(&identity)));
    let dest = tempfile::tempdir().expect("tempdir");
    let out = pouch()
        .arg("unpack")
        .arg(manifest)
        .arg("--trust")
        .arg(&trust)
        .arg("-i")
        .arg(&identity)
        .arg("-d")
        .arg(dest.path())
        .output()
        .expect("runs");
    ok("unpack", out);
    assert_same_tree(&v1("tree"), &dest.path().join("v1/tree"));
}

#[test]
fn a_frozen_v1_bundle_verifies_and_unpacks_to_its_tree() {
    opens_to_the_original_tree(&v1("bundle/v1.toml"));
}

#[test]
fn a_frozen_split_v1_bundle_verifies_and_unpacks_to_its_tree() {
    opens_to_the_original_tree(&v1("split/v1.toml"));
}
