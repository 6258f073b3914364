//! The sender's side of a delta: which earlier bundle it builds on, and,
//! file by file as the sources are listed, whether a file is the base's
//! unchanged (left out of the payload) or new or changed (packed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::payload::hashing::{sha256_hex, HashingReader};

use super::state::{self, Item, Stamp};
use crate::custody::ledger::{Event, Record};
use crate::error::{Error, IoContext, Result};
use crate::format::delta::tree_order;
use crate::format::manifest::{EntryKind, Manifest};
use crate::format::names::escape;

/// Which bundle a delta builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseChoice {
    /// An earlier bundle's manifest file, or its bundle id.
    From(String),
    /// The channel's newest bundle whose receipt came back.
    Newest,
}

/// What `pack --delta…` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaRequest {
    /// The base.
    pub base: BaseChoice,
    /// Hash every file again instead of trusting unchanged stat data.
    pub rehash: bool,
}

/// The base a pack builds its delta on, with the tree it was packed from.
pub struct Base {
    /// The base's bundle id.
    pub bundle_id: String,
    /// sha256 of the base's manifest file.
    pub manifest_sha256: String,
    /// The base's items, in tree order, read as the listing goes.
    items: Box<dyn Iterator<Item = Result<Item>> + Send>,
    /// The next of them, read but not yet passed.
    next: Option<Item>,
    /// Items passed without being listed: deleted, or listed later (a walk
    /// out of tree order: sources not given in order).
    passed: HashMap<String, Item>,
    deleted: Option<Vec<String>>,
    rehash: bool,
}

/// The facts about a listed file [`Base::judge`] needs.
pub struct Listed<'a> {
    /// Its path in the bundle.
    pub path: &'a str,
    /// File or folder.
    pub kind: EntryKind,
    /// Where it is read from.
    pub source: &'a Path,
    /// Its size.
    pub size: u64,
    /// Executable.
    pub executable: bool,
    /// Its stat data.
    pub stamp: Stamp,
}

impl Base {
    /// Finds the base `req` names for a pack on channel `sender` →
    /// `receiver`, among the sender's `records` (its ledger at `ledger`).
    pub fn resolve(
        req: &DeltaRequest,
        (channel, signer): ((Option<&str>, Option<&str>), &crate::signature::TrustedKey),
        ledger: Option<(&Path, &[Record])>,
    ) -> Result<Base> {
        let (Some(sender), Some(receiver)) = channel else {
            return Err(Error::Usage(
                "a delta builds on an earlier bundle of the same channel: pass --from and --to"
                    .into(),
            ));
        };
        let in_channel = |r: &Record| {
            r.sender.as_deref() == Some(sender) && r.receiver.as_deref() == Some(receiver)
        };
        let (id, sha, manifest) = match &req.base {
            BaseChoice::Newest => {
                let Some((_, records)) = ledger else {
                    return Err(Error::Usage(
                        "--delta picks the newest bundle whose receipt came back, from the ledger: pass --ledger".into(),
                    ));
                };
                let newest = newest_receipted(records, &in_channel).ok_or_else(|| {
                    Error::Refused(format!(
                        "no bundle of the channel {sender} → {receiver} has a receipt in the ledger yet: import the receipt (pouch receipt import), name a base with --delta-from, or pack a full bundle"
                    ))
                })?;
                (newest.0, newest.1, None)
            }
            BaseChoice::From(s) if is_bundle_id(s) => {
                let packed = ledger.and_then(|(_, records)| {
                    records.iter().find(|r| {
                        r.event == Event::Packed
                            && in_channel(r)
                            && r.bundle_id.as_deref() == Some(s)
                    })
                });
                let sha = packed.and_then(|r| r.manifest_sha256.clone()).ok_or_else(|| {
                    Error::Refused(format!(
                        "bundle {s} is not a bundle of the channel {sender} → {receiver} in the ledger; name its manifest file instead"
                    ))
                })?;
                (s.clone(), sha, None)
            }
            BaseChoice::From(s) => {
                // The sender's own bundle, but perhaps read from a medium:
                // only its first part is parsed, and its whole file hashed.
                let path = PathBuf::from(s);
                if !path.is_file() {
                    return Err(Error::Refused(format!(
                        "base manifest {} does not exist",
                        escape(s)
                    )));
                }
                let (sha, m) = signed_by(&path, signer)?;
                let packed_here = ledger.is_none_or(|(_, records)| {
                    records.iter().any(|r| {
                        r.event == Event::Packed
                            && r.bundle_id.as_ref() == Some(&m.bundle_id)
                            && r.manifest_sha256.as_ref() == Some(&sha)
                    })
                });
                if !packed_here {
                    return Err(Error::Refused(format!(
                        "base {} is not a bundle this ledger packed (with this manifest): a delta builds on one of the sender's own bundles",
                        escape(s)
                    )));
                }
                if m.channel.sender.as_deref() != Some(sender)
                    || m.channel.receiver.as_deref() != Some(receiver)
                {
                    return Err(Error::Refused(format!(
                        "base {} is not a bundle of the channel {sender} → {receiver}: a delta builds on a bundle of its own channel",
                        escape(s)
                    )));
                }
                (m.bundle_id.clone(), sha, Some((m, path)))
            }
        };
        let recorded = match ledger {
            Some((l, _)) => state::Reader::open(&state::packed_path(l, &id))?,
            None => None,
        };
        type Items = Box<dyn Iterator<Item = Result<Item>> + Send>;
        let (items, rehash): (Items, bool) = match (recorded, manifest) {
            (Some(mut r), _) if r.head.manifest_sha256 == sha => {
                (Box::new(std::iter::from_fn(move || r.next_item().transpose())), req.rehash)
            }
            (Some(_), _) => {
                return Err(Error::Refused(format!(
                    "the recorded tree of bundle {id} belongs to another manifest than the base's; name the base's manifest file with --delta-from"
                )))
            }
            // No record of the tree: the base's entry list says what it
            // held, and every file is hashed to compare.
            (None, Some((m, path))) if !m.contents.sealed_names => {
                let mut items = listed_entries(&path, &sha)?;
                items.sort_by(|a, b| tree_order(&a.path, &b.path));
                (Box::new(items.into_iter().map(Ok)), true)
            }
            (None, _) => {
                return Err(Error::Refused(format!(
                    "there is no record of the tree bundle {id} was packed from (it is kept beside the ledger, in {}); name the base's manifest file with --delta-from (its names must not be sealed), or pack a full bundle",
                    ledger.map_or_else(|| "LEDGER.trees".into(), |(l, _)| state::trees_dir(l).display().to_string())
                )))
            }
        };
        Ok(Base {
            bundle_id: id,
            manifest_sha256: sha,
            items,
            next: None,
            passed: HashMap::new(),
            deleted: None,
            rehash,
        })
    }

    /// The base's item at `path`, if it has one: passed already, or found
    /// by reading on (what comes before `path` is passed).
    fn take(&mut self, path: &str) -> Result<Option<Item>> {
        if let Some(was) = self.passed.remove(path) {
            return Ok(Some(was));
        }
        loop {
            if self.next.is_none() {
                self.next = self.items.next().transpose()?;
            }
            let Some(n) = self.next.take() else {
                return Ok(None);
            };
            match tree_order(&n.path, path) {
                std::cmp::Ordering::Less => {
                    self.passed.insert(n.path.clone(), n);
                }
                std::cmp::Ordering::Equal => return Ok(Some(n)),
                std::cmp::Ordering::Greater => {
                    self.next = Some(n);
                    return Ok(None);
                }
            }
        }
    }

    /// Whether the listed entry is the base's unchanged: `Some(item)` (to
    /// record, and leave out of the payload) or `None` (to pack).
    pub fn judge(&mut self, f: &Listed<'_>) -> Result<Option<Item>> {
        let Some(was) = self.take(f.path)? else {
            return Ok(None);
        };
        if f.kind != EntryKind::File || was.kind != EntryKind::File {
            return Ok(None);
        }
        if was.size != f.size || was.executable != f.executable {
            return Ok(None);
        }
        if !self.rehash && was.stamp == f.stamp {
            return Ok(Some(was));
        }
        let sha = hash_file(f.source)?;
        if Some(&sha) != was.sha256.as_ref() {
            return Ok(None);
        }
        Ok(Some(Item {
            stamp: f.stamp,
            ..was
        }))
    }

    /// The base's paths that were not listed: deleted, in tree order. Once
    /// the listing is over; the same list each time.
    pub fn deleted(&mut self) -> Result<Vec<String>> {
        if let Some(d) = &self.deleted {
            return Ok(d.clone());
        }
        let mut paths: Vec<String> = self.passed.drain().map(|(p, _)| p).collect();
        paths.extend(self.next.take().map(|n| n.path));
        for item in self.items.by_ref() {
            paths.push(item?.path);
        }
        paths.sort_by(|a, b| tree_order(a, b));
        self.deleted = Some(paths.clone());
        Ok(paths)
    }
}

/// Whether a ledger record is one a base is chosen, checked or pruned by:
/// a bundle packed, a receipt imported. Only those are read.
pub fn bears_on_bases(r: &Record) -> bool {
    matches!(r.event, Event::Packed | Event::Receipt)
}

/// The newest packed bundle of the channel (by sequence number) whose
/// receipt for the same manifest came back: (bundle id, manifest sha256).
fn newest_receipted(
    records: &[Record],
    in_channel: &dyn Fn(&Record) -> bool,
) -> Option<(String, String)> {
    let receipted: std::collections::HashSet<(&str, &str)> = records
        .iter()
        .filter(|r| r.event == Event::Receipt)
        .filter_map(|r| Some((r.bundle_id.as_deref()?, r.manifest_sha256.as_deref()?)))
        .collect();
    records
        .iter()
        .filter(|r| r.event == Event::Packed && in_channel(r))
        .filter_map(|r| {
            Some((
                r.sequence?,
                r.bundle_id.as_deref()?,
                r.manifest_sha256.as_deref()?,
            ))
        })
        .filter(|(_, id, sha)| receipted.contains(&(*id, *sha)))
        .max_by_key(|(n, _, _)| *n)
        .map(|(_, id, sha)| (id.to_string(), sha.to_string()))
}

/// Removes the sender's records of the channel's trees that no delta can
/// build on any more: those of bundles older (by sequence number) than the
/// newest one whose receipt came back. What cannot be removed stays.
pub fn prune(ledger: &Path, records: &[Record], (sender, receiver): (Option<&str>, Option<&str>)) {
    let in_channel = |r: &Record| {
        r.sender.as_deref() == sender && r.receiver.as_deref() == receiver && sender.is_some()
    };
    let Some((newest, _)) = newest_receipted(records, &in_channel) else {
        return;
    };
    let Some(floor) = records
        .iter()
        .find(|r| r.event == Event::Packed && r.bundle_id.as_deref() == Some(&newest))
        .and_then(|r| r.sequence)
    else {
        return;
    };
    for r in records
        .iter()
        .filter(|r| r.event == Event::Packed && in_channel(r))
    {
        if let (Some(id), Some(n)) = (&r.bundle_id, r.sequence) {
            if n < floor {
                let _ = std::fs::remove_file(state::packed_path(ledger, id));
            }
        }
    }
}

fn is_bundle_id(s: &str) -> bool {
    s.len() == 32 && crate::format::strict_toml::is_lower_hex(s)
}

/// The base manifest at `path`, if the sender's own key `signer` signed it
/// (a copy on a medium may have been changed): its sha256 and its first
/// part, all read from one open file.
fn signed_by(path: &Path, signer: &crate::signature::TrustedKey) -> Result<(String, Manifest)> {
    use std::io::Seek;
    let sig_path = crate::signature::signature_path(path);
    let sig = crate::signature::read_signature(&sig_path)?;
    let mut file = crate::disk::durable::open_regular(path)?;
    let verified =
        crate::signature::verify_stream(&mut file, &sig, &sig_path, std::slice::from_ref(signer))?;
    file.rewind().doing("reading", path)?;
    let (_, sha) = HashingReader::new(&mut file)
        .drain_and_finish()
        .doing("reading", path)?;
    file.rewind().doing("reading", path)?;
    let m = Manifest::parse_vouched_head(&head_of(file, path)?, path)?;
    crate::signature::check_trusted_comment(
        &verified.trusted_comment,
        &m.bundle_id,
        &m.name,
        &sig_path,
    )?;
    Ok((sha, m))
}

/// The manifest in `file` up to its entry list (at most 1 MiB).
fn head_of(file: std::fs::File, path: &Path) -> Result<Vec<u8>> {
    use std::io::BufRead;
    let mut reader = std::io::Read::take(std::io::BufReader::new(file), 1 << 20);
    let mut head = Vec::new();
    loop {
        let start = head.len();
        if reader.read_until(b'\n', &mut head).doing("reading", path)? == 0 {
            return Ok(head);
        }
        if head[start..].trim_ascii_end() == crate::format::entries::HEADER.as_bytes() {
            head.truncate(start);
            return Ok(head);
        }
    }
}

/// The entry list of the base's manifest at `path`, which must still be
/// the file that hashed to `sha` (read whole: at most 48 MiB).
fn listed_entries(path: &Path, sha: &str) -> Result<Vec<Item>> {
    let bytes =
        crate::disk::durable::read_capped(path, crate::format::manifest::MAX_MANIFEST_BYTES)?
            .unwrap_or_default();
    if sha256_hex(&bytes) != sha {
        return Err(Error::Refused(format!(
            "base manifest {} changed while it was read",
            path.display()
        )));
    }
    let m = Manifest::parse_vouched(&bytes, path)?;
    Ok(m.entries.iter().map(Item::of).collect())
}

/// sha256 of the file at `path`, lowercase hex.
pub fn hash_file(path: &Path) -> Result<String> {
    let file = crate::disk::durable::open_regular(path)?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (_, sha) = HashingReader::new(reader)
        .drain_and_finish()
        .doing("reading", path)?;
    Ok(sha)
}
