//! The keyring: named parties with their signing public key (minisign)
//! and/or their age recipients, in a TOML file.
//!
//! `pack --to NAME` takes the recipients from here; `verify` and `unpack`
//! trust every signing key here by default and report the signer by name.
//! The file is rewritten whole, durably, on every change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::disk::durable::read_toml;
use crate::error::{Error, Result};
use crate::format::manifest;
use crate::format::names::escape;
use crate::payload::crypto;
use crate::signature::TrustedKey;

mod edit;
pub use edit::parse_when;

/// The keyring file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyring {
    /// Format version, 1.
    #[serde(default = "one")]
    pub format_version: u32,
    /// The parties, in the order they were added.
    #[serde(default, rename = "party")]
    pub parties: Vec<Party>,
    /// Revoked signing keys, whoever held them: kept when their party is
    /// removed, so that a revoked key never comes back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<Revoked>,
}

fn one() -> u32 {
    1
}

/// An empty keyring, of the format this pouch writes (so that one saved
/// as it is loads back).
impl Default for Keyring {
    fn default() -> Keyring {
        Keyring {
            format_version: one(),
            parties: Vec::new(),
            revoked: Vec::new(),
        }
    }
}

/// One party: an agency, a desk, a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The party's name, as used in `--from`/`--to` and channels.
    pub name: String,
    /// Its minisign public key, base64 (`RW…`), if it signs bundles or receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_pub: Option<String>,
    /// From when `sign_pub` is its key (RFC 3339, UTC), when it replaced
    /// another; what the key signed with an earlier time is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_pub_valid_from: Option<String>,
    /// Its age recipients, if it receives bundles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// Its earlier signing keys, each good for what it signed before the
    /// next one took over.
    #[serde(
        default,
        rename = "previous_key",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub previous_keys: Vec<PreviousKey>,
}

/// A signing key a party rotated away from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    /// The key, base64 (`RW…`).
    pub sign_pub: String,
    /// From when it was the party's key, if the keyring knew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// From when it no longer is: the next key's `valid_from`.
    pub valid_until: String,
}

/// A signing key its party revoked: nothing it signed is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// The key, base64 (`RW…`).
    pub sign_pub: String,
    /// The party whose key it was.
    pub party: String,
    /// When the revocation was entered (RFC 3339, UTC).
    pub revoked: String,
    /// Why, as the party said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// No keyring larger than this is read (about 2,000 parties with a
/// post-quantum recipient each).
pub const MAX_KEYRING_BYTES: u64 = 4 << 20;

/// What [`Keyring::add`] has to say beyond success: the full fingerprints
/// of every key the party now has, to compare with it by phone, and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Added {
    /// The party's signing key's fingerprint ([`TrustedKey::fingerprint`]), if it has one.
    pub sign_pub_fingerprint: Option<String>,
    /// Each recipient of the party, with its full fingerprint.
    pub recipients: Vec<(String, String)>,
    /// Things the operator should know (a classic recipient beside a
    /// post-quantum one, ...).
    pub warnings: Vec<String>,
}

/// Where a signing key stands in the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Current,
    Previous,
    Revoked,
}

/// One signing key of the keyring with its party and role.
struct Held<'a> {
    party: &'a str,
    role: Role,
    key: TrustedKey,
}

impl Held<'_> {
    /// "party P's signing key", "party P's previous key", ...
    fn describe(&self) -> String {
        self.named("")
    }

    /// The same for a key other than the one at hand: "party P's
    /// different key", ...
    fn describe_other(&self) -> String {
        self.named("different ")
    }

    fn named(&self, other: &str) -> String {
        let role = match (self.role, other.is_empty()) {
            (Role::Current, true) => "signing key",
            (Role::Current, false) => "key",
            (Role::Previous, _) => "previous key",
            (Role::Revoked, _) => "revoked key",
        };
        format!("party {}'s {other}{role}", self.party)
    }
}

/// A time of the keyring, RFC 3339 in UTC.
fn time_of(s: &str) -> Result<time::OffsetDateTime> {
    manifest::parse_time(s).map_err(|e| Error::Usage(e.replacen("created", "time", 1)))
}

impl Keyring {
    /// Loads a keyring; a missing file is an empty keyring.
    pub fn load(path: &Path) -> Result<Keyring> {
        let bad = |reason: String| Error::BadKey {
            path: path.to_path_buf(),
            reason,
        };
        let Some(k) = read_toml::<Keyring>(path, MAX_KEYRING_BYTES, bad)? else {
            return Ok(Keyring::default());
        };
        if k.format_version != 1 {
            return Err(bad(format!(
                "keyring format_version {} is not supported",
                k.format_version
            )));
        }
        let mut names = std::collections::HashSet::new();
        for p in &k.parties {
            manifest::check_party_name(&p.name).map_err(|e| bad(format!("party name {e}")))?;
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("party {} is listed twice", p.name)));
            }
            for r in &p.recipients {
                crypto::parse_recipient(r).map_err(|e| bad(format!("party {}: {e}", p.name)))?;
            }
        }
        for r in &k.revoked {
            manifest::check_party_name(&r.party)
                .map_err(|e| bad(format!("revoked key's party name {e}")))?;
        }
        // Every key once, in one place, and no two with one key id: a
        // revoked key listed again as someone's key must not count.
        let held = k.held().map_err(|e| bad(e.to_string()))?;
        for (i, h) in held.iter().enumerate() {
            if let Some(e) = conflict(&held[..i], &h.key) {
                return Err(bad(format!("{}: {e}", h.describe())));
            }
        }
        Ok(k)
    }

    /// Every signing key of the keyring, current, previous and revoked,
    /// as trusted keys named after their party, with their validity.
    fn held(&self) -> Result<Vec<Held<'_>>> {
        let parse = |party: &str, pk: &str, what: &str| {
            TrustedKey::from_base64(pk)
                .map_err(|e| Error::Usage(format!("party {party}: {what}: {e}")))
        };
        let when = |party: &str, t: Option<&String>| -> Result<Option<time::OffsetDateTime>> {
            t.map(|t| time_of(t).map_err(|e| Error::Usage(format!("party {party}: {e}"))))
                .transpose()
        };
        let mut out = Vec::new();
        // Revoked keys first, so that a key listed again is named as the
        // revoked key it is.
        for r in &self.revoked {
            let mut key = parse(&r.party, &r.sign_pub, "revoked")?;
            time_of(&r.revoked)?;
            key.revoked = Some(match &r.reason {
                Some(why) => format!("revoked {}: {}", r.revoked, escape(why)),
                None => format!("revoked {}", r.revoked),
            });
            out.push(Held {
                party: &r.party,
                role: Role::Revoked,
                key,
            });
        }
        for p in &self.parties {
            let name = p.name.as_str();
            if let Some(pk) = &p.sign_pub {
                let mut key = parse(name, pk, "sign_pub")?;
                key.valid_from = when(name, p.sign_pub_valid_from.as_ref())?;
                out.push(Held {
                    party: name,
                    role: Role::Current,
                    key,
                });
            } else if p.sign_pub_valid_from.is_some() {
                return Err(Error::Usage(format!(
                    "party {name}: sign_pub_valid_from without sign_pub"
                )));
            }
            for old in &p.previous_keys {
                let mut key = parse(name, &old.sign_pub, "previous_key")?;
                key.valid_from = when(name, old.valid_from.as_ref())?;
                key.valid_until = when(name, Some(&old.valid_until))?;
                out.push(Held {
                    party: name,
                    role: Role::Previous,
                    key,
                });
            }
        }
        for h in &mut out {
            h.key.source = format!("keyring party {}", h.party);
            h.key.party = Some(h.party.to_string());
        }
        Ok(out)
    }

    /// Writes the keyring durably, replacing the old file.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::disk::durable::ensure_parent(path)?;
        let body = toml::to_string(self)
            .map_err(|e| Error::Internal(format!("cannot serialise the keyring: {e}")))?;
        let text = format!("# pouch keyring: parties, their signing keys and age recipients\n# Edit with pouch keyring add/rotate/revoke/remove.\n\n{body}");
        let mut f = crate::disk::durable::PendingFile::create(path, 0o600)?;
        f.write_all(text.as_bytes())?;
        let synced = f.sync()?;
        synced.replace()
    }

    /// The party called `name`.
    pub fn get(&self, name: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.name == name)
    }

    /// Every signing key in the keyring, as trusted keys named after their
    /// party: current and previous keys with the times they were in force,
    /// and revoked keys marked so, so that [`crate::signature::verify`]
    /// refuses what they signed instead of calling it unknown.
    pub fn trusted_keys(&self) -> Vec<TrustedKey> {
        // A keyring is checked when loaded; one built in memory that does
        // not hold together trusts nothing.
        self.held()
            .map(|held| held.into_iter().map(|h| h.key).collect())
            .unwrap_or_default()
    }

    /// `key` (given with `--trust`) as the keyring knows it: named by its
    /// party with its validity when the keyring holds the same full key,
    /// and refused when the keyring marks it revoked. Every key a command
    /// trusts passes here or through [`Keyring::trusted_keys`].
    fn vouch(&self, mut key: TrustedKey, known: &[TrustedKey], given: &str) -> Result<TrustedKey> {
        if let Some(k) = known.iter().find(|k| k.same_key(&key)) {
            if let Some(revoked) = &k.revoked {
                return Err(Error::RevokedKey {
                    path: PathBuf::from(given),
                    key_id: key.key_id,
                    party: k.party.clone().unwrap_or_default(),
                    revoked: revoked.clone(),
                });
            }
            key.party = k.party.clone();
            key.valid_from = k.valid_from;
            key.valid_until = k.valid_until;
        }
        Ok(key)
    }

    /// The trusted signer keys: those of `args` (files or base64 keys given
    /// with `--trust`), then the keyring's.
    pub fn trusted_with(&self, args: &[String]) -> Result<Vec<TrustedKey>> {
        let known = self.trusted_keys();
        let mut keys = args
            .iter()
            .map(|t| self.vouch(TrustedKey::load(t)?, &known, &format!("--trust {t}")))
            .collect::<Result<Vec<_>>>()?;
        keys.extend(known);
        Ok(keys)
    }

    /// Exactly the keys of `args` (files or base64 keys), each named by its
    /// keyring party when the keyring holds the same full key: for a check
    /// that one named owner signed, where any other trusted key must fail.
    pub fn only(&self, args: &[String]) -> Result<Vec<TrustedKey>> {
        let known = self.trusted_keys();
        args.iter()
            .map(|t| self.vouch(TrustedKey::load(t)?, &known, &format!("--trust {t}")))
            .collect()
    }

    /// `key` (a signing key's public half, `-s KEY`) as the keyring knows
    /// it; refused when the keyring marks it revoked, since what it signs
    /// is accepted nowhere.
    pub fn own(&self, key: TrustedKey, path: &Path) -> Result<TrustedKey> {
        self.vouch(key, &self.trusted_keys(), "-s")
            .map_err(|e| match e {
                Error::RevokedKey {
                    key_id,
                    party,
                    revoked,
                    ..
                } => Error::WrongFile {
                    path: path.to_path_buf(),
                    problem: format!(
                        "this is key {key_id} of party {party}, which this keyring marks revoked ({revoked}); what it signs is accepted nowhere"
                    ),
                    hint: "sign with the party's current key; if this was it, make a new one (pouch keygen) and bring its .pub to every agency, who compare its fingerprint by phone",
                },
                e => e,
            })
    }

    /// Refuses a signing key for `name` that the keyring already holds
    /// elsewhere, or whose key id another key already has.
    fn check_key_is_new(&self, key: &TrustedKey) -> Result<()> {
        match conflict(&self.held()?, key) {
            Some(e) => Err(Error::Usage(e)),
            None => Ok(()),
        }
    }
}
/// What is wrong with giving `key` to party `name`, when `held` (keys of
/// the keyring) already has it or its key id. A minisign key id is 8 bytes
/// its maker chooses: two keys with one id would make every message about
/// the id ambiguous, and a key made with a known key's id (a revoked one's
/// included) is an impersonation attempt.
fn conflict(held: &[Held<'_>], key: &TrustedKey) -> Option<String> {
    for h in held {
        if h.key.same_key(key) {
            return Some(match &h.key.revoked {
                Some(when) => format!(
                    "this signing key is {} ({when}); a revoked key is never trusted again, by any party",
                    h.describe()
                ),
                None => format!(
                    "this signing key is already {}; one key belongs to one party, once",
                    h.describe()
                ),
            });
        }
        if h.key.key_id == key.key_id {
            return Some(format!(
                "this signing key has key id {}, which {} already has; \
                 key ids are chosen by whoever makes the key, so this may be an impersonation: \
                 compare the full key with its owner before trusting it",
                key.key_id,
                h.describe_other()
            ));
        }
    }
    None
}

/// Who a bundle is sealed to, as the clerk asked for it: recipients given
/// outright, files of recipients, and parties of the keyring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientRequest {
    /// Recipients given outright (`-r age1…`).
    pub recipients: Vec<String>,
    /// Files of recipients, one per line (`-R FILE`).
    pub files: Vec<PathBuf>,
    /// Parties that must be in the keyring (a spec's `recipients`).
    pub parties: Vec<String>,
    /// The receiving party (`--to`): its recipients are added when the
    /// keyring has it.
    pub receiver: Option<String>,
}

impl Keyring {
    /// The recipients a request names, each once, in the order given:
    /// outright ones, then files, then the parties' and the receiver's.
    /// A named party missing from the keyring, or no recipient at all, is a
    /// usage error saying what to pass.
    pub fn recipients_for(&self, req: &RecipientRequest) -> Result<Vec<crypto::Recipient>> {
        // Each recipient with where it came from, to name in a refusal.
        let mut all: Vec<(crypto::Recipient, String)> = Vec::new();
        for r in &req.recipients {
            all.push((crypto::parse_recipient(r)?, "-r".into()));
        }
        for f in &req.files {
            let from = format!("-R {}", f.display());
            all.extend(
                crypto::read_recipients_file(f)?
                    .into_iter()
                    .map(|r| (r, from.clone())),
            );
        }
        for n in &req.parties {
            if self.get(n).is_none() {
                return Err(Error::Refused(format!(
                    "recipient {n} of the spec is not in the keyring; pouch keyring add {n} --recipient age1..."
                )));
            }
        }
        let parties = req
            .parties
            .iter()
            .chain(req.receiver.iter())
            .filter_map(|n| self.get(n));
        for p in parties {
            for r in &p.recipients {
                let r = crypto::parse_recipient(r)?;
                if !all.iter().any(|(have, _)| *have == r) {
                    all.push((r, format!("keyring party {}", p.name)));
                }
            }
        }
        check_one_kind(&all)?;
        let all: Vec<crypto::Recipient> = all.into_iter().map(|(r, _)| r).collect();
        if all.is_empty() {
            return Err(Error::Refused(match &req.receiver {
                Some(to) => format!(
                    "no recipients: {to} has none in the keyring; pass -r age1... or -R FILE, or pouch keyring add {to} --recipient age1..."
                ),
                None => {
                    "no recipients: pass -r age1..., -R FILE, or --to NAME of a keyring party".into()
                }
            }));
        }
        Ok(all)
    }
}

/// Refuses a mix of post-quantum and classic recipients, naming where each
/// came from (a keyring party, `-r`, a file): the clerk sees which party's
/// key to change, where [`crypto::check_recipient_set`] could only list
/// fingerprints.
fn check_one_kind(all: &[(crypto::Recipient, String)]) -> Result<()> {
    let pq = all.iter().filter(|(r, _)| r.is_post_quantum()).count();
    if pq == 0 || pq == all.len() {
        return Ok(());
    }
    let list = |want_pq: bool| {
        let mut from: Vec<String> = all
            .iter()
            .filter(|(r, _)| r.is_post_quantum() == want_pq)
            .map(|(r, src)| format!("{} ({src})", crypto::fingerprint(r)))
            .collect();
        from.dedup();
        from.join(", ")
    };
    Err(Error::Usage(format!(
        "cannot mix post-quantum (age1pq1…) and classic (age1…) recipients in one bundle: \
         whoever breaks the classic stanza later gets the file key. Post-quantum: {}; classic: {}. \
         Give every recipient a post-quantum key (pouch keygen --pq), or seal separate bundles",
        list(true),
        list(false)
    )))
}

/// `recipients` followed by every recipient in `files`, as text, for
/// [`Keyring::add`].
pub fn recipients_with_files(
    mut recipients: Vec<String>,
    files: &[PathBuf],
) -> Result<Vec<String>> {
    for f in files {
        recipients.extend(
            crypto::read_recipients_file(f)?
                .iter()
                .map(|r| r.to_string()),
        );
    }
    Ok(recipients)
}

/// The keyring at `path`, with its path, for commands that use it.
pub fn open(explicit: Option<&PathBuf>) -> Result<(Keyring, PathBuf)> {
    let path = crate::settings::home::keyring_path(explicit)?;
    let k = Keyring::load(&path)?;
    Ok((k, path))
}

/// Changes the keyring with `change` under its lock: read, changed and
/// written back (temporary name, fsync, rename) while no other pouch
/// command can do the same, so that two updates at once both land.
/// Returns where the keyring is.
pub fn update(
    explicit: Option<&PathBuf>,
    change: impl FnOnce(&mut Keyring) -> Result<()>,
) -> Result<PathBuf> {
    let path = crate::settings::home::keyring_path(explicit)?;
    crate::disk::durable::ensure_parent(&path)?;
    let _lock = crate::disk::lock::StateLock::take(&path)?;
    let mut k = Keyring::load(&path)?;
    change(&mut k)?;
    k.save(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_keyring_saved_as_it_is_loads_back() {
        let (_dir, path) = crate::scratch::file("keyring.toml", None);
        Keyring::default().save(&path).expect("saved");
        assert_eq!(Keyring::load(&path).expect("loads"), Keyring::default());
    }

    fn recipient() -> String {
        crate::keygen::keygen("k", tempfile::tempdir().unwrap().path(), None, false)
            .unwrap()
            .recipient
    }

    fn ring(party: &str, recipients: &[String]) -> Keyring {
        let mut k = Keyring::default();
        k.add(party, None, recipients).unwrap();
        k
    }

    #[test]
    fn receiver_and_parties_add_their_recipients_once() {
        let (a, b) = (recipient(), recipient());
        let k = ring("desk", &[a.clone(), b.clone()]);
        let req = RecipientRequest {
            recipients: vec![a.clone()],
            receiver: Some("desk".into()),
            ..Default::default()
        };
        let got = k.recipients_for(&req).unwrap();
        let want = vec![
            crypto::parse_recipient(&a).unwrap(),
            crypto::parse_recipient(&b).unwrap(),
        ];
        assert!(got == want, "{} recipients", got.len());
    }

    #[test]
    fn an_unknown_receiver_is_no_error_but_an_unknown_spec_party_is() {
        let a = recipient();
        let k = ring("desk", std::slice::from_ref(&a));
        let req = RecipientRequest {
            recipients: vec![a],
            receiver: Some("elsewhere".into()),
            ..Default::default()
        };
        assert_eq!(k.recipients_for(&req).unwrap().len(), 1);
        let req = RecipientRequest {
            parties: vec!["nobody".into()],
            ..Default::default()
        };
        let e = k.recipients_for(&req).unwrap_err().to_string();
        assert!(
            e.contains("recipient nobody of the spec is not in the keyring"),
            "{e}"
        );
    }

    #[test]
    fn no_recipient_says_what_to_pass() {
        let k = Keyring::default();
        let e = k
            .recipients_for(&RecipientRequest::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass -r age1..., -R FILE, or --to NAME"), "{e}");
        let req = RecipientRequest {
            receiver: Some("desk".into()),
            ..Default::default()
        };
        let e = k.recipients_for(&req).unwrap_err().to_string();
        assert!(e.contains("desk has none in the keyring"), "{e}");
    }

    #[test]
    fn recipient_files_are_read_after_the_given_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (recipient(), recipient());
        let f = dir.path().join("r.txt");
        std::fs::write(&f, format!("# one\n{b}\n")).unwrap();
        let all = recipients_with_files(vec![a.clone()], &[f]).unwrap();
        assert_eq!(all, vec![a, b]);
    }
}
