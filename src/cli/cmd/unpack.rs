//! `pouch unpack`: verify and extract a bundle, and write its receipt.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, args: UnpackArgs) -> Result<u8> {
    let UnpackArgs {
        manifest,
        identities,
        trust,
        dest,
        insecure_skip_signature,
        allow_replay,
        allow_removable_dest,
        no_space_check,
        receipt_out,
        signing_key,
        passphrase_file,
        parts,
        json,
        onto,
        rehash,
    } = args;
    let keys = ctx.keyring()?;
    // Load the receipt key first: a wrong passphrase must not come
    // after the bundle was accepted.
    let receipt_key = match &signing_key {
        Some(k) => Some(keys::load_signing_key(k, passphrase_file.as_deref())?),
        None => None,
    };
    let opts = pouch::unpack::UnpackOptions {
        manifest: manifest.clone(),
        trust: keys::trust_policy(&trust, insecure_skip_signature, &keys)?,
        identities: crypto::read_identity_files(&identities)?,
        dest: dest.unwrap_or_default(),
        parts_from: parts.parts_from,
        ledger: Some(ctx.ledger_path()?),
        allow_replay,
        allow_removable_dest,
        no_space_check,
        progress: ctx.progress.clone(),
        onto,
        rehash,
    };
    let report = match pouch::unpack::unpack(&opts) {
        Ok(report) => report,
        Err(e) => {
            // A bundle that failed a check is refused: with a receipt key,
            // the sender is told so, and why.
            if let (Some(dir), Some(key), 1) = (&receipt_out, &receipt_key, e.exit_code()) {
                let a = pouch::acknowledge::Acknowledge {
                    manifest: &manifest,
                    trust: &opts.trust,
                    ledger: &ctx.ledger_path()?,
                    reject: Some(e.to_string()),
                    recorded: true,
                    out_dir: dir,
                };
                match pouch::acknowledge::acknowledge(&a, key) {
                    Ok((path, verdict)) => render_custody::receipt_written(&path, &verdict),
                    Err(why) => render::warn(&format!(
                        "warning: no rejection receipt could be written: {why}"
                    )),
                }
            }
            return Err(e);
        }
    };
    // The bundle is accepted and in place: a receipt that cannot be
    // written is a warning with what to do, not a failure.
    let receipt = match (&receipt_out, &receipt_key) {
        (Some(dir), Some(key)) => {
            match pouch::custody::receipt::write(
                dir,
                (&report.manifest, &report.manifest_sha256),
                key,
                &pouch::custody::receipt::Verdict::Accepted,
            ) {
                Ok(path) => Some(path),
                Err(e) => {
                    render::warn(&format!(
                        "warning: the bundle is accepted, but its receipt could not be written: {e}; write it with pouch receipt make {} -s KEY -o DIR",
                        manifest.display()
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    render::unpack(&report, receipt.as_deref(), json);
    Ok(0)
}
