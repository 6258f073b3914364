//! The manifest file a command is pointed at: read within the bounds a
//! manifest has, and refused by name when it is another file of a bundle
//! (its payload, a part, its signature) given by mistake.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::manifest::MAX_MANIFEST_BYTES;

/// Refuses a path that names a bundle's payload, one of its parts or its
/// signature where its manifest is wanted, saying which file to pass: the
/// file would otherwise fail as a damaged manifest, and the hint would
/// send the sender to copy a bundle that is fine.
pub fn check_is_manifest(path: &Path) -> Result<()> {
    let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
        return Ok(());
    };
    let wrong = |what: &str, name: &str| {
        Err(Error::WrongFile {
            path: path.to_path_buf(),
            problem: format!("this is {what}, not its manifest; pass {name}.toml"),
            hint: "verify, unpack and inspect take a bundle's manifest, NAME.toml; they find its payload and signature beside it",
        })
    };
    if let Some(signed) = file.strip_suffix(".minisig") {
        // The signature of a manifest, a parts list or a receipt.
        let (what, name) = match signed.strip_suffix(".toml") {
            Some(stem) => match (stem.strip_suffix(".parts"), stem.strip_suffix(".receipt")) {
                (Some(name), _) => ("the signature of a bundle's parts list", name),
                (_, Some(name)) => ("the signature of a receipt", name),
                _ => ("the signature of a bundle", stem),
            },
            None => ("a signature", signed),
        };
        return wrong(what, name);
    }
    if let Some(stem) = file.strip_suffix(".par2") {
        // NAME.par2, or a volume NAME.volXX+YY.par2.
        let name = match stem.rsplit_once(".vol") {
            Some((name, range)) if range.contains('+') => name,
            _ => stem,
        };
        return wrong("a bundle's recovery data (PAR2)", name);
    }
    if let Some(name) = file.strip_suffix(".parts.toml") {
        return wrong("the parts list of a re-cut bundle", name);
    }
    if let Some(name) = file.strip_suffix(".receipt.toml") {
        return Err(Error::WrongFile {
            path: path.to_path_buf(),
            problem: format!("this is a receipt, not a bundle's manifest; the bundle is {name}.toml"),
            hint: "a sender imports a receipt with pouch receipt import RECEIPT; verify, unpack and inspect take a bundle's manifest, NAME.toml",
        });
    }
    if let Some(name) = file.strip_suffix(".age") {
        return wrong("the payload of a bundle (its encrypted contents)", name);
    }
    if let Some(name) = crate::disk::media::part_of(file) {
        return wrong("a part of a bundle's payload", name);
    }
    Ok(())
}

/// Reads a manifest file whose signature will not be checked (inspect
/// without trusted keys), refusing more than is read unvouched.
pub fn read_unvouched_bytes(path: &Path) -> Result<Vec<u8>> {
    let max = crate::format::strict_toml::MAX_UNVOUCHED_BYTES;
    crate::disk::durable::read_capped(path, max)?.ok_or_else(|| Error::BadManifest {
        path: path.to_path_buf(),
        reason: format!(
            "larger than {} MiB, too large to read without checking its signature; pass --trust SIGNER.minisign.pub",
            max >> 20
        ),
    })
}

/// Reads a manifest file, refusing anything larger than a manifest can be.
pub fn read_manifest_bytes(path: &Path) -> Result<Vec<u8>> {
    crate::disk::durable::read_capped(path, MAX_MANIFEST_BYTES)?.ok_or_else(|| Error::BadManifest {
        path: path.to_path_buf(),
        reason: format!(
            "larger than {} MiB; not a pouch manifest",
            MAX_MANIFEST_BYTES >> 20
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_file_of_a_bundle_is_named_with_the_manifest_to_pass() {
        for (file, named, manifest) in [
            ("b.age", "payload", "b.toml"),
            ("b.age.001", "part", "b.toml"),
            ("b.toml.minisig", "signature of a bundle", "b.toml"),
            ("b.parts.toml", "parts list", "b.toml"),
            (
                "b.parts.toml.minisig",
                "signature of a bundle's parts list",
                "b.toml",
            ),
            ("b.receipt.toml", "receipt", "b.toml"),
            ("b.receipt.toml.minisig", "signature of a receipt", "b.toml"),
            ("b.par2", "recovery data", "b.toml"),
            ("b.vol03+04.par2", "recovery data", "b.toml"),
        ] {
            let err = check_is_manifest(Path::new(file))
                .expect_err(file)
                .to_string();
            assert!(
                err.contains(named) && err.contains(manifest),
                "{file}: {err}"
            );
        }
        for fine in ["b.toml", "b.age.toml", "notes.age.txt"] {
            assert!(check_is_manifest(Path::new(fine)).is_ok(), "{fine}");
        }
    }
}
