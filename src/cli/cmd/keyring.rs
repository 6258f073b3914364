//! `pouch keyring`: add, list, rotate, revoke and remove parties and keys.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, cmd: KeyringCommand) -> Result<u8> {
    use pouch::custody::keyring;
    let at = ctx.keyring.path.as_ref();
    match cmd {
        KeyringCommand::Add {
            name,
            sign_pub,
            mut recipients,
            recipients_files,
        } => {
            for f in &recipients_files {
                recipients.extend(
                    crypto::read_recipients_file(f)?
                        .iter()
                        .map(|r| r.to_string()),
                );
            }
            let mut added = None;
            let path = keyring::update(at, |ring| {
                added = Some(ring.add(&name, sign_pub.as_deref(), &recipients)?);
                Ok(())
            })?;
            render::warn(&format!("{} updated: {name}", path.display()));
            if let Some(added) = added {
                key_added(&name, &added);
            }
        }
        KeyringCommand::List { json } => render::keyring(&keyring::open(at)?.0, json),
        KeyringCommand::Rotate {
            name,
            sign_pub,
            valid_from,
        } => {
            let from = match valid_from {
                Some(t) => keyring::parse_when(&t)?,
                None => time::OffsetDateTime::now_utc(),
            };
            let mut fingerprint = String::new();
            let path = keyring::update(at, |ring| {
                fingerprint = ring.rotate(&name, &sign_pub, from)?;
                Ok(())
            })?;
            render::warn(&format!(
                "{} updated: {name} signs with the new key from {}; the old key counts for what it signed before",
                path.display(),
                pouch::format::manifest::format_time(from)
            ));
            render::out(&format!("{name} signing key fingerprint: {fingerprint}"));
        }
        KeyringCommand::Revoke {
            name,
            sign_pub,
            reason,
        } => {
            let mut key_id = String::new();
            let now = time::OffsetDateTime::now_utc();
            let path = keyring::update(at, |ring| {
                key_id = ring.revoke(&name, sign_pub.as_deref(), reason.as_deref(), now)?;
                Ok(())
            })?;
            render::warn(&format!(
                "{} updated: key {key_id} of {name} revoked; nothing it signed is accepted any more",
                path.display()
            ));
        }
        KeyringCommand::Remove {
            name,
            recipients,
            sign_pubs,
        } => {
            let mut removed = Vec::new();
            let path = keyring::update(at, |ring| {
                removed = ring.remove(&name, &recipients, &sign_pubs)?;
                Ok(())
            })?;
            render::warn(&format!(
                "{} updated: {name}: removed {}",
                path.display(),
                removed.join(", ")
            ));
        }
    }
    Ok(0)
}

/// The full fingerprints of what `keyring add` added, on stdout, to be
/// read out to the party by phone; its warnings on stderr.
fn key_added(name: &str, added: &pouch::custody::keyring::Added) {
    if let Some(f) = &added.sign_pub_fingerprint {
        render::out(&format!("{name} signing key fingerprint: {f}"));
    }
    for (r, f) in &added.recipients {
        let shown: String = r.chars().take(16).collect();
        render::out(&format!("{name} recipient {shown}… fingerprint: {f}"));
    }
    for w in &added.warnings {
        render::warn(&format!("warning: {w}"));
    }
}
