//! Settings: `$POUCH_HOME/config.toml` (defaults for a clerk's machine) and
//! pack specs (recurring transfers). Command-line flags override a spec,
//! a spec overrides the config, the config overrides built-in defaults.
//!
//! Both files are strict TOML: an unknown key is an error naming the key and
//! the file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `$POUCH_HOME/config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default sending party (`pack --from`).
    pub sender: Option<String>,
    /// Default signing key (`-s`).
    pub signing_key: Option<PathBuf>,
    /// File holding the signing key's passphrase (`--passphrase-file`).
    pub passphrase_file: Option<PathBuf>,
    /// Keyring path (`--keyring`).
    pub keyring: Option<PathBuf>,
    /// Ledger path (`--ledger`).
    pub ledger: Option<PathBuf>,
    /// Default security marking (`--marking`).
    pub marking: Option<String>,
    /// Default zstd level (`--level`).
    pub level: Option<i32>,
    /// Default media preset (`--media`).
    pub media: Option<String>,
    /// Default PAR2 recovery data, e.g. `"10%"` (`--parity`).
    pub parity: Option<String>,
    /// Default output folder (`-o`).
    pub out_dir: Option<PathBuf>,
    /// Refuse classic recipients in every pack (`pack --require-pq`).
    pub require_pq: Option<bool>,
}

/// A pack spec: everything about a recurring transfer, in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Files and folders to pack, relative to the spec's folder unless absolute.
    #[serde(default)]
    pub sources: Vec<PathBuf>,
    /// Only files matching one of these globs (on their path in the bundle,
    /// e.g. `case/**/*.pdf`) are packed; all files when empty.
    #[serde(default)]
    pub include: Vec<String>,
    /// Files and folders matching one of these globs are left out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Recipients by keyring party name.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Sending party.
    pub from: Option<String>,
    /// Receiving party (its keyring recipients are added).
    pub to: Option<String>,
    /// Security marking.
    pub marking: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Split size (`--split`).
    pub split: Option<String>,
    /// Media preset (`--media`).
    pub media: Option<String>,
    /// PAR2 recovery data, e.g. `"10%"` (`--parity`).
    pub parity: Option<String>,
    /// Output folder, relative to the spec's folder unless absolute.
    pub out_dir: Option<PathBuf>,
    /// Keep names out of the outer manifest.
    pub seal_names: Option<bool>,
    /// zstd level.
    pub level: Option<i32>,
    /// Refuse classic recipients (`--require-pq`); a flag, the spec or the
    /// config can only turn this on.
    pub require_pq: Option<bool>,
}

/// No config file or pack spec larger than this is read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a config file or pack spec (`what`); `Ok(None)` when it is missing.
fn parse<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<Option<T>> {
    crate::disk::durable::read_toml(path, MAX_CONFIG_BYTES, |reason| Error::Config {
        what,
        path: path.to_path_buf(),
        reason,
    })
}

/// The config file's path: `$POUCH_HOME/config.toml`.
pub fn config_path() -> Result<PathBuf> {
    Ok(crate::settings::home::home()?.join("config.toml"))
}

impl Config {
    /// Loads the config; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config> {
        let Some(c): Option<Config> = parse(path, "config")? else {
            return Ok(Config::default());
        };
        if let Some(l) = c.level {
            if !(1..=19).contains(&l) {
                return Err(Error::Config {
                    what: "config",
                    path: path.to_path_buf(),
                    reason: format!("level {l} is out of range (1-19)"),
                });
            }
        }
        if let Some(m) = &c.media {
            crate::disk::media::preset(m).map_err(|e| Error::Config {
                what: "config",
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        Ok(c)
    }
}

impl Spec {
    /// Loads a spec, resolving its relative paths against its folder.
    pub fn load(path: &Path) -> Result<Spec> {
        let Some(mut s): Option<Spec> = parse(path, "pack spec")? else {
            return Err(Error::io(
                "reading",
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        };
        let base = crate::disk::durable::parent_of(path).to_path_buf();
        for src in &mut s.sources {
            if src.is_relative() {
                *src = base.join(&*src);
            }
        }
        if let Some(out) = &mut s.out_dir {
            if out.is_relative() {
                *out = base.join(&*out);
            }
        }
        Filter::new(&s.include, &s.exclude).map_err(|e| Error::Config {
            what: "pack spec",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(s)
    }
}

pub use crate::format::filter::Filter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let (_dir, p) =
            crate::scratch::file("config.toml", Some(b"sender = \"a\"\ncolour = \"red\"\n"));
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("colour") && e.contains("config.toml"), "{e}");
    }
}
