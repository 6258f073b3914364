//! Where pouch keeps its own files: the keyring and the ledger (and, later,
//! the configuration), in `POUCH_HOME`.
//!
//! `POUCH_HOME` is the environment variable of that name if set, else
//! `$XDG_CONFIG_HOME/pouch`, else `~/.config/pouch`.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The pouch home folder (not created here).
pub fn home() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("POUCH_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(x).join("pouch"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".config").join("pouch")),
        None => Err(Error::Refused(
            "cannot tell where pouch's home is: set POUCH_HOME (or HOME)".into(),
        )),
    }
}

/// The keyring file: `explicit` if given, else `POUCH_HOME/keyring.toml`.
pub fn keyring_path(explicit: Option<&PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.clone()),
        None => Ok(home()?.join("keyring.toml")),
    }
}

/// The ledger file: `explicit` if given, else `POUCH_HOME/ledger.jsonl`.
pub fn ledger_path(explicit: Option<&PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.clone()),
        None => Ok(home()?.join("ledger.jsonl")),
    }
}
