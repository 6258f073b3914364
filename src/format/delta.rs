//! A delta bundle's record of what it builds on: the `[delta]` table of the
//! outer manifest, and the list of deleted paths that ends its inner
//! manifest.
//!
//! A delta's payload holds every folder of the resulting tree and the files
//! that are new or changed since its base; the files it does not hold are
//! the base's, unchanged, except the deleted paths. The signed `[delta]`
//! table names the base (bundle id and manifest sha256) and binds the whole
//! resulting tree by its counts and its [`entries_digest`](super::manifest::entries_digest)
//! (`tree_sha256`), so a recipient checks the tree it builds exactly.
//!
//! The deleted paths are in the inner manifest, after its entries, as
//! `[[deleted]]` tables (bound by `deleted_sha256`), and, unless the names
//! are sealed, in the outer manifest too.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::names;
use super::strict_toml::{check_sha256, is_lower_hex};

/// The deleted paths are listed in the outer manifest only up to this many
/// bytes of paths: the outer manifest's first part is read whole (and a
/// large manifest's at most 1 MiB of it), so a long list stays in the inner
/// manifest alone, which is read a table at a time.
pub const OUTER_DELETED_MAX: usize = 256 << 10;

/// Whether the outer manifest lists `paths` (names not sealed).
pub fn listed_outside(paths: &[String]) -> bool {
    paths.iter().map(|p| p.len() + 4).sum::<usize>() <= OUTER_DELETED_MAX
}

/// The header of one deleted path's table in the inner manifest.
pub const DELETED_HEADER: &str = "[[deleted]]";

/// The outer manifest's `[delta]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delta {
    /// The bundle id of the base this delta builds on.
    pub base_bundle_id: String,
    /// sha256 of the base's manifest file.
    pub base_manifest_sha256: String,
    /// Files in the resulting tree.
    pub tree_files: u64,
    /// Folders in the resulting tree.
    pub tree_folders: u64,
    /// Bytes of the files in the resulting tree.
    pub tree_bytes: u64,
    /// The entry-list digest of the resulting tree, in tree order.
    pub tree_sha256: String,
    /// How many paths of the base are deleted.
    pub deleted_count: u64,
    /// sha256 of the `[[deleted]]` tables that end the inner manifest.
    pub deleted_sha256: String,
    /// The deleted paths, in tree order; left out when the names are
    /// sealed, or when they are more than [`OUTER_DELETED_MAX`] bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
}

impl Delta {
    /// Checks what a parser cannot: the hashes, and, when the deleted
    /// paths are listed, their names, order and count.
    pub fn check(&self, sealed: bool) -> Result<(), String> {
        if self.base_bundle_id.len() != 32 || !is_lower_hex(&self.base_bundle_id) {
            return Err("delta.base_bundle_id must be 32 lowercase hex digits".into());
        }
        check_sha256("delta.base_manifest_sha256", &self.base_manifest_sha256)?;
        check_sha256("delta.tree_sha256", &self.tree_sha256)?;
        check_sha256("delta.deleted_sha256", &self.deleted_sha256)?;
        if sealed && !self.deleted.is_empty() {
            return Err("delta.deleted is listed although the names are sealed".into());
        }
        // Left out, the paths are only in the inner manifest (see
        // [`OUTER_DELETED_MAX`]).
        if self.deleted.is_empty() {
            return Ok(());
        }
        if self.deleted.len() as u64 != self.deleted_count {
            return Err(format!(
                "delta.deleted lists {} paths but delta.deleted_count says {}",
                self.deleted.len(),
                self.deleted_count
            ));
        }
        check_deleted(&self.deleted)?;
        if block_sha256(&self.deleted) != self.deleted_sha256 {
            return Err("delta.deleted_sha256 does not match delta.deleted".into());
        }
        Ok(())
    }
}

/// Checks a list of deleted paths: each a safe name, in strict tree order
/// (so each once).
pub fn check_deleted(paths: &[String]) -> Result<(), String> {
    for (i, p) in paths.iter().enumerate() {
        names::check_path(p.as_bytes()).map_err(|r| format!("deleted path {p:?}: {r}"))?;
        if i > 0 && tree_order(&paths[i - 1], p) != Ordering::Less {
            return Err(format!(
                "deleted path {p:?} is out of order or listed twice"
            ));
        }
    }
    Ok(())
}

/// The order of a tree walk that lists each folder's entries, sorted by
/// name, right after it: paths compared component by component.
pub fn tree_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// The `[[deleted]]` tables of `paths`, as they end the inner manifest.
pub fn block(paths: &[String]) -> String {
    let mut out = String::new();
    for p in paths {
        out.push('\n');
        out.push_str(DELETED_HEADER);
        out.push_str("\npath = ");
        super::entries::write_string(&mut out, p);
        out.push('\n');
    }
    out
}

/// sha256 of [`block`] of `paths`.
pub fn block_sha256(paths: &[String]) -> String {
    hex::encode(Sha256::digest(block(paths).as_bytes()))
}

/// Reads the deleted paths back from `text`, the tables [`block`] writes;
/// anything else is refused. Read a table at a time, each line at most a
/// path's length (escaped), so that memory holds the paths and no more.
/// The caller has checked the text's sha256.
pub fn parse_block(text: &str) -> Result<Vec<String>, String> {
    const LINE: &str = "\npath = ";
    let table = format!("\n{DELETED_HEADER}{LINE}");
    let mut paths: Vec<String> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let n = paths.len() + 1;
        let value = rest.strip_prefix(table.as_str()).ok_or_else(|| {
            format!("deleted path {n}: not a [[deleted]] table as pouch writes it")
        })?;
        let end = value
            .find('\n')
            .filter(|&e| e <= 4 * names::MAX_PATH_BYTES + 16)
            .ok_or_else(|| format!("deleted path {n}: its line is cut short or too long"))?;
        let path = string_value(&value[..end]).map_err(|e| format!("deleted path {n}: {e}"))?;
        let mut again = String::new();
        super::entries::write_string(&mut again, &path);
        if again != value[..end] {
            return Err(format!("deleted path {n}: not written as pouch writes it"));
        }
        if let Some(prev) = paths.last() {
            if tree_order(prev, &path) != Ordering::Less {
                return Err(format!(
                    "deleted path {path:?} is out of order or listed twice"
                ));
            }
        }
        names::check_path(path.as_bytes()).map_err(|r| format!("deleted path {path:?}: {r}"))?;
        paths.push(path);
        rest = &value[end + 1..];
    }
    Ok(paths)
}

/// The string a TOML string literal (one line) stands for.
fn string_value(literal: &str) -> Result<String, String> {
    if let Some(inner) = literal.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        if !inner.contains(['"', '\\']) {
            return Ok(inner.to_string());
        }
    }
    #[derive(Deserialize)]
    struct One {
        path: String,
    }
    let one: One = toml::from_str(&format!("path = {literal}"))
        .map_err(|e| super::strict_toml::one_line(&e.to_string()))?;
    Ok(one.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_order_puts_a_folder_s_entries_right_after_it() {
        let mut paths = vec!["a.b", "a/z", "a", "a/b/c", "a-b", "a/b"];
        paths.sort_by(|x, y| tree_order(x, y));
        assert_eq!(paths, ["a", "a/b", "a/b/c", "a/z", "a-b", "a.b"]);
    }

    #[test]
    fn the_deleted_block_reads_back_and_refuses_what_pouch_never_writes() {
        let paths = vec!["case/old \"quoted\".txt".to_string(), "case/z".to_string()];
        let text = block(&paths);
        assert_eq!(parse_block(&text).expect("parse"), paths);
        assert!(parse_block("\n[[deleted]]\npath = \"../x\"\n").is_err());
        assert!(parse_block(&block(&["b".into(), "a".into()])).is_err());
        assert!(parse_block("\n[[deleted]]\npath = 'a'\n").is_err());
        let d = Delta {
            base_bundle_id: "0".repeat(32),
            base_manifest_sha256: "1".repeat(64),
            tree_files: 1,
            tree_folders: 0,
            tree_bytes: 1,
            tree_sha256: "2".repeat(64),
            deleted_count: 2,
            deleted_sha256: block_sha256(&paths),
            deleted: paths.clone(),
        };
        assert_eq!(d.check(false), Ok(()));
        assert!(d.check(true).is_err());
        // Left out (sealed names, or a long list): only in the inner manifest.
        let inner_only = Delta {
            deleted: Vec::new(),
            ..d.clone()
        };
        assert_eq!(inner_only.check(true), Ok(()));
        assert_eq!(inner_only.check(false), Ok(()));
        let mut wrong = d.clone();
        wrong.deleted_count = 1;
        assert!(wrong.check(false).is_err());
    }
}
