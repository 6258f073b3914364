//! `pouch receipt import`: record a recipient's receipt in the ledger.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, cmd: ReceiptCommand) -> Result<u8> {
    let ReceiptCommand::Import { receipt, trust } = cmd;
    let keys = ctx.keyring()?.trusted_with(&trust)?;
    if keys.is_empty() {
        return Err(Error::Usage(
            "no trusted keys: add the recipient with pouch keyring add NAME --sign-pub FILE, or pass --trust".into(),
        ));
    }
    let imported = pouch::custody::receipt::import(&receipt, &keys, &ctx.ledger_path()?)?;
    render::receipt(&imported);
    Ok(0)
}
