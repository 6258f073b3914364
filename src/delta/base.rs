//! The sender's side of a delta: which earlier bundle it builds on, and,
//! file by file as the sources are listed, whether a file is the base's
//! unchanged (left out of the payload) or new or changed (packed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::state::{self, Item, Stamp, TreeState};
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
    items: Vec<Item>,
    index: HashMap<String, usize>,
    seen: Vec<bool>,
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
        channel: (Option<&str>, Option<&str>),
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
                let path = PathBuf::from(s);
                let bytes = crate::disk::durable::read_capped(
                    &path,
                    crate::format::manifest::MAX_MANIFEST_BYTES,
                )?
                .ok_or_else(|| Error::Refused(format!("base manifest {s} does not exist")))?;
                let m = Manifest::parse(&bytes, &path)?;
                if m.channel.sender.as_deref() != Some(sender)
                    || m.channel.receiver.as_deref() != Some(receiver)
                {
                    return Err(Error::Refused(format!(
                        "base {} is not a bundle of the channel {sender} → {receiver}: a delta builds on a bundle of its own channel",
                        escape(s)
                    )));
                }
                let sha = hex::encode(Sha256::digest(&bytes));
                (m.bundle_id.clone(), sha, Some(m))
            }
        };
        let recorded = match ledger {
            Some((l, _)) => TreeState::load(&state::packed_path(l, &id))?,
            None => None,
        };
        let (items, rehash) = match (recorded, manifest) {
            (Some(s), _) if s.head.manifest_sha256 == sha => (s.items, req.rehash),
            (Some(_), _) => {
                return Err(Error::Refused(format!(
                    "the recorded tree of bundle {id} belongs to another manifest than the base's; name the base's manifest file with --delta-from"
                )))
            }
            // No record of the tree: the base's signed entry list says
            // what it held, and every file is hashed to compare.
            (None, Some(m)) if !m.contents.sealed_names => {
                (m.entries.iter().map(item_of).collect(), true)
            }
            (None, _) => {
                return Err(Error::Refused(format!(
                    "there is no record of the tree bundle {id} was packed from (it is kept beside the ledger, in {}); name the base's manifest file with --delta-from (its names must not be sealed), or pack a full bundle",
                    ledger.map_or_else(|| "LEDGER.trees".into(), |(l, _)| state::trees_dir(l).display().to_string())
                )))
            }
        };
        let mut items = items;
        items.sort_by(|a, b| tree_order(&a.path, &b.path));
        let index = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.path.clone(), i))
            .collect();
        Ok(Base {
            bundle_id: id,
            manifest_sha256: sha,
            seen: vec![false; items.len()],
            items,
            index,
            rehash,
        })
    }

    /// Whether the listed entry is the base's unchanged: `Some(item)` (to
    /// record, and leave out of the payload) or `None` (to pack).
    pub fn judge(&mut self, f: &Listed<'_>) -> Result<Option<Item>> {
        let Some(&i) = self.index.get(f.path) else {
            return Ok(None);
        };
        self.seen[i] = true;
        let was = &self.items[i];
        if f.kind != EntryKind::File || was.kind != EntryKind::File {
            return Ok(None);
        }
        if was.size != f.size || was.executable != f.executable {
            return Ok(None);
        }
        if !self.rehash && was.stamp == f.stamp {
            return Ok(Some(was.clone()));
        }
        let sha = hash_file(f.source)?;
        if Some(&sha) != was.sha256.as_ref() {
            return Ok(None);
        }
        Ok(Some(Item {
            stamp: f.stamp,
            ..was.clone()
        }))
    }

    /// The base's paths that were not listed: deleted, in tree order.
    pub fn deleted(&self) -> Vec<String> {
        let unseen = self.items.iter().zip(&self.seen).filter(|(_, s)| !**s);
        unseen.map(|(i, _)| i.path.clone()).collect()
    }
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

/// An item of a signed entry list, without stat data.
fn item_of(e: &crate::format::manifest::Entry) -> Item {
    Item {
        path: e.path.clone(),
        kind: e.kind,
        size: e.file_size(),
        sha256: e.sha256.clone(),
        executable: e.executable(),
        stamp: Stamp::default(),
    }
}

/// sha256 of the file at `path`, lowercase hex.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).doing("opening", path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).doing("reading", path)?;
    Ok(hex::encode(hasher.finalize()))
}
