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
use crate::payload::crypto;
use crate::signature::TrustedKey;

/// The keyring file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyring {
    /// Format version, 1.
    #[serde(default = "one")]
    pub format_version: u32,
    /// The parties, in the order they were added.
    #[serde(default, rename = "party")]
    pub parties: Vec<Party>,
}

fn one() -> u32 {
    1
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
    /// Its age recipients, if it receives bundles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

/// No keyring larger than this is read (about 2,000 parties with a
/// post-quantum recipient each).
pub const MAX_KEYRING_BYTES: u64 = 4 << 20;

impl Keyring {
    /// Loads a keyring; a missing file is an empty keyring.
    pub fn load(path: &Path) -> Result<Keyring> {
        let bad = |reason: String| Error::BadKey {
            path: path.to_path_buf(),
            reason,
        };
        let Some(k) = read_toml::<Keyring>(path, MAX_KEYRING_BYTES, bad)? else {
            return Ok(Keyring {
                format_version: 1,
                parties: Vec::new(),
            });
        };
        if k.format_version != 1 {
            return Err(bad(format!(
                "keyring format_version {} is not supported",
                k.format_version
            )));
        }
        let mut names = std::collections::HashSet::new();
        let mut seen = Keyring::default();
        for p in &k.parties {
            manifest::check_party_name(&p.name).map_err(|e| bad(format!("party name {e}")))?;
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("party {} is listed twice", p.name)));
            }
            if let Some(pk) = &p.sign_pub {
                let key = TrustedKey::from_base64(pk)
                    .map_err(|e| bad(format!("party {}: sign_pub: {e}", p.name)))?;
                seen.check_key_is_new(&p.name, &key)
                    .map_err(|e| bad(format!("party {}: sign_pub: {e}", p.name)))?;
                seen.parties.push(p.clone());
            }
            for r in &p.recipients {
                crypto::parse_recipient(r).map_err(|e| bad(format!("party {}: {e}", p.name)))?;
            }
        }
        Ok(k)
    }

    /// Writes the keyring durably, replacing the old file.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::disk::durable::ensure_parent(path)?;
        let body = toml::to_string(self)
            .map_err(|e| Error::Internal(format!("cannot serialise the keyring: {e}")))?;
        let text = format!("# pouch keyring: parties, their signing keys and age recipients\n# Edit with pouch keyring add/remove.\n\n{body}");
        let mut f = crate::disk::durable::PendingFile::create(path, 0o600)?;
        f.write_all(text.as_bytes())?;
        let synced = f.sync()?;
        synced.replace()
    }

    /// The party called `name`.
    pub fn get(&self, name: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.name == name)
    }

    /// Every signing key in the keyring, as trusted keys named after their party.
    pub fn trusted_keys(&self) -> Vec<TrustedKey> {
        self.parties
            .iter()
            .filter_map(|p| {
                let pk = p.sign_pub.as_deref()?;
                let mut k = TrustedKey::from_base64(pk).ok()?;
                k.source = format!("keyring party {}", p.name);
                k.party = Some(p.name.clone());
                Some(k)
            })
            .collect()
    }

    /// The trusted signer keys: those of `args` (files or base64 keys given
    /// with `--trust`), then the keyring's.
    pub fn trusted_with(&self, args: &[String]) -> Result<Vec<TrustedKey>> {
        let mut keys = args
            .iter()
            .map(|t| TrustedKey::load(t))
            .collect::<Result<Vec<_>>>()?;
        keys.extend(self.trusted_keys());
        Ok(keys)
    }

    /// Exactly the keys of `args` (files or base64 keys), each named by its
    /// keyring party when the keyring holds the same full key: for a check
    /// that one named owner signed, where any other trusted key must fail.
    pub fn only(&self, args: &[String]) -> Result<Vec<TrustedKey>> {
        let known = self.trusted_keys();
        args.iter()
            .map(|t| {
                let mut key = TrustedKey::load(t)?;
                key.party = known
                    .iter()
                    .find(|k| k.same_key(&key))
                    .and_then(|k| k.party.clone());
                Ok(key)
            })
            .collect()
    }

    /// Refuses a signing key for `name` whose key id another party's key
    /// already has. A minisign key id is 8 bytes its maker chooses: two
    /// parties with one id would make every message about the id ambiguous,
    /// and a key made with a known party's id is an impersonation attempt.
    fn check_key_is_new(&self, name: &str, key: &TrustedKey) -> Result<()> {
        for p in self.parties.iter().filter(|p| p.name != name) {
            let Some(theirs) = p.sign_pub.as_deref() else {
                continue;
            };
            let Ok(theirs) = TrustedKey::from_base64(theirs) else {
                continue;
            };
            if theirs.same_key(key) {
                return Err(Error::Usage(format!(
                    "this signing key is already party {}'s; one key belongs to one party",
                    p.name
                )));
            }
            if theirs.key_id == key.key_id {
                return Err(Error::Usage(format!(
                    "this signing key has key id {}, which party {}'s different key already has; \
                     key ids are chosen by whoever makes the key, so this may be an impersonation: \
                     compare the full key with its owner before trusting it",
                    key.key_id, p.name
                )));
            }
        }
        Ok(())
    }

    /// Adds a party, or adds keys to an existing one.
    pub fn add(&mut self, name: &str, sign_pub: Option<&str>, recipients: &[String]) -> Result<()> {
        manifest::check_party_name(name).map_err(|e| Error::Usage(format!("party name {e}")))?;
        let sign_pub = match sign_pub {
            Some(arg) => {
                let key = TrustedKey::load(arg)?;
                self.check_key_is_new(name, &key)?;
                Some(key.to_base64())
            }
            None => None,
        };
        for r in recipients {
            crypto::parse_recipient(r)?;
        }
        if sign_pub.is_none() && recipients.is_empty() {
            return Err(Error::Usage(
                "give --sign-pub FILE and/or --recipient age1… for the party".into(),
            ));
        }
        match self.parties.iter_mut().find(|p| p.name == name) {
            Some(p) => {
                if let (Some(old), Some(new)) = (&p.sign_pub, &sign_pub) {
                    if old != new {
                        return Err(Error::Usage(format!(
                            "{name} already has a different signing key; remove the party first if the key really changed"
                        )));
                    }
                }
                if sign_pub.is_some() {
                    p.sign_pub = sign_pub;
                }
                for r in recipients {
                    if !p.recipients.contains(r) {
                        p.recipients.push(r.clone());
                    }
                }
            }
            None => self.parties.push(Party {
                name: name.to_string(),
                sign_pub,
                recipients: recipients.to_vec(),
            }),
        }
        Ok(())
    }

    /// Removes a party.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        let before = self.parties.len();
        self.parties.retain(|p| p.name != name);
        if self.parties.len() == before {
            return Err(Error::Usage(format!(
                "no party called {name} in the keyring"
            )));
        }
        Ok(())
    }
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
        let mut all = Vec::new();
        for r in &req.recipients {
            all.push(crypto::parse_recipient(r)?);
        }
        for f in &req.files {
            all.extend(crypto::read_recipients_file(f)?);
        }
        for n in &req.parties {
            if self.get(n).is_none() {
                return Err(Error::Usage(format!(
                    "recipient {n} of the spec is not in the keyring; pouch keyring add {n} --recipient age1..."
                )));
            }
        }
        let parties = req
            .parties
            .iter()
            .chain(req.receiver.iter())
            .filter_map(|n| self.get(n));
        for r in parties.flat_map(|p| p.recipients.iter()) {
            let r = crypto::parse_recipient(r)?;
            if !all.contains(&r) {
                all.push(r);
            }
        }
        if all.is_empty() {
            return Err(Error::Usage(match &req.receiver {
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
