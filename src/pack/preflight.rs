//! Before a pack writes anything: whether OUTDIR has the room for the
//! bundle, and the dry run, which makes every check a pack makes (the
//! request, the recipients, the sources, the room) and says what the pack
//! would do, down to the channel's next sequence number, writing nothing.

use serde::Serialize;

use super::plan::{self, Planned};
use super::{check_options, PackOptions};
use crate::custody::ledger::{self, Event};
use crate::disk::{media, space};
use crate::error::Result;
use crate::format::manifest::EntryKind;
use crate::payload::crypto;

/// Room kept for the manifests, their signatures and the ledger: the
/// manifest's entry list is written twice (outside, and inside the
/// payload), some 300 bytes an entry.
fn manifest_room(entries: u64) -> u64 {
    entries * 600 + (1 << 20)
}

/// Refuses a pack that OUTDIR has not the room for, before any work: when
/// even the fastest upper bound of the sources (a file's size, a folder's
/// filesystem in use) does not fit, the sources are listed to learn their
/// size. The bound takes the files as incompressible; `--no-space-check`
/// skips this.
pub(super) fn check_space(opts: &PackOptions) -> Result<()> {
    if opts.no_space_check {
        return Ok(());
    }
    let Some(free) = space::free_bytes(&opts.out_dir) else {
        return Ok(());
    };
    if let Some(bound) = space::sources_bound(&opts.sources) {
        if bound.saturating_add(bound / 2).saturating_add(1 << 20) <= free {
            return Ok(());
        }
    }
    let (mut total, mut entries) = (0u64, 0u64);
    plan::walk(
        &opts.sources,
        opts.skip_special,
        opts.source_date_epoch,
        &opts.filter,
        &mut |p| {
            total += p.size;
            entries += 1;
            Ok(())
        },
    )?;
    let needed = space::payload_bound(total, entries) + manifest_room(entries);
    space::ensure_room(&opts.out_dir, needed, "the bundle")
}

/// What pack would do, without writing anything.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// Every entry: path in the bundle, `file` or `folder`, size.
    pub entries: Vec<(String, String, u64)>,
    /// Files.
    pub files: u64,
    /// Folders.
    pub folders: u64,
    /// Bytes in files.
    pub total_bytes: u64,
    /// Payload parts, at most (the payload is smaller when it compresses).
    pub estimated_parts: u64,
    /// Bytes the bundle takes at most (its files incompressible).
    pub needed: u64,
    /// Bytes free in OUTDIR, when the system says.
    pub free: Option<u64>,
    /// The recipients, each its kind and fingerprint.
    pub recipients: Vec<(String, String)>,
    /// The channel and the sequence number the bundle would get, from the
    /// ledger as it stands.
    pub channel: Option<(String, u64)>,
    /// Special files that would be skipped.
    pub skipped: Vec<std::path::PathBuf>,
    /// Names that some filesystems cannot hold.
    pub unportable: Vec<String>,
}

impl DryRun {
    /// Whether OUTDIR has the room.
    pub fn fits(&self) -> bool {
        self.free.is_none_or(|free| self.needed <= free)
    }
}

/// Lists what [`pack`](super::pack()) would pack, with the same checks,
/// writing nothing (not even to the ledger).
pub fn dry_run(opts: &PackOptions) -> Result<DryRun> {
    check_options(opts)?;
    let (plan, skipped) = plan::plan(
        &opts.sources,
        opts.skip_special,
        opts.source_date_epoch,
        &opts.filter,
    )?;
    let unportable = plan::unportable(&plan);
    let total_bytes: u64 = plan.iter().map(|p| p.size).sum();
    let files = plan.iter().filter(|p| p.kind == EntryKind::File).count() as u64;
    let split = opts
        .split
        .or_else(|| media::is_fat(&opts.out_dir).then_some(media::FAT32_PART));
    let bound = space::payload_bound(total_bytes, plan.len() as u64);
    let estimated_parts = match split {
        Some(size) => bound.div_ceil(size).max(1),
        None => 1,
    };
    Ok(DryRun {
        entries: plan.iter().map(listed).collect(),
        files,
        folders: plan.len() as u64 - files,
        total_bytes,
        estimated_parts,
        needed: bound + manifest_room(plan.len() as u64),
        free: space::free_bytes(&opts.out_dir),
        recipients: opts
            .recipients
            .iter()
            .map(|r| (r.kind().to_string(), crypto::fingerprint(r)))
            .collect(),
        channel: next_in_channel(opts)?,
        skipped,
        unportable,
    })
}

fn listed(p: &Planned) -> (String, String, u64) {
    let kind = match p.kind {
        EntryKind::File => "file",
        _ => "folder",
    };
    (p.path.clone(), kind.to_string(), p.size)
}

/// `SENDER:RECEIVER` and the number a pack would take now, read from the
/// ledger without locking or creating it; `None` without a channel.
fn next_in_channel(opts: &PackOptions) -> Result<Option<(String, u64)>> {
    let (Some(s), Some(r)) = (&opts.sender, &opts.receiver) else {
        return Ok(None);
    };
    let mut records = Vec::new();
    if let Some(path) = opts.ledger.as_deref().filter(|p| p.is_file()) {
        ledger::each(path, |rec| {
            let mine = rec.sender.as_deref() == Some(s) && rec.receiver.as_deref() == Some(r);
            if mine && matches!(rec.event, Event::Packed | Event::Reserved) {
                records.push(rec);
            }
            Ok(())
        })?;
    }
    let (n, _) = ledger::next_sequence(&records, s, r);
    Ok(Some((format!("{s}:{r}"), n)))
}
