//! Reconciling the two sides of a channel from their ledgers: for every
//! sequence number, what the sender packed and what the receiver accepted
//! or rejected, which receipts came back, and every point on which the two
//! ledgers disagree.
//!
//! A ledger speaks only for its owner: the keyring party whose key signed
//! it, and only up to the record that signature covers. For channel `A:B`,
//! what was packed, receipted and refused is taken from A's ledger alone,
//! what was accepted and rejected from B's alone. A record in any other
//! ledger (one signed by a third party, or not signed, or newer than its
//! signature) proves nothing about the channel and is not counted; the
//! report says how many were left out and why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::custody::ledger::{Event, Record};
use crate::format::names::escape;

/// What one ledger holds for reconciling, as checked.
#[derive(Debug, Clone, Default)]
pub struct LedgerClaims {
    /// The ledger file.
    pub path: PathBuf,
    /// The keyring party whose key signed it, when one did.
    pub owner: Option<String>,
    /// Its channel records that the owner's signature covers.
    pub records: Vec<Record>,
    /// Channel records left out: newer than the signature, or in a ledger
    /// no party signed.
    pub left_out: u64,
}

impl LedgerClaims {
    /// Keeps `r` (made [`slim`]) if it bears on a channel and the owner's
    /// signature covers it (`signed` records from the first).
    pub fn offer(&mut self, r: Record, signed: Option<u64>) {
        if !bears(&r) {
            return;
        }
        match (&self.owner, signed) {
            (Some(_), Some(n)) if r.index < n && self.records.len() < MAX_RECORDS => {
                self.records.push(r)
            }
            _ => self.left_out += 1,
        }
    }
}

/// Whether `r` says something of a channel that reconciling counts.
pub fn bears(r: &Record) -> bool {
    matches!(
        r.event,
        Event::Packed | Event::Accepted | Event::Rejected | Event::Receipt | Event::Refused
    ) && r.sender.is_some()
        && r.receiver.is_some()
}

/// The most channel records of one ledger that are reconciled, and the
/// most numbers of one channel lined up: a signed ledger is still one
/// party's word, and a party may write a number as large as it likes.
pub const MAX_RECORDS: usize = 200_000;
/// See [`MAX_RECORDS`].
pub const MAX_NUMBERS: u64 = 200_000;

/// A record as reconciling needs it: its first note only (for a
/// rejection or refusal), cut short, and nothing it does not read.
pub fn slim(mut r: Record) -> Record {
    if !matches!(r.event, Event::Rejected | Event::Refused) {
        r.notes.clear();
    }
    r.notes.truncate(1);
    if let Some(n) = r.notes.first_mut() {
        if n.len() > 240 {
            let mut end = 240;
            while !n.is_char_boundary(end) {
                end -= 1;
            }
            n.truncate(end);
            n.push('…');
        }
    }
    r.previous_manifest_sha256 = None;
    r.path = None;
    r.signer = None;
    r.vouched_by = None;
    r.prev = String::new();
    r
}

/// What became of one sequence number of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Packed, accepted with the same manifest, and its receipt imported.
    Delivered,
    /// Accepted by the receiver; its receipt is not in the sender's ledger.
    Accepted,
    /// Rejected by the receiver.
    Rejected,
    /// Packed, never accepted nor rejected, while a later number was: lost
    /// on the way.
    Lost,
    /// Packed; nothing of it in the receiver's ledger yet.
    Outstanding,
    /// The number was taken by a pack that never committed its bundle.
    NotPacked,
    /// Seen by one side only, whose counterpart's ledger was not given.
    OneSided,
}

impl Status {
    /// Every status, in the order reports list them.
    pub const ALL: [Status; 7] = [
        Status::Delivered,
        Status::Accepted,
        Status::Rejected,
        Status::Lost,
        Status::Outstanding,
        Status::NotPacked,
        Status::OneSided,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Lost => "lost",
            Status::Outstanding => "outstanding",
            Status::NotPacked => "not_packed",
            Status::OneSided => "one_sided",
        }
    }
}

/// One sequence number of a channel, from both ledgers.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceRow {
    /// The number.
    pub sequence: u64,
    /// The bundle's name, as a ledger recorded it.
    pub name: Option<String>,
    /// When it was packed, by the sender's ledger.
    pub packed: Option<String>,
    /// When the receiver accepted or rejected it, by its ledger.
    pub arrived: Option<String>,
    /// What became of it.
    pub status: Status,
    /// Why it was rejected or refused, when it was.
    pub reason: Option<String>,
}

/// One channel, reconciled.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelLedgers {
    /// `sender:receiver`.
    pub channel: String,
    /// The sender's ledger, when given (and signed by the sender).
    pub sender_ledger: Option<PathBuf>,
    /// The receiver's ledger, when given (and signed by the receiver).
    pub receiver_ledger: Option<PathBuf>,
    /// Every number from 1 to the highest either side recorded.
    pub sequences: Vec<SequenceRow>,
    /// How many numbers are in each status.
    pub counts: BTreeMap<&'static str, u64>,
    /// Where the two ledgers contradict each other (each a failure).
    pub disagreements: Vec<String>,
}

/// What one side recorded about one number (or, for receipts, one bundle).
#[derive(Default)]
struct Side<'a> {
    packed: Option<&'a Record>,
    accepted: Option<&'a Record>,
    rejected: Option<&'a Record>,
}

/// One channel's facts as each side's own ledger states them.
#[derive(Default)]
struct Facts<'a> {
    sender_ledger: Option<PathBuf>,
    receiver_ledger: Option<PathBuf>,
    by_number: BTreeMap<u64, Side<'a>>,
    receipted: BTreeSet<&'a str>,
    refused: BTreeMap<&'a str, &'a Record>,
    disagreements: Vec<String>,
}

/// Reconciles every channel that the ledgers' owners speak for.
pub fn reconcile(ledgers: &[LedgerClaims]) -> Vec<ChannelLedgers> {
    let mut channels: BTreeMap<String, Facts> = BTreeMap::new();
    for l in ledgers {
        let Some(owner) = l.owner.as_deref() else {
            continue;
        };
        for r in &l.records {
            let (Some(s), Some(rc)) = (r.sender.as_deref(), r.receiver.as_deref()) else {
                continue;
            };
            let f = channels.entry(format!("{s}:{rc}")).or_default();
            let sender_side =
                owner == s && matches!(r.event, Event::Packed | Event::Receipt | Event::Refused);
            let receiver_side = owner == rc && matches!(r.event, Event::Accepted | Event::Rejected);
            // A ledger is a side's only for the facts that side records.
            if sender_side {
                f.sender_ledger.get_or_insert_with(|| l.path.clone());
            }
            if receiver_side {
                f.receiver_ledger.get_or_insert_with(|| l.path.clone());
            }
            let id = r.bundle_id.as_deref();
            match (r.event, sender_side, receiver_side, r.sequence) {
                (Event::Packed, true, _, Some(n)) => {
                    let slot = f.by_number.entry(n).or_default();
                    if slot.packed.is_some_and(|p| p.bundle_id != r.bundle_id) {
                        f.disagreements.push(format!(
                            "number {n} was packed twice, as two bundles, by {}'s own ledger",
                            escape(s)
                        ));
                    }
                    slot.packed = Some(r);
                }
                (Event::Receipt, true, _, _) => f.receipted.extend(id),
                (Event::Refused, true, _, _) => {
                    if let Some(id) = id {
                        f.refused.insert(id, r);
                    }
                }
                (Event::Accepted, _, true, Some(n)) => {
                    f.by_number.entry(n).or_default().accepted = Some(r);
                }
                (Event::Rejected, _, true, Some(n)) => {
                    f.by_number.entry(n).or_default().rejected = Some(r);
                }
                _ => {}
            }
        }
    }
    channels
        .into_iter()
        .map(|(channel, facts)| channel_row(channel, facts))
        .collect()
}

/// The rows and disagreements of one channel.
fn channel_row(channel: String, mut f: Facts) -> ChannelLedgers {
    let last_arrived = f
        .by_number
        .iter()
        .filter(|(_, s)| s.accepted.is_some() || s.rejected.is_some())
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    let mut highest = f.by_number.keys().copied().max().unwrap_or(0);
    if highest > MAX_NUMBERS {
        f.disagreements.push(format!(
            "a ledger records number {highest}: only numbers 1 to {MAX_NUMBERS} are lined up"
        ));
        highest = MAX_NUMBERS;
    }
    let mut rows = Vec::new();
    for n in 1..=highest {
        let empty = Side::default();
        let side = f.by_number.get(&n).unwrap_or(&empty);
        let named = side.packed.or(side.accepted).or(side.rejected);
        let id = named.and_then(|r| r.bundle_id.as_deref());
        let receipted = id.is_some_and(|id| f.receipted.contains(id));
        let refused = id.and_then(|id| f.refused.get(id).copied());
        let mut disagree = |what: String| {
            f.disagreements.push(format!(
                "number {n} ({}): {what}",
                escape(named.and_then(|r| r.name.as_deref()).unwrap_or("?"))
            ))
        };
        if let (Some(p), Some(a)) = (side.packed, side.accepted) {
            if p.manifest_sha256 != a.manifest_sha256 || p.bundle_id != a.bundle_id {
                disagree("the receiver accepted another manifest than the sender packed".into());
            }
        }
        if f.sender_ledger.is_some() && side.packed.is_none() && side.accepted.is_some() {
            disagree("the receiver accepted it, but the sender's ledger never packed it".into());
        }
        if f.receiver_ledger.is_some() && receipted && side.accepted.is_none() {
            disagree(
                "the sender holds a receipt, but the receiver's ledger has no acceptance".into(),
            );
        }
        if f.receiver_ledger.is_some() && refused.is_some() && side.rejected.is_none() {
            disagree(
                "the sender recorded a refusal, but the receiver's ledger has no rejection".into(),
            );
        }
        let (sender, receiver) = (f.sender_ledger.is_some(), f.receiver_ledger.is_some());
        let status = if receipted && (side.accepted.is_some() || !receiver) {
            Status::Delivered
        } else if side.accepted.is_some() {
            match sender {
                true => Status::Accepted,
                false => Status::OneSided,
            }
        } else if side.rejected.is_some() || refused.is_some() {
            Status::Rejected
        } else if side.packed.is_none() {
            match sender {
                true => Status::NotPacked,
                false => Status::OneSided,
            }
        } else if !receiver {
            Status::OneSided
        } else if n < last_arrived {
            Status::Lost
        } else {
            Status::Outstanding
        };
        let reason = side
            .rejected
            .or(refused)
            .and_then(|r| r.notes.first().cloned());
        rows.push(SequenceRow {
            sequence: n,
            name: named.and_then(|r| r.name.clone()),
            packed: side.packed.map(|r| r.time.clone()),
            arrived: side.accepted.or(side.rejected).map(|r| r.time.clone()),
            status,
            reason,
        });
    }
    let mut counts = BTreeMap::new();
    for s in Status::ALL {
        let k = rows.iter().filter(|r| r.status == s).count() as u64;
        if k > 0 {
            counts.insert(s.name(), k);
        }
    }
    ChannelLedgers {
        channel,
        sender_ledger: f.sender_ledger,
        receiver_ledger: f.receiver_ledger,
        sequences: rows,
        counts,
        disagreements: f.disagreements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: Event, sequence: u64, id: &str) -> Record {
        Record {
            event,
            sequence: Some(sequence),
            bundle_id: Some(id.into()),
            name: Some(format!("b-{id}")),
            sender: Some("a".into()),
            receiver: Some("b".into()),
            manifest_sha256: Some("0".repeat(64)),
            ..Record::default()
        }
    }

    fn ledger(owner: &str, records: Vec<Record>) -> LedgerClaims {
        let mut l = LedgerClaims {
            owner: Some(owner.into()),
            ..LedgerClaims::default()
        };
        for (i, mut r) in records.into_iter().enumerate() {
            r.index = i as u64;
            l.offer(r, Some(u64::MAX));
        }
        l
    }

    #[test]
    fn a_party_speaks_only_for_its_own_side() {
        // The receiver's ledger claims a bundle packed; the sender's claims
        // one accepted: neither counts.
        let sender = ledger(
            "a",
            vec![
                record(Event::Packed, 1, "x"),
                record(Event::Accepted, 2, "y"),
            ],
        );
        let receiver = ledger(
            "b",
            vec![
                record(Event::Accepted, 1, "x"),
                record(Event::Packed, 2, "y"),
            ],
        );
        let c = &reconcile(&[sender, receiver])[0];
        let status: Vec<Status> = c.sequences.iter().map(|s| s.status).collect();
        assert_eq!(status, [Status::Accepted]);
        assert!(c.disagreements.is_empty(), "{:?}", c.disagreements);
        // A third party's ledger speaks for neither side.
        let third = ledger("c", vec![record(Event::Packed, 1, "x")]);
        assert!(reconcile(&[third])[0].sender_ledger.is_none());
    }

    #[test]
    fn a_number_far_beyond_the_others_is_not_lined_up_to() {
        let sender = ledger(
            "a",
            vec![
                record(Event::Packed, 1, "x"),
                record(Event::Packed, u64::MAX / 2, "y"),
            ],
        );
        let c = &reconcile(&[sender])[0];
        assert_eq!(c.sequences.len() as u64, MAX_NUMBERS);
        assert!(
            c.disagreements[0].contains("only numbers 1 to"),
            "{:?}",
            c.disagreements
        );
    }

    #[test]
    fn a_ledger_keeps_a_bounded_number_of_records() {
        let mut l = LedgerClaims {
            owner: Some("a".into()),
            ..LedgerClaims::default()
        };
        for i in 0..(MAX_RECORDS as u64 + 10) {
            l.offer(record(Event::Packed, i + 1, "x"), Some(u64::MAX));
        }
        assert_eq!((l.records.len(), l.left_out), (MAX_RECORDS, 10));
    }
}
