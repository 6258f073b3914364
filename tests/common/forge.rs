//! Forging bundles for hostile-input tests: a raw tar stream of the test's
//! choosing, compressed, encrypted to a real recipient and described by a
//! manifest signed with a real key, exactly as an insider with a stolen
//! signing key could.

use std::io::Write;
use std::path::{Path, PathBuf};

use pouch::format::manifest::{
    Channel, Contents, Manifest, Payload, RecipientInfo, Signer, FORMAT_VERSION,
};
use pouch::signature::SigningKey;

/// One raw tar member: the name bytes are written as given, unchecked.
pub struct Member {
    pub name: Vec<u8>,
    pub kind: u8,
    pub data: Vec<u8>,
    pub link: Vec<u8>,
    pub mode: u32,
}

impl Member {
    pub fn file(name: &str, data: &[u8]) -> Member {
        Member {
            name: name.as_bytes().to_vec(),
            kind: b'0',
            data: data.to_vec(),
            link: Vec::new(),
            mode: 0o644,
        }
    }
    pub fn folder(name: &str) -> Member {
        Member {
            name: name.as_bytes().to_vec(),
            kind: b'5',
            data: Vec::new(),
            link: Vec::new(),
            mode: 0o755,
        }
    }
    pub fn special(name: &str, kind: u8, link: &str) -> Member {
        Member {
            name: name.as_bytes().to_vec(),
            kind,
            data: Vec::new(),
            link: link.as_bytes().to_vec(),
            mode: 0o644,
        }
    }
}

/// A 512-byte ustar header with the given fields and a correct checksum.
pub fn header(name: &[u8], kind: u8, size: u64, mode: u32, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "use short names in forged headers"
    );
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A tar stream of `members`, followed by the end-of-archive marker. Names
/// over 100 bytes get a GNU long-name record, as pouch's writer does.
pub fn tar(members: &[Member]) -> Vec<u8> {
    let mut out = tar_body(members);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The members of a tar stream, without the end-of-archive marker.
pub fn tar_body(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let mut name: &[u8] = &m.name;
        if name.len() > 100 {
            let mut record = name.to_vec();
            record.push(0);
            out.extend_from_slice(&header(
                b"././@LongLink",
                b'L',
                record.len() as u64,
                0o644,
                b"",
            ));
            out.extend_from_slice(&record);
            out.resize(out.len().div_ceil(512) * 512, 0);
            name = &name[..100];
        }
        out.extend_from_slice(&header(name, m.kind, m.data.len() as u64, m.mode, &m.link));
        out.extend_from_slice(&m.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out
}

/// The bundle id forged manifests use.
pub const BUNDLE_ID: &str = "00112233445566778899aabbccddeeff";

/// Compresses, encrypts and signs `tar_bytes` as bundle `name` in `dir`, with
/// a sealed-names manifest whose counts are `contents`. Returns the manifest path.
pub fn bundle(
    dir: &Path,
    name: &str,
    tar_bytes: &[u8],
    contents: Contents,
    recipient: &str,
    key: &Path,
) -> PathBuf {
    let compressed = zstd::encode_all(tar_bytes, 3).expect("zstd");
    bundle_from_plaintext(dir, name, &compressed, contents, recipient, key)
}

/// Encrypts `plaintext` (what age wraps: normally zstd of a tar) to
/// `recipient` and signs a bundle around it.
pub fn bundle_from_plaintext(
    dir: &Path,
    name: &str,
    plaintext: &[u8],
    contents: Contents,
    recipient: &str,
    key: &Path,
) -> PathBuf {
    let payload = encrypt(plaintext, recipient);
    bundle_from_payload(dir, name, &payload, contents, recipient, key)
}

/// age-encrypts `plaintext` to `recipient`.
pub fn encrypt(plaintext: &[u8], recipient: &str) -> Vec<u8> {
    let recipient = pouch::payload::crypto::parse_recipient(recipient).expect("recipient");
    let mut payload = Vec::new();
    let mut w = pouch::payload::crypto::encrypt(std::slice::from_ref(&recipient), &mut payload)
        .expect("encrypt");
    w.write_all(plaintext).expect("write");
    w.finish().expect("finish");
    payload
}

/// Signs a bundle around arbitrary payload bytes: the manifest states their
/// true size and hash, so the checks after the signature are reached.
pub fn bundle_from_payload(
    dir: &Path,
    name: &str,
    payload: &[u8],
    contents: Contents,
    recipient: &str,
    key: &Path,
) -> PathBuf {
    let recipient = pouch::payload::crypto::parse_recipient(recipient).expect("recipient");
    let key = self::key(key);
    let m = Manifest {
        format_version: FORMAT_VERSION,
        bundle_id: BUNDLE_ID.into(),
        name: name.into(),
        created: "2026-11-29T00:00:00Z".into(),
        tool: "forged".into(),
        marking: String::new(),
        description: String::new(),
        channel: Channel::default(),
        signer: Signer {
            key_id: key.key_id.clone(),
        },
        recipients: vec![RecipientInfo {
            kind: recipient.kind().into(),
            fingerprint: pouch::payload::crypto::fingerprint(&recipient),
        }],
        payload: Payload {
            file: format!("{name}.age"),
            size: payload.len() as u64,
            sha256: pouch::payload::hashing::sha256_hex(payload),
            layers: "age+zstd+tar".into(),
            parts: Vec::new(),
            parity: None,
        },
        contents,
        delta: None,
        entries: Vec::new(),
    };
    std::fs::write(dir.join(format!("{name}.age")), payload).expect("write");
    signed_manifest(dir, name, m.to_toml().as_bytes(), BUNDLE_ID, &key)
}

/// Writes `text` as `NAME.toml` with a valid signature by `key` naming
/// `bundle_id` and `name`, whatever the text holds.
pub fn signed_manifest(
    dir: &Path,
    name: &str,
    text: &[u8],
    bundle_id: &str,
    key: &SigningKey,
) -> PathBuf {
    let sig = key
        .sign_manifest(&mut &text[..], bundle_id, name)
        .expect("sign");
    std::fs::write(dir.join(format!("{name}.toml")), text).expect("write");
    std::fs::write(dir.join(format!("{name}.toml.minisig")), sig).expect("write");
    dir.join(format!("{name}.toml"))
}

/// Loads a test signing key (no passphrase).
pub fn key(path: &Path) -> SigningKey {
    SigningKey::load(path, &mut || panic!("test keys have no passphrase")).expect("key")
}

/// A bundle whose outer manifest lists `entries` (names not sealed), with
/// counts and digest computed from them, around the archive `tar_bytes`.
pub fn bundle_listed(
    dir: &Path,
    name: &str,
    tar_bytes: &[u8],
    entries: Vec<pouch::format::manifest::Entry>,
    recipient: &str,
    key: &Path,
) -> PathBuf {
    let contents = contents_of(&entries, false);
    let m = bundle(dir, name, tar_bytes, contents, recipient, key);
    // Rewrite the manifest with the entries listed, and sign it again.
    let text = std::fs::read_to_string(&m).expect("read");
    let mut parsed: Manifest = toml::from_str(&text).expect("parse");
    parsed.entries = entries;
    signed_manifest(
        dir,
        name,
        parsed.to_toml().as_bytes(),
        BUNDLE_ID,
        &self::key(key),
    )
}

/// The manifest's counts and digest for `entries`.
pub fn contents_of(entries: &[pouch::format::manifest::Entry], sealed_names: bool) -> Contents {
    let (files, folders, total_bytes) = pouch::format::manifest::count(entries);
    Contents {
        files,
        folders,
        total_bytes,
        entries_sha256: pouch::format::manifest::entries_digest(entries),
        sealed_names,
    }
}
