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

use crate::custody::ledger::{self, Ledger, Record};
use crate::disk::durable::{open_regular, PendingFile};
use crate::error::{Error, Result};
use crate::format::names::escape;
use crate::payload::hashing::sha256_hex;
use crate::signature::{self, SigningKey, TrustedKey};

/// The start of the trusted comment of a ledger's signature.
const COMMENT_PREFIX: &str = "pouch ledger records:";

/// Where a ledger's signature is kept.
pub fn signature_path(ledger: &Path) -> PathBuf {
    signature::signature_path(ledger)
}

/// Signs the ledger at `path` as it stands, with the owner's `key`, under
/// its lock; returns the number of records signed.
pub fn sign(path: &Path, key: &SigningKey) -> Result<u64> {
    // A ledger that is not there is not made by signing it.
    open_regular(path)?;
    sign_ledger(&mut Ledger::open(path)?, key)
}

/// Signs an open ledger's head: its last line, read from the end of the
/// file (after an append, the record just written); returns the number of
/// records signed.
pub fn sign_ledger(ledger: &mut Ledger, key: &SigningKey) -> Result<u64> {
    let path = ledger.path().to_path_buf();
    let Some(head) = ledger.last_line()? else {
        return Err(Error::Refused(format!(
            "ledger {} has no records; there is nothing to sign",
            path.display()
        )));
    };
    let last: Record = serde_json::from_slice(&head).map_err(|e| Error::LedgerBroken {
        path: path.clone(),
        index: 0,
        reason: format!(
            "the last record is not valid: {}; run pouch ledger verify",
            escape(&e.to_string())
        ),
    })?;
    let count = last.index + 1;
    let sig = key.sign_with_comment(&head, &comment(count, &head), "pouch ledger signature")?;
    let mut file = PendingFile::create(&signature_path(&path), 0o600)?;
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
    verify_with(path, trusted, |_| {})?.1
}

/// [`verify`] in one pass over the ledger, handing each record to `f` as
/// the chain check passes it. The outer result is the chain's (with the
/// number of records), the inner one the signature's, so that a caller can
/// use the records of an intact chain whatever became of its signature.
pub fn verify_with(
    path: &Path,
    trusted: &[TrustedKey],
    mut f: impl FnMut(Record),
) -> Result<(u64, Result<LedgerCheck>)> {
    let sig_path = signature_path(path);
    // Read before the pass, so that the pass keeps the record the signature
    // claims to cover; its problems are reported after the chain's.
    let sig = (!trusted.is_empty()).then(|| signature::read_signature(&sig_path));
    let claimed = sig.as_ref().and_then(|s| claimed_records(s.as_ref().ok()?));
    let mut head = None;
    let records = ledger::verify_with(path, |i, line, r| {
        if Some(i + 1) == claimed {
            head = Some(line.to_vec());
        }
        f(r);
    })?;
    let signed = check_signature(path, records, sig, claimed, head, trusted);
    Ok((records, signed))
}

/// The signature part of [`verify_with`], once the chain of `records`
/// records passed: `sig` as read (none without trusted keys), the number of
/// records it `claimed` to cover and the `head` line found at that place.
fn check_signature(
    path: &Path,
    records: u64,
    sig: Option<Result<String>>,
    claimed: Option<u64>,
    head: Option<Vec<u8>>,
    trusted: &[TrustedKey],
) -> Result<LedgerCheck> {
    let sig_path = signature_path(path);
    let mut check = LedgerCheck {
        records,
        signed_records: None,
        signer: None,
        party: None,
    };
    let Some(sig_text) = sig.transpose()? else {
        return Ok(check);
    };
    let bad = |reason: String| Error::BadSignature {
        path: sig_path.clone(),
        reason,
    };
    // Which record the signature claims to cover is believed only below,
    // once the signature over that very record verified.
    let claimed = claimed.ok_or_else(|| bad("not a pouch ledger signature".into()))?;
    let Some(head) = head else {
        return Err(Error::LedgerBroken {
            path: path.to_path_buf(),
            index: records,
            reason: format!(
                "its signature covers {claimed} records, but it holds {records}: the newest records were removed, or the ledger was rewritten"
            ),
        });
    };
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
    if let Ok(last) = serde_json::from_slice::<ledger::Record>(&head) {
        v.check_not_replaced_at(&last.time, &sig_path)?;
    }
    check.signed_records = Some(claimed);
    check.signer = Some(v.key_id);
    check.party = v.party;
    Ok(check)
}

/// The number of records a ledger signature's (not yet verified) trusted
/// comment says it covers.
fn claimed_records(sig_text: &str) -> Option<u64> {
    minisign::SignatureBox::from_string(sig_text)
        .ok()?
        .trusted_comment()
        .ok()?
        .strip_prefix(COMMENT_PREFIX)?
        .split(' ')
        .next()?
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
}

fn comment(records: u64, head: &[u8]) -> String {
    format!("{COMMENT_PREFIX}{records} head:{}", sha256_hex(head))
}
