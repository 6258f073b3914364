//! `pouch ledger`: show and check the ledger, and list gaps.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, cmd: LedgerCommand) -> Result<u8> {
    let path = ctx.ledger_path()?;
    match cmd {
        LedgerCommand::Show { channel, json } => {
            let records = pouch::custody::ledger::read(&path)?;
            render::ledger_show(&records, channel.as_deref(), json);
        }
        LedgerCommand::Verify { json } => {
            let n = pouch::custody::ledger::verify(&path)?;
            render::ledger_verify(&path, n, json);
        }
        LedgerCommand::Gaps { json } => {
            let records = pouch::custody::ledger::read(&path)?;
            render::ledger_gaps(&pouch::custody::ledger::gaps(&records), json);
        }
    }
    Ok(0)
}
