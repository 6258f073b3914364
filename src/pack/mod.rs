//! Sealing files into a bundle: the orchestration.
//!
//! One pass over the sources: each file is read once, hashed as it goes into
//! the tar, and the tar stream is compressed (zstd), encrypted (age) and hashed
//! again on its way to disk. The manifest is written and signed last. All three
//! files are written under temporary names and renamed into place only when
//! every one of them is complete and fsynced, so an interrupted pack never
//! leaves a bundle that looks complete.
//!
//! The rooms: `plan` lists the sources, `load` reads and hashes them,
//! `stages` makes the payload stream (`frames` compresses it),
//! `seal` signs and commits (its read-back shared with [`crate::resplit`](mod@crate::resplit)); this module
//! checks the request and runs them in order.

mod delta;
mod frames;
mod listed;
mod load;
mod plan;
mod preflight;
mod seal;
mod stages;

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use crate::custody::intent;
use crate::custody::ledger::{self, Event, Ledger, Record};
use crate::delta::base::{self, Base};
use crate::delta::spill::Spill;
use crate::disk::lock::FolderLock;
use crate::disk::{durable, leftovers, media};
use crate::error::{Error, Result};
use crate::format::manifest::{self, Channel, Contents, Manifest, Payload, RecipientInfo, Signer};
use crate::payload::crypto;
use crate::signature::{self, SigningKey};

pub use preflight::{dry_run, DryRun};
pub(crate) use seal::{read_back_all, seal};

/// The compression level used unless the clerk picks another.
/// The zstd level when neither a flag, the spec nor the config sets one.
pub const DEFAULT_LEVEL: i32 = 3;

/// What to pack, for whom, and how.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Files and folders to pack; each lands in the bundle under its own name.
    pub sources: Vec<PathBuf>,
    /// Folder to write the bundle into; must exist.
    pub out_dir: PathBuf,
    /// Who can decrypt; at least one, all post-quantum or all classic.
    pub recipients: Vec<crypto::Recipient>,
    /// Refuse classic (X25519-only) recipients.
    pub require_pq: bool,
    /// The bundle's name; by default `YYYYMMDD-HHMMSS-` and 8 digits of the id.
    pub name: Option<String>,
    /// Sending party.
    pub sender: Option<String>,
    /// Receiving party.
    pub receiver: Option<String>,
    /// Security marking.
    pub marking: String,
    /// Free-text description.
    pub description: String,
    /// zstd level, 1-19.
    pub level: i32,
    /// Keep file names out of the outer manifest.
    pub seal_names: bool,
    /// Skip symlinks, FIFOs, sockets and devices instead of refusing them.
    pub skip_special: bool,
    /// Clamp recorded modification times to this (`SOURCE_DATE_EPOCH`), for
    /// reproducible payloads.
    pub source_date_epoch: Option<u64>,
    /// Split the payload into parts of at most this many bytes. Without it,
    /// pack splits at the FAT32 limit by itself when OUTDIR is on FAT.
    pub split: Option<u64>,
    /// Read every output file back from the device after writing; `None`
    /// means: when OUTDIR is on removable media.
    pub verify_after_write: Option<bool>,
    /// Pack names that Windows or FAT/exFAT cannot hold.
    pub allow_unportable_names: bool,
    /// The sender's ledger: gives the channel's next sequence number and
    /// records the bundle as packed. `None`: no ledger, no sequence number.
    pub ledger: Option<PathBuf>,
    /// Where progress goes.
    pub progress: crate::progress::Handle,
    /// Include and exclude globs (from a pack spec).
    pub filter: crate::format::filter::Filter,
    /// Do not refuse a pack that might not fit in OUTDIR (the estimate
    /// takes the files as incompressible).
    pub no_space_check: bool,
    /// zstd worker threads besides the calling one (0: compress on the
    /// calling thread). See [`default_zstd_workers`].
    pub zstd_workers: u32,
    /// Write PAR 2.0 recovery files of this many percent of the payload
    /// (see [`crate::parity`]).
    pub parity: Option<u32>,
    /// Pack a delta: only what changed since a base (see [`crate::delta`]).
    pub delta: Option<crate::delta::base::DeltaRequest>,
}

/// zstd workers for this machine, besides the compressing stage's own
/// thread: none on two cores or fewer, where the pack's stages (loading,
/// archive, compressing, encrypting, writing) already keep both busy and
/// workers would only add the cost of their jobs' overlaps (on the mixed
/// corpus 15 % more CPU, for a 7 % larger payload); else one per core
/// beyond two, at most four. `POUCH_ZSTD_WORKERS` overrides it (for
/// benchmarks). Measured with bench/compare.sh; see the README.
pub fn default_zstd_workers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    std::env::var("POUCH_ZSTD_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cores.saturating_sub(2).min(4))
}

/// What pack wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PackReport {
    /// The signed outer manifest.
    pub manifest_path: PathBuf,
    /// The payload file, or its parts in order.
    pub payload_files: Vec<PathBuf>,
    /// The PAR 2.0 recovery files, index first (none without parity).
    pub parity_files: Vec<PathBuf>,
    /// The signature.
    pub signature_path: PathBuf,
    /// The manifest as written.
    pub manifest: Manifest,
    /// Special files skipped because of `skip_special`.
    pub skipped: Vec<PathBuf>,
    /// True when pack split the payload by itself because OUTDIR is on FAT.
    pub auto_split: bool,
    /// True when every output file was read back from the device and matched.
    pub verified_after_write: bool,
    /// sha256 of the manifest file.
    pub manifest_sha256: String,
}

/// The checks [`pack`] and [`dry_run`] share before looking at the disk:
/// something to pack, and recipients of one kind (post-quantum if required).
fn check_request(opts: &PackOptions) -> Result<()> {
    if opts.sources.is_empty() {
        return Err(Error::Usage(
            "nothing to pack: name at least one file or folder".into(),
        ));
    }
    crypto::check_recipient_set(&opts.recipients, opts.require_pq)
}

/// Seals `opts.sources` into a bundle in `opts.out_dir`, signed with `key`.
pub fn pack(opts: &PackOptions, key: &SigningKey) -> Result<PackReport> {
    check_options(opts)?;
    let id = Identity::new(opts)?;
    let target = Target::choose(opts, &id.name)?;
    preflight::check_space(opts)?;

    // The ledger stays locked from choosing the sequence number until the
    // bundle is recorded, so two packs cannot take the same number.
    let mut ledger = opts.ledger.as_deref().map(Ledger::open).transpose()?;
    if let Some(l) = &mut ledger {
        intent::recover(l)?;
    }
    // Shared with other packs into OUTDIR; what an interrupted one left
    // there is removed first when no other is running.
    let _out = FolderLock::take(&opts.out_dir, || leftovers::clean(&opts.out_dir))?;
    let channel = channel_for(opts, &mut ledger)?;
    let base = delta::delta_base(opts, &mut ledger, &key.trusted())?.map(std::sync::Mutex::new);
    // The sender records the tree of every bundle of a channel, so that a
    // later delta can build on it.
    let record = opts.ledger.is_some() && opts.sender.is_some() && opts.receiver.is_some();
    let tree = stages::Tree {
        record: record || base.is_some(),
        base: base.as_ref(),
    };

    let (mut payload, skipped, kept) = write_payload(opts, &id, target.split, tree)?;
    let (state, delta) = delta::tree_and_delta(&mut payload.listed, kept, base, opts.seal_names)?;
    let bundle_id = id.bundle_id.clone();
    let (mut m, written, mut listed, parity_count) =
        manifest_and_parity(opts, key, (id, channel), target.split.is_some(), payload)?;
    m.delta = delta;
    let list_err = |e: std::io::Error| Error::io("reading", "the entry list (a temporary file)", e);
    let mut no_names = std::io::empty();
    let mut tables = listed.tables().map_err(list_err)?;
    let entries: &mut dyn std::io::Read = match opts.seal_names {
        true => &mut no_names,
        false => &mut tables,
    };
    // The sequence number is reserved in the ledger (an intent) before the
    // bundle is committed, and the intent settled after: see
    // `custody::intent`.
    let mut reserved = None;
    let sealed = seal(
        (&m, entries),
        key,
        written,
        &target.manifest_path,
        &opts.out_dir,
        opts.verify_after_write,
        &mut |sha| {
            if let Some(l) = &mut ledger {
                let r = Record::about(Event::Reserved, &m, sha);
                reserved = Some(intent::intend(l, r, &target.manifest_path)?);
            }
            Ok(())
        },
    );
    let sealed = match (sealed, &mut ledger, &reserved) {
        (Ok(s), _, _) => s,
        (Err(e), Some(l), Some(r)) => {
            // Nothing was committed (or it was taken back); a failure to
            // say so is settled by the next run.
            let _ = intent::settle(
                l,
                r,
                Event::Abandoned,
                Some(format!("the pack failed: {e}")),
            );
            return Err(e);
        }
        (Err(e), ..) => return Err(e),
    };
    if let (Some(l), Some(r)) = (&mut ledger, &reserved) {
        // The bundle is committed: from here on, a failure is a warning
        // (the next run records what this one could not), never an error.
        match intent::settle(l, r, Event::Packed, None) {
            // The sender owns its ledger: its signing key vouches for it.
            Ok(_) => {
                if let Err(e) = crate::custody::ledger_seal::sign_ledger(l, key) {
                    crate::notice::notice(&format!(
                        "warning: the bundle is complete and recorded, but the ledger's signature could not be renewed ({e}); run pouch ledger sign -s KEY"
                    ));
                }
            }
            Err(e) => crate::notice::notice(&format!(
                "warning: the bundle is complete, but the ledger could not record it ({e}); the next pouch command that writes the ledger records it (or run pouch ledger repair)"
            )),
        }
    }
    if let (true, Some(l), Some(state)) = (record, &mut ledger, state) {
        delta::save_tree(opts, state, (&bundle_id, &sealed.manifest_sha256));
        if let Ok(records) = l.records_where(base::bears_on_bases) {
            let channel = (opts.sender.as_deref(), opts.receiver.as_deref());
            base::prune(l.path(), &records, channel);
        }
    }
    let mut payload_files = sealed.payload_files;
    let parity_files = payload_files.split_off(payload_files.len() - parity_count);
    Ok(PackReport {
        manifest_sha256: sealed.manifest_sha256,
        manifest_path: target.manifest_path,
        payload_files,
        parity_files,
        signature_path: target.signature_path,
        manifest: m,
        skipped,
        auto_split: target.auto_split,
        verified_after_write: sealed.verified_after_write,
    })
}

/// The bundle's channel, with its sequence number and the previous
/// manifest's sha256 from the (locked) ledger.
fn channel_for(opts: &PackOptions, ledger: &mut Option<Ledger>) -> Result<Channel> {
    let (sequence, previous_manifest_sha256) = match (&opts.sender, &opts.receiver, ledger) {
        (Some(s), Some(r), Some(l)) => {
            let (n, prev) = ledger::next_sequence(
                &l.records_where(|rec| {
                    matches!(rec.event, Event::Packed | Event::Reserved)
                        && rec.sender.as_deref() == Some(s)
                        && rec.receiver.as_deref() == Some(r)
                })?,
                s,
                r,
            );
            (Some(n), prev)
        }
        _ => (None, None),
    };
    Ok(Channel {
        sender: opts.sender.clone(),
        receiver: opts.receiver.clone(),
        sequence,
        previous_manifest_sha256,
    })
}

/// The checks of the request [`pack`] makes before listing the sources:
/// those [`dry_run`] shares, then recipients, level, party names and the
/// output folder.
fn check_options(opts: &PackOptions) -> Result<()> {
    check_request(opts)?;
    if opts.recipients.is_empty() {
        return Err(Error::Usage(
            "no recipients: pass at least one -r age1… or -R FILE".into(),
        ));
    }
    if !(1..=19).contains(&opts.level) {
        return Err(Error::Usage(format!(
            "--level {} is out of range: use 1 (fastest) to 19 (smallest)",
            opts.level
        )));
    }
    for party in [&opts.sender, &opts.receiver].into_iter().flatten() {
        manifest::check_party_name(party).map_err(Error::Usage)?;
    }
    let meta = fs::metadata(&opts.out_dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::Refused(format!(
            "output folder {} does not exist; create it first (pouch never creates folders on media by itself)",
            opts.out_dir.display()
        )),
        _ => Error::io("checking", &opts.out_dir, e),
    })?;
    if !meta.is_dir() {
        return Err(Error::Refused(format!(
            "output {} is not a folder",
            opts.out_dir.display()
        )));
    }
    Ok(())
}

/// Who the bundle is: its random id, its name and when it was made.
struct Identity {
    bundle_id: String,
    name: String,
    created: String,
    now: time::OffsetDateTime,
}

impl Identity {
    /// A fresh id; the name from `opts`, or by default `YYYYMMDD-HHMMSS-`
    /// and 8 digits of the id.
    fn new(opts: &PackOptions) -> Result<Identity> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| Error::Internal(format!("no randomness available: {e}")))?;
        let bundle_id = hex::encode(id);
        let now = time::OffsetDateTime::now_utc();
        let created = manifest::format_time(now);
        let name = match &opts.name {
            Some(n) => n.clone(),
            None => {
                let stamp =
                    time::macros::format_description!("[year][month][day]-[hour][minute][second]");
                format!(
                    "{}-{}",
                    now.format(&stamp).unwrap_or_default(),
                    &bundle_id[..8]
                )
            }
        };
        manifest::check_bundle_name(&name).map_err(Error::Usage)?;
        Ok(Identity {
            bundle_id,
            name,
            created,
            now,
        })
    }
}

/// Where the bundle goes: its paths, checked free, and how it is split.
struct Target {
    manifest_path: PathBuf,
    signature_path: PathBuf,
    split: Option<u64>,
    /// Split by pack itself because OUTDIR is on FAT.
    auto_split: bool,
}

impl Target {
    /// Refuses to overwrite any file of a bundle called `name` in OUTDIR, and
    /// splits at the FAT32 limit there unless told otherwise.
    fn choose(opts: &PackOptions, name: &str) -> Result<Target> {
        let manifest_path = opts.out_dir.join(format!("{name}.toml"));
        let signature_path = signature::signature_path(&manifest_path);
        for p in [
            &opts.out_dir.join(format!("{name}.age")),
            &opts.out_dir.join(media::part_name(name, 0)),
            &opts.out_dir.join(crate::format::parity::index_name(name)),
            &manifest_path,
            &signature_path,
        ] {
            durable::ensure_absent(p)?;
        }
        let on_fat = media::is_fat(&opts.out_dir);
        let auto_split = opts.split.is_none() && on_fat;
        let split = match opts.split {
            Some(size) if on_fat && size > media::FAT32_PART => {
                return Err(Error::Usage(format!(
                    "{} is on FAT, where no file may reach 4 GiB and fsck.fat reports files of more than 4 GiB - 1 MiB as broken; use --media fat32 (parts of 4 GiB - 1 MiB) or a smaller --split",
                    opts.out_dir.display()
                )))
            }
            Some(size) => Some(size),
            None if on_fat => Some(media::FAT32_PART),
            None => None,
        };
        Ok(Target {
            manifest_path,
            signature_path,
            split,
            auto_split,
        })
    }
}

/// The payload on disk under temporary names, and what went into it.
struct Written {
    listed: listed::Listed,
    files: Vec<media::Written>,
    size: u64,
    sha256: String,
}

/// Lists the sources and runs the stream stages over what is listed, into
/// parts of at most `split` bytes, reporting progress; returns the payload
/// still under temporary names and the special files skipped. The listing
/// runs on a thread of its own, ahead of packing: a source that cannot be
/// packed stops the pack as soon as it is found, with nothing committed.
fn write_payload(
    opts: &PackOptions,
    id: &Identity,
    split: Option<u64>,
    tree: stages::Tree<'_>,
) -> Result<(Written, Vec<PathBuf>, Spill)> {
    let inner_mtime = opts
        .source_date_epoch
        .unwrap_or(id.now.unix_timestamp().max(0) as u64);
    let writer = media::PartWriter::new(&opts.out_dir, &id.name, split);
    opts.progress.start("packing", 0);
    let (tx, rx) = std::sync::mpsc::sync_channel(LISTED_AHEAD / BATCH);
    let kept = std::sync::Mutex::new(Spill::new().map_err(crate::delta::spill::failed)?);
    let (written, skipped) = std::thread::scope(|scope| {
        let kept = &kept;
        let lister = scope.spawn(move || list(opts, tx, tree.base.map(|b| (b, kept))));
        let (loaded_tx, loaded_rx) = std::sync::mpsc::sync_channel(load::DEPTH);
        scope.spawn(move || load::run(rx, loaded_tx));
        let written =
            stages::write_payload(writer, loaded_rx.into_iter(), opts, (inner_mtime, tree));
        let skipped = lister.join();
        (written, skipped)
    });
    opts.progress.finish();
    let (listed, writer) = written?;
    let skipped = skipped
        .map_err(|_| Error::Internal("the listing stopped unexpectedly".into()))?
        // The packing stage ended well, so it read the listing to its end.
        .unwrap_or_default();
    let (files, size, sha256) = writer.finish()?;
    let kept = kept
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok((
        Written {
            listed,
            files,
            size,
            sha256,
        },
        skipped,
        kept,
    ))
}

/// [`manifest_for`], with the PAR 2.0 recovery files (when asked) made
/// over the payload and recorded in the manifest; the last value is how
/// many of the files are recovery files (they come last).
fn manifest_and_parity(
    opts: &PackOptions,
    key: &SigningKey,
    (id, channel): (Identity, Channel),
    split: bool,
    payload: Written,
) -> Result<(Manifest, Vec<media::Written>, listed::Listed, usize)> {
    let recovery = opts
        .parity
        .map(|pct| make_parity(opts, &id.name, &payload.files, pct))
        .transpose()?;
    let (mut m, mut written, listed) = manifest_for(opts, key, id, channel, split, payload);
    let count = recovery.as_ref().map_or(0, |r| r.0.len());
    if let Some((files, record)) = recovery {
        written.extend(files);
        m.payload.parity = Some(record);
    }
    Ok((m, written, listed, count))
}

/// PAR 2.0 recovery files of `pct` % over the payload just written (still
/// under temporary names), and the manifest's record of them.
fn make_parity(
    opts: &PackOptions,
    name: &str,
    files: &[media::Written],
    pct: u32,
) -> Result<(Vec<media::Written>, crate::format::parity::Parity)> {
    opts.progress.start("parity", 0);
    let made = crate::parity::create_over(&opts.out_dir, name, files, pct);
    opts.progress.finish();
    made
}

/// Entries listed and not yet packed, at most.
const LISTED_AHEAD: usize = 1024;
/// Entries are handed over in batches of at most this many, or of files
/// of [`BATCH_BYTES`] together: one hand-over per entry costs more than
/// packing a small file.
const BATCH: usize = 128;
const BATCH_BYTES: u64 = 8 << 20;

/// The listing stage: sends each entry to pack, then the end of the list,
/// or the error that stops the pack (a source that cannot be packed, names
/// some filesystem cannot hold). Returns the special files skipped, or
/// `None` once the packing stage has stopped reading.
fn list(
    opts: &PackOptions,
    tx: std::sync::mpsc::SyncSender<Result<Vec<plan::Planned>>>,
    delta: Option<(&std::sync::Mutex<Base>, &std::sync::Mutex<Spill>)>,
) -> Option<Vec<PathBuf>> {
    let mut unportable = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut bytes = 0;
    let send = |batch: &mut Vec<plan::Planned>| {
        let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
        tx.send(Ok(full)).map_err(|_| Error::Interrupted)
    };
    let listed = plan::walk(
        &opts.sources,
        opts.skip_special,
        opts.source_date_epoch,
        &opts.filter,
        &mut |p| {
            if !opts.allow_unportable_names {
                unportable.extend(plan::unportable_name(&p.path));
            }
            if let Some((base, kept)) = delta {
                if let Some(item) = stages::lock(base).judge(&base::Listed {
                    path: &p.path,
                    kind: p.kind,
                    source: &p.source,
                    size: p.size,
                    executable: p.executable,
                    stamp: p.stamp,
                })? {
                    // Unchanged since the base: recorded, not packed.
                    stages::lock(kept)
                        .push(&item)
                        .map_err(crate::delta::spill::failed)?;
                    return Ok(());
                }
            }
            opts.progress.more(p.size);
            bytes += p.size;
            batch.push(p);
            if batch.len() < BATCH && bytes < BATCH_BYTES {
                return Ok(());
            }
            bytes = 0;
            send(&mut batch)
        },
    );
    let failed = match listed {
        Ok(skipped) if unportable.is_empty() => {
            return send(&mut batch).ok().map(|_| skipped);
        }
        Ok(_) => Error::Unportable {
            problems: unportable,
        },
        Err(e) => e,
    };
    let _ = tx.send(Err(failed));
    None
}

/// The outer manifest for the payload written, without its entry list
/// (which stays on disk, see [`listed`]); hands the payload's files and the
/// list on to [`seal`].
fn manifest_for(
    opts: &PackOptions,
    key: &SigningKey,
    id: Identity,
    channel: Channel,
    split: bool,
    payload: Written,
) -> (Manifest, Vec<media::Written>, listed::Listed) {
    let Written {
        listed,
        files: written,
        size,
        sha256,
    } = payload;
    let (files, folders, total_bytes) = listed.counts;
    let contents = Contents {
        files,
        folders,
        total_bytes,
        entries_sha256: listed.digest(),
        sealed_names: opts.seal_names,
    };
    let parts = if split {
        media::parts_of(&id.name, &written)
    } else {
        Vec::new()
    };
    let m = Manifest {
        format_version: manifest::FORMAT_VERSION,
        bundle_id: id.bundle_id,
        name: id.name.clone(),
        created: id.created,
        tool: format!("pouch {}", env!("CARGO_PKG_VERSION")),
        marking: opts.marking.clone(),
        description: opts.description.clone(),
        channel,
        signer: Signer {
            key_id: key.key_id.clone(),
        },
        recipients: opts
            .recipients
            .iter()
            .map(|r| RecipientInfo {
                kind: r.kind().into(),
                fingerprint: crypto::fingerprint(r),
            })
            .collect(),
        payload: Payload {
            file: format!("{}.age", id.name),
            size,
            sha256,
            layers: "age+zstd+tar".into(),
            parts,
            parity: None,
        },
        contents,
        delta: None,
        entries: Vec::new(),
    };
    (m, written, listed)
}
