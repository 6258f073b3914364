//! Auditing bundles and receipts without any decryption key.
//!
//! `audit` walks the given folders (a mounted stick, an archive), finds every
//! bundle manifest and receipt, and checks for each: the signature (against
//! the trusted keys, usually the keyring), the payload or every part against
//! the signed hashes, and, per channel among what it found, the series:
//! missing sequence numbers, a number used twice, and whether each bundle's
//! previous-manifest hash matches the bundle before it. Given a ledger, it
//! also checks the ledger's chain and that every bundle found is in it.
//! It reads nothing it does not need and never decrypts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::{self, ChannelBinding, SignatureStatus, Trust};
use crate::custody::ledger;
use crate::custody::receipt;
use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::signature::{self, TrustedKey};

mod chains;
mod ledgers;

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Folders (or files) to search.
    pub paths: Vec<PathBuf>,
    /// Keys whose signatures are trusted.
    pub trusted: Vec<TrustedKey>,
    /// Ledgers to check, to compare the bundles with, and to reconcile
    /// (the sender's and the receiver's of a channel, say).
    pub ledgers: Vec<PathBuf>,
    /// Fail bundles that are not sealed to post-quantum recipients only.
    pub require_pq: bool,
}

/// One bundle found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BundleRow {
    /// Its manifest.
    pub manifest: PathBuf,
    /// Its name.
    pub name: String,
    /// Its id, when the manifest could be read.
    pub bundle_id: Option<String>,
    /// `sender:receiver`, when both are named.
    pub channel: Option<String>,
    /// Whether the sender party vouched for the channel, when the signature
    /// could be checked.
    pub channel_binding: Option<ChannelBinding>,
    /// Sequence number in the channel.
    pub sequence: Option<u64>,
    /// Signer: keyring name, else key id.
    pub signer: Option<String>,
    /// Security marking.
    pub marking: Option<String>,
    /// Payload size in bytes.
    pub size: Option<u64>,
    /// Whether every recipient is post-quantum, when the manifest could be
    /// read: by its claim, and by the payload's age header where that was
    /// read (a header that does not match is no).
    pub post_quantum: Option<bool>,
    /// The recipient stanzas read from the payload's age header.
    pub header_stanzas: Option<Vec<String>>,
    /// PAR2 recovery files, when the signed manifest (or parts list)
    /// lists some: `present` (the payload is intact), `repairable (…)` or
    /// `unrecoverable (…)` with the slices lost and at hand.
    pub parity: Option<String>,
    /// For a delta bundle (by its verified manifest): the bundle id of the
    /// base it builds on, and whether that link of the chain is found (see
    /// [`chains`]).
    pub delta: Option<chains::Link>,
    /// `ok` or `failed`.
    pub verdict: String,
    /// What failed.
    pub problems: Vec<String>,
    /// Warnings that are not failures.
    pub warnings: Vec<String>,
    #[serde(skip)]
    manifest_sha256: Option<String>,
    #[serde(skip)]
    previous: Option<String>,
    /// The receiver party, from the verified manifest only.
    #[serde(skip)]
    receiver: Option<String>,
}

/// What a damaged payload's PAR2 files say, for the `parity` field.
fn parity_line(e: &Error) -> Option<String> {
    let Error::Damaged {
        repairable,
        lost,
        total,
        recovery,
        ..
    } = e
    else {
        return None;
    };
    let how = if *repairable {
        "repairable"
    } else {
        "unrecoverable"
    };
    Some(format!(
        "{how} ({lost} of {total} blocks lost, {recovery} recovery blocks available)"
    ))
}

/// One receipt found.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptRow {
    /// The receipt file.
    pub path: PathBuf,
    /// The bundle it confirms.
    pub bundle: Option<String>,
    /// Signer: keyring name, else key id.
    pub signer: Option<String>,
    /// What the receipt says: the bundle was accepted, or rejected and why.
    pub says: Option<receipt::Verdict>,
    /// `ok` or `failed`.
    pub verdict: String,
    /// What failed.
    pub problems: Vec<String>,
}

/// The series of one channel among the bundles found.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelRow {
    /// `sender:receiver`.
    pub channel: String,
    /// Sequence numbers found.
    pub sequences: Vec<u64>,
    /// Numbers missing between 1 and the highest found.
    pub missing: Vec<u64>,
}

/// The ledger's state.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerRow {
    /// The ledger file.
    pub path: PathBuf,
    /// `ok` or `failed`.
    pub verdict: String,
    /// Records in it, or the problem.
    pub detail: String,
}

/// Everything audit found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Bundles, in path order.
    pub bundles: Vec<BundleRow>,
    /// Receipts, in path order.
    pub receipts: Vec<ReceiptRow>,
    /// Per-channel series.
    pub channels: Vec<ChannelRow>,
    /// The ledgers given, each checked.
    pub ledgers: Vec<LedgerRow>,
    /// Per channel, what the ledgers' owners recorded, lined up, with
    /// every disagreement between them.
    pub reconciled: Vec<crate::custody::reconcile::ChannelLedgers>,
    /// Files that are not part of any bundle or receipt.
    pub ignored: Vec<PathBuf>,
    /// What interrupted packs and unpacks left (the next one into that
    /// folder removes it).
    pub leftovers: Vec<crate::disk::leftovers::Leftover>,
    /// Number of failed bundles, receipts and ledger.
    pub failed: u64,
}

/// Audits; see the module docs.
pub fn audit(opts: &AuditOptions) -> Result<AuditReport> {
    let mut manifests = Vec::new();
    let mut receipts = Vec::new();
    let mut ignored = Vec::new();
    let mut leftovers = Vec::new();
    for root in &opts.paths {
        let mut walk = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .follow_links(false)
            .into_iter();
        while let Some(item) = walk.next() {
            let item = item.map_err(|e| crate::Error::io("listing", root, e.into()))?;
            let p = item.path().to_path_buf();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(what) = crate::disk::leftovers::what(&name, item.file_type()) {
                leftovers.push(crate::disk::leftovers::Leftover { path: p, what });
                if item.file_type().is_dir() {
                    walk.skip_current_dir();
                }
                continue;
            }
            if !item.file_type().is_file() {
                continue;
            }
            if name.ends_with(".receipt.toml") {
                receipts.push(p);
            } else if name.ends_with(".parts.toml") {
                // A re-cut's parts list: read with its bundle's manifest.
            } else if name.ends_with(".toml") {
                manifests.push(p);
            } else if !(name.ends_with(".minisig")
                || name.ends_with(".age")
                || name.ends_with(".par2")
                || is_part(&name))
            {
                ignored.push(p);
            }
        }
    }

    let mut bundles: Vec<BundleRow> = Vec::new();
    for m in manifests {
        match bundle_row(&m, &opts.trusted, opts.require_pq) {
            Some(row) => bundles.push(row),
            None => ignored.push(m),
        }
    }
    let channels = series(&mut bundles);

    let receipt_rows = receipt_rows(receipts, &bundles, opts);

    let (ledger_rows, claims) = ledgers::check_all(&opts.ledgers, &mut bundles, &opts.trusted);
    let reconciled = crate::custody::reconcile::reconcile(&claims);

    let failed = bundles.iter().filter(|b| b.verdict != "ok").count()
        + receipt_rows.iter().filter(|r| r.verdict != "ok").count()
        + ledger_rows.iter().filter(|l| l.verdict != "ok").count()
        + reconciled
            .iter()
            .map(|c| c.disagreements.len())
            .sum::<usize>();
    Ok(AuditReport {
        bundles,
        receipts: receipt_rows,
        channels,
        ledgers: ledger_rows,
        reconciled,
        ignored,
        leftovers,
        failed: failed as u64,
    })
}

fn is_part(name: &str) -> bool {
    crate::disk::media::part_of(name).is_some()
}

/// Checks each receipt: its signature, and that the bundle's receiver
/// party signed it: the receiver the verified bundle names, else the one
/// the sender's ledger recorded when it packed the bundle (read once for
/// all receipts). The receipt's own claim proves nothing.
fn receipt_rows(
    receipts: Vec<PathBuf>,
    bundles: &[BundleRow],
    opts: &AuditOptions,
) -> Vec<ReceiptRow> {
    let read: Vec<(PathBuf, Result<receipt::Checked>)> = receipts
        .into_iter()
        .map(|r| {
            let checked = receipt::read(&r, &opts.trusted);
            (r, checked)
        })
        .collect();
    let find = |id: &str| bundles.iter().find(|b| b.bundle_id.as_deref() == Some(id));
    let unbundled: std::collections::BTreeSet<&str> = read
        .iter()
        .filter_map(|(_, c)| c.as_ref().ok())
        .map(|c| c.receipt.bundle_id.as_str())
        .filter(|id| find(id).is_none())
        .collect();
    let packed = ledgers::packed_receivers(&opts.ledgers, &unbundled);
    let mut rows = Vec::new();
    for (r, checked) in read {
        let mut row = ReceiptRow {
            path: r.clone(),
            bundle: None,
            signer: None,
            says: None,
            verdict: "ok".into(),
            problems: Vec::new(),
        };
        match checked {
            Ok(c) => {
                row.bundle = Some(c.receipt.name.clone());
                row.signer = Some(c.signer_name.clone().unwrap_or(c.signer.clone()));
                row.says = c.receipt.verdict().ok();
                let id = c.receipt.bundle_id.as_str();
                let found = find(id);
                let receiver = match (found, &packed) {
                    (Some(b), _) => Ok(b.receiver.clone()),
                    (None, Err(e)) => Err(e.clone()),
                    (None, Ok(packed)) => packed.get(id).cloned().ok_or_else(|| {
                        format!(
                            "cannot tell who received bundle {}: audit the receipt with its bundle, or pass the sender's --ledger",
                            crate::format::names::escape(id)
                        )
                    }),
                };
                match receiver {
                    Ok(receiver) => {
                        if let Err(e) = receipt::check_receiver(&c, receiver.as_deref(), &r) {
                            row.problems.push(e.to_string());
                        }
                    }
                    Err(why) => row.problems.push(why),
                }
                // A rejection may well be of a copy changed on the way.
                let accepted = row.says == Some(receipt::Verdict::Accepted);
                if let (Some(b), true) = (found, accepted) {
                    if b.manifest_sha256.as_deref() != Some(c.receipt.manifest_sha256.as_str()) {
                        row.problems.push(format!(
                            "confirms another manifest than the bundle {} found here",
                            b.name
                        ));
                    }
                }
            }
            Err(e) => row.problems.push(e.to_string()),
        }
        if !row.problems.is_empty() {
            row.verdict = "failed".into();
        }
        rows.push(row);
    }
    rows
}

/// Checks one manifest; `None` when the file is not a pouch manifest at all
/// (no signature beside it and not parseable as one).
fn bundle_row(path: &Path, trusted: &[TrustedKey], require_pq: bool) -> Option<BundleRow> {
    let sig_exists = signature::signature_path(path).is_file();
    // Read once; parsed here only when there is no signature to check first.
    let bytes = if sig_exists {
        bundle::read_manifest_bytes(path)
    } else {
        bundle::read_unvouched_bytes(path)
    };
    let parse = |b: &Result<Vec<u8>>| b.as_ref().ok().and_then(|b| Manifest::parse(b, path).ok());
    let unsigned = if sig_exists { None } else { parse(&bytes) };
    if !sig_exists && unsigned.is_none() {
        return None;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut row = BundleRow {
        manifest: path.to_path_buf(),
        name: stem,
        verdict: "ok".into(),
        ..BundleRow::default()
    };
    let mut refused = None;
    let opened = match &bytes {
        Ok(b) => bundle::open_bytes(path, b, &Trust::Keys(trusted.to_vec())).map_err(|e| {
            if let Error::ChannelClaim { signer, .. } = &e {
                refused = Some(ChannelBinding::Refused {
                    signer: signer.clone(),
                });
            }
            e.to_string()
        }),
        Err(e) => Err(e.to_string()),
    };
    match opened {
        Ok(b) => {
            let m = &b.manifest;
            row.name = m.name.clone();
            row.bundle_id = Some(m.bundle_id.clone());
            row.channel = ledger::channel_key(&m.channel.sender, &m.channel.receiver);
            row.receiver = m.channel.receiver.clone();
            row.sequence = m.channel.sequence;
            if let (Some(c), ChannelBinding::Unbound) = (&row.channel, &b.channel) {
                row.warnings.push(format!(
                    "channel {} is not vouched for: no keyring party signed it, so its sequence is not counted",
                    crate::format::names::escape(c)
                ));
            }
            row.channel_binding = Some(b.channel.clone());
            // A party's name only where its full public key verified the
            // signature; otherwise the (unauthenticated) key id.
            row.signer = Some(match &b.signature {
                SignatureStatus::Trusted { party: Some(p), .. } => p.clone(),
                _ => m.signer.key_id.clone(),
            });
            row.marking = Some(m.marking.clone());
            row.size = Some(m.payload.size);
            row.manifest_sha256 = Some(b.manifest_sha256.clone());
            row.previous = m.channel.previous_manifest_sha256.clone();
            row.parity = b.parity().map(|_| "present".to_string());
            row.delta = m.delta.as_ref().map(chains::Link::of);
            // One pass over the payload: hashes, and the header it holds.
            match b.check_payload_header() {
                Ok(h) => {
                    if let Err(e) = b.check_header(&h) {
                        row.problems.push(e.to_string());
                    }
                    row.post_quantum = Some(m.is_post_quantum() && h.problem.is_none());
                    row.header_stanzas = Some(h.stanzas);
                }
                Err(e) => {
                    row.post_quantum = Some(m.is_post_quantum());
                    let e = b.with_parity(e);
                    row.parity = parity_line(&e).or(row.parity.take());
                    row.problems.push(e.to_string());
                }
            }
        }
        Err(e) => {
            // Not authenticated: shown to help find the bundle, never trusted.
            row.channel_binding = refused;
            if let Some(m) = unsigned.or_else(|| parse(&bytes)) {
                row.name = m.name.clone();
                row.bundle_id = Some(m.bundle_id.clone());
                row.channel = ledger::channel_key(&m.channel.sender, &m.channel.receiver);
                row.sequence = m.channel.sequence;
                row.marking = Some(m.marking.clone());
                row.size = Some(m.payload.size);
                row.post_quantum = Some(m.is_post_quantum());
            }
            row.problems.push(e);
        }
    }
    if require_pq && row.post_quantum == Some(false) {
        row.problems.push(
            "present, but fails the post-quantum policy (--require-pq): sealed to classic X25519 \
             recipients, which a future quantum computer could open from a recorded copy"
                .into(),
        );
    }
    if !row.problems.is_empty() {
        row.verdict = "failed".into();
    }
    Some(row)
}

/// Per channel: numbers found and missing; a number used twice and a broken
/// previous-manifest link fail the bundles involved.
fn series(bundles: &mut [BundleRow]) -> Vec<ChannelRow> {
    let mut by_channel: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, b) in bundles.iter().enumerate() {
        let vouched = matches!(b.channel_binding, Some(ChannelBinding::Bound { .. }));
        if let (Some(c), Some(_), "ok", true) =
            (&b.channel, b.sequence, b.verdict.as_str(), vouched)
        {
            by_channel.entry(c.clone()).or_default().push(i);
        }
    }
    let mut rows = Vec::new();
    for (channel, idx) in by_channel {
        let mut seqs: Vec<u64> = idx.iter().filter_map(|&i| bundles[i].sequence).collect();
        seqs.sort_unstable();
        let missing = crate::custody::channel::missing(&seqs.iter().copied().collect());
        for &i in &idx {
            let seq = bundles[i].sequence.unwrap_or(0);
            let same: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&j| j != i && bundles[j].sequence == Some(seq))
                .collect();
            if same
                .iter()
                .any(|&j| bundles[j].bundle_id != bundles[i].bundle_id)
            {
                bundles[i].problems.push(format!(
                    "sequence {seq} of {channel} is used by another bundle too"
                ));
            }
            if seq > 1 {
                let before: Vec<usize> = idx
                    .iter()
                    .copied()
                    .filter(|&j| bundles[j].sequence == Some(seq - 1))
                    .collect();
                if let Some(&j) = before.first() {
                    if bundles[i].previous != bundles[j].manifest_sha256 {
                        let other = bundles[j].name.clone();
                        bundles[i].problems.push(format!("its previous-manifest hash does not match bundle {other} (sequence {})", seq - 1));
                    }
                } else {
                    bundles[i].warnings.push(format!(
                        "the bundle before it (sequence {}) is not among those audited",
                        seq - 1
                    ));
                }
            }
            if !bundles[i].problems.is_empty() {
                bundles[i].verdict = "failed".into();
            }
        }
        seqs.dedup();
        rows.push(ChannelRow {
            channel,
            sequences: seqs,
            missing,
        });
    }
    rows
}
