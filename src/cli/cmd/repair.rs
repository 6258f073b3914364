//! `pouch repair`: restore damaged or lost parts from the PAR2 files.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, args: RepairArgs) -> Result<u8> {
    let keys = ctx.keyring()?;
    let opts = pouch::repair::RepairOptions {
        manifest: args.manifest,
        trust: keys::trust_policy(&args.trust, false, &keys)?,
        parts_from: args.parts.parts_from,
        out_dir: args.out_dir,
    };
    let report = pouch::repair::repair(&opts)?;
    render::repair(&report, args.json);
    Ok(0)
}
