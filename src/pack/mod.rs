//! Sealing files into a bundle.
//!
//! One pass over the sources: each file is read once, hashed as it goes into
//! the tar, and the tar stream is compressed (zstd), encrypted (age) and hashed
//! again on its way to disk. The manifest is written and signed last. All three
//! files are written under temporary names and renamed into place only when
//! every one of them is complete and fsynced, so an interrupted pack never
//! leaves a bundle that looks complete.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::custody::ledger::{self, Event, Ledger, NewRecord};
use crate::disk::durable::{self, PendingFile};
use crate::disk::media;
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::{
    self, Channel, Contents, Entry, EntryKind, InnerManifest, Manifest, Payload, RecipientInfo,
    Signer,
};
use crate::format::names;
use crate::payload::archive::TarWriter;
use crate::payload::crypto;
use crate::payload::pipeline::{self, ChannelWriter};
use crate::signature::{self, SigningKey};

/// The compression level used unless the clerk picks another.
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
    pub filter: crate::settings::config::Filter,
    /// zstd worker threads besides the calling one (0: compress on the
    /// calling thread). See [`default_zstd_workers`].
    pub zstd_workers: u32,
}

/// zstd workers for this machine: one per core, at most four, when there
/// are at least two cores (the reading, hashing and tar thread then hands
/// compression to them); none on one core. `POUCH_ZSTD_WORKERS` overrides it
/// (for benchmarks). Measured with bench/compare.sh; see the README.
pub fn default_zstd_workers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    std::env::var("POUCH_ZSTD_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cores >= 2 { cores.min(4) } else { 0 })
}

/// What pack wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PackReport {
    /// The signed outer manifest.
    pub manifest_path: PathBuf,
    /// The payload file, or its parts in order.
    pub payload_files: Vec<PathBuf>,
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

/// One entry to pack, as found when the sources were listed.
struct Planned {
    source: PathBuf,
    path: String,
    kind: EntryKind,
    size: u64,
    executable: bool,
    mtime: u64,
    ino: (u64, u64),
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

/// Every name in `plan` that some filesystem cannot hold, with the reason.
fn unportable(plan: &[Planned]) -> Vec<String> {
    plan.iter()
        .flat_map(|p| {
            crate::format::names::unportable(&p.path)
                .into_iter()
                .map(|why| format!("{}: {why}", crate::format::names::escape(&p.path)))
        })
        .collect()
}

/// Seals `opts.sources` into a bundle in `opts.out_dir`, signed with `key`.
pub fn pack(opts: &PackOptions, key: &SigningKey) -> Result<PackReport> {
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
        io::ErrorKind::NotFound => Error::Usage(format!(
            "output folder {} does not exist; create it first (pouch never creates folders on media by itself)",
            opts.out_dir.display()
        )),
        _ => Error::io("checking", &opts.out_dir, e),
    })?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "output {} is not a folder",
            opts.out_dir.display()
        )));
    }

    let (plan, skipped) = plan(
        &opts.sources,
        opts.skip_special,
        opts.source_date_epoch,
        &opts.filter,
    )?;
    if !opts.allow_unportable_names {
        let problems = unportable(&plan);
        if !problems.is_empty() {
            return Err(Error::Unportable { problems });
        }
    }

    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| Error::Usage(format!("no randomness available: {e}")))?;
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

    let manifest_path = opts.out_dir.join(format!("{name}.toml"));
    let signature_path = signature::signature_path(&manifest_path);
    for p in [
        &opts.out_dir.join(format!("{name}.age")),
        &opts.out_dir.join(media::part_name(&name, 0)),
        &manifest_path,
        &signature_path,
    ] {
        durable::ensure_absent(p)?;
    }
    let on_fat = media::is_fat(&opts.out_dir);
    let auto_split = opts.split.is_none() && on_fat;
    let split = match opts.split {
        Some(size) if on_fat && size > media::FAT32_MAX_FILE => {
            return Err(Error::Usage(format!(
                "{} is on FAT, where no file may reach 4 GiB; use --split 4G-1 or smaller (--media fat32)",
                opts.out_dir.display()
            )))
        }
        Some(size) => Some(size),
        None if on_fat => Some(media::FAT32_MAX_FILE),
        None => None,
    };

    // The ledger stays locked from choosing the sequence number until the
    // bundle is recorded, so two packs cannot take the same number.
    let mut ledger = opts.ledger.as_deref().map(Ledger::open).transpose()?;
    let (sequence, previous_manifest_sha256) = match (&opts.sender, &opts.receiver, &mut ledger) {
        (Some(s), Some(r), Some(l)) => {
            let (n, prev) = ledger::next_sequence(&l.records()?, s, r);
            (Some(n), prev)
        }
        _ => (None, None),
    };

    let inner_mtime = opts
        .source_date_epoch
        .unwrap_or(now.unix_timestamp().max(0) as u64);
    let writer = media::PartWriter::new(&opts.out_dir, &name, split);
    let total: u64 = plan.iter().map(|p| p.size).sum();
    opts.progress.start("packing", total);
    let written = write_payload(writer, &plan, opts, inner_mtime);
    opts.progress.finish();
    let (entries, writer) = written?;
    let (written, payload_size, payload_sha256) = writer.finish()?;

    let (files, folders, total_bytes) = manifest::count(&entries);
    let contents = Contents {
        files,
        folders,
        total_bytes,
        entries_sha256: manifest::entries_digest(&entries),
        sealed_names: opts.seal_names,
    };
    let parts = if split.is_some() {
        media::parts_of(&name, &written)
    } else {
        Vec::new()
    };
    let m = Manifest {
        format_version: manifest::FORMAT_VERSION,
        bundle_id: bundle_id.clone(),
        name: name.clone(),
        created,
        tool: format!("pouch {}", env!("CARGO_PKG_VERSION")),
        marking: opts.marking.clone(),
        description: opts.description.clone(),
        channel: Channel {
            sender: opts.sender.clone(),
            receiver: opts.receiver.clone(),
            sequence,
            previous_manifest_sha256,
        },
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
            file: format!("{name}.age"),
            size: payload_size,
            sha256: payload_sha256,
            layers: "age+zstd+tar".into(),
            parts,
        },
        contents,
        entries: if opts.seal_names { Vec::new() } else { entries },
    };
    let sealed = seal(
        &m,
        key,
        written,
        &manifest_path,
        &opts.out_dir,
        opts.verify_after_write,
    )?;
    if let Some(l) = &mut ledger {
        l.append(NewRecord::about(Event::Packed, &m, &sealed.manifest_sha256))?;
    }
    Ok(PackReport {
        manifest_sha256: sealed.manifest_sha256,
        manifest_path,
        payload_files: sealed.payload_files,
        signature_path,
        manifest: m,
        skipped,
        auto_split,
        verified_after_write: sealed.verified_after_write,
    })
}

/// What [`seal`] committed.
pub(crate) struct Sealed {
    /// The payload file or its parts, in order.
    pub payload_files: Vec<PathBuf>,
    /// sha256 of the manifest file.
    pub manifest_sha256: String,
    /// Whether every file was read back from the device and matched.
    pub verified_after_write: bool,
}

/// Signs `m` and commits the payload files, the manifest and the signature,
/// in that order, all or nothing; then, if asked (or, by default, when
/// `out_dir` is on removable media), reads every file back from the device.
pub(crate) fn seal(
    m: &Manifest,
    key: &SigningKey,
    payload: Vec<media::Written>,
    manifest_path: &Path,
    out_dir: &Path,
    verify_after_write: Option<bool>,
) -> Result<Sealed> {
    m.validate().map_err(|r| {
        Error::Usage(format!(
            "internal error: the manifest pouch made is invalid: {r}"
        ))
    })?;
    let text = m.to_toml();
    let sig = key.sign_manifest(text.as_bytes(), &m.bundle_id, &m.name)?;
    let mut files = Vec::new();
    let mut hashes = Vec::new();
    for w in payload {
        files.push(w.file);
        hashes.push(w.sha256);
    }
    for (path, bytes) in [
        (manifest_path.to_path_buf(), text.into_bytes()),
        (signature::signature_path(manifest_path), sig.into_bytes()),
    ] {
        let mut f = PendingFile::create(&path, 0o644)?;
        f.write_all(&bytes)?;
        files.push(f.sync()?);
        hashes.push(crate::payload::hashing::sha256_hex(&bytes));
    }
    let manifest_sha256 = hashes[hashes.len() - 2].clone();
    // Everything is on disk under temporary names; now the renames, in
    // order, undoing the earlier ones if a later one fails.
    let paths = durable::commit_all(files)?;
    let verified_after_write = verify_after_write.unwrap_or_else(|| media::is_removable(out_dir));
    if verified_after_write {
        for (path, want) in paths.iter().zip(&hashes) {
            let got = media::read_back(path)?;
            if &got != want {
                return Err(Error::MediaFault {
                    path: path.clone(),
                    reason: format!("reads back with sha256 {got}, but {want} was written"),
                });
            }
        }
    }
    let payload_count = paths.len() - 2;
    Ok(Sealed {
        payload_files: paths.into_iter().take(payload_count).collect(),
        manifest_sha256,
        verified_after_write,
    })
}

/// Lists everything to pack, in order, refusing what cannot be packed.
fn plan(
    sources: &[PathBuf],
    skip_special: bool,
    sde: Option<u64>,
    filter: &crate::settings::config::Filter,
) -> Result<(Vec<Planned>, Vec<PathBuf>)> {
    let mut plan: Vec<Planned> = Vec::new();
    let mut skipped = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut folded: HashMap<String, String> = HashMap::new();
    for source in sources {
        let meta = fs::symlink_metadata(source).doing("reading the metadata of", source)?;
        let top = top_name(source)?;
        if !meta.is_dir() && !meta.is_file() {
            if skip_special {
                skipped.push(source.clone());
                continue;
            }
            return Err(special(source, &meta));
        }
        if meta.is_file() {
            if !filter.keeps_file(&top) {
                continue;
            }
            add(
                &mut plan,
                &mut names,
                &mut folded,
                source.clone(),
                top,
                &meta,
                sde,
            )?;
            continue;
        }
        let walker = walkdir::WalkDir::new(source)
            .follow_links(false)
            .sort_by_file_name();
        let mut walk = walker.into_iter();
        while let Some(item) = walk.next() {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(source).to_path_buf();
                match e.into_io_error() {
                    Some(io) => Error::io("listing", path, io),
                    None => Error::BadSource {
                        path,
                        reason: "filesystem loop".into(),
                    },
                }
            })?;
            let meta = item.metadata().map_err(|e| Error::BadSource {
                path: item.path().to_path_buf(),
                reason: e.to_string(),
            })?;
            if !meta.is_dir() && !meta.is_file() {
                if skip_special {
                    skipped.push(item.path().to_path_buf());
                    continue;
                }
                return Err(special(item.path(), &meta));
            }
            let rel = item.path().strip_prefix(source).unwrap_or(Path::new(""));
            let mut path = top.clone();
            for part in rel.components() {
                let part = part.as_os_str().to_str().ok_or_else(|| Error::BadSource {
                    path: item.path().to_path_buf(),
                    reason: "name is not valid UTF-8; rename it".into(),
                })?;
                path.push('/');
                path.push_str(&crate::format::names::nfc(part));
            }
            if meta.is_dir() && !filter.keeps_folder(&path) {
                walk.skip_current_dir();
                continue;
            }
            if meta.is_file() && !filter.keeps_file(&path) {
                continue;
            }
            add(
                &mut plan,
                &mut names,
                &mut folded,
                item.path().to_path_buf(),
                path,
                &meta,
                sde,
            )?;
        }
    }
    Ok((plan, skipped))
}

fn add(
    plan: &mut Vec<Planned>,
    names: &mut HashSet<String>,
    folded: &mut HashMap<String, String>,
    source: PathBuf,
    path: String,
    meta: &fs::Metadata,
    sde: Option<u64>,
) -> Result<()> {
    names::check_path(path.as_bytes()).map_err(|r| Error::BadSource {
        path: source.clone(),
        reason: format!("cannot be packed: {r}"),
    })?;
    if path == manifest::INNER_MANIFEST_NAME {
        return Err(Error::BadSource {
            path: source,
            reason: format!(
                "the name {} is reserved for pouch's inner manifest",
                manifest::INNER_MANIFEST_NAME
            ),
        });
    }
    if let Some(other) = folded.insert(names::fold(&path), path.clone()) {
        if other != path {
            return Err(Error::BadSource {
                path: source,
                reason: format!(
                    "its name collides with {other:?} on filesystems that ignore case or Unicode normalisation; rename one"
                ),
            });
        }
    }
    if !names.insert(path.clone()) {
        return Err(Error::BadSource {
            path: source,
            reason: format!("two sources would both be stored as {path:?}; pack them from different folders or rename one"),
        });
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let mtime = match sde {
        Some(sde) => mtime.min(sde),
        None => mtime,
    };
    plan.push(Planned {
        source,
        path,
        kind: if meta.is_dir() {
            EntryKind::Folder
        } else {
            EntryKind::File
        },
        size: if meta.is_dir() { 0 } else { meta.len() },
        executable: meta.is_file() && meta.permissions().mode() & 0o111 != 0,
        mtime,
        ino: (meta.dev(), meta.ino()),
    });
    Ok(())
}

/// The name a source gets at the top of the bundle: its own file name.
fn top_name(source: &Path) -> Result<String> {
    let resolved;
    let mut name = source.file_name();
    if name.is_none() {
        // `.`, `..` or a path ending in them: use the folder's real name.
        resolved = fs::canonicalize(source).doing("resolving", source)?;
        name = resolved.file_name();
    }
    let name = name.ok_or_else(|| Error::BadSource {
        path: source.to_path_buf(),
        reason: "has no name to store it under (the root folder cannot be packed)".into(),
    })?;
    name.to_str()
        .map(crate::format::names::nfc)
        .ok_or_else(|| Error::BadSource {
            path: source.to_path_buf(),
            reason: "name is not valid UTF-8; rename it".into(),
        })
}

fn special(path: &Path, meta: &fs::Metadata) -> Error {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file or folder"
    };
    Error::BadSource {
        path: path.to_path_buf(),
        reason: format!(
            "is {what}; only regular files and folders are packed (--skip-special skips it)"
        ),
    }
}

/// Writes `age(zstd(tar))` of the plan to `out`; returns the entries as
/// packed and `out`, flushed. Two stages on two threads: this one reads and
/// hashes the files and makes the compressed archive; the other encrypts,
/// hashes and writes (see [`crate::payload::pipeline`]).
fn write_payload<W: Write + Send>(
    out: W,
    plan: &[Planned],
    opts: &PackOptions,
    inner_mtime: u64,
) -> Result<(Vec<Entry>, W)> {
    let out_name = PathBuf::from(format!(
        "{} (payload being written)",
        opts.out_dir.display()
    ));
    let out_err = |e: io::Error| Error::io("writing", &out_name, e);
    let (chan_w, mut chan_r) = pipeline::channel();
    std::thread::scope(|scope| {
        let recipients = &opts.recipients;
        let out_err = &out_err;
        let writer = scope.spawn(move || -> Result<W> {
            let mut encrypted =
                crypto::encrypt(recipients, BufWriter::with_capacity(1 << 20, out))?;
            let mut buf = vec![0u8; pipeline::CHUNK];
            loop {
                let n = chan_r.read(&mut buf).map_err(out_err)?;
                if n == 0 {
                    break;
                }
                encrypted.write_all(&buf[..n]).map_err(out_err)?;
            }
            let buffered = encrypted.finish().map_err(out_err)?;
            buffered.into_inner().map_err(|e| out_err(e.into_error()))
        });
        let produced = compress(chan_w, plan, opts, inner_mtime, out_err);
        let written = writer.join().map_err(|_| {
            Error::Usage("internal error: the writing stage stopped unexpectedly".into())
        })?;
        match (produced, written) {
            (Ok(entries), Ok(out)) => Ok((entries, out)),
            // The writer's failure (a full disk, say) is the root cause of
            // the compressing stage's broken channel.
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e),
        }
    })
}

/// The first stage: reads and hashes the files into a zstd-compressed tar
/// sent down the channel; returns the entries as packed.
fn compress(
    chan: ChannelWriter,
    plan: &[Planned],
    opts: &PackOptions,
    inner_mtime: u64,
    out_err: &dyn Fn(io::Error) -> Error,
) -> Result<Vec<Entry>> {
    let mut tar =
        TarWriter::new(Frames::new(chan, opts.level, opts.zstd_workers).map_err(out_err)?);
    let mut entries = Vec::with_capacity(plan.len());
    for p in plan {
        crate::interrupt::check()?;
        match p.kind {
            EntryKind::Folder => {
                tar.folder(&p.path, p.mtime).map_err(out_err)?;
                entries.push(Entry::folder(p.path.clone()));
            }
            EntryKind::File => {
                opts.progress.item(&p.path);
                // Already-compressed files (photos, PDFs, archives) go into a
                // frame at the fastest level: compressing them again costs
                // time and saves nothing. Stock zstd reads the concatenation.
                let level = if opts.level > 1 && p.size >= ADAPTIVE_MIN && incompressible(&p.source)
                {
                    1
                } else {
                    opts.level
                };
                tar.inner_mut().switch(level).map_err(out_err)?;
                let sha = append_file(&mut tar, p, out_err, &opts.progress)?;
                entries.push(Entry::file(p.path.clone(), p.size, sha, p.executable));
            }
        }
    }
    tar.inner_mut().switch(opts.level).map_err(out_err)?;
    let inner = InnerManifest {
        format_version: manifest::FORMAT_VERSION,
        entries,
    };
    let inner_text = inner.to_toml();
    tar.file(
        manifest::INNER_MANIFEST_NAME,
        inner_text.len() as u64,
        false,
        inner_mtime,
        inner_text.as_bytes(),
    )
    .map_err(out_err)?;
    let frames = tar.finish().map_err(out_err)?;
    let chan = frames.finish().map_err(out_err)?;
    chan.close().map_err(out_err)?;
    Ok(inner.entries)
}

/// Files smaller than this are compressed at the chosen level whatever they hold.
const ADAPTIVE_MIN: u64 = 1 << 20;

/// Whether a file looks already compressed: its first 128 KiB shrink by
/// less than 3 % at zstd's fastest level. Cheap, and read from the page
/// cache again right after.
fn incompressible(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut sample = vec![0u8; 128 * 1024];
    let Ok(n) = file.read_at(&mut sample, 0) else {
        return false;
    };
    sample.truncate(n);
    zstd::bulk::compress(&sample, 1).is_ok_and(|c| c.len() * 100 > n * 97)
}

/// A zstd stream made of frames whose level can change between entries:
/// [`Frames::switch`] ends the current frame and starts the next at another
/// level. Concatenated frames are one valid zstd stream.
struct Frames {
    encoder: Option<zstd::stream::write::Encoder<'static, ChannelWriter>>,
    level: i32,
    workers: u32,
}

impl Frames {
    fn new(chan: ChannelWriter, level: i32, workers: u32) -> io::Result<Frames> {
        Ok(Frames {
            encoder: Some(Self::encoder(chan, level, workers)?),
            level,
            workers,
        })
    }

    fn encoder(
        chan: ChannelWriter,
        level: i32,
        workers: u32,
    ) -> io::Result<zstd::stream::write::Encoder<'static, ChannelWriter>> {
        let mut e = zstd::stream::write::Encoder::new(chan, level)?;
        e.include_checksum(true)?;
        if workers > 0 {
            e.multithread(workers)?;
            // Smaller jobs than zstd's default (4 windows, 8 MiB at level 3)
            // keep the workers' buffers, and so pouch's memory, small.
            // (Measured on the 1 GiB mixed corpus: 2 MiB jobs cost 1.4 % in
            // size and keep pack under 40 MiB; the default took it to 84 MiB.)
            e.set_parameter(zstd::zstd_safe::CParameter::JobSize(2 << 20))?;
        }
        Ok(e)
    }

    /// Continues at `level`: a new frame if it differs from the current one.
    fn switch(&mut self, level: i32) -> io::Result<()> {
        if level == self.level {
            return Ok(());
        }
        let chan = self.finish_frame()?;
        self.encoder = Some(Self::encoder(chan, level, self.workers)?);
        self.level = level;
        Ok(())
    }

    fn finish_frame(&mut self) -> io::Result<ChannelWriter> {
        match self.encoder.take() {
            Some(e) => e.finish(),
            None => Err(io::Error::other("zstd stream already finished")),
        }
    }

    /// Ends the last frame; returns the channel.
    fn finish(mut self) -> io::Result<ChannelWriter> {
        self.finish_frame()
    }
}

impl Write for Frames {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Some(e) => e.write(buf),
            None => Err(io::Error::other("zstd stream already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Some(e) => e.flush(),
            None => Ok(()),
        }
    }
}

/// Streams one file into the tar, hashing it, and makes sure it did not
/// change while it was read.
fn append_file<W: Write>(
    tar: &mut TarWriter<W>,
    p: &Planned,
    out_err: &dyn Fn(io::Error) -> Error,
    progress: &crate::progress::Handle,
) -> Result<String> {
    let changed = |what: &str| Error::BadSource {
        path: p.source.clone(),
        reason: format!("{what} while being packed; pack again when it is no longer being written"),
    };
    let file = File::open(&p.source).doing("opening", &p.source)?;
    let before = file
        .metadata()
        .doing("reading the metadata of", &p.source)?;
    if !before.is_file() || (before.dev(), before.ino()) != p.ino || before.len() != p.size {
        return Err(changed("changed"));
    }
    let mut reader = ExactReader {
        inner: file,
        remaining: p.size,
        hasher: Sha256::new(),
        failure: None,
        progress: progress.clone(),
    };
    // Large reads: io::copy inside the tar writer reads through the
    // buffer, so each file is read in 1 MiB requests, not 8 KiB ones.
    let capacity = (p.size.min(1 << 20) as usize).max(8 * 1024);
    let written = tar.file(
        &p.path,
        p.size,
        p.executable,
        p.mtime,
        std::io::BufReader::with_capacity(capacity, &mut reader),
    );
    if let Some(f) = reader.failure.take() {
        return Err(match f {
            Failure::Shrank => changed("shrank"),
            Failure::Read(e) => Error::io("reading", &p.source, e),
            Failure::Interrupted => Error::Interrupted,
        });
    }
    written.map_err(out_err)?;
    let mut probe = [0u8; 1];
    if reader.inner.read(&mut probe).doing("reading", &p.source)? != 0 {
        return Err(changed("grew"));
    }
    let after = reader
        .inner
        .metadata()
        .doing("reading the metadata of", &p.source)?;
    if after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
        || after.ctime() != before.ctime()
    {
        return Err(changed("changed"));
    }
    Ok(hex::encode(reader.hasher.finalize()))
}

enum Failure {
    Shrank,
    Read(io::Error),
    Interrupted,
}

/// Yields exactly `remaining` bytes of a file, hashing them, and remembers
/// why it failed so that a source problem is not blamed on the output.
struct ExactReader {
    inner: File,
    remaining: u64,
    hasher: Sha256,
    failure: Option<Failure>,
    progress: crate::progress::Handle,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if crate::interrupt::check().is_err() {
            self.failure = Some(Failure::Interrupted);
            return Err(io::Error::other(crate::progress::INTERRUPTED));
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failure = Some(Failure::Read(e));
                return Err(copy);
            }
        };
        if n == 0 {
            self.failure = Some(Failure::Shrank);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "source file shrank",
            ));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(out: &Path) -> PackOptions {
        PackOptions {
            out_dir: out.to_path_buf(),
            recipients: vec![crypto::Recipient::X25519(
                age::x25519::Identity::generate().to_public(),
            )],
            level: DEFAULT_LEVEL,
            ..Default::default()
        }
    }

    #[test]
    fn a_file_that_changes_after_listing_fails_the_pack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("case");
        fs::create_dir(&src).expect("mkdir");
        fs::write(src.join("a.txt"), "original content").expect("write");
        let (plan, _) =
            plan(std::slice::from_ref(&src), false, None, &Default::default()).expect("plan");
        for new in ["short", "original content, grown"] {
            fs::write(src.join("a.txt"), new).expect("rewrite");
            let mut out = tempfile::tempfile().expect("out");
            let Err(err) = write_payload(&mut out, &plan, &opts(dir.path()), 0) else {
                panic!("a changed file must fail the pack");
            };
            assert!(
                matches!(&err, Error::BadSource { path, reason } if path.ends_with("a.txt") && reason.contains("changed")),
                "{err}"
            );
        }
    }

    #[test]
    fn plan_lists_folders_before_their_files_in_sorted_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("case");
        fs::create_dir_all(src.join("b")).expect("mkdir");
        fs::write(src.join("c.txt"), "c").expect("write");
        fs::write(src.join("a.txt"), "a").expect("write");
        fs::write(src.join("b/z.txt"), "z").expect("write");
        let (plan, _) = plan(&[src], false, None, &Default::default()).expect("plan");
        let paths: Vec<&str> = plan.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["case", "case/a.txt", "case/b", "case/b/z.txt", "case/c.txt"]
        );
    }

    #[test]
    fn the_reserved_inner_manifest_name_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join(manifest::INNER_MANIFEST_NAME);
        fs::write(&f, "x").expect("write");
        assert!(matches!(
            plan(&[f], false, None, &Default::default()),
            Err(Error::BadSource { .. })
        ));
    }
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
    /// Special files that would be skipped.
    pub skipped: Vec<PathBuf>,
    /// Names that some filesystems cannot hold.
    pub unportable: Vec<String>,
}

/// Lists what [`pack`] would pack, with the same checks, writing nothing.
pub fn dry_run(opts: &PackOptions) -> Result<DryRun> {
    check_request(opts)?;
    let (plan, skipped) = plan(
        &opts.sources,
        opts.skip_special,
        opts.source_date_epoch,
        &opts.filter,
    )?;
    let unportable = unportable(&plan);
    let total_bytes: u64 = plan.iter().map(|p| p.size).sum();
    let files = plan.iter().filter(|p| p.kind == EntryKind::File).count() as u64;
    let split = opts
        .split
        .or_else(|| media::is_fat(&opts.out_dir).then_some(media::FAT32_MAX_FILE));
    // An upper bound: headers and age's tags on top of uncompressed data.
    let bound = total_bytes + plan.len() as u64 * 1536 + 64 * 1024 + total_bytes / 4096;
    let estimated_parts = match split {
        Some(size) => bound.div_ceil(size).max(1),
        None => 1,
    };
    Ok(DryRun {
        entries: plan
            .iter()
            .map(|p| {
                (
                    p.path.clone(),
                    if p.kind == EntryKind::File {
                        "file"
                    } else {
                        "folder"
                    }
                    .to_string(),
                    p.size,
                )
            })
            .collect(),
        files,
        folders: plan.len() as u64 - files,
        total_bytes,
        estimated_parts,
        skipped,
        unportable,
    })
}
