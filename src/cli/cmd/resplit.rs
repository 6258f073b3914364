//! `pouch resplit`: re-cut a bundle for another medium.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, args: ResplitArgs) -> Result<u8> {
    let ResplitArgs {
        manifest,
        out_dir,
        key,
        trust,
        parts,
        media,
    } = args;
    let key = key.load()?;
    // Only the given keys (or the signer's own) vouch for the bundle, each
    // as the keyring knows it: a key it marks revoked is refused.
    let keyring = ctx.keyring()?;
    let trust = if trust.is_empty() {
        Trust::Keys(keyring.only(&[key.trusted().to_base64()])?)
    } else {
        Trust::Keys(keyring.only(&trust)?)
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
    render::pack(&report);
    Ok(0)
}
