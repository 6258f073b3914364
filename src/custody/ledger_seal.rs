//! The owner's signature over a ledger: who wrote it, and that nothing up to
//! the signed record was rewritten.
//!
//! The hash chain alone needs no key: whoever rewrites every record can
//! re-chain them. So the owner signs the ledger's head: the newest record's
//! line, with the trusted comment `pouch ledger records:N head:SHA256`. As
//! every record holds the hash of the one before it, the head commits to
//! the whole ledger up to it. `pack -s KEY` signs the sender's ledger after
//! each bundle; `pouch ledger sign -s KEY` signs any time. The signature is
//! `ledger.jsonl.minisig`, beside the ledger.
//!
//! What a signed ledger proves: the owner's key wrote records 0 to N-1 as
//! they stand. What it cannot prove: that records newer than the signed
//! head are the owner's (they are reported as unsigned), or that the owner
//! did not drop its own newest records before signing; keep a copy
//! elsewhere, or compare with the other party's ledger.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::custody::ledger;
use crate::disk::durable::PendingFile;
use crate::error::{Error, Result};
use crate::payload::hashing::sha256_hex;
use crate::signature::{self, SigningKey, TrustedKey};

/// The start of the trusted comment of a ledger's signature.
const COMMENT_PREFIX: &str = "pouch ledger records:";

/// Where a ledger's signature is kept.
pub fn signature_path(ledger: &Path) -> PathBuf {
    signature::signature_path(ledger)
}

/// Signs the ledger at `path` as it stands, with the owner's `key`; returns
/// the number of records signed.
pub fn sign(path: &Path, key: &SigningKey) -> Result<u64> {
    let mut count = 0u64;
    let mut head = Vec::new();
    ledger::each_line(path, |i, line| {
        count = i + 1;
        head.clear();
        head.extend_from_slice(line);
        Ok(())
    })?;
    if count == 0 {
        return Err(Error::Usage(format!(
            "ledger {} has no records; there is nothing to sign",
            path.display()
        )));
    }
    let comment = comment(count, &head);
    let sig = key.sign_with_comment(&head, &comment, "pouch ledger signature")?;
    let mut file = PendingFile::create(&signature_path(path), 0o600)?;
    file.write_all(sig.as_bytes())?;
    file.sync()?.replace()?;
    Ok(count)
}

/// What `ledger verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerCheck {
    /// Records in the ledger, its chain intact.
    pub records: u64,
    /// Records its owner's signature covers (from the first), when a
    /// trusted key was asked for.
    pub signed_records: Option<u64>,
    /// The owner's key id.
    pub signer: Option<String>,
    /// The keyring party that owns that key.
    pub party: Option<String>,
}

/// Checks the ledger's chain and, with `trusted` keys, that one of them
/// signed it: the signature must verify over the record it names, and that
/// record must still be there. Records after it are counted as unsigned.
pub fn verify(path: &Path, trusted: &[TrustedKey]) -> Result<LedgerCheck> {
    let records = ledger::verify(path)?;
    let mut check = LedgerCheck {
        records,
        signed_records: None,
        signer: None,
        party: None,
    };
    if trusted.is_empty() {
        return Ok(check);
    }
    let sig_path = signature_path(path);
    let sig_text = signature::read_signature(&sig_path)?;
    let bad = |reason: String| Error::BadSignature {
        path: sig_path.clone(),
        reason,
    };
    // Which record the signature claims to cover; believed only below,
    // once the signature over that very record verified.
    let claimed = minisign::SignatureBox::from_string(&sig_text)
        .ok()
        .and_then(|s| s.trusted_comment().ok())
        .and_then(|c| {
            c.strip_prefix(COMMENT_PREFIX)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .filter(|&n| n > 0)
        .ok_or_else(|| bad("not a pouch ledger signature".into()))?;
    if claimed > records {
        return Err(Error::LedgerBroken {
            path: path.to_path_buf(),
            index: records,
            reason: format!(
                "its signature covers {claimed} records, but it holds {records}: the newest records were removed, or the ledger was rewritten"
            ),
        });
    }
    let mut head = Vec::new();
    ledger::each_line(path, |i, line| {
        if i + 1 == claimed {
            head = line.to_vec();
        }
        Ok(())
    })?;
    let v = signature::verify(&head, &sig_text, &sig_path, trusted).map_err(|e| match e {
        Error::BadSignature { .. } => bad(format!(
            "does not match record {} (the ledger was rewritten, or signed by another key)",
            claimed - 1
        )),
        e => e,
    })?;
    if v.trusted_comment != comment(claimed, &head) {
        return Err(bad(
            "its trusted comment does not name this ledger's head".into()
        ));
    }
    check.signed_records = Some(claimed);
    check.signer = Some(v.key_id);
    check.party = v.party;
    Ok(check)
}

fn comment(records: u64, head: &[u8]) -> String {
    format!("{COMMENT_PREFIX}{records} head:{}", sha256_hex(head))
}
