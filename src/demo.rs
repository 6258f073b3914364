//! Built-in sample data for `pouch demo`: a small, fictitious case folder
//! (reports, a witness statement with a non-ASCII name, a CSV watch-list, a
//! photo, nested folders, an empty folder), compiled into the binary from
//! `testdata/sample/` so the demo runs anywhere.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

macro_rules! sample {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample/", $path)))),*]
    };
}

/// The sample files: (path below the sample root, content).
pub const SAMPLE_FILES: &[(&str, &[u8])] = sample!(
    "case-2026-0142/README.txt",
    "case-2026-0142/reports/2026-11-02 incident report.md",
    "case-2026-0142/reports/Zeugenaussage Müller.txt",
    "case-2026-0142/evidence/photo-scene-01.png",
    "case-2026-0142/evidence/seized-devices.csv",
    "case-2026-0142/watchlist/persons-of-interest.csv",
    "case-2026-0142/correspondence/letter to fedpol.txt",
);

/// Empty folders in the sample (git cannot store them, so they are listed here).
pub const SAMPLE_EMPTY_FOLDERS: &[&str] = &["case-2026-0142/evidence/pending-lab-results"];

/// Writes the sample below `dir`; returns the case folder's path.
pub fn write_sample(dir: &Path) -> Result<PathBuf> {
    for (path, bytes) in SAMPLE_FILES {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).doing("creating", parent)?;
        }
        fs::write(&full, bytes).doing("writing", &full)?;
    }
    for path in SAMPLE_EMPTY_FOLDERS {
        let full = dir.join(path);
        fs::create_dir_all(&full).doing("creating", &full)?;
    }
    Ok(dir.join("case-2026-0142"))
}
