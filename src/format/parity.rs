//! The manifest's record of a bundle's PAR 2.0 recovery files
//! (`[payload.parity]`): how the payload was cut into slices, and each
//! recovery file's name, size and sha256, so that recovery data is
//! authenticated by the manifest's signature like everything else.
//!
//! Manifests without the table (every bundle made before parity existed)
//! parse as before.

use serde::{Deserialize, Serialize};

use crate::format::strict_toml::check_sha256;

/// The only recovery format pouch writes.
pub const FORMAT: &str = "par2";

/// No bundle has more recovery files than this (volumes double in size).
pub const MAX_FILES: usize = 64;

/// `[payload.parity]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    /// Always [`FORMAT`].
    pub format: String,
    /// Bytes per PAR2 slice.
    pub slice_size: u64,
    /// How many recovery slices the volumes hold together.
    pub recovery_slices: u64,
    /// The index `NAME.par2` first, then the volumes `NAME.volXX+YY.par2`.
    pub files: Vec<ParityFile>,
}

/// One recovery file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityFile {
    /// File name, beside the manifest.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256, lowercase hex.
    pub sha256: String,
}

/// The index file's name.
pub fn index_name(name: &str) -> String {
    format!("{name}.par2")
}

/// The name of the volume holding `count` recovery slices from exponent
/// `first`, numbers padded to the width of `total` (at least two digits).
pub fn volume_name(name: &str, first: u64, count: u64, total: u64) -> String {
    let w = total.to_string().len().max(2);
    format!("{name}.vol{first:0w$}+{count:0w$}.par2")
}

/// Checks the record of bundle `name`: the format, a slice size PAR2
/// allows, and exactly the files pouch writes for that many recovery
/// slices (so no name is a path), each with a sha256.
pub fn check(name: &str, p: &Parity) -> Result<(), String> {
    if p.format != FORMAT {
        return Err(format!(
            "payload.parity.format {:?} is not supported",
            p.format
        ));
    }
    if p.slice_size == 0 || p.slice_size % 4 != 0 || p.slice_size > 1 << 40 {
        return Err("payload.parity.slice_size must be a positive multiple of 4".into());
    }
    if p.recovery_slices == 0 || p.recovery_slices > 32768 {
        return Err("payload.parity.recovery_slices must be 1 to 32768".into());
    }
    let want = expected_names(name, p.recovery_slices);
    if p.files.len() != want.len() || p.files.len() > MAX_FILES {
        return Err(format!(
            "payload.parity.files: {} recovery slices are in {} files, not {}",
            p.recovery_slices,
            want.len(),
            p.files.len()
        ));
    }
    for (f, w) in p.files.iter().zip(&want) {
        if &f.file != w {
            return Err(format!("payload.parity.files: expected {w}"));
        }
        check_sha256("payload.parity.files.sha256", &f.sha256)?;
    }
    Ok(())
}

/// The volumes for `total` recovery slices: (first exponent, count), in
/// sizes 1, 2, 4, … as par2cmdline makes them.
pub fn volumes(total: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut first, mut count) = (0u64, 1u64);
    while first < total {
        let n = count.min(total - first);
        out.push((first, n));
        first += n;
        count *= 2;
    }
    out
}

/// The files pouch writes for `total` recovery slices: the index, then
/// the [`volumes`].
pub fn expected_names(name: &str, total: u64) -> Vec<String> {
    let vols = volumes(total).into_iter();
    let names = vols.map(|(first, n)| volume_name(name, first, n, total));
    std::iter::once(index_name(name)).chain(names).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Parity {
        let files = expected_names("b", 10)
            .into_iter()
            .map(|file| ParityFile {
                file,
                size: 1,
                sha256: "a".repeat(64),
            })
            .collect();
        Parity {
            format: FORMAT.into(),
            slice_size: 4096,
            recovery_slices: 10,
            files,
        }
    }

    #[test]
    fn names_double_like_par2cmdline() {
        assert_eq!(
            expected_names("b", 10),
            [
                "b.par2",
                "b.vol00+01.par2",
                "b.vol01+02.par2",
                "b.vol03+04.par2",
                "b.vol07+03.par2"
            ]
        );
        assert!(check("b", &sample()).is_ok());
    }

    #[test]
    fn refuses_paths_counts_and_sizes_it_never_writes() {
        type Edit = fn(&mut Parity);
        let cases: [(&str, Edit); 5] = [
            ("path", |p| p.files[1].file = "../b.vol00+01.par2".into()),
            ("count", |p| p.recovery_slices = 1 << 40),
            ("slice", |p| p.slice_size = u64::MAX),
            ("missing", |p| {
                p.files.pop();
            }),
            ("hash", |p| p.files[0].sha256 = "zz".into()),
        ];
        for (what, edit) in cases {
            let mut p = sample();
            edit(&mut p);
            assert!(check("b", &p).is_err(), "{what}");
        }
    }
}
