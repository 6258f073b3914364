//! A pack's part in deltas: the base a delta builds on, its `[delta]`
//! table, and the record of the tree each bundle of a channel was packed
//! from (see [`crate::delta`]).

use super::PackOptions;
use crate::custody::ledger::Ledger;
use crate::delta::base::Base;
use crate::delta::spill::Recorded;
use crate::error::Result;

/// The base of the delta `opts` asks for, if it asks for one, found in the
/// sender's ledger.
pub(super) fn delta_base(
    opts: &PackOptions,
    ledger: &mut Option<Ledger>,
    signer: &crate::signature::TrustedKey,
) -> Result<Option<Base>> {
    let Some(req) = &opts.delta else {
        return Ok(None);
    };
    let records = ledger
        .as_mut()
        .map(|l| l.records_where(crate::delta::base::bears_on_bases))
        .transpose()?;
    let known = opts.ledger.as_deref().zip(records.as_deref());
    let channel = (opts.sender.as_deref(), opts.receiver.as_deref());
    Base::resolve(req, (channel, signer), known).map(Some)
}

/// The manifest's `[delta]` table: the base, the resulting tree `state`,
/// and the base's paths the tree no longer holds.
pub(super) fn delta_record(
    base: &mut Base,
    state: &Recorded,
    sealed: bool,
) -> Result<crate::format::delta::Delta> {
    let deleted = base.deleted()?;
    let (tree_files, tree_folders, tree_bytes) = state.counts;
    Ok(crate::format::delta::Delta {
        base_bundle_id: base.bundle_id.clone(),
        base_manifest_sha256: base.manifest_sha256.clone(),
        tree_files,
        tree_folders,
        tree_bytes,
        tree_sha256: state.tree_sha256.clone(),
        deleted_count: deleted.len() as u64,
        deleted_sha256: crate::format::delta::block_sha256(&deleted),
        deleted: match sealed || !crate::format::delta::listed_outside(&deleted) {
            true => Vec::new(),
            false => deleted,
        },
    })
}

/// Records the tree the bundle was packed from, beside the ledger; the
/// bundle is committed, so a failure is a warning.
pub(super) fn save_tree(
    opts: &PackOptions,
    state: Recorded,
    (bundle_id, manifest_sha256): (&str, &str),
) {
    let Some(ledger) = &opts.ledger else {
        return;
    };
    let head = crate::delta::state::Head::of(bundle_id, manifest_sha256);
    let path = crate::delta::state::packed_path(ledger, bundle_id);
    if let Err(e) = state.save(head, &path) {
        crate::notice::notice(&format!(
            "warning: the bundle is complete, but the record of its tree could not be written ({e}); a delta on this bundle must name its manifest with --delta-from, and hashes every file"
        ));
    }
}

/// The tree packed (its record: the packed files and, for a delta, the
/// kept ones), when it is recorded, and the delta's `[delta]` table.
pub(super) fn tree_and_delta(
    listed: &mut super::listed::Listed,
    kept: crate::delta::spill::Spill,
    base: Option<std::sync::Mutex<Base>>,
    sealed: bool,
) -> Result<(Option<Recorded>, Option<crate::format::delta::Delta>)> {
    let Some(packed) = listed.items.take() else {
        return Ok((None, None));
    };
    let state = Recorded::merge(vec![packed, kept]).map_err(crate::delta::spill::failed)?;
    let delta = match base {
        Some(b) => Some(delta_record(&mut super::stages::lock(&b), &state, sealed)?),
        None => None,
    };
    Ok((Some(state), delta))
}
