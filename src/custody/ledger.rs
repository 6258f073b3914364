//! The ledger: an append-only, hash-chained record of every bundle packed,
//! verified, accepted or rejected, and every receipt imported.
//!
//! One JSON object per line (`ledger.jsonl`). Each record carries its own
//! index and the sha256 of the previous record's line (`prev`; 64 zeros for
//! the first), so editing, removing, reordering or inserting a record breaks
//! the chain at a place [`verify`] names. Records are appended under an
//! exclusive lock and fsynced; the file is never rewritten.
//!
//! From the records the sending side takes the next sequence number of a
//! channel, and the receiving side detects replays and gaps
//! ([`crate::custody::channel`]).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::format::manifest::Manifest;
use crate::format::names::escape;
use crate::payload::hashing::sha256_hex;

/// What a record is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The sender packed a bundle.
    Packed,
    /// A bundle was verified (`verify --record`).
    #[default]
    Verified,
    /// The recipient unpacked and accepted a bundle.
    Accepted,
    /// A bundle failed a check, or was refused as a replay.
    Rejected,
    /// The sender imported the recipient's signed receipt: delivered.
    Receipt,
    /// The sender imported the recipient's signed rejection: the bundle
    /// was refused on arrival, for the reason in the notes.
    Refused,
    /// A pack is about to commit its bundle (an intent: its sequence
    /// number is taken from now on, whatever becomes of the bundle).
    Reserved,
    /// An unpack is about to move its checked files into place (an intent).
    Accepting,
    /// An intent that came to nothing: its bundle or files were never
    /// committed.
    Abandoned,
    /// `ledger repair` set aside a torn last record.
    Repaired,
}

/// One ledger record. To append one, fill in what it is about; [`Ledger::append`]
/// sets its index, time and chain hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the ledger, from 0.
    pub index: u64,
    /// When, RFC 3339 UTC.
    pub time: String,
    /// What happened.
    pub event: Event,
    /// The bundle's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    /// The bundle's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sending party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Receiving party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// Sequence number in the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// sha256 of the bundle's manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// sha256 of the previous manifest in the channel, as the bundle states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_manifest_sha256: Option<String>,
    /// Key id of the bundle's (or receipt's) signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The keyring party whose key signed the bundle when that party is the
    /// sender the channel names: only such records count in the channel's
    /// sequence numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vouched_by: Option<String>,
    /// Where the intent's work lands: a pack's manifest, an unpack's
    /// `DEST/NAME` (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The index of the intent this record settles (a `packed`, `accepted`
    /// or `abandoned` record after a `reserved` or `accepting` one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<u64>,
    /// For a delta bundle: the bundle id of the base it builds on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_base: Option<String>,
    /// Gaps found, flags raised, reasons for a rejection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// sha256 of the previous record's line; 64 zeros for the first record.
    pub prev: String,
}

impl Record {
    /// A record about `m` (whose manifest file hashes to `manifest_sha256`).
    pub fn about(event: Event, m: &Manifest, manifest_sha256: &str) -> Record {
        Record {
            event,
            bundle_id: Some(m.bundle_id.clone()),
            name: Some(m.name.clone()),
            sender: m.channel.sender.clone(),
            receiver: m.channel.receiver.clone(),
            sequence: m.channel.sequence,
            manifest_sha256: Some(manifest_sha256.to_string()),
            previous_manifest_sha256: m.channel.previous_manifest_sha256.clone(),
            signer: Some(m.signer.key_id.clone()),
            delta_base: m.delta.as_ref().map(|d| d.base_bundle_id.clone()),
            ..Record::default()
        }
    }
}

/// How a checked bundle fared, for the record `verify --record` appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Every check passed.
    Passed {
        /// Whether the contents were decrypted and checked too.
        contents_checked: bool,
    },
    /// A check failed, for this reason.
    Failed {
        /// The error, as shown to people.
        reason: String,
    },
}

impl Record {
    /// The record of a verify: about the manifest `about` (with its file's
    /// sha256) when it could be read, else only the bundle's `name`.
    pub fn verify_outcome(
        about: Option<(&Manifest, &str)>,
        name: Option<String>,
        outcome: &VerifyOutcome,
    ) -> Record {
        let mut rec = match about {
            Some((m, sha)) => Record::about(Event::Verified, m, sha),
            None => Record {
                name,
                ..Record::default()
            },
        };
        match outcome {
            VerifyOutcome::Passed { contents_checked } => {
                rec.event = Event::Verified;
                rec.notes.push(if *contents_checked {
                    "signature, payload and contents OK".into()
                } else {
                    "signature and payload OK".into()
                });
            }
            VerifyOutcome::Failed { reason } => {
                rec.event = Event::Rejected;
                rec.notes.push(reason.clone());
            }
        }
        rec
    }
}

/// Appends the outcome of a verify to the ledger at `path` (see
/// [`Record::verify_outcome`]).
pub fn record_verify(
    path: &Path,
    about: Option<(&Manifest, &str)>,
    name: Option<String>,
    outcome: &VerifyOutcome,
) -> Result<Record> {
    let mut ledger = Ledger::open(path)?;
    ledger.append(Record::verify_outcome(about, name, outcome))
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A ledger file held under an exclusive lock: read it, then append.
pub struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// Opens (creating if missing) and locks the ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger> {
        crate::disk::durable::ensure_parent(path)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .doing("opening", path)?;
        crate::disk::lock::exclusive(&file, path)?;
        Ok(Ledger {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Where the ledger is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records `keep` keeps, read a record at a time (the chain is not
    /// checked: see [`verify`]), so that memory follows what is kept, not
    /// the ledger's size.
    pub fn records_where(&mut self, mut keep: impl FnMut(&Record) -> bool) -> Result<Vec<Record>> {
        self.file
            .seek(SeekFrom::Start(0))
            .doing("reading", &self.path)?;
        let file = self.file.try_clone().doing("reading", &self.path)?;
        let mut out = Vec::new();
        each_record(file, &self.path, |_, _, r| {
            if keep(&r) {
                out.push(r);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The ledger's last bytes (at most one record and its newline, and
    /// one byte more), and whether they are all of it.
    fn read_tail(&mut self) -> Result<(Vec<u8>, bool)> {
        let len = self.file.metadata().doing("reading", &self.path)?.len();
        let take = len.min(MAX_RECORD_BYTES as u64 + 1);
        self.file
            .seek(SeekFrom::Start(len - take))
            .doing("reading", &self.path)?;
        let mut tail = vec![0u8; take as usize];
        self.file
            .read_exact(&mut tail)
            .doing("reading", &self.path)?;
        Ok((tail, take == len))
    }

    /// The last record's line (without its newline), read from the end of
    /// the file; `None` for an empty ledger.
    pub(crate) fn last_line(&mut self) -> Result<Option<Vec<u8>>> {
        let (mut tail, whole) = self.read_tail()?;
        if tail.is_empty() {
            return Ok(None);
        }
        let broken = |reason: &str| Error::LedgerBroken {
            path: self.path.clone(),
            index: ledger_lines(&self.path).unwrap_or(1).saturating_sub(1),
            reason: reason.to_string(),
        };
        if tail.pop() != Some(b'\n') {
            return Err(broken(TORN));
        }
        match tail.iter().rposition(|&b| b == b'\n') {
            Some(i) => Ok(Some(tail[i + 1..].to_vec())),
            None if !whole => Err(broken(
                "the last record is longer than a record can be; run pouch ledger verify",
            )),
            None => Ok(Some(tail)),
        }
    }

    /// The bytes of a last line that has no end (a record torn by a crash
    /// or a full disk in an older pouch, or a truncated copy); empty when the
    /// ledger ends cleanly. [`Ledger::cut_tail`] removes them.
    pub(crate) fn torn_tail(&mut self) -> Result<Vec<u8>> {
        let (mut tail, whole) = self.read_tail()?;
        if tail.last().is_none_or(|&b| b == b'\n') {
            return Ok(Vec::new());
        }
        match tail.iter().rposition(|&b| b == b'\n') {
            Some(i) => Ok(tail.split_off(i + 1)),
            None if whole => Ok(tail),
            None => Err(Error::LedgerBroken {
                path: self.path.clone(),
                index: ledger_lines(&self.path).unwrap_or(0),
                reason: "the last line is longer than a record can be: not a torn record; keep a copy as evidence".into(),
            }),
        }
    }

    /// Cuts the last `n` bytes off the ledger (a torn tail set aside).
    pub(crate) fn cut_tail(&mut self, n: u64) -> Result<()> {
        let len = self.file.metadata().doing("reading", &self.path)?.len();
        self.file
            .set_len(len.saturating_sub(n))
            .and_then(|()| self.file.sync_all())
            .doing("repairing", &self.path)
    }

    /// Appends a record, chained to the last one, and fsyncs it.
    pub fn append(&mut self, mut new: Record) -> Result<Record> {
        // What a record says comes partly from the medium (a rejection's
        // reason): it is cut to size, so that no medium can write a record
        // the ledger's own reader refuses.
        new.notes.truncate(MAX_NOTES);
        for note in &mut new.notes {
            if note.len() > MAX_NOTE_BYTES {
                let mut end = MAX_NOTE_BYTES;
                while !note.is_char_boundary(end) {
                    end -= 1;
                }
                note.truncate(end);
                note.push('\u{2026}');
            }
        }
        let (index, prev) = match self.last_line()? {
            None => (0, GENESIS.to_string()),
            Some(line) => {
                let r: Record = serde_json::from_slice(&line).map_err(|e| Error::LedgerBroken {
                    path: self.path.clone(),
                    index: ledger_lines(&self.path).unwrap_or(1).saturating_sub(1),
                    reason: format!(
                        "the last record is not valid: {}; run pouch ledger verify",
                        escape(&e.to_string())
                    ),
                })?;
                (r.index + 1, sha256_hex(&line))
            }
        };
        let record = Record {
            index,
            time: crate::format::manifest::format_time(time::OffsetDateTime::now_utc()),
            prev,
            ..new
        };
        let mut line = serde_json::to_string(&record)
            .map_err(|e| Error::Internal(format!("cannot serialise a ledger record: {e}")))?;
        line.push('\n');
        self.write_whole(line.as_bytes())?;
        Ok(record)
    }

    /// Appends `line` whole or not at all: the space is checked first, and
    /// after a failed write or sync the file is cut back to what it was, so
    /// that no full disk or I/O error leaves part of a record behind.
    fn write_whole(&mut self, line: &[u8]) -> Result<()> {
        let before = self.file.metadata().doing("reading", &self.path)?.len();
        if let Ok(fs) = rustix::fs::fstatvfs(&self.file) {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            if free < line.len() as u64 + SPACE_MARGIN {
                return Err(Error::io(
                    "writing",
                    &self.path,
                    std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        format!("only {free} bytes free, too little to add a record safely; free some space"),
                    ),
                ));
            }
        }
        let written = self
            .file
            .write_all(line)
            .and_then(|()| self.file.sync_all());
        if let Err(e) = written {
            let _ = self
                .file
                .set_len(before)
                .and_then(|()| self.file.sync_all());
            return Err(Error::io("writing", &self.path, e));
        }
        Ok(())
    }
}

/// The number of lines of the ledger at `path` (for naming a bad last
/// record), counted without holding the file.
fn ledger_lines(path: &Path) -> Option<u64> {
    use std::io::BufRead;
    let file = crate::disk::durable::open_regular(path).ok()?;
    let mut reader = std::io::BufReader::new(file);
    let mut n = 0u64;
    loop {
        let buf = reader.fill_buf().ok()?;
        if buf.is_empty() {
            return Some(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        reader.consume(len);
    }
}

/// What a ledger whose last line has no end is told.
const TORN: &str = "the last record is cut off (an interrupted write, or the ledger was truncated): run pouch ledger repair, which sets the cut-off bytes aside";

/// Free space a ledger append leaves, beyond its record: room for the
/// record that settles an intent, and for the filesystem's own needs.
const SPACE_MARGIN: u64 = 64 * 1024;

/// The most notes a record keeps, and the longest note (bytes): together
/// with its other fields a record stays far below [`MAX_RECORD_BYTES`].
const MAX_NOTES: usize = 16;
const MAX_NOTE_BYTES: usize = 1024;

/// The longest record line read; a record pouch writes is well under 4 KiB.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Calls `f` with each record of the ledger at `path`, without locking it
/// and without holding more than one record: each is read on its own, at
/// most [`MAX_RECORD_BYTES`]. A missing ledger has no records.
pub fn each(path: &Path, mut f: impl FnMut(Record) -> Result<()>) -> Result<u64> {
    let file = match crate::disk::durable::open_regular(path) {
        Ok(file) => file,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(0)
        }
        Err(e) => return Err(e),
    };
    each_record(file, path, |_, _, r| f(r))
}

/// Checks the whole chain; returns the number of records, or names the first
/// bad record. Memory stays flat whatever the ledger holds.
pub fn verify(path: &Path) -> Result<u64> {
    verify_with(path, |_, _, _| {})
}

/// [`verify`], handing each record that passed (its index, its line, the
/// record) to `f` in the same pass, for callers that need more of the
/// ledger than its chain.
pub fn verify_with(path: &Path, mut f: impl FnMut(u64, &[u8], Record)) -> Result<u64> {
    let file = crate::disk::durable::open_regular(path)?;
    let broken = |index: u64, reason: String| Error::LedgerBroken {
        path: path.to_path_buf(),
        index,
        reason,
    };
    let mut prev_hash = GENESIS.to_string();
    each_record(file, path, |i, line, r| {
        if r.index != i {
            return Err(broken(
                i,
                format!(
                    "says it is record {} (records were removed, inserted or reordered)",
                    r.index
                ),
            ));
        }
        if r.prev != prev_hash {
            let why = if i == 0 {
                "the first record does not start the chain (records before it were removed)"
                    .to_string()
            } else {
                format!("its link to record {} does not match (record {} was edited, or records were swapped)", i - 1, i - 1)
            };
            return Err(broken(i, why));
        }
        prev_hash = sha256_hex(line);
        f(i, line, r);
        Ok(())
    })
}

/// Calls `f` with each record of a ledger file (its index, its line without
/// the newline, the parsed record), reading one line at a time; returns the
/// number of records. A line over [`MAX_RECORD_BYTES`], a line that is not a
/// record and a last line cut off are errors naming the record.
fn each_record(
    file: File,
    path: &Path,
    mut f: impl FnMut(u64, &[u8], Record) -> Result<()>,
) -> Result<u64> {
    use std::io::BufRead;
    let broken = |index: u64, reason: String| Error::LedgerBroken {
        path: path.to_path_buf(),
        index,
        reason,
    };
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    let mut index = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .doing("reading", path)?;
        if n == 0 {
            return Ok(index);
        }
        if line.last() != Some(&b'\n') {
            return Err(broken(
                index,
                if n > MAX_RECORD_BYTES {
                    format!(
                        "longer than {} KiB; not a pouch ledger record",
                        MAX_RECORD_BYTES >> 10
                    )
                } else {
                    TORN.into()
                },
            ));
        }
        line.pop();
        let r: Record = serde_json::from_slice(&line).map_err(|e| {
            broken(
                index,
                format!("not a valid record ({})", escape(&e.to_string())),
            )
        })?;
        f(index, &line, r)?;
        index += 1;
    }
}

/// The channel key `sender:receiver`.
pub fn channel_key(sender: &Option<String>, receiver: &Option<String>) -> Option<String> {
    Some(format!("{}:{}", sender.as_deref()?, receiver.as_deref()?))
}

/// The next sequence number for a channel on the sending side, and the
/// sha256 of the channel's previous manifest (none for the first).
///
/// A number reserved by an intent is taken even when its bundle was
/// abandoned, so that no number is ever given twice; the previous manifest
/// is the last bundle really packed.
pub fn next_sequence(records: &[Record], sender: &str, receiver: &str) -> (u64, Option<String>) {
    let in_channel = |r: &&Record| {
        r.sender.as_deref() == Some(sender) && r.receiver.as_deref() == Some(receiver)
    };
    let taken = records
        .iter()
        .filter(in_channel)
        .filter(|r| matches!(r.event, Event::Packed | Event::Reserved))
        .filter_map(|r| r.sequence)
        .max();
    let previous = records
        .iter()
        .filter(in_channel)
        .filter(|r| r.event == Event::Packed)
        .filter_map(|r| Some((r.sequence?, r.manifest_sha256.clone())))
        .max_by_key(|(s, _)| *s)
        .and_then(|(_, sha)| sha);
    (taken.map_or(1, |n| n + 1), previous)
}

/// Bundle ids of packed bundles for which a receipt was imported.
pub fn delivered(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r.event == Event::Receipt)
        .filter_map(|r| r.bundle_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_is_recorded_as_verified_or_rejected_with_its_reason() {
        let (_dir, path) = crate::scratch::file("ledger.jsonl", None);
        let ok = VerifyOutcome::Passed {
            contents_checked: true,
        };
        let r = record_verify(&path, None, Some("B".into()), &ok).unwrap();
        assert_eq!((r.event, r.name.as_deref()), (Event::Verified, Some("B")));
        assert_eq!(r.notes, vec!["signature, payload and contents OK"]);
        let bad = VerifyOutcome::Failed {
            reason: "payload hash differs".into(),
        };
        let r = record_verify(&path, None, None, &bad).unwrap();
        assert_eq!((r.event, r.index), (Event::Rejected, 1));
        assert_eq!(r.notes, vec!["payload hash differs"]);
        assert_eq!(verify(&path).unwrap(), 2);
    }

    #[test]
    fn without_contents_only_signature_and_payload_are_claimed() {
        let rec = Record::verify_outcome(
            None,
            None,
            &VerifyOutcome::Passed {
                contents_checked: false,
            },
        );
        assert_eq!(rec.notes, vec!["signature and payload OK"]);
    }
}
