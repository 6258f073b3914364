//! Interruption (Ctrl-C) as an ordinary error.
//!
//! The binary points SIGINT and SIGTERM at [`flag`]; long-running work calls
//! [`check`] between chunks and stops with [`crate::Error::Interrupted`],
//! which unwinds through the same clean-up as any other failure: temporary
//! files are removed, the staging folder is removed, nothing is left under a
//! final name. The library never installs handlers itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use crate::error::{Error, Result};

static FLAG: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The flag a signal handler sets to ask the work to stop.
pub fn flag() -> Arc<AtomicBool> {
    Arc::clone(&FLAG)
}

/// Fails with [`Error::Interrupted`] once an interruption was requested.
pub fn check() -> Result<()> {
    if FLAG.load(Ordering::Relaxed) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// An interruption wins over whatever error it caused on its way out.
pub fn interrupted_or<T>(result: Result<T>) -> Result<T> {
    match result {
        Err(_) if check().is_err() => Err(Error::Interrupted),
        other => other,
    }
}
