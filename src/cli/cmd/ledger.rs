//! `pouch ledger`: show and check the ledger, and list gaps.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, cmd: LedgerCommand) -> Result<u8> {
    let path = ctx.ledger_path()?;
    match cmd {
        LedgerCommand::Show { channel, json } => {
            use pouch::custody::ledger::{self, channel_key, Event};
            // Two passes, a record at a time: which bundles were delivered
            // or refused, then the table.
            let mut delivered = std::collections::BTreeSet::new();
            let mut refused = std::collections::BTreeSet::new();
            ledger::each(&path, |r| {
                match (r.event, r.bundle_id) {
                    (Event::Receipt, Some(id)) => delivered.insert(id),
                    (Event::Refused, Some(id)) => refused.insert(id),
                    _ => false,
                };
                Ok(())
            })?;
            let mut table = render::LedgerTable::new(json);
            ledger::each(&path, |r| {
                let key = channel_key(&r.sender, &r.receiver);
                if channel.is_none() || key.as_deref() == channel.as_deref() {
                    let fate = match r.bundle_id.as_ref() {
                        Some(id) if delivered.contains(id) => render::Fate::Delivered,
                        Some(id) if refused.contains(id) => render::Fate::Refused,
                        _ => render::Fate::Outstanding,
                    };
                    table.row(&r, fate);
                }
                Ok(())
            })?;
            table.finish();
        }
        LedgerCommand::Verify { trust, json } => {
            let trusted = ctx.keyring()?.only(&trust)?;
            let check = pouch::custody::ledger_seal::verify(&path, &trusted)?;
            render_custody::ledger_verify(&path, &check, json);
        }
        LedgerCommand::Sign { key } => {
            let key = key.load(&ctx.config)?;
            let n = pouch::custody::ledger_seal::sign(&path, &key)?;
            render::note(&format!(
                "signed {} of {} with key {}",
                render::count(n, "record"),
                path.display(),
                key.key_id
            ));
        }
        LedgerCommand::Gaps { json } => {
            let gaps = pouch::custody::channel::gaps(&path)?;
            render_custody::ledger_gaps(&gaps, json);
            if gaps.values().any(|missing| !missing.is_empty()) {
                return Ok(1);
            }
        }
        LedgerCommand::Repair {
            abandon_unreachable,
        } => {
            let r = pouch::custody::intent::repair(&path, abandon_unreachable)?;
            if let Some((aside, n)) = &r.set_aside {
                render::warn(&format!(
                    "set aside {n} bytes of a cut-off last record in {}; the ledger ends with its last whole record",
                    aside.display()
                ));
            }
            if !r.unresolved.is_empty() {
                return Err(Error::Refused(format!(
                    "{} could not be settled (see above): make their folders reachable and run pouch ledger repair again",
                    render::count(r.unresolved.len() as u64, "interrupted command")
                )));
            }
            render::note(&format!("{}: nothing left to repair", path.display()));
        }
    }
    Ok(0)
}
