//! `pouch verify`: check a bundle, and record the outcome with `--record`.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<u8> {
    let VerifyArgs {
        manifest,
        trust,
        identities,
        insecure_skip_signature,
        record,
        parts,
        json,
    } = args;
    let keys = ctx.keyring()?;
    let opts = pouch::verify::VerifyOptions {
        manifest: manifest.clone(),
        trust: keys::trust_policy(&trust, insecure_skip_signature, &keys)?,
        identities: crypto::read_identity_files(&identities)?,
        parts_from: parts.parts_from,
        progress: ctx.progress.clone(),
    };
    let result = pouch::verify::verify(&opts);
    if record {
        pouch::verify::record(&ctx.ledger_path()?, &manifest, &result)?;
    }
    let report = result?;
    render::verify(&report, json);
    Ok(0)
}
