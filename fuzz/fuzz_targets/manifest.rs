//! Outer and inner manifest parsing must never panic, whatever the bytes.
//!
//! Beyond "no panic", a manifest that parses and validates must survive a
//! round trip through `to_toml()` unchanged: pack writes `to_toml()` and
//! verify/unpack parse it back, so a value that validates but does not
//! reparse (or reparses differently) would be a bundle pouch cannot read.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pouch::format::manifest::{InnerManifest, Manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data, Path::new("fuzz.toml")) {
        let text = m.to_toml();
        let again = Manifest::parse(text.as_bytes(), Path::new("fuzz.toml"))
            .unwrap_or_else(|e| panic!("a valid manifest does not reparse: {e}\n{text}"));
        assert_eq!(again, m, "a valid manifest changes in a round trip");
    }
    if let Ok(m) = InnerManifest::parse(data) {
        let text = m.to_toml();
        let again = InnerManifest::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("a valid inner manifest does not reparse: {e}\n{text}"));
        assert_eq!(again, m, "a valid inner manifest changes in a round trip");
    }
});
