//! `pouch keyring`: add, list and remove parties.

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
            let path =
                keyring::update(at, |ring| ring.add(&name, sign_pub.as_deref(), &recipients))?;
            render::warn(&format!("{} updated: {name}", path.display()));
        }
        KeyringCommand::List { json } => render::keyring(&keyring::open(at)?.0, json),
        KeyringCommand::Remove { name } => {
            let path = keyring::update(at, |ring| ring.remove(&name))?;
            render::warn(&format!("{} updated: {name} removed", path.display()));
        }
    }
    Ok(0)
}
