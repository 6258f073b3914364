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
        parity,
    } = args;
    let key_path = key.path(&ctx.config)?;
    let key = key.load(&ctx.config)?;
    // The parts list is signed with -s, which must not be revoked; the
    // old signature is checked by the given keys (or -s's own), each as the
    // keyring knows it, so a revoked one is refused.
    let keyring = ctx.keyring()?;
    let own = keyring.own(key.trusted(), &key_path)?;
    let trust = if trust.is_empty() {
        Trust::Keys(vec![own])
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
        parity: (parity.as_deref())
            .map(pouch::parity::parse_percent)
            .transpose()?,
    };
    let report = pouch::resplit::resplit(&opts, &key)?;
    render::recut(&report);
    Ok(0)
}
