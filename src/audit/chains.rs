//! Delta chains: each delta bundle found builds on a base, named by its
//! verified manifest; audit shows the link, and whether the base is known:
//! among the bundles found, or recorded (packed or accepted, with the same
//! manifest) in a ledger given. A base known nowhere is a missing link: a
//! failure when ledgers are given (the owner's own ledger must know every
//! base its deltas build on), a warning otherwise (the base may be on an
//! earlier medium).

use serde::Serialize;

use crate::custody::ledger::{Event, Record};
use crate::format::delta::Delta;

use super::BundleRow;

/// One delta's link to its base.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// The base's bundle id.
    pub base_bundle_id: String,
    /// The base's manifest sha256.
    pub base_manifest_sha256: String,
    /// Where the base was found: `bundle NAME`, `ledger`, or `missing`.
    pub base: String,
}

impl Link {
    /// The link a delta's manifest states, not looked for yet.
    pub fn of(d: &Delta) -> Link {
        Link {
            base_bundle_id: d.base_bundle_id.clone(),
            base_manifest_sha256: d.base_manifest_sha256.clone(),
            base: "missing".into(),
        }
    }
}

/// Looks for the base of every delta among `bundles` and the ledgers'
/// `known` records; marks each link found or missing.
pub(super) fn link(bundles: &mut [BundleRow], known: &[Record], ledgers_given: bool) {
    let found: Vec<(String, String, String)> = bundles
        .iter()
        .filter(|b| b.verdict == "ok")
        .filter_map(|b| {
            Some((
                b.bundle_id.clone()?,
                b.manifest_sha256.clone()?,
                b.name.clone(),
            ))
        })
        .collect();
    for b in bundles.iter_mut() {
        let Some(link) = &mut b.delta else {
            continue;
        };
        let (id, sha) = (&link.base_bundle_id, &link.base_manifest_sha256);
        if let Some((_, _, name)) = found.iter().find(|(i, s, _)| i == id && s == sha) {
            link.base = format!("bundle {name}");
            continue;
        }
        let recorded = known.iter().any(|r| {
            matches!(r.event, Event::Packed | Event::Accepted)
                && r.bundle_id.as_ref() == Some(id)
                && r.manifest_sha256.as_ref() == Some(sha)
        });
        if recorded {
            link.base = "ledger".into();
            continue;
        }
        let why = format!(
            "a delta on bundle {id}, which is neither among the bundles found nor in the ledgers given: a missing link in its chain"
        );
        if ledgers_given {
            b.problems.push(why);
            b.verdict = "failed".into();
        } else {
            b.warnings.push(why);
        }
    }
}
