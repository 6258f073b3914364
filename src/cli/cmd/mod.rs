//! One module per command: each takes its parsed flags, calls the library,
//! and renders the report. Precedence, key lookup and ledger work are the
//! library's (`pouch::settings`, `pouch::custody`).

pub mod audit;
pub mod completions;
pub mod config;
pub mod inspect;
pub mod keygen;
pub mod keyring;
pub mod ledger;
pub mod man;
pub mod pack;
pub mod receipt;
pub mod repair;
pub mod resplit;
pub mod unpack;
pub mod verify;

use std::path::PathBuf;

use pouch::error::{Error, Result};
use pouch::payload::crypto;
use pouch::verify::Trust;

use super::args::*;
use super::{keys, render, render_custody, Ctx};
