//! What an interrupted pack or unpack leaves in the folder it wrote into:
//! temporary files (`.NAME.age.RANDOM.tmp`, …) of a pack, and the private
//! staging folder (`.pouch-staging-NAME-RANDOM`) of an unpack, which holds
//! decrypted files.
//!
//! The next pack or unpack into that folder removes them ([`clean`], under
//! the folder's exclusive lock so that no live run's files are taken), and
//! `audit` names any it finds ([`find`]).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// The prefix of an unpack's staging folder.
pub const STAGING_PREFIX: &str = ".pouch-staging-";

/// The most leftovers listed or removed in one folder at a time.
const MAX_LEFTOVERS: usize = 10_000;

/// A leftover of an interrupted run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leftover {
    /// Where it is.
    pub path: PathBuf,
    /// What it is, for people.
    pub what: &'static str,
}

/// Whether `name` is a temporary file of a pack, a resplit or a receipt:
/// `.FINAL.RANDOM.tmp`, FINAL being a bundle's file.
pub fn is_temp_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let Some((final_name, random)) = inner.rsplit_once('.') else {
        return false;
    };
    let part = |n: &str| {
        n.rsplit_once(".age.")
            .is_some_and(|(_, d)| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
    };
    !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
        && (final_name.ends_with(".toml")
            || final_name.ends_with(".toml.minisig")
            || final_name.ends_with(".age")
            || part(final_name))
}

/// What the entry `name` of type `kind` is, when it is a leftover.
pub fn what(name: &str, kind: fs::FileType) -> Option<&'static str> {
    if kind.is_dir() && name.starts_with(STAGING_PREFIX) {
        Some("staging folder of an interrupted unpack (it may hold decrypted files)")
    } else if kind.is_file() && is_temp_name(name) {
        Some("temporary file of an interrupted pack")
    } else {
        None
    }
}

/// The leftovers in `dir` (not below it), at most 10,000.
pub fn find(dir: &Path) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).doing("listing", dir)? {
        let entry = entry.doing("listing", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let Some(what) = what(name, kind) else {
            continue;
        };
        out.push(Leftover {
            path: entry.path(),
            what,
        });
        if out.len() >= MAX_LEFTOVERS {
            break;
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Removes the leftovers in `dir`, with a notice for each. Call it only
/// under the folder's exclusive lock ([`crate::disk::lock::FolderLock`]).
pub fn clean(dir: &Path) -> Result<()> {
    for left in find(dir)? {
        let removed = if left.path.is_dir() {
            fs::remove_dir_all(&left.path)
        } else {
            fs::remove_file(&left.path)
        };
        removed.doing("removing", &left.path)?;
        crate::notice::notice(&format!("removed {}: {}", left.path.display(), left.what));
    }
    Ok(())
}

/// Removes what a pack or resplit killed while renaming its files into
/// place left
/// without its signature: `NAME.age`, `NAME.age.NNN`, and `NAME.toml` when
/// `manifest_is_mine` (the manifest it made, by its sha256). Nothing is
/// removed when another `NAME.toml` is there.
pub fn remove_uncommitted(dir: &Path, name: &str, manifest_is_mine: bool) -> Result<Vec<String>> {
    let manifest = dir.join(format!("{name}.toml"));
    if manifest.exists() && !manifest_is_mine {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    let mut remove = |file: String| -> Result<bool> {
        let path = dir.join(&file);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {
                fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
                removed.push(file);
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    if manifest_is_mine {
        remove(format!("{name}.toml"))?;
    }
    remove(format!("{name}.age"))?;
    // A re-cut's parts list, renamed into place before the manifest.
    if remove(format!("{name}.parts.toml"))? {
        remove(format!("{name}.parts.toml.minisig"))?;
    }
    // Parts are numbered from 001 without holes.
    for i in 0..MAX_PARTS {
        if !remove(crate::format::manifest::part_name(name, i))? {
            break;
        }
    }
    Ok(removed)
}

/// More parts than any bundle has.
const MAX_PARTS: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_temporary_names_of_bundle_files_are_leftovers() {
        for name in [
            ".b.age.x1Y2z3.tmp",
            ".b.age.004.AbCdEf.tmp",
            ".b.toml.q9Q9q9.tmp",
            ".b.toml.minisig.abcdef.tmp",
            ".b.receipt.toml.abcdef.tmp",
        ] {
            assert!(is_temp_name(name), "{name}");
        }
        for name in [
            "b.age",
            ".b.age.tmp",
            ".notes.txt.abcdef.tmp",
            ".b.age.12.abcdef.tmp",
            ".b.age.abc-ef.tmp",
            "b.toml.abcdef.tmp",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
    }
}
