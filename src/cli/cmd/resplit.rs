//! `pouch resplit`: re-cut a bundle for another medium.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(args: ResplitArgs) -> Result<u8> {
    let ResplitArgs {
        manifest,
        out_dir,
        key,
        trust,
        parts,
        media,
    } = args;
    let key = key.load()?;
    let trust = if trust.is_empty() {
        Trust::Keys(vec![key.trusted()])
    } else {
        Trust::Keys(Keyring::default().trusted_with(&trust)?)
    };
    let opts = pouch::resplit::ResplitOptions {
        manifest,
        trust,
        parts_from: parts.parts_from,
        split: media.split()?,
        out_dir,
        verify_after_write: media.verify_after_write(),
    };
    let report = pouch::resplit::resplit(&opts, &key)?;
    render::recut(&report);
    Ok(0)
}
