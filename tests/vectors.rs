//! Third-party test data for the age layer, through pouch's own decryption
//! path (`pouch::payload::crypto`: pouch's identity parser, then `crypto::open`, then
//! reading the stream to its end):
//!
//! - all 143 Community Cryptography Test Vectors for age (C2SP/CCTV, in
//!   `testdata/age-cctv/`), in one data-driven sweep;
//! - the post-quantum key pairs written by the reference implementation and
//!   printed in the age specification.
//!
//! The HPKE known-answer vector for the post-quantum suite is checked next to
//! the KEM it exercises, in `src/pq/xwing.rs`.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use age::secrecy::ExposeSecret;
use pouch::payload::crypto::{self, Identity, Opened};
use sha2::{Digest, Sha256};

const CCTV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/age-cctv");
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pq");

/// One vector: its header fields and the age file.
struct Vector {
    name: String,
    fields: Vec<(String, String)>,
    file: Vec<u8>,
}

impl Vector {
    fn load(path: &Path) -> Vector {
        let bytes = std::fs::read(path).expect("read a vector");
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("a blank line after the header");
        let header = std::str::from_utf8(&bytes[..split]).expect("UTF-8 header");
        let fields: Vec<(String, String)> = header
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(": ").expect("key: value");
                (k.to_string(), v.to_string())
            })
            .collect();
        let mut file = bytes[split + 2..].to_vec();
        let mut v = Vector {
            name: path.file_name().expect("name").to_string_lossy().into(),
            fields,
            file: Vec::new(),
        };
        if let Some(c) = v.get("compressed") {
            assert_eq!(c, "zlib", "{}: unknown compression", v.name);
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(file.as_slice())
                .read_to_end(&mut out)
                .expect("zlib");
            file = out;
        }
        v.file = file;
        v
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Why pouch cannot take this vector at all, if it cannot.
    fn unsupported(&self) -> Option<&'static str> {
        if self.get("armored") == Some("yes") {
            // Bundles carry binary age files; ASCII armor is never read.
            Some("armor")
        } else if self.get("passphrase").is_some() || self.name.starts_with("scrypt") {
            // pouch seals to recipients; it has no passphrase mode.
            Some("scrypt")
        } else {
            None
        }
    }
}

/// What pouch made of a vector, in the vectors' own words.
fn outcome(v: &Vector, identities: &[Identity]) -> (String, Option<String>) {
    match crypto::open(v.file.as_slice(), identities) {
        Err(Opened::Passphrase) => ("passphrase refused".into(), None),
        Err(Opened::Age(age::DecryptError::NoMatchingKeys)) => ("no match".into(), None),
        Err(Opened::Age(age::DecryptError::InvalidMac)) => ("HMAC failure".into(), None),
        Err(Opened::Age(_)) => ("header failure".into(), None),
        Ok(mut reader) => {
            let mut plain = Vec::new();
            match reader.read_to_end(&mut plain) {
                Ok(_) => ("success".into(), Some(hex::encode(Sha256::digest(&plain)))),
                Err(_) => ("payload failure".into(), None),
            }
        }
    }
}

#[test]
fn every_community_age_vector_gives_its_expected_result() {
    let mut paths: Vec<_> = std::fs::read_dir(CCTV)
        .expect("testdata/age-cctv")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 143, "the full CCTV age set");

    let mut failures = Vec::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut hybrid_judged = 0;
    for path in &paths {
        let v = Vector::load(path);
        let expect = v.get("expect").expect("expect:").to_string();
        let identities: Vec<Identity> = v
            .all("identity")
            .iter()
            .map(|s| s.parse().expect("pouch parses the vector's identity"))
            .collect();
        let (got, payload) = outcome(&v, &identities);
        match v.unsupported() {
            Some(feature) => {
                // Never accepted, whatever the vector expects.
                *tally.entry(format!("{feature}: refused")).or_default() += 1;
                if got == "success" {
                    failures.push(format!(
                        "{}: {feature} is unsupported but decrypted",
                        v.name
                    ));
                }
            }
            None => {
                *tally.entry(expect.clone()).or_default() += 1;
                hybrid_judged += usize::from(v.name.starts_with("hybrid"));
                if got != expect {
                    failures.push(format!("{}: expected {expect}, got {got}", v.name));
                } else if expect == "success" {
                    let want = v.get("payload").expect("payload: on success");
                    if payload.as_deref() != Some(want) {
                        failures.push(format!("{}: plaintext hash differs", v.name));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every supported group was really exercised.
    let supported: usize = tally
        .iter()
        .filter(|(k, _)| !k.contains("refused"))
        .map(|(_, n)| n)
        .sum();
    // 143 vectors: 33 armored and 25 scrypt ones are refused, 85 are judged.
    assert_eq!(supported, 143 - 33 - 25, "{tally:?}");
    // The 19 post-quantum vectors: 18 judged, and the armored one refused.
    let hybrid = paths
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("hybrid"))
        })
        .count();
    assert_eq!(hybrid, 19);
    assert_eq!(hybrid_judged, 18);
}

#[test]
fn the_reference_post_quantum_keys_parse_and_derive_their_recipients() {
    // The reference implementation's key file: a comment with the recipient,
    // then the identity.
    let go = std::fs::read_to_string(Path::new(KEYS).join("go_hybrid_key.txt")).expect("read");
    let recipient = go
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("a public key comment");
    // The stored copy is a listing: its first line, "-- key.txt --", names
    // the file; the rest is key.txt exactly as age-keygen -pq wrote it.
    let (listing, key_txt) = go.split_once('\n').expect("a listing line");
    assert_eq!(listing, "-- key.txt --");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("key.txt");
    std::fs::write(&path, key_txt).expect("write");
    let ids = crypto::read_identity_file(&path).expect("pouch reads the reference key file");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].to_public().to_string(), recipient);
    assert!(ids[0].to_public().is_post_quantum());
    let parsed = crypto::parse_recipient(recipient).expect("the recipient parses");
    assert_eq!(parsed, ids[0].to_public());
    // Writing it back gives the same text.
    assert!(go.contains(ids[0].to_secret_string().expose_secret()));

    // The specification's example: identities and a recipient, in some order.
    let spec =
        std::fs::read_to_string(Path::new(KEYS).join("spec_example_keys.txt")).expect("read");
    let identities: Vec<Identity> = spec
        .lines()
        .filter(|l| l.starts_with("AGE-SECRET-KEY-PQ-1"))
        .map(|l| l.parse().expect("identity parses"))
        .collect();
    let recipients: Vec<String> = spec
        .lines()
        .filter(|l| l.starts_with("age1pq1"))
        .map(str::to_string)
        .collect();
    assert!(!identities.is_empty() && !recipients.is_empty());
    for r in &recipients {
        let parsed = crypto::parse_recipient(r).expect("recipient parses");
        assert_eq!(&parsed.to_string(), r, "round trip");
        assert!(
            identities.iter().any(|i| i.to_public() == parsed),
            "the example recipient derives from an example identity"
        );
    }
}

#[test]
fn malformed_post_quantum_keys_are_refused_with_a_reason() {
    let id: Identity =
        "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG"
            .parse()
            .expect("a CCTV identity");
    let good = id.to_public().to_string();
    assert_eq!(good.len(), 1959);

    // A flipped character breaks the checksum.
    let mut bad = good.clone().into_bytes();
    let i = bad.len() - 10;
    bad[i] = if bad[i] == b'q' { b'p' } else { b'q' };
    let bad = String::from_utf8(bad).expect("ASCII");
    assert!(crypto::parse_recipient(&bad).is_err());

    // Lower-case identities are not the reference's format.
    let lower = "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG"
        .to_lowercase();
    assert!(lower.parse::<Identity>().is_err());

    // A recipient whose X25519 half is a low-order point (all zeros) or whose
    // ML-KEM half has a coefficient of at least q is refused when parsed.
    let data = bech32_data(&good);
    for (what, mutate) in [
        (
            "low-order X25519",
            Box::new(|d: &mut Vec<u8>| {
                let n = d.len();
                d[n - 32..].fill(0);
            }) as Box<dyn Fn(&mut Vec<u8>)>,
        ),
        (
            "unreduced ML-KEM coefficient",
            Box::new(|d: &mut Vec<u8>| {
                d[0] = 0xff;
                d[1] |= 0x0f;
            }),
        ),
        (
            "short key",
            Box::new(|d: &mut Vec<u8>| {
                d.pop();
            }),
        ),
    ] {
        let mut d = data.clone();
        mutate(&mut d);
        let text = bech32_encode("age1pq", &d);
        let err = crypto::parse_recipient(&text).expect_err(what).to_string();
        assert!(
            err.contains("modulus") || err.contains("low-order") || err.contains("length"),
            "{what}: {err}"
        );
        assert!(
            err.len() < 600,
            "the error does not echo the whole key: {err}"
        );
    }
}

fn bech32_data(s: &str) -> Vec<u8> {
    age_core::primitives::bech32_decode(
        s,
        |_| (),
        |_| Ok(()),
        |_, bytes| Ok::<_, ()>(bytes.collect()),
    )
    .expect("bech32")
}

fn bech32_encode(hrp: &str, data: &[u8]) -> String {
    age_core::primitives::bech32_encode(bech32::Hrp::parse(hrp).expect("hrp"), data)
}
