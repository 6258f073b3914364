//! The age layer must never panic on a hostile payload: reading the header
//! ahead, the strict stanza check, the post-quantum and X25519 stanza
//! unwrapping, and the stream. The identities are the community test
//! vectors' keys, so seeds built from those vectors reach the unwrapping.
//!
//! Also: `stanza_tags` (what verify reads without a key) must agree with
//! `open` about whether the stanzas are well-formed.

#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pouch::payload::crypto::{self, Identity};

fn identities() -> &'static [Identity] {
    static IDS: OnceLock<Vec<Identity>> = OnceLock::new();
    IDS.get_or_init(|| {
        [
            "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG",
            "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0",
        ]
        .iter()
        .map(|s| s.parse().expect("a test vector identity"))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = crypto::stanza_tags(data);
    if let Ok(mut r) = crypto::open(data, identities()) {
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<Identity>();
        let _ = crypto::parse_recipient(s);
    }
});
