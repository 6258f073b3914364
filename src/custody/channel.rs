//! A channel's sequence numbers on the receiving side: whether a bundle is
//! a replay, what is missing, and whether its link to the bundle before it
//! holds. They belong to the channel's sender party: only bundles signed by
//! that party's key are checked against them and counted in them (the
//! ledger's `vouched_by`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::custody::ledger::{self, channel_key, Event, Record};
use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::format::names::escape;

/// What the receiving side found about a bundle before accepting it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Arrival {
    /// Sequence numbers of the channel still missing once this one is in.
    pub missing: Vec<u64>,
    /// Warnings: a previous-manifest hash that does not match, and the like.
    pub flags: Vec<String>,
}

/// Checks a bundle (manifest `m`, whose file hashes to `manifest_sha256`)
/// against the bundles already accepted. A replay is an error: the same
/// manifest again, the same bundle id from the same vouched-for sender party, or a
/// sequence number of the channel taken before. Gaps and a broken
/// previous-manifest link are reported.
///
/// A channel's sequence numbers belong to its sender party: they are checked
/// and counted only for a bundle `vouched_by` that party (see
/// [`crate::bundle::ChannelBinding`]); any other bundle is accepted without
/// touching them.
pub fn check_arrival(
    records: &[Record],
    m: &Manifest,
    manifest_sha256: &str,
    vouched_by: Option<&str>,
) -> Result<Arrival> {
    let accepted: Vec<&Record> = records
        .iter()
        .filter(|r| r.event == Event::Accepted)
        .collect();
    let mut arrival = Arrival::default();
    for r in accepted
        .iter()
        .filter(|r| r.bundle_id.as_deref() == Some(m.bundle_id.as_str()))
    {
        // The same manifest again, or the same id from the same vouched-for
        // sender party. Unvouched signers are not told apart by name, so
        // one of them cannot block another's ids.
        let same_party = vouched_by.is_some() && r.vouched_by.as_deref() == vouched_by;
        if r.manifest_sha256.as_deref() == Some(manifest_sha256) || same_party {
            return Err(Error::Replay {
                bundle: m.name.clone(),
                reason: format!(
                    "bundle {} was already accepted on {} (ledger record {})",
                    m.bundle_id,
                    escape(&r.time),
                    r.index
                ),
            });
        }
        arrival.flags.push(format!(
            "another signer's bundle with the same id was accepted before (ledger record {})",
            r.index
        ));
    }
    let Some(key) = channel_key(&m.channel.sender, &m.channel.receiver) else {
        return Ok(arrival);
    };
    if vouched_by != m.channel.sender.as_deref() {
        arrival.flags.push(format!(
            "channel {} is not vouched for: the signing key is no keyring party's, so its sequence numbers are neither checked nor counted (add the sender with pouch keyring add)",
            escape(&key)
        ));
        return Ok(arrival);
    }
    let Some(seq) = m.channel.sequence else {
        return Ok(arrival);
    };
    let on_channel: Vec<&&Record> = accepted
        .iter()
        .filter(|r| {
            is_vouched(r) && channel_key(&r.sender, &r.receiver).as_deref() == Some(key.as_str())
        })
        .collect();
    if let Some(r) = on_channel.iter().find(|r| r.sequence == Some(seq)) {
        return Err(Error::Replay {
            bundle: m.name.clone(),
            reason: format!(
                "sequence {seq} of channel {key} was already accepted as bundle {} (ledger record {})",
                escape(r.name.as_deref().unwrap_or("?")),
                r.index
            ),
        });
    }
    let mut have: BTreeSet<u64> = on_channel.iter().filter_map(|r| r.sequence).collect();
    have.insert(seq);
    arrival.missing = missing(&have);
    check_link(&mut arrival, seq, m, &on_channel);
    Ok(arrival)
}

/// Whether record `r` is one [`check_arrival`] needs for a bundle with
/// manifest `m`: an accepted bundle with its id, or on its channel.
pub fn bears_on(r: &Record, m: &Manifest) -> bool {
    r.event == Event::Accepted
        && (r.bundle_id.as_deref() == Some(m.bundle_id.as_str())
            || channel_key(&m.channel.sender, &m.channel.receiver)
                .is_some_and(|k| channel_key(&r.sender, &r.receiver).as_deref() == Some(&k)))
}

/// Whether an accepted record counts in its channel's sequence numbers: its
/// bundle was signed by the channel's sender party.
fn is_vouched(r: &Record) -> bool {
    r.vouched_by.is_some() && r.vouched_by == r.sender
}

/// Flags a previous-manifest link that is missing or does not match.
fn check_link(arrival: &mut Arrival, seq: u64, m: &Manifest, on_channel: &[&&Record]) {
    match (seq, &m.channel.previous_manifest_sha256) {
        (1, Some(_)) => arrival
            .flags
            .push("the first bundle of the channel names a previous manifest".into()),
        (1, None) => {}
        (_, None) => arrival
            .flags
            .push(format!("sequence {seq} names no previous manifest")),
        (_, Some(prev)) => {
            if let Some(before) = on_channel.iter().find(|r| r.sequence == Some(seq - 1)) {
                if before.manifest_sha256.as_deref() != Some(prev.as_str()) {
                    arrival.flags.push(format!(
                        "its previous-manifest hash does not match bundle {} (sequence {}) accepted earlier",
                        escape(before.name.as_deref().unwrap_or("?")),
                        seq - 1
                    ));
                }
            }
        }
    }
}

/// The most channels [`gaps`] follows in one ledger, and the most runs of
/// consecutive numbers it keeps per channel: with them its memory stays
/// bounded (about 20 MiB at most) whatever the ledger holds.
pub const MAX_CHANNELS: usize = 256;
const MAX_RUNS: usize = 2 * MAX_LISTED_MISSING;

/// Missing sequence numbers per channel among the accepted bundles of the
/// ledger at `path`, read record by record (see [`Runs`]).
pub fn gaps(path: &Path) -> Result<BTreeMap<String, Vec<u64>>> {
    let mut seen: BTreeMap<String, Runs> = BTreeMap::new();
    ledger::each(path, |r| {
        // A recipient's series is what it accepted from the sender party;
        // a sender's, what it packed (a number it reserved and abandoned
        // shows as missing there too).
        let counts = match r.event {
            Event::Accepted => is_vouched(&r),
            Event::Packed => true,
            _ => false,
        };
        if !counts {
            return Ok(());
        }
        let (Some(key), Some(seq)) = (channel_key(&r.sender, &r.receiver), r.sequence) else {
            return Ok(());
        };
        if !seen.contains_key(&key) && seen.len() >= MAX_CHANNELS {
            return Err(Error::LedgerBroken {
                path: path.to_path_buf(),
                index: r.index,
                reason: format!(
                    "more than {MAX_CHANNELS} channels; not a ledger pouch wrote for one agency"
                ),
            });
        }
        seen.entry(key).or_default().insert(seq);
        Ok(())
    })?;
    Ok(seen
        .into_iter()
        .map(|(k, runs)| (k, runs.missing()))
        .collect())
}

/// The sequence numbers received on one channel, as runs of consecutive
/// numbers. Only the lowest [`MAX_RUNS`] runs are kept: above the lowest
/// run dropped nothing is recorded, and the missing numbers listed are
/// those below it, of which there are at least [`MAX_LISTED_MISSING`] when
/// a run was dropped (fewer only if numbers that close gaps arrive later).
#[derive(Debug, Default)]
struct Runs {
    /// Start → end (inclusive) of each run.
    runs: BTreeMap<u64, u64>,
    /// Numbers from here on are not recorded.
    cutoff: Option<u64>,
}

impl Runs {
    fn insert(&mut self, n: u64) {
        if self.cutoff.is_some_and(|c| n >= c) {
            return;
        }
        let before = self.runs.range(..=n).next_back().map(|(&s, &e)| (s, e));
        if before.is_some_and(|(_, e)| n <= e) {
            return;
        }
        let mut start = n;
        if let Some((s, e)) = before {
            if e.checked_add(1) == Some(n) {
                start = s;
            }
        }
        let mut end = n;
        if let Some(after) = n.checked_add(1) {
            if let Some(e) = self.runs.remove(&after) {
                end = e;
            }
        }
        self.runs.insert(start, end);
        if self.runs.len() > MAX_RUNS {
            if let Some((&s, _)) = self.runs.iter().next_back() {
                self.runs.remove(&s);
                self.cutoff = Some(s);
            }
        }
    }

    /// The first [`MAX_LISTED_MISSING`] numbers from 1 that are in no run.
    fn missing(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut next = 1u64;
        for (&s, &e) in &self.runs {
            while next < s && out.len() < MAX_LISTED_MISSING {
                out.push(next);
                next += 1;
            }
            if out.len() >= MAX_LISTED_MISSING {
                break;
            }
            next = e.saturating_add(1);
        }
        out
    }
}

/// The most missing sequence numbers listed for one channel: a sequence
/// number is the sender's claim, and a huge one must not cost a huge list.
pub const MAX_LISTED_MISSING: usize = 1000;

/// The numbers from 1 to the highest in `have` that are not in it, the
/// first [`MAX_LISTED_MISSING`] of them; work in proportion to `have`, not
/// to its highest number.
pub fn missing(have: &BTreeSet<u64>) -> Vec<u64> {
    let mut runs = Runs::default();
    for &n in have {
        runs.insert(n);
    }
    runs.missing()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_what_gaps_need_in_bounded_memory() {
        let mut r = Runs::default();
        for n in [1, 2, 3, 6, 5, 9] {
            r.insert(n);
        }
        assert_eq!(r.missing(), vec![4, 7, 8]);
        assert_eq!(r.runs.len(), 3, "1-3, 5-6, 9");
        // Every other number, far past the cap: memory stays at the cap and
        // the first missing numbers are exact.
        let mut odd = Runs::default();
        for n in (1..2_000_000u64).step_by(2) {
            odd.insert(n);
        }
        assert!(odd.runs.len() <= MAX_RUNS);
        let m = odd.missing();
        assert_eq!(m.len(), MAX_LISTED_MISSING);
        assert_eq!(&m[..3], &[2, 4, 6]);
        let mut huge = Runs::default();
        huge.insert(u64::MAX);
        assert_eq!(huge.missing().len(), MAX_LISTED_MISSING);
    }

    #[test]
    fn only_the_same_manifest_or_the_same_vouched_party_makes_a_bundle_id_replay() {
        let text = include_bytes!("../../manifests/bundle.toml");
        let m = Manifest::parse(text, Path::new("bundle.toml")).unwrap();
        let earlier = |vouched_by: Option<&str>| Record {
            event: Event::Accepted,
            bundle_id: Some(m.bundle_id.clone()),
            manifest_sha256: Some("a".repeat(64)),
            vouched_by: vouched_by.map(str::to_string),
            ..Record::default()
        };
        // Another unvouched signer used the id first: no block, a flag.
        let a = check_arrival(&[earlier(None)], &m, &"b".repeat(64), None).unwrap();
        assert!(a.flags.iter().any(|f| f.contains("same id")), "{a:?}");
        // The same manifest again is a replay, whoever signed it.
        let again = check_arrival(&[earlier(None)], &m, &"a".repeat(64), None);
        assert!(matches!(again, Err(Error::Replay { .. })));
        // The same id from the same vouched-for party is a replay.
        let sender = m.channel.sender.as_deref();
        let same = check_arrival(&[earlier(sender)], &m, &"b".repeat(64), sender);
        assert!(matches!(same, Err(Error::Replay { .. })));
    }

    #[test]
    fn missing_numbers_cost_what_is_there_not_the_highest_claimed() {
        let have: BTreeSet<u64> = [1, 3, 6].into_iter().collect();
        assert_eq!(missing(&have), vec![2, 4, 5]);
        // A sequence number is the sender's claim: a huge one lists the
        // first numbers only, at once.
        let huge: BTreeSet<u64> = [2, u64::MAX].into_iter().collect();
        let m = missing(&huge);
        assert_eq!(m.len(), MAX_LISTED_MISSING);
        assert_eq!(&m[..3], &[1, 3, 4]);
        assert!(missing(&BTreeSet::new()).is_empty());
        assert!(missing(&[u64::MAX].into_iter().collect()).len() == MAX_LISTED_MISSING);
    }
}
