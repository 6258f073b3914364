//! `pouch keygen`: make an age identity and a minisign key pair.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(args: KeygenArgs) -> Result<u8> {
    let KeygenArgs {
        name,
        out,
        no_passphrase,
        passphrase_file,
        pq,
    } = args;
    let passphrase = if no_passphrase {
        None
    } else if let Some(f) = passphrase_file {
        Some(pouch::signature::read_passphrase_file(&f)?)
    } else {
        Some(keys::prompt_new_passphrase()?)
    };
    let report = pouch::keygen::keygen(&name, &out, passphrase, pq)?;
    render::keygen(&report);
    Ok(0)
}
