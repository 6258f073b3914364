//! The ledgers an audit is given: each checked (its chain, and its owner's
//! signature), the bundles found compared with what they record, and the
//! channels reconciled across them (see [`crate::custody::reconcile`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::custody::ledger::{self, Event, Record};
use crate::custody::ledger_seal;
use crate::custody::reconcile::{self, LedgerClaims};
use crate::signature::TrustedKey;

use super::{BundleRow, LedgerRow};

/// Checks each ledger; marks the bundles found that no ledger records, or
/// that one records with another manifest; returns the ledgers' rows and
/// what each vouches for, to reconcile.
pub(super) fn check_all(
    paths: &[std::path::PathBuf],
    bundles: &mut [BundleRow],
    trusted: &[TrustedKey],
) -> (Vec<LedgerRow>, Vec<LedgerClaims>) {
    // The bundles found, and the bases of the deltas among them.
    let bases = bundles
        .iter()
        .filter_map(|b| Some(b.delta.as_ref()?.base_bundle_id.clone()));
    let found: BTreeSet<String> = bundles
        .iter()
        .filter_map(|b| b.bundle_id.clone())
        .chain(bases)
        .collect();
    let mut rows = Vec::new();
    let mut claims = Vec::new();
    let mut known: Vec<Record> = Vec::new();
    for path in paths {
        let (row, claim) = check_ledger(path, &found, trusted, &mut known);
        rows.push(row);
        claims.push(claim);
    }
    for b in bundles.iter_mut().filter(|b| b.verdict == "ok") {
        let mine: Vec<&Record> = known
            .iter()
            .filter(|r| {
                matches!(r.event, Event::Packed | Event::Accepted) && r.bundle_id == b.bundle_id
            })
            .collect();
        if mine.is_empty() {
            b.warnings.push(match paths.len() {
                1 => "not in the ledger".into(),
                _ => "in none of the ledgers".into(),
            });
        } else if mine.iter().any(|r| r.manifest_sha256 != b.manifest_sha256) {
            b.problems
                .push("a ledger records another manifest for this bundle id".into());
            b.verdict = "failed".into();
        }
    }
    super::chains::link(bundles, &known, !paths.is_empty());
    (rows, claims)
}

/// Checks one ledger in one pass: its chain, the records about the bundles
/// `found` (added to `known`), its channel records, and the owner's
/// signature when there is one.
fn check_ledger(
    path: &Path,
    found: &BTreeSet<String>,
    trusted: &[TrustedKey],
    known: &mut Vec<Record>,
) -> (LedgerRow, LedgerClaims) {
    let row = |verdict: &str, detail: String| LedgerRow {
        path: path.to_path_buf(),
        verdict: verdict.into(),
        detail,
    };
    let mut claims = LedgerClaims {
        path: path.to_path_buf(),
        ..LedgerClaims::default()
    };
    let signature = ledger_seal::signature_path(path);
    let signed = std::fs::symlink_metadata(&signature).is_ok();
    let mut channel_records = Vec::new();
    let keys = if signed { trusted } else { &[] };
    let pass = ledger_seal::verify_with(path, keys, |r| {
        if r.bundle_id.as_ref().is_some_and(|id| found.contains(id)) {
            known.push(r.clone());
        }
        if reconcile::bears(&r) && channel_records.len() < reconcile::MAX_RECORDS {
            channel_records.push(reconcile::slim(r));
        }
    });
    let (n, sealed) = match pass {
        Err(e) => return (row("failed", e.to_string()), claims),
        Ok(pass) => pass,
    };
    if !signed {
        for r in channel_records {
            claims.offer(r, None);
        }
        // Without trusted keys nobody could check a signature anyway.
        let verdict = if trusted.is_empty() { "ok" } else { "failed" };
        let detail = format!(
            "{n} records, chain intact, but not signed by its owner (no {}), so a rewrite would not show and its records are not reconciled; the owner signs it with pouch ledger sign",
            signature.display()
        );
        return (row(verdict, detail), claims);
    }
    let row = match sealed {
        Err(e) => row("failed", e.to_string()),
        Ok(c) => {
            claims.owner = c.party.clone();
            for r in channel_records {
                claims.offer(r, c.signed_records);
            }
            let row = |verdict: &str, detail: String| {
                match claims.left_out {
                0 => row(verdict, detail),
                k => row(
                    verdict,
                    format!("{detail}; {k} channel records not reconciled (newer than its signature, or beyond {} records)", reconcile::MAX_RECORDS),
                ),
            }
            };
            match (c.signed_records, c.party.or(c.signer)) {
                (Some(signed), Some(by)) => {
                    let unsigned = match n - signed {
                        0 => String::new(),
                        k => format!("; the {k} newest not signed yet"),
                    };
                    let last = signed - 1;
                    row(
                        "ok",
                        format!(
                            "{n} records, chain intact, records 0 to {last} signed by {by}{unsigned}"
                        ),
                    )
                }
                _ => row(
                    "ok",
                    format!(
                        "{n} records, chain intact; its signature was not checked (no trusted keys)"
                    ),
                ),
            }
        }
    };
    (row, claims)
}

/// The receiver party (`None` for a bundle packed without one) the
/// senders' `ledgers` recorded for each of the bundles `ids` when it was
/// packed, in one pass over each; none without ledgers.
pub(super) fn packed_receivers(
    ledgers: &[std::path::PathBuf],
    ids: &BTreeSet<&str>,
) -> std::result::Result<BTreeMap<String, Option<String>>, String> {
    let mut packed = BTreeMap::new();
    if ids.is_empty() {
        return Ok(packed);
    }
    for l in ledgers {
        ledger::each(l, |r| {
            if let (Event::Packed, Some(id)) = (r.event, &r.bundle_id) {
                if ids.contains(id.as_str()) {
                    packed.insert(id.clone(), r.receiver);
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(packed)
}
