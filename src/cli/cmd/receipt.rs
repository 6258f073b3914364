//! `pouch receipt`: import a recipient's receipt into the ledger, or make
//! the receipt of a bundle this ledger accepted.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, cmd: ReceiptCommand) -> Result<u8> {
    match cmd {
        ReceiptCommand::Import { receipt, trust } => {
            let keys = ctx.keyring()?.trusted_with(&trust)?;
            if keys.is_empty() {
                return Err(Error::Refused(
                    "no trusted keys: add the recipient with pouch keyring add NAME --sign-pub FILE, or pass --trust".into(),
                ));
            }
            let imported = pouch::custody::receipt::import(&receipt, &keys, &ctx.ledger_path()?)?;
            render_custody::receipt(&imported);
        }
        ReceiptCommand::Make {
            manifest,
            out_dir,
            key,
            trust,
            reject,
        } => {
            let key = key.load(&ctx.config)?;
            let keyring = ctx.keyring()?;
            let a = pouch::acknowledge::Acknowledge {
                manifest: &manifest,
                trust: &keys::trust_policy(&trust, false, &keyring)?,
                ledger: &ctx.ledger_path()?,
                reject,
                recorded: false,
                out_dir: &out_dir,
            };
            let (path, verdict) = pouch::acknowledge::acknowledge(&a, &key)?;
            render_custody::receipt_written(&path, &verdict);
        }
    }
    Ok(0)
}
