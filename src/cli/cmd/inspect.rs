//! `pouch inspect`: describe a bundle from its manifest.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, args: InspectArgs) -> Result<u8> {
    let InspectArgs {
        manifest,
        trust,
        json,
    } = args;
    let keys = ctx.keyring()?.trusted_with(&trust)?;
    let report = pouch::inspect::inspect(&manifest, &keys)?;
    render::inspect(&report, json);
    match &report.signature {
        pouch::inspect::SignatureCheck::Failed { .. }
        | pouch::inspect::SignatureCheck::Untrusted { .. } => {
            render::warn(
                "error: the signature does not hold (see the signer line above)\n  hint: do not rely on anything this manifest says",
            );
            Ok(1)
        }
        _ => match &report.header {
            Ok(pouch::bundle::HeaderRecipients {
                problem: Some(problem),
                ..
            }) => {
                render::warn(&format!(
                    "error: {problem}\n  hint: do not open this payload; ask the sender for a fresh copy"
                ));
                Ok(1)
            }
            _ => Ok(0),
        },
    }
}
