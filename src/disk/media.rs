//! Removable media: payloads split into parts, part sizes for each kind of
//! medium, reading parts back as one stream, and facts about the output
//! folder's filesystem (FAT, removable).
//!
//! A split payload is written as `NAME.age.001`, `NAME.age.002`, … whose
//! concatenation is exactly the single-file payload. Each part's size and
//! sha256 are in the signed manifest, so a damaged part is named precisely
//! and only it needs to be copied again.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::disk::durable::{PendingFile, SyncedFile};
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::Part;

/// The largest file FAT32 can hold: 4 GiB − 1 byte.
pub const FAT32_MAX_FILE: u64 = (4 << 30) - 1;

/// The part size on FAT32: 4 GiB − 1 MiB. A file of [`FAT32_MAX_FILE`]
/// bytes fills a cluster chain of 4 GiB, whose length wraps to 0 in 32
/// bits: `fsck.fat` (dosfstools 4.2) then reports it broken and would
/// truncate it to nothing in repair mode. A margin of 1 MiB covers every
/// cluster size FAT32 uses.
pub const FAT32_PART: u64 = (4 << 30) - (1 << 20);

/// The smallest part size accepted.
pub const MIN_PART: u64 = 4096;

/// Media presets: name, part size (None: no split needed), capacity of the
/// medium in bytes (for the unit tests and the docs), and a description.
pub const PRESETS: &[(&str, Option<u64>, u64, &str)] = &[
    (
        "fat32",
        Some(FAT32_PART),
        u64::MAX,
        "USB stick with FAT32: parts of 4 GiB - 1 MiB",
    ),
    (
        "exfat",
        None,
        u64::MAX,
        "exFAT or NTFS disk: no size limit, no split",
    ),
    (
        "dvd",
        Some(4_400_000_000),
        4_700_372_992,
        "DVD±R single layer (4.7 GB), about 6 % kept free",
    ),
    (
        "dvd-dl",
        Some(8_000_000_000),
        8_543_666_176,
        "DVD±R dual layer (8.5 GB), about 6 % kept free",
    ),
    (
        "bd25",
        Some(23_500_000_000),
        25_025_314_816,
        "BD-R single layer (25 GB), about 6 % kept free",
    ),
    (
        "bd50",
        Some(47_000_000_000),
        50_050_629_632,
        "BD-R dual layer (50 GB), about 6 % kept free",
    ),
];

/// The part size for a media preset; `Ok(None)` for media that need no split.
pub fn preset(name: &str) -> Result<Option<u64>> {
    PRESETS
        .iter()
        .find(|p| p.0 == name)
        .map(|p| p.1)
        .ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
            Error::Usage(format!(
                "unknown --media {name:?}; choose one of {}",
                names.join(", ")
            ))
        })
}

/// Parses a size: plain bytes, `K`/`M`/`G`/`T` or `KiB`/`MiB`/`GiB`/`TiB`
/// (powers of 1024), `KB`/`MB`/`GB`/`TB` (powers of 1000).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || {
        Error::Usage(format!(
            "size {text:?} is not understood: use bytes or a number with K, M, G, T (x1024) or KB, MB, GB, TB (x1000)"
        ))
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        "T" | "TIB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let size = n.checked_mul(mult).ok_or_else(bad)?;
    if size < MIN_PART {
        return Err(Error::Usage(format!(
            "part size {text:?} is below the minimum of {MIN_PART} bytes"
        )));
    }
    Ok(size)
}

pub use crate::format::manifest::part_name;

/// The bundle whose payload part `file` is named as (`NAME.age.NNN`, any
/// number of digits), if it is named as one.
pub fn part_of(file: &str) -> Option<&str> {
    let (name, number) = file.rsplit_once(".age.")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// Whether `dir` is on a FAT filesystem (where no file may reach 4 GiB): by
/// the kernel's filesystem magic, or by the mount table for FAT mounted
/// through FUSE.
pub fn is_fat(dir: &Path) -> bool {
    const MSDOS_SUPER_MAGIC: u64 = 0x4d44;
    if rustix::fs::statfs(dir).is_ok_and(|s| s.f_type as u64 == MSDOS_SUPER_MAGIC) {
        return true;
    }
    matches!(
        filesystem_type(dir).as_deref(),
        Some("vfat" | "msdos" | "fuse.fusefat")
    )
}

/// The filesystem type of the mount holding `dir`, from `/proc/self/mountinfo`.
pub fn filesystem_type(dir: &Path) -> Option<String> {
    let dir = fs::canonicalize(dir).ok()?;
    let table = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in table.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let mut fields = line.split(' ');
        let mount_point = fields.nth(4)?.replace("\\040", " ");
        let fstype = line.split(" - ").nth(1)?.split(' ').next()?.to_string();
        if dir.starts_with(&mount_point)
            && best
                .as_ref()
                .is_none_or(|(len, _)| mount_point.len() >= *len)
        {
            best = Some((mount_point.len(), fstype));
        }
    }
    best.map(|(_, t)| t)
}

/// Whether `dir` is on a removable device (USB stick, card, optical disc),
/// as the kernel reports it in `/sys/dev/block/MAJ:MIN/removable` (or the
/// parent device's, for a partition).
pub fn is_removable(dir: &Path) -> bool {
    let Ok(st) = rustix::fs::stat(dir) else {
        return false;
    };
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let base = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let flag = |p: PathBuf| fs::read_to_string(p).is_ok_and(|s| s.trim() == "1");
    flag(base.join("removable")) || flag(base.join("../removable"))
}

/// One file written by [`PartWriter`], with what was recorded while writing.
pub struct Written {
    /// The file, synced, under its temporary name.
    pub file: SyncedFile,
    /// Its size.
    pub size: u64,
    /// Its sha256.
    pub sha256: String,
}

/// The manifest's part list for the files a [`PartWriter`] wrote: none
/// for a payload written as the one file `NAME.age`.
pub fn parts_of(name: &str, written: &[Written]) -> Vec<Part> {
    if written.len() < 2 {
        return Vec::new();
    }
    written
        .iter()
        .enumerate()
        .map(|(i, w)| Part {
            file: part_name(name, i),
            size: w.size,
            sha256: w.sha256.clone(),
        })
        .collect()
}

/// The per-part and whole-payload sha256 of a payload cut into files,
/// computed in the same pass with each byte hashed once per digest needed.
///
/// The first file's bytes go through one hasher only: when it ends, a copy
/// of its state becomes the start of the whole digest, which only files
/// after it update. A payload of one file therefore costs one digest, its
/// part's, which is also the whole's.
#[derive(Default, Clone)]
pub struct Digests {
    part: Sha256,
    whole: Option<Sha256>,
    first: Option<String>,
    ended: usize,
    parts_only: bool,
}

impl Digests {
    /// Digests of each file only, for a caller that has the whole digest
    /// from elsewhere (resplit: the payload it reads).
    pub fn parts_only() -> Digests {
        Digests {
            parts_only: true,
            ..Digests::default()
        }
    }

    /// Hashes `bytes` of the current file.
    pub fn update(&mut self, bytes: &[u8]) {
        self.part.update(bytes);
        if self.ended > 0 && !self.parts_only {
            if let Some(whole) = &mut self.whole {
                whole.update(bytes);
            }
        }
    }

    /// Ends the current file; returns its sha256 (lowercase hex).
    pub fn end_part(&mut self) -> String {
        let part = std::mem::take(&mut self.part);
        if self.ended == 0 && !self.parts_only {
            self.whole = Some(part.clone());
        }
        let sha = hex::encode(part.finalize());
        if self.ended == 0 {
            self.first = Some(sha.clone());
        }
        self.ended += 1;
        sha
    }

    /// The sha256 of everything hashed, across all files (empty for
    /// [`Digests::parts_only`] after more than one file).
    pub fn whole(self) -> String {
        if self.parts_only && self.ended > 1 {
            return String::new();
        }
        match (self.ended, self.first, self.whole) {
            (1, Some(first), _) => first,
            (n, _, Some(whole)) if n > 1 => hex::encode(whole.finalize()),
            _ => hex::encode(self.part.finalize()),
        }
    }
}

/// Writes the payload as one file or as parts of at most `part_size` bytes,
/// each under a temporary name, hashing each part and the whole in one pass.
pub struct PartWriter {
    dir: PathBuf,
    name: String,
    part_size: Option<u64>,
    current: Option<(PendingFile, u64)>,
    done: Vec<Written>,
    digests: Digests,
    total: u64,
}

impl PartWriter {
    /// Writes `NAME.age` (no `part_size`) or `NAME.age.NNN` parts into `dir`.
    pub fn new(dir: &Path, name: &str, part_size: Option<u64>) -> PartWriter {
        PartWriter {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            part_size,
            current: None,
            done: Vec::new(),
            digests: Digests::default(),
            total: 0,
        }
    }

    /// Hashes each part only: the caller knows the whole payload's digest
    /// already, and [`PartWriter::finish`] returns an empty one.
    pub fn parts_only(mut self) -> PartWriter {
        self.digests = Digests::parts_only();
        self
    }

    fn open_next(&mut self) -> io::Result<()> {
        let file_name = match self.part_size {
            Some(_) => part_name(&self.name, self.done.len()),
            None => format!("{}.age", self.name),
        };
        let pending = PendingFile::create(&self.dir.join(file_name), 0o644).map_err(to_io)?;
        self.current = Some((pending, 0));
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some((pending, size)) = self.current.take() {
            let file = pending.sync()?;
            self.done.push(Written {
                file,
                size,
                sha256: self.digests.end_part(),
            });
        }
        Ok(())
    }

    /// Closes the last part; returns the files written, the total size and
    /// the sha256 of the whole payload. A payload that fits in one part is
    /// the one file `NAME.age`, as if it had not been split: a part list
    /// of one would only make readers look for `NAME.age.001`.
    pub fn finish(mut self) -> Result<(Vec<Written>, u64, String)> {
        if self.current.is_none() && self.done.is_empty() {
            self.open_next()
                .map_err(|e| Error::io("creating a part in", &self.dir, e))?;
        }
        self.close_current()?;
        if let [only] = self.done.as_mut_slice() {
            let whole = self.dir.join(format!("{}.age", self.name));
            only.file.retarget(whole);
        }
        Ok((self.done, self.total, self.digests.whole()))
    }
}

fn to_io(e: Error) -> io::Error {
    match e {
        Error::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let (Some(limit), Some((_, size))) = (self.part_size, &self.current) {
            if *size >= limit {
                self.close_current().map_err(to_io)?;
            }
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let Some((pending, size)) = &mut self.current else {
            return Err(io::Error::other("no part open"));
        };
        let room = self.part_size.map_or(buf.len() as u64, |l| l - *size);
        let take = (buf.len() as u64).min(room) as usize;
        let n = pending.file().write(&buf[..take])?;
        self.digests.update(&buf[..n]);
        *size += n as u64;
        self.total += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((pending, _)) => pending.file().flush(),
            None => Ok(()),
        }
    }
}

/// Reads a file back from its device, bypassing the page cache where the
/// OS allows, and returns its sha256.
pub fn read_back(path: &Path) -> Result<String> {
    let file = File::open(path).doing("opening", path)?;
    // The data was fsynced, so its cached pages are clean; dropping them makes
    // the read below come from the device itself.
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    let r = crate::payload::hashing::HashingReader::new(std::io::BufReader::with_capacity(
        1 << 20,
        file,
    ));
    let (_, sha) = r.drain_and_finish().doing("reading", path)?;
    Ok(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("700M").unwrap(), 700 << 20);
        assert_eq!(parse_size("700MB").unwrap(), 700_000_000);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4g").unwrap(), 4 << 30);
        assert!(parse_size("1").is_err(), "below the minimum");
        assert!(parse_size("4X").is_err());
        assert!(parse_size("99999999999T").is_err(), "overflow");
    }

    #[test]
    fn presets_never_exceed_their_medium() {
        for &(name, part, capacity, _) in PRESETS {
            if let Some(part) = part {
                assert!(
                    part <= capacity,
                    "{name}: part {part} > capacity {capacity}"
                );
                assert!(
                    part < capacity - capacity / 50 || capacity == u64::MAX,
                    "{name}: less than 2 % margin"
                );
            }
        }
        assert_eq!(preset("fat32").unwrap(), Some(FAT32_PART));
        const { assert!(FAT32_PART + (64 << 10) < FAT32_MAX_FILE) };
        assert_eq!(preset("exfat").unwrap(), None);
        assert!(preset("floppy").is_err());
    }

    #[test]
    fn part_writer_cuts_at_the_limit_and_the_parts_concatenate() {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::payload::hashing::sha256_hex(b"seed").repeat(400); // 25,600 bytes
        let mut w = PartWriter::new(dir.path(), "b", Some(10_000));
        for chunk in data.as_bytes().chunks(3_000) {
            w.write_all(chunk).unwrap();
        }
        let (files, total, sha) = w.finish().unwrap();
        assert_eq!(total, data.len() as u64);
        assert_eq!(sha, crate::payload::hashing::sha256_hex(data.as_bytes()));
        let sizes: Vec<u64> = files.iter().map(|f| f.size).collect();
        assert_eq!(sizes, [10_000, 10_000, 5_600]);
        let paths =
            crate::disk::durable::commit_all(files.into_iter().map(|f| f.file).collect()).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b.age.001", "b.age.002", "b.age.003"]);
        let joined: Vec<u8> = paths.iter().flat_map(|p| fs::read(p).unwrap()).collect();
        assert_eq!(joined, data.as_bytes());
    }

    #[test]
    fn an_exact_multiple_makes_no_empty_last_part() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::new(dir.path(), "b", Some(5_000));
        w.write_all(&[7u8; 10_000]).unwrap();
        let (files, _, _) = w.finish().unwrap();
        assert_eq!(files.len(), 2);
    }

    #[test]
    fn one_part_has_one_digest_and_it_is_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        for split in [None, Some(1 << 20)] {
            let sub = dir.path().join(format!("{split:?}"));
            fs::create_dir(&sub).unwrap();
            let mut w = PartWriter::new(&sub, "b", split);
            w.write_all(b"only part").unwrap();
            let (files, total, sha) = w.finish().unwrap();
            assert_eq!((files.len(), total), (1, 9));
            assert_eq!(sha, crate::payload::hashing::sha256_hex(b"only part"));
            assert_eq!(files[0].sha256, sha);
        }
    }

    #[test]
    fn digests_of_several_parts_give_each_part_and_the_whole() {
        let mut d = Digests::default();
        d.update(b"ab");
        d.update(b"c");
        assert_eq!(d.end_part(), crate::payload::hashing::sha256_hex(b"abc"));
        d.update(b"de");
        assert_eq!(d.end_part(), crate::payload::hashing::sha256_hex(b"de"));
        d.update(b"f");
        assert_eq!(d.end_part(), crate::payload::hashing::sha256_hex(b"f"));
        assert_eq!(d.whole(), crate::payload::hashing::sha256_hex(b"abcdef"));
        let mut unended = Digests::default();
        unended.update(b"xyz");
        assert_eq!(unended.whole(), crate::payload::hashing::sha256_hex(b"xyz"));
        // Parts only (resplit): the same part digests, no whole one kept.
        let mut p = Digests::parts_only();
        p.update(b"abc");
        assert_eq!(p.end_part(), crate::payload::hashing::sha256_hex(b"abc"));
        p.update(b"de");
        assert_eq!(p.end_part(), crate::payload::hashing::sha256_hex(b"de"));
        assert!(p.whole.is_none(), "the whole digest is not computed");
        assert_eq!(p.whole(), "");
    }
}
