//! Intents: the records that keep the ledger and the disk in step.
//!
//! A command that both commits work on disk and records it writes an intent
//! first, naming where the work lands: pack a `reserved` record (the
//! bundle's manifest path and sha256; from then on its sequence number is
//! taken), unpack an `accepting` record (`DEST/NAME`). Then it commits (the
//! renames), then it settles the intent with the record of what happened
//! (`packed`, `accepted`), which names the intent's index.
//!
//! A crash, a full disk or an I/O error between the intent and its
//! settlement leaves the intent open. The next command that writes the
//! ledger ([`recover`]) looks at the disk and settles it: work that was
//! committed is recorded as such (the bundle verifies under its recorded
//! hash; the folder is there), work that was not is recorded `abandoned`
//! and what it left is removed. A sequence number is never given twice,
//! even when its bundle was abandoned: the recipient then sees a gap, which
//! the sender's ledger explains. An intent whose folder cannot be reached
//! (a medium that is not mounted) stays open, with a notice, until it can.

use std::fs;
use std::path::{Path, PathBuf};

use crate::custody::ledger::{Event, Ledger, Record};
use crate::disk::{durable, leftovers, lock::FolderLock};
use crate::error::Result;
use crate::payload::hashing::sha256_hex;

/// Appends the intent `record` (whose event is `reserved` or `accepting`)
/// for work landing at `path`; returns it as recorded, with its index.
pub fn intend(ledger: &mut Ledger, mut record: Record, path: &Path) -> Result<Record> {
    // The folder's real path: the next run may start anywhere.
    let dir = durable::parent_of(path);
    let absolute = match (fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    };
    record.path = Some(absolute.to_string_lossy().into_owned());
    ledger.append(record)
}

/// Appends the record that settles `intent` with `event`, carrying what the
/// intent said, and `note` when given.
pub fn settle(
    ledger: &mut Ledger,
    intent: &Record,
    event: Event,
    note: Option<String>,
) -> Result<Record> {
    let mut r = Record {
        event,
        path: None,
        intent: Some(intent.index),
        ..intent.clone()
    };
    r.notes.extend(note);
    ledger.append(r)
}

/// The intents of the ledger that no record settles, read in one pass.
/// Memory follows the intents open, not the ledger's size.
pub fn open_intents(ledger: &mut Ledger) -> Result<Vec<Record>> {
    let mut open = std::collections::BTreeMap::new();
    ledger.records_where(|r| {
        match r.intent {
            Some(i) => {
                open.remove(&i);
            }
            None if is_intent(r.event) => {
                open.insert(r.index, r.clone());
            }
            None => {}
        }
        false
    })?;
    Ok(open.into_values().collect())
}

fn is_intent(event: Event) -> bool {
    matches!(event, Event::Reserved | Event::Accepting)
}

/// What became of an intent's work, as the disk shows it.
enum Outcome {
    Committed,
    NotCommitted(String),
    Unreachable(PathBuf),
}

/// Settles every open intent whose folder can be reached, with a notice
/// each; returns those that stay open (their folder cannot be reached).
pub fn recover(ledger: &mut Ledger) -> Result<Vec<Record>> {
    settle_open(ledger, false)
}

/// [`recover`]; with `give_up`, an intent whose folder cannot be reached is
/// settled as abandoned too (the operator knows the medium is gone).
fn settle_open(ledger: &mut Ledger, give_up: bool) -> Result<Vec<Record>> {
    let mut unresolved = Vec::new();
    for intent in open_intents(ledger)? {
        let what = describe(&intent);
        // What cannot be looked at (a folder without permission, a failing
        // medium) is not settled, and stops nothing else.
        let found = outcome(&intent, ledger.path()).unwrap_or_else(|e| {
            let place = intent
                .path
                .as_deref()
                .map(PathBuf::from)
                .unwrap_or_default();
            crate::notice::notice(&format!("cannot look at {}: {e}", place.display()));
            Outcome::Unreachable(durable::parent_of(&place).to_path_buf())
        });
        match found {
            Outcome::Committed => {
                let (event, done) = match intent.event {
                    Event::Reserved => (Event::Packed, "its bundle was committed"),
                    _ => (Event::Accepted, "its files were moved into place"),
                };
                let note = format!("recorded by a later run: {what} was interrupted after {done}");
                settle(ledger, &intent, event, Some(note.clone()))?;
                crate::notice::notice(&note);
            }
            Outcome::NotCommitted(left) => {
                let note = format!("{what} was interrupted before it committed anything{left}");
                settle(ledger, &intent, Event::Abandoned, Some(note.clone()))?;
                crate::notice::notice(&format!("recorded as abandoned: {note}"));
            }
            Outcome::Unreachable(dir) if give_up => {
                let note = format!(
                    "{what} was interrupted, and given up by the operator: {} could not be reached",
                    dir.display()
                );
                settle(ledger, &intent, Event::Abandoned, Some(note.clone()))?;
                crate::notice::notice(&format!("recorded as abandoned: {note}"));
            }
            Outcome::Unreachable(dir) => {
                crate::notice::notice(&format!(
                    "{what} was interrupted and is not settled: {} cannot be reached; make it reachable (mount the medium) and run pouch ledger repair (or, if it is gone for good, pouch ledger repair --abandon-unreachable)",
                    dir.display()
                ));
                unresolved.push(intent);
            }
        }
    }
    Ok(unresolved)
}

/// "the pack of NAME (sequence N)", "the unpack of NAME into PATH".
fn describe(intent: &Record) -> String {
    let name = crate::format::names::escape(intent.name.as_deref().unwrap_or("?"));
    match intent.event {
        Event::Reserved => match intent.sequence {
            Some(n) => format!("the pack of {name} (sequence {n}, record {})", intent.index),
            None => format!("the pack of {name} (record {})", intent.index),
        },
        _ => format!(
            "the unpack of {name} into {} (record {})",
            crate::format::names::escape(intent.path.as_deref().unwrap_or("?")),
            intent.index
        ),
    }
}

/// Looks at the disk where the intent's work lands.
fn outcome(intent: &Record, ledger: &Path) -> Result<Outcome> {
    let Some((path, name)) = place(intent) else {
        // Not a place pouch writes: nothing there is looked at or removed.
        return Ok(Outcome::NotCommitted(
            " (the intent does not name a place pouch writes)".into(),
        ));
    };
    let dir = durable::parent_of(&path).to_path_buf();
    let present = match fs::symlink_metadata(&path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() => None,
        Err(_) => return Ok(Outcome::Unreachable(dir)),
    };
    // A pack's bundle is committed when its signature, renamed last, is
    // there beside the manifest it made; anything less is taken back.
    let mine = match (intent.event, &present) {
        (Event::Reserved, Some(meta)) if meta.is_file() => {
            let sha = durable::read_capped(&path, crate::format::manifest::MAX_MANIFEST_BYTES)?
                .map(|bytes| sha256_hex(&bytes));
            if sha.is_none() || sha != intent.manifest_sha256 {
                return Ok(Outcome::NotCommitted(format!(
                    "; {} is not the manifest it made",
                    path.display()
                )));
            }
            let signed = fs::symlink_metadata(crate::signature::signature_path(&path))
                .is_ok_and(|m| m.is_file());
            if signed {
                return Ok(Outcome::Committed);
            }
            true
        }
        // A delta's tree is there either way: what decides is which tree
        // it is (see `delta::onto`).
        (Event::Accepting, Some(meta)) if meta.is_dir() && intent.delta_base.is_some() => {
            let now = crate::delta::state::load_unpacked(ledger, &path)?;
            // The other tree, under a staging name beside it, goes either way.
            let _lock = FolderLock::take(&dir, || leftovers::clean(&dir))?;
            return Ok(match now {
                Some(s) if Some(&s.head.bundle_id) == intent.bundle_id.as_ref() => {
                    Outcome::Committed
                }
                _ => Outcome::NotCommitted(format!(
                    "; {} still holds the base's tree",
                    path.display()
                )),
            });
        }
        (Event::Accepting, Some(meta)) if meta.is_dir() => return Ok(Outcome::Committed),
        (_, Some(_)) => {
            return Ok(Outcome::NotCommitted(format!(
                "; {} is something else",
                path.display()
            )))
        }
        (_, None) => false,
    };
    let mut removed = Vec::new();
    let _lock = FolderLock::take(&dir, || {
        leftovers::clean(&dir)?;
        if intent.event == Event::Reserved {
            removed = leftovers::remove_uncommitted(&dir, &name, mine)?;
        }
        Ok(())
    })?;
    Ok(Outcome::NotCommitted(if removed.is_empty() {
        String::new()
    } else {
        format!(
            "; removed what it had renamed into place without its signature: {}",
            removed.join(", ")
        )
    }))
}

/// Where the intent's work lands and the bundle's name, when they are what
/// pouch writes: an absolute `DIR/NAME.toml` (pack) or `DEST/NAME` (unpack)
/// with a valid bundle name. The ledger is the owner's own file, but a
/// record that names another place is not followed.
fn place(intent: &Record) -> Option<(PathBuf, String)> {
    let path = PathBuf::from(intent.path.as_deref()?);
    let name = intent.name.clone()?;
    crate::format::names::check_bundle_name(&name).ok()?;
    let expected = match intent.event {
        Event::Reserved => format!("{name}.toml"),
        _ => name.clone(),
    };
    // A delta goes onto the tree its base made, whatever its name.
    let onto = intent.event == Event::Accepting && intent.delta_base.is_some();
    let fits = path.is_absolute()
        && (onto || path.file_name().and_then(|n| n.to_str()) == Some(expected.as_str()))
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    fits.then_some((path, name))
}

/// What `ledger repair` did.
#[derive(Debug, Clone, Default)]
pub struct Repair {
    /// Where the bytes of a torn last record were set aside, and how many.
    pub set_aside: Option<(PathBuf, u64)>,
    /// Intents that could not be settled (their folder cannot be reached).
    pub unresolved: Vec<Record>,
}

/// `ledger repair`: sets a torn last record aside in `LEDGER.torn-TIME`
/// (written durably before the ledger is cut) and records that it did, then
/// settles what interrupted commands left open.
pub fn repair(path: &Path, abandon_unreachable: bool) -> Result<Repair> {
    let mut ledger = Ledger::open(path)?;
    let torn = ledger.torn_tail()?;
    let mut report = Repair::default();
    if !torn.is_empty() {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".torn-{stamp}"));
        let aside = durable::write_new(&path.with_file_name(name), &torn, 0o600)?;
        ledger.cut_tail(torn.len() as u64)?;
        ledger.append(Record {
            event: Event::Repaired,
            notes: vec![format!(
                "set aside {} bytes of a cut-off last record in {}",
                torn.len(),
                aside.display()
            )],
            ..Record::default()
        })?;
        report.set_aside = Some((aside, torn.len() as u64));
    }
    report.unresolved = settle_open(&mut ledger, abandon_unreachable)?;
    Ok(report)
}
