//! The outer and inner manifests: what a bundle claims to hold, in TOML.
//!
//! The **outer manifest** (`NAME.toml`) is readable without any key and is the
//! file that gets signed. It binds, under one signature, the payload's size and
//! sha256 and a digest of the entry list ([`entries_digest`]), so whoever
//! trusts the signature can check everything else.
//!
//! The **inner manifest** ([`INNER_MANIFEST_NAME`]) is the last member of the
//! tar inside the payload. It lists every entry (path, kind, size, sha256,
//! mode) and is what a recipient checks sealed bundles against.
//!
//! Parsing is strict: unknown keys, an unknown format version, malformed hashes,
//! unsafe or duplicate paths are all refused by [`Manifest::parse`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::format::entries::check_entries;
pub use crate::format::names::{check_bundle_name, check_party_name};
use crate::format::strict_toml::{check_sha256, is_lower_hex};
use crate::format::{entries, strict_toml};

/// The manifest format this version of pouch writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The tar member that holds the inner manifest; always the last member.
pub use super::names::INNER_MANIFEST_NAME;

/// The manifest's name for a classic (X25519) recipient.
pub const KIND_X25519: &str = "x25519";
/// The manifest's name for a post-quantum recipient: age's stanza type for
/// ML-KEM-768 + X25519.
pub const KIND_PQ: &str = "mlkem768x25519";

/// No manifest (outer or inner) larger than this is read. A manifest is
/// read whole before its signature can be checked, so this bounds what a
/// hostile one costs: with the program itself, under 64 MiB. It holds about
/// 400,000 entries.
pub const MAX_MANIFEST_BYTES: u64 = 48 << 20;

/// The outer manifest, `NAME.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version; this pouch reads and writes [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Random, unguessable bundle id: 32 lowercase hex digits (128 bits).
    pub bundle_id: String,
    /// The bundle's name: the stem of its files (`NAME.toml`, `NAME.age`).
    pub name: String,
    /// When the bundle was made, RFC 3339 in UTC (`2026-11-29T09:14:03Z`).
    pub created: String,
    /// The program that made it, e.g. `pouch 0.1.0`.
    pub tool: String,
    /// Security marking, free text (e.g. `RESTRICTED`); may be empty.
    #[serde(default)]
    pub marking: String,
    /// Free-text description; may be empty.
    #[serde(default)]
    pub description: String,
    /// Who sends to whom.
    pub channel: Channel,
    /// Who signed.
    pub signer: Signer,
    /// Who can decrypt: fingerprints only, never key material.
    pub recipients: Vec<RecipientInfo>,
    /// The encrypted payload file.
    pub payload: Payload,
    /// Counts and digest of the entry list.
    pub contents: Contents,
    /// For a delta bundle: the base it builds on and the resulting tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<super::delta::Delta>,
    /// The entry list, unless the names are sealed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Entry>,
}

/// The channel a bundle travels on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// The sending party's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The receiving party's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// The bundle's sequence number in the channel (1 for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// sha256 of the previous bundle's manifest in the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_manifest_sha256: Option<String>,
}

/// The signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// minisign key id, 16 uppercase hex digits, as `minisign` prints it.
    pub key_id: String,
}

/// One recipient of the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientInfo {
    /// The age recipient type: `x25519` (classic) or `mlkem768x25519`
    /// (post-quantum, ML-KEM-768 + X25519).
    pub kind: String,
    /// See `payload::crypto::fingerprint`.
    pub fingerprint: String,
}

/// The payload file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// File name, beside the manifest.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the whole file, lowercase hex.
    pub sha256: String,
    /// Layers from outside in: always `age+zstd+tar` in this format version.
    pub layers: String,
    /// When split for media: the parts, in order, whose concatenation is the
    /// payload. Empty when the payload is the single file `file`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// PAR 2.0 recovery files, when the clerk asked for parity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<super::parity::Parity>,
}

/// One part of a split payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// File name, `NAME.age.001`, `NAME.age.002`, …
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the part, lowercase hex.
    pub sha256: String,
}

/// No payload is split into more parts than this.
pub const MAX_PARTS: usize = 100_000;

/// What the payload holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contents {
    /// Number of regular files.
    pub files: u64,
    /// Number of folders.
    pub folders: u64,
    /// Sum of the files' sizes, in bytes.
    pub total_bytes: u64,
    /// [`entries_digest`] of the entry list, lowercase hex.
    pub entries_sha256: String,
    /// True when the entry list is only in the encrypted inner manifest.
    pub sealed_names: bool,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Folder,
}

/// One file or folder in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Relative path, `/`-separated, UTF-8 (see [`names::check_path`]).
    pub path: String,
    /// File or folder.
    pub kind: EntryKind,
    /// Size in bytes (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// sha256 of the content, lowercase hex (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `0644` or `0755` for files, `0755` for folders.
    pub mode: String,
}

/// The inner manifest's first part: its format version.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InnerVersion {
    format_version: u32,
}

/// The inner manifest, the tar's last member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InnerManifest {
    /// Same as the outer manifest's.
    pub format_version: u32,
    /// Every entry, in tar order.
    pub entries: Vec<Entry>,
}

impl Entry {
    /// A folder entry.
    pub fn folder(path: String) -> Entry {
        Entry {
            path,
            kind: EntryKind::Folder,
            size: None,
            sha256: None,
            mode: "0755".into(),
        }
    }

    /// A file entry.
    pub fn file(path: String, size: u64, sha256: String, executable: bool) -> Entry {
        Entry {
            path,
            kind: EntryKind::File,
            size: Some(size),
            sha256: Some(sha256),
            mode: if executable { "0755" } else { "0644" }.into(),
        }
    }

    /// True for a file whose mode has the executable bits.
    pub fn executable(&self) -> bool {
        self.kind == EntryKind::File && self.mode == "0755"
    }

    /// The file's size; 0 for folders.
    pub fn file_size(&self) -> u64 {
        self.size.unwrap_or(0)
    }
}

/// sha256 of a canonical, unambiguous encoding of the entry list.
///
/// The encoding is `pouch-entries-v1\n` followed, for each entry in order, by
/// `KIND MODE SIZE SHA256 LEN:PATH\n`, where KIND is `f` or `d`, SIZE is decimal
/// (0 for folders), SHA256 is lowercase hex (`-` for folders) and LEN is the
/// path's length in bytes. The length prefix makes the encoding injective
/// whatever bytes a path holds.
pub fn entries_digest(entries: &[Entry]) -> String {
    let mut d = entries::Digest::default();
    entries.iter().for_each(|e| d.update(e));
    d.finish()
}

/// Counts of an entry list: (files, folders, total bytes).
pub fn count(entries: &[Entry]) -> (u64, u64, u64) {
    let files = entries.iter().filter(|e| e.kind == EntryKind::File).count() as u64;
    let folders = entries.len() as u64 - files;
    let bytes = entries
        .iter()
        .map(Entry::file_size)
        .fold(0u64, u64::saturating_add);
    (files, folders, bytes)
}

impl Manifest {
    /// Whether the payload's file key is sealed only to post-quantum
    /// (ML-KEM-768 + X25519) recipients.
    pub fn is_post_quantum(&self) -> bool {
        !self.recipients.is_empty() && self.recipients.iter().all(|r| r.kind == KIND_PQ)
    }

    /// Parses and validates a manifest read from `path` that no signature
    /// vouches for (read in bounded memory: see [`strict_toml::parse`]).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Manifest> {
        Manifest::parse_with(bytes, path, false)
    }

    /// Parses and validates a manifest whose signature a trusted key
    /// verified over these very `bytes`.
    pub fn parse_vouched(bytes: &[u8], path: &Path) -> Result<Manifest> {
        Manifest::parse_with(bytes, path, true)
    }

    /// Parses and validates a vouched manifest's first part, without the
    /// entry list (read apart: see [`crate::listing`]).
    pub fn parse_vouched_head(head: &[u8], path: &Path) -> Result<Manifest> {
        let bad = |reason: String| Error::BadManifest {
            path: path.to_path_buf(),
            reason,
        };
        let m = Manifest::read(head, true).map_err(bad)?;
        if !m.entries.is_empty() {
            return Err(bad("entries are given twice".into()));
        }
        m.validate_fields().map_err(bad)?;
        Ok(m)
    }

    fn parse_with(bytes: &[u8], path: &Path, vouched: bool) -> Result<Manifest> {
        let bad = |reason: String| Error::BadManifest {
            path: path.to_path_buf(),
            reason,
        };
        let m = Manifest::read(bytes, vouched).map_err(bad)?;
        m.validate().map_err(bad)?;
        Ok(m)
    }

    /// The manifest in `bytes`: what comes before the entry list through the
    /// TOML parser, with its bounds for unvouched files unless `vouched`;
    /// the entry list line by line (see [`entries`](super::entries)).
    fn read(bytes: &[u8], vouched: bool) -> std::result::Result<Manifest, String> {
        let max = match vouched {
            true => MAX_MANIFEST_BYTES,
            false => MAX_MANIFEST_BYTES.min(strict_toml::MAX_UNVOUCHED_BYTES),
        };
        let text = strict_toml::text(bytes, max)?;
        let (head, tail) = entries::split(text);
        let table: toml::Table = match vouched {
            true => strict_toml::parse_vouched(head.as_bytes(), max)?,
            false => strict_toml::parse(head.as_bytes(), max)?,
        };
        if tail.is_some() && table.contains_key("entries") {
            return Err("entries are given twice".into());
        }
        let mut m: Manifest = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| strict_toml::one_line(&e.to_string()))?;
        if let Some(tail) = tail {
            m.entries = entries::EntryLines::new(tail.as_bytes(), head.lines().count() + 1)
                .collect::<std::result::Result<_, _>>()?;
        }
        Ok(m)
    }

    /// Everything but the entry list.
    fn head(&self) -> Manifest {
        Manifest {
            format_version: self.format_version,
            bundle_id: self.bundle_id.clone(),
            name: self.name.clone(),
            created: self.created.clone(),
            tool: self.tool.clone(),
            marking: self.marking.clone(),
            description: self.description.clone(),
            channel: self.channel.clone(),
            signer: self.signer.clone(),
            recipients: self.recipients.clone(),
            payload: self.payload.clone(),
            contents: self.contents.clone(),
            delta: self.delta.clone(),
            entries: Vec::new(),
        }
    }

    /// Serialises to TOML, with a header comment saying what the file is.
    pub fn to_toml(&self) -> String {
        let head = toml::to_string(&self.head()).unwrap_or_else(|e| {
            // Serialising plain strings and numbers cannot fail; keep the
            // failure visible rather than panic if that ever changes.
            format!("# serialisation failed: {e}\n")
        });
        let mut text = format!(
            "# pouch bundle manifest; its signature is in {}.toml.minisig\n\
             # Check it: pouch verify {}.toml --trust SIGNER.minisign.pub\n\n{head}",
            self.name, self.name
        );
        for e in &self.entries {
            entries::write(&mut text, e);
        }
        text
    }

    /// Checks the fields a parser cannot: versions, formats, ranges; all but
    /// the entry list.
    pub fn validate_fields(&self) -> Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not supported (this pouch reads {FORMAT_VERSION}); a newer pouch may read it",
                self.format_version
            ));
        }
        if self.bundle_id.len() != 32 || !is_lower_hex(&self.bundle_id) {
            return Err("bundle_id must be 32 lowercase hex digits".into());
        }
        check_bundle_name(&self.name)?;
        parse_time(&self.created)?;
        check_text("tool", &self.tool, 200)?;
        check_text("marking", &self.marking, 200)?;
        check_text("description", &self.description, 10_000)?;
        for (what, v) in [
            ("sender", &self.channel.sender),
            ("receiver", &self.channel.receiver),
        ] {
            if let Some(v) = v {
                check_party_name(v).map_err(|e| format!("channel.{what}: {e}"))?;
            }
        }
        if let Some(h) = &self.channel.previous_manifest_sha256 {
            check_sha256("channel.previous_manifest_sha256", h)?;
        }
        if self.signer.key_id.len() != 16
            || !self
                .signer
                .key_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            return Err("signer.key_id must be 16 uppercase hex digits".into());
        }
        if self.recipients.is_empty() {
            return Err("recipients: at least one is required".into());
        }
        for r in &self.recipients {
            if r.kind != KIND_X25519 && r.kind != KIND_PQ {
                return Err(format!("recipients: unknown kind {:?}", r.kind));
            }
            if r.fingerprint.len() != 16 || !is_lower_hex(&r.fingerprint) {
                return Err("recipients: fingerprint must be 16 lowercase hex digits".into());
            }
        }
        let any_pq = self.recipients.iter().any(|r| r.kind == KIND_PQ);
        if any_pq && !self.is_post_quantum() {
            return Err(
                "recipients: post-quantum and classic recipients are mixed, which pouch never writes"
                    .into(),
            );
        }
        if self.payload.file != format!("{}.age", self.name) {
            return Err(format!("payload.file must be {}.age", self.name));
        }
        check_sha256("payload.sha256", &self.payload.sha256)?;
        check_parts(&self.name, &self.payload.parts, self.payload.size)?;
        (self.payload.parity.as_ref()).map_or(Ok(()), |p| super::parity::check(&self.name, p))?;
        if self.payload.layers != "age+zstd+tar" {
            return Err(format!(
                "payload.layers {:?} is not supported",
                self.payload.layers
            ));
        }
        check_sha256("contents.entries_sha256", &self.contents.entries_sha256)?;
        if self.contents.sealed_names && !self.entries.is_empty() {
            return Err("contents.sealed_names is true but entries are listed".into());
        }
        (self.delta.as_ref()).map_or(Ok(()), |d| d.check(self.contents.sealed_names))
    }

    /// Checks everything a parser cannot: [`Manifest::validate_fields`] and
    /// the entry list: its names, counts and digest.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_fields()?;
        if !self.contents.sealed_names {
            check_entries(&self.entries)?;
            let (files, folders, bytes) = count(&self.entries);
            if (files, folders, bytes)
                != (
                    self.contents.files,
                    self.contents.folders,
                    self.contents.total_bytes,
                )
            {
                return Err(format!(
                    "contents says {} files, {} folders, {} bytes but entries list {files}, {folders}, {bytes}",
                    self.contents.files, self.contents.folders, self.contents.total_bytes
                ));
            }
            if entries_digest(&self.entries) != self.contents.entries_sha256 {
                return Err("contents.entries_sha256 does not match the entries".into());
            }
        }
        Ok(())
    }
}

impl InnerManifest {
    /// Parses and validates the inner manifest.
    pub fn parse(bytes: &[u8]) -> Result<InnerManifest, String> {
        // Inside the payload, whose hash the signed manifest vouches for.
        let text = strict_toml::text(bytes, MAX_MANIFEST_BYTES)?;
        let (head, tail) = entries::split(text);
        let version: InnerVersion =
            strict_toml::parse_vouched(head.as_bytes(), MAX_MANIFEST_BYTES)?;
        strict_toml::check_version(version.format_version, FORMAT_VERSION)?;
        let entries = match tail {
            Some(tail) => entries::EntryLines::new(tail.as_bytes(), head.lines().count() + 1)
                .collect::<std::result::Result<_, _>>()?,
            None => Vec::new(),
        };
        check_entries(&entries)?;
        Ok(InnerManifest {
            format_version: version.format_version,
            entries,
        })
    }

    /// What comes before the entries: its first lines, always the same.
    pub fn head() -> String {
        format!(
            "# pouch inner manifest: every entry of this archive\n\nformat_version = {FORMAT_VERSION}\n"
        )
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> String {
        let mut text = Self::head();
        for e in &self.entries {
            entries::write(&mut text, e);
        }
        text
    }
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("created {s:?} is not an RFC 3339 time: {e}"))?;
    if t.offset() != time::UtcOffset::UTC {
        return Err(format!("created {s:?} must be in UTC (ending in Z)"));
    }
    Ok(t)
}

/// Formats a time as RFC 3339 UTC with whole seconds.
pub fn format_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// The file name of part `index` (0-based) of bundle `name`.
pub fn part_name(name: &str, index: usize) -> String {
    format!("{name}.age.{:03}", index + 1)
}

/// Checks the parts of bundle `name`'s payload of `size` bytes: at most
/// [`MAX_PARTS`], named `NAME.age.001`, `.002`, … in order (so that no part
/// names a path), none empty, each with a sha256, adding up to `size`.
pub(crate) fn check_parts(name: &str, parts: &[Part], size: u64) -> Result<(), String> {
    if parts.len() > MAX_PARTS {
        return Err(format!("payload.parts: more than {MAX_PARTS} parts"));
    }
    let mut sum: u64 = 0;
    for (i, part) in parts.iter().enumerate() {
        let want = part_name(name, i);
        if part.file != want {
            return Err(format!("payload.parts[{i}]: file must be {want}"));
        }
        if part.size == 0 {
            return Err(format!("payload.parts[{i}]: a part cannot be empty"));
        }
        check_sha256("payload.parts.sha256", &part.sha256)?;
        sum = sum
            .checked_add(part.size)
            .ok_or("payload.parts: sizes overflow")?;
    }
    if !parts.is_empty() && sum != size {
        return Err(format!(
            "payload.parts add up to {sum} bytes, payload.size says {size}"
        ));
    }
    Ok(())
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(format!("{what} holds control characters"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
