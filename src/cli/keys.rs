//! Keys as the command line gets them: asking for passphrases on the
//! terminal (which the library never reads), and saying out loud when the
//! operator chose not to check a signature.

use std::io::IsTerminal;
use std::path::Path;

use pouch::custody::keyring::Keyring;
use pouch::error::{Error, Result};
use pouch::signature::SigningKey;
use pouch::verify::Trust;

use super::render;

/// The signature policy of `--trust` and `--insecure-skip-signature`, with
/// the keyring's keys; warns on stderr when the signature will not be checked.
pub fn trust_policy(trust: &[String], insecure_skip: bool, keyring: &Keyring) -> Result<Trust> {
    let keys = if insecure_skip {
        Vec::new()
    } else {
        keyring.trusted_with(trust)?
    };
    let policy = Trust::choose(keys, !trust.is_empty(), insecure_skip)?;
    if matches!(policy, Trust::InsecureSkip) {
        render::warn("WARNING: --insecure-skip-signature: the signature is NOT checked; anyone could have made this bundle");
    }
    Ok(policy)
}

/// Loads a signing key, asking for its passphrase if needed: on a
/// terminal up to three times while it is wrong; from `--passphrase-file`
/// once.
pub fn load_signing_key(path: &Path, passphrase_file: Option<&Path>) -> Result<SigningKey> {
    let prompt = format!("Passphrase for {}: ", path.display());
    let mut asked = 0;
    let mut ask = || match passphrase_file {
        Some(f) => pouch::signature::read_passphrase_file(f),
        None => {
            asked += 1;
            let again = if asked > 1 {
                "Wrong passphrase; try again.\n"
            } else {
                ""
            };
            prompt_passphrase(&format!("{again}{prompt}"), path)
        }
    };
    let tries = match passphrase_file {
        Some(_) => 1,
        None => pouch::passphrase::TRIES,
    };
    SigningKey::load_trying(path, tries, &mut ask)
}

fn prompt_passphrase(prompt: &str, key: &Path) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::BadKey {
            path: key.to_path_buf(),
            reason: "the key is passphrase-protected and there is no terminal to ask on: pass --passphrase-file FILE".into(),
        });
    }
    rpassword::prompt_password(prompt).map_err(|e| Error::io("asking on", "/dev/tty", e))
}

/// Asks twice for the passphrase of a new signing key, again (three times
/// in all) when the two entries differ.
pub fn prompt_new_passphrase() -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "the signing key needs a passphrase and there is no terminal to ask on: pass --passphrase-file FILE or --no-passphrase".into(),
        ));
    }
    pouch::passphrase::new_passphrase(&mut |prompt| {
        rpassword::prompt_password(prompt).map_err(|e| Error::io("asking on", "/dev/tty", e))
    })
}
