//! Every annotated example in `manifests/` parses and validates, so the
//! documentation cannot drift from the code.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::fs;
use std::path::Path;

use pouch::format::manifest::{entries_digest, InnerManifest, Manifest};

fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/manifests"))
}

#[test]
fn every_example_parses() {
    let mut seen = 0;
    for item in fs::read_dir(dir()).expect("manifests/") {
        let path = item.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let bytes = fs::read(&path).expect("read");
        match name.as_str() {
            "bundle.toml" | "bundle-sealed.toml" | "bundle-split.toml" | "bundle-parity.toml"
            | "bundle-delta.toml" => {
                Manifest::parse(&bytes, &path).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "keyring.toml" => {
                let k = pouch::custody::keyring::Keyring::load(&path)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(k.parties.len(), 2);
                assert_eq!(k.parties[0].previous_keys.len(), 1);
                assert_eq!(k.revoked.len(), 1);
                // Each key with its place: revoked, current (from 2027),
                // previous (until 2027).
                let keys = k.trusted_keys();
                assert_eq!(keys.len(), 4);
                assert!(keys[0].revoked.as_deref().unwrap_or("").contains("laptop"));
                assert!(keys[1].valid_from.is_some() && keys[2].valid_until.is_some());
            }
            "receipt.toml" => {
                let text = std::str::from_utf8(&bytes).expect("UTF-8");
                let r: pouch::custody::receipt::Receipt =
                    toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(r.kind, "receipt");
            }
            "config.toml" => {
                let c = pouch::settings::config::Config::load(&path)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(c.sender.as_deref(), Some("bka-zd"));
            }
            "spec-weekly.toml" | "spec-urgent.toml" => {
                let s = pouch::settings::config::Spec::load(&path)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!s.sources.is_empty());
            }
            "parts-list.toml" => {
                // A re-cut of bundle-split.toml, bound to that very file.
                let list = pouch::format::parts_list::PartsList::parse(&bytes, false)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let split = fs::read(dir().join("bundle-split.toml")).expect("read");
                let m = Manifest::parse(&split, &path).expect("bundle-split.toml");
                let sha = pouch::payload::hashing::sha256_hex(&split);
                list.check((&m.bundle_id, &m.name), m.payload.size, &sha)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "inner-manifest.toml" => {
                InnerManifest::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            other => panic!("manifests/{other} has no parser in this test; add it"),
        }
        seen += 1;
    }
    assert_eq!(seen, 12);
}

#[test]
fn examples_agree_with_each_other() {
    let read = |n: &str| fs::read(dir().join(n)).expect("read");
    let outer = Manifest::parse(&read("bundle.toml"), Path::new("bundle.toml")).expect("outer");
    let sealed = Manifest::parse(&read("bundle-sealed.toml"), Path::new("bundle-sealed.toml"))
        .expect("sealed");
    let inner = InnerManifest::parse(&read("inner-manifest.toml")).expect("inner");
    assert_eq!(outer.entries, inner.entries);
    assert_eq!(
        entries_digest(&inner.entries),
        sealed.contents.entries_sha256
    );
    assert!(sealed.contents.sealed_names && sealed.entries.is_empty());
}
