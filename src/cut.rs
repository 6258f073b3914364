//! The payload's cut: the one file `NAME.age`, or the parts it is split
//! into, as the signed manifest lists them or, after a re-cut, as the
//! bundle's parts list (`NAME.parts.toml`, see
//! [`crate::format::parts_list`]) does. Parts are located, opened and
//! checked here, each named when it is missing, damaged or unexpected.
//!
//! A parts list is read only when a trusted key signed it (its signer may
//! be any trusted party: a cut moves no byte of the payload, whose size and
//! sha256 remain the signed manifest's). Without one, the manifest's own
//! cut holds. A list that is there but not vouched for fails the bundle
//! rather than being passed over: what is on the medium then is not what
//! the party that cut it wrote.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::disk::durable::{open_regular, parent_of, read_capped};
use crate::disk::media::Digests;
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::{Manifest, Part};
use crate::format::parts_list::{self, PartsList, MAX_PARTS_LIST_BYTES};
use crate::payload::header::HeaderTap;
use crate::signature::{self, TrustedKey};

/// A re-cut: who cut the payload anew, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recut {
    /// The parts list.
    pub list: PathBuf,
    /// When it was cut, as the list says.
    pub recut: String,
    /// Who signed the list: the keyring party whose full key verified it,
    /// else its key id; `None` when its signature was not checked.
    pub signed_by: Option<String>,
    /// The PAR2 recovery files of the new parts, as the list gives them.
    pub parity: Option<crate::format::parity::Parity>,
}

/// Where the parts list of bundle `name` lies: beside its manifest.
pub fn list_path(manifest_path: &Path, name: &str) -> PathBuf {
    parent_of(manifest_path).join(format!("{name}.parts.toml"))
}

/// How a bundle's payload is cut, and where its parts are looked for.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The bundle's name.
    pub name: String,
    /// The parts, in order; none for the one file `NAME.age`.
    pub parts: Vec<Part>,
    /// The re-cut that made them, when a parts list describes them.
    pub recut: Option<Recut>,
    /// The whole payload's sha256, from the signed manifest.
    pub whole_sha256: String,
    /// Folders searched for parts: the manifest's, then `--parts-from`.
    pub search_dirs: Vec<PathBuf>,
}

/// The payload's parts (none for the one file `NAME.age`) and the re-cut
/// that made them, if any: from the parts list beside the manifest when
/// there is one, its signature checked against `keys` (when given), else
/// the manifest's own.
pub fn read(
    manifest_path: &Path,
    m: &Manifest,
    manifest_sha256: &str,
    keys: Option<&[TrustedKey]>,
) -> Result<(Vec<Part>, Option<Recut>)> {
    let path = list_path(manifest_path, &m.name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok((m.payload.parts.clone(), None));
    }
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    let bad = |reason: String| Error::BadParts {
        problems: vec![format!("{file}: {reason}")],
    };
    let bytes = read_capped(&path, MAX_PARTS_LIST_BYTES)?.ok_or_else(|| {
        bad(format!(
            "larger than {} MiB, more than a parts list can be",
            MAX_PARTS_LIST_BYTES >> 20
        ))
    })?;
    let (list, signed_by) = match keys {
        Some(keys) => {
            let sig_path = signature::signature_path(&path);
            let sig_text = signature::read_signature(&sig_path)?;
            let v = signature::verify(&bytes, &sig_text, &sig_path, keys)?;
            let list = PartsList::parse(&bytes, true).map_err(bad)?;
            if v.trusted_comment != parts_list::comment(&list) {
                return Err(Error::BadSignature {
                    path: sig_path,
                    reason:
                        "its trusted comment does not name this parts list's bundle and manifest"
                            .into(),
                });
            }
            if list.signer_key_id != v.key_id {
                return Err(bad(format!(
                    "names signer {} but was signed by {}",
                    crate::format::names::escape(&list.signer_key_id),
                    v.key_id
                )));
            }
            (list, Some(v.party.unwrap_or(v.key_id)))
        }
        None => (PartsList::parse(&bytes, false).map_err(bad)?, None),
    };
    list.check((&m.bundle_id, &m.name), m.payload.size, manifest_sha256)
        .map_err(bad)?;
    let recut = Recut {
        list: path.clone(),
        recut: list.recut,
        signed_by,
        parity: list.parity,
    };
    Ok((list.parts, Some(recut)))
}

impl Cut {
    /// The cut of `m`'s payload ([`read`]), its parts looked for beside
    /// the manifest.
    pub fn of(
        manifest_path: &Path,
        m: &Manifest,
        manifest_sha256: &str,
        keys: Option<&[TrustedKey]>,
    ) -> Result<Cut> {
        let (parts, recut) = read(manifest_path, m, manifest_sha256, keys)?;
        Ok(Cut {
            name: m.name.clone(),
            parts,
            recut,
            whole_sha256: m.payload.sha256.clone(),
            search_dirs: vec![parent_of(manifest_path).to_path_buf()],
        })
    }

    /// True when the payload is split into parts.
    pub fn is_split(&self) -> bool {
        !self.parts.is_empty()
    }

    /// Opens the parts in order as one stream. Sizes are checked first
    /// (cheap), and every missing, misplaced or unexpected part is named
    /// before anything is read.
    pub(crate) fn open(&self, progress: &crate::progress::Handle) -> Result<Payload> {
        let found = locate(&self.parts, &self.search_dirs);
        let mut problems = Vec::new();
        let mut list = Vec::new();
        for (part, path) in self.parts.iter().zip(found) {
            match path {
                None => problems.push(format!("{}: missing", part.file)),
                Some(p) => {
                    let Some(file) = open_part(part, &p, &mut problems)? else {
                        continue;
                    };
                    let size = file.metadata().doing("reading the metadata of", &p)?.len();
                    if size != part.size {
                        problems.push(wrong_size(part, size));
                    }
                    list.push((p, part.clone()));
                }
            }
        }
        problems.extend(self.unexpected_parts());
        if !problems.is_empty() {
            return Err(Error::BadParts { problems });
        }
        Ok(Payload::Parts(Box::new(PartsReader::new(list, progress))))
    }

    /// Checks every part of a split payload (all of them, even after a bad
    /// one) and the whole payload's hash, in one pass that also hands the
    /// payload's first bytes to `header`; names each bad part.
    pub(crate) fn check(
        &self,
        header: &mut HeaderTap,
        progress: &crate::progress::Handle,
    ) -> Result<()> {
        let parts = &self.parts;
        let found = locate(parts, &self.search_dirs);
        let mut problems = Vec::new();
        let mut digests = Digests::default();
        let mut buf = vec![0u8; 1 << 20];
        for (part, path) in parts.iter().zip(found) {
            let Some(path) = path else {
                problems.push(format!("{}: missing", part.file));
                continue;
            };
            let Some(file) = open_part(part, &path, &mut problems)? else {
                continue;
            };
            let mut file = crate::progress::Reader::new(file, progress.clone());
            let mut size: u64 = 0;
            loop {
                let n = file.read(&mut buf).doing("reading", &path)?;
                if n == 0 {
                    break;
                }
                digests.update(&buf[..n]);
                header.feed(&buf[..n]);
                size += n as u64;
            }
            let sha = digests.end_part();
            if size != part.size {
                problems.push(wrong_size(part, size));
            } else if sha != part.sha256 {
                problems.push(format!("{}: wrong sha256 (damaged)", part.file));
            }
        }
        problems.extend(self.unexpected_parts());
        if !problems.is_empty() {
            return Err(Error::BadParts { problems });
        }
        // Every part is present and intact here, so the digests saw them all.
        if digests.whole() != self.whole_sha256 {
            return Err(Error::BadParts {
                problems: vec![
                    "the parts are each intact but do not join into the signed payload".into(),
                ],
            });
        }
        Ok(())
    }

    /// Part files of this bundle in the search folders that the manifest does not list.
    fn unexpected_parts(&self) -> Vec<String> {
        extra_parts(&self.name, self.parts.len(), &self.search_dirs)
            .iter()
            .map(|p| {
                format!(
                    "{}: unexpected part, not listed in the manifest{}",
                    p.display(),
                    if self.recut.is_some() {
                        " or its parts list"
                    } else {
                        ""
                    }
                )
            })
            .collect()
    }
}

/// Opens part `part` at `path`; something other than a regular file in its
/// place is one more of the part `problems` (`None`), not an error.
fn open_part(
    part: &Part,
    path: &Path,
    problems: &mut Vec<String>,
) -> Result<Option<std::fs::File>> {
    match open_regular(path) {
        Ok(file) => Ok(Some(file)),
        Err(Error::NotAFile { what, .. }) => {
            problems.push(format!("{}: is {what}, not a regular file", part.file));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn wrong_size(part: &Part, size: u64) -> String {
    format!(
        "{}: wrong size ({size} bytes, the manifest says {})",
        part.file, part.size
    )
}

/// Where each part of a payload is, looked up in the manifest's folder and
/// any `--parts-from` folders, in that order; `None` for a missing part.
pub fn locate(parts: &[Part], dirs: &[PathBuf]) -> Vec<Option<PathBuf>> {
    parts
        .iter()
        .map(|p| {
            let candidates = || dirs.iter().map(|d| d.join(&p.file));
            // A regular file wins; else something else by that name (a FIFO,
            // a device), which opening then refuses by name.
            candidates()
                .find(|f| f.is_file())
                .or_else(|| candidates().find(|f| fs::symlink_metadata(f).is_ok()))
        })
        .collect()
}

/// Part files of bundle `name` present in `dirs` beyond the `count` listed.
pub fn extra_parts(name: &str, count: usize, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut extra = Vec::new();
    for dir in dirs {
        let Ok(list) = fs::read_dir(dir) else {
            continue;
        };
        for item in list.flatten() {
            let file = item.file_name();
            let Some(file) = file.to_str() else { continue };
            let Some(number) = file.strip_prefix(&format!("{name}.age.")) else {
                continue;
            };
            if number.bytes().all(|b| b.is_ascii_digit()) {
                match number.parse::<usize>() {
                    Ok(n) if n >= 1 && n <= count => {}
                    _ => extra.push(dir.join(file)),
                }
            }
        }
    }
    extra.sort();
    extra.dedup();
    extra
}

/// Reads the parts of a payload in order as one stream, checking each part's
/// size when it is opened and its sha256 when it ends, so that a damaged
/// part is named as soon as it has been read. The whole payload's digest
/// comes from the same pass ([`PartsReader::finish`]).
pub struct PartsReader {
    parts: Vec<(PathBuf, Part)>,
    index: usize,
    current: Option<(crate::progress::Reader<File>, u64)>,
    digests: Digests,
    total: u64,
    progress: crate::progress::Handle,
}

impl PartsReader {
    /// Reads `parts` from the given paths (as found by [`locate`]),
    /// reporting the bytes read to `progress`.
    pub fn new(parts: Vec<(PathBuf, Part)>, progress: &crate::progress::Handle) -> PartsReader {
        PartsReader {
            parts,
            index: 0,
            current: None,
            digests: Digests::default(),
            total: 0,
            progress: progress.clone(),
        }
    }

    /// Reads what is left, then returns the size and sha256 of the whole payload.
    pub fn finish(mut self) -> io::Result<(u64, String)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.total, self.digests.whole()))
    }
}

fn part_error(file: &str, problem: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("part {file}: {problem}"),
    )
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some((path, part)) = self.parts.get(self.index) else {
                    return Ok(0);
                };
                let file = crate::disk::durable::open_regular(path)
                    .map_err(|e| part_error(&part.file, format!("cannot be read: {e}")))?;
                let size = file.metadata()?.len();
                if size != part.size {
                    return Err(part_error(
                        &part.file,
                        format!("wrong size: {size} bytes, the manifest says {}", part.size),
                    ));
                }
                let file = crate::progress::Reader::new(file, self.progress.clone());
                self.current = Some((file, 0));
            }
            let Some((file, done)) = &mut self.current else {
                return Ok(0);
            };
            let n = file.read(buf)?;
            if n > 0 {
                self.digests.update(&buf[..n]);
                *done += n as u64;
                self.total += n as u64;
                return Ok(n);
            }
            let part = &self.parts[self.index].1;
            if *done != part.size {
                return Err(part_error(
                    &part.file,
                    format!("changed while being read ({done} of {} bytes)", part.size),
                ));
            }
            if self.digests.end_part() != part.sha256 {
                return Err(part_error(
                    &part.file,
                    "wrong sha256: the part is damaged; copy it again".into(),
                ));
            }
            self.current = None;
            self.index += 1;
        }
    }
}

/// A payload on the medium read as one stream: the single file (its bytes
/// reported to the progress sink) or the parts in order. Its size and
/// sha256 come from the same pass ([`Payload::finish`]).
pub enum Payload {
    /// `NAME.age`.
    File(crate::payload::hashing::HashingReader<Box<dyn Read + Send>>),
    /// `NAME.age.001`, `NAME.age.002`, …
    Parts(Box<PartsReader>),
}

impl Payload {
    /// Reads what is left, then returns the size and sha256 of the whole payload.
    pub fn finish(self) -> io::Result<(u64, String)> {
        match self {
            Payload::File(r) => r.drain_and_finish(),
            Payload::Parts(r) => r.finish(),
        }
    }
}

impl Read for Payload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Payload::File(r) => r.read(buf),
            Payload::Parts(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parts_reader_checks_each_part_and_joins_the_whole_digest() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = crate::disk::media::PartWriter::new(dir.path(), "b", Some(10_000));
        w.write_all(&data).unwrap();
        let (files, _, sha) = w.finish().unwrap();
        let parts = crate::disk::media::parts_of("b", &files);
        let paths =
            crate::disk::durable::commit_all(files.into_iter().map(|f| f.file).collect()).unwrap();
        let list: Vec<(PathBuf, Part)> = paths.iter().cloned().zip(parts.clone()).collect();
        let mut r = PartsReader::new(list.clone(), &crate::progress::Handle::default());
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(r.finish().unwrap(), (data.len() as u64, sha));

        let mut bad = list;
        bad[1].1.sha256 = crate::payload::hashing::sha256_hex(b"other");
        let r = PartsReader::new(bad, &crate::progress::Handle::default());
        let err = r.finish().expect_err("a damaged part");
        assert!(
            err.to_string().starts_with("part b.age.002: wrong sha256"),
            "{err}"
        );
    }
}
