//! `pouch resplit`: re-cut a bundle for another medium.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(args: ResplitArgs) -> Result<u8> {
    let ResplitArgs {
        manifest,
        out_dir,
        signing_key,
        passphrase_file,
        trust,
        parts_from,
        media,
    } = args;
    let key = keys::load_signing_key(&signing_key, passphrase_file.as_deref())?;
    let trust = if trust.is_empty() {
        Trust::Keys(vec![key.trusted()])
    } else {
        Trust::Keys(Keyring::default().trusted_with(&trust)?)
    };
    let opts = pouch::resplit::ResplitOptions {
        manifest,
        trust,
        parts_from,
        split: media.split()?,
        out_dir,
        verify_after_write: media.verify_after_write(),
    };
    let report = pouch::resplit::resplit(&opts, &key)?;
    render::pack(&report);
    Ok(0)
}
