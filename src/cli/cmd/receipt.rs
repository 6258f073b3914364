//! `pouch receipt`: import a recipient's receipt into the ledger, or make
//! the receipt of a bundle this ledger accepted.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, cmd: ReceiptCommand) -> Result<u8> {
    match cmd {
        ReceiptCommand::Import { receipt, trust } => {
            let keys = ctx.keyring()?.trusted_with(&trust)?;
            if keys.is_empty() {
                return Err(Error::Usage(
                    "no trusted keys: add the recipient with pouch keyring add NAME --sign-pub FILE, or pass --trust".into(),
                ));
            }
            let imported = pouch::custody::receipt::import(&receipt, &keys, &ctx.ledger_path()?)?;
            render::receipt(&imported);
        }
        ReceiptCommand::Make {
            manifest,
            out_dir,
            key,
            trust,
        } => {
            let key = key.load()?;
            let keyring = ctx.keyring()?;
            let bundle =
                pouch::bundle::open(&manifest, &keys::trust_policy(&trust, false, &keyring)?)?;
            let (m, sha) = (&bundle.manifest, &bundle.manifest_sha256);
            if !pouch::custody::receipt::accepted_here(&ctx.ledger_path()?, &m.bundle_id, sha)? {
                return Err(Error::Usage(format!(
                    "bundle {} ({}) was not accepted by this ledger: only a bundle unpacked and accepted here gets a receipt",
                    m.name, m.bundle_id
                )));
            }
            let path = pouch::custody::receipt::write(&out_dir, m, sha, &key)?;
            render::note(&format!("receipt written: {}", path.display()));
        }
    }
    Ok(0)
}
