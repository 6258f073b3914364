//! Changing the keyring: adding parties and keys, rotating a party's
//! signing key, revoking keys and removing parties or single keys.
//!
//! Every signing key entering the keyring is checked against every key it
//! holds, revoked ones included ([`conflict`]), so that a revoked key never
//! comes back: not as another party's key, not re-added, not as a
//! different key with its key id. Revocations are the keyring's, not a
//! party's: removing the party keeps them.

use super::*;

/// A time given on the command line: RFC 3339 in UTC, or a date
/// (`YYYY-MM-DD`, meaning its start in UTC).
pub fn parse_when(s: &str) -> Result<time::OffsetDateTime> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    manifest::parse_time(&full).map_err(|_| {
        Error::Usage(format!(
            "{s:?} is not a time: give a date (2027-01-01) or an RFC 3339 time in UTC (2027-01-01T08:00:00Z)"
        ))
    })
}

/// The full fingerprint of a recipient, in groups to read out.
fn recipient_fingerprint(r: &crypto::Recipient) -> String {
    use sha2::Digest;
    crate::signature::group(&hex::encode(sha2::Sha256::digest(r.to_string().as_bytes())))
}

impl Keyring {
    /// Adds a party, or adds keys to an existing one. A party's signing key
    /// is changed only by [`Keyring::rotate`].
    pub fn add(
        &mut self,
        name: &str,
        sign_pub: Option<&str>,
        recipients: &[String],
    ) -> Result<Added> {
        manifest::check_party_name(name).map_err(|e| Error::Usage(format!("party name {e}")))?;
        let mut added = Added::default();
        let sign_pub = match sign_pub {
            Some(arg) => {
                let key = TrustedKey::load(arg)?;
                let current = self.get(name).and_then(|p| p.sign_pub.as_deref());
                match current {
                    Some(old) if old == key.to_base64() => {}
                    Some(_) => {
                        return Err(Error::Refused(format!(
                            "{name} already has a different signing key; if the party rotated its key, \
                             pouch keyring rotate {name} --sign-pub NEW.minisign.pub [--valid-from DATE]; \
                             if the old key was lost or stolen, pouch keyring revoke {name} first"
                        )))
                    }
                    None => self.check_key_is_new(&key)?,
                }
                Some(key.to_base64())
            }
            None => None,
        };
        for r in recipients {
            let parsed = crypto::parse_recipient(r)?;
            added
                .recipients
                .push((parsed.to_string(), recipient_fingerprint(&parsed)));
        }
        if sign_pub.is_none() && recipients.is_empty() {
            return Err(Error::Usage(
                "give --sign-pub FILE and/or --recipient age1… for the party".into(),
            ));
        }
        let party = match self.parties.iter().position(|p| p.name == name) {
            Some(i) => &mut self.parties[i],
            None => {
                self.parties.push(Party {
                    name: name.to_string(),
                    sign_pub: None,
                    sign_pub_valid_from: None,
                    recipients: Vec::new(),
                    previous_keys: Vec::new(),
                });
                let last = self.parties.len() - 1;
                &mut self.parties[last]
            }
        };
        if sign_pub.is_some() {
            party.sign_pub = sign_pub;
        }
        for (r, _) in &added.recipients {
            if !party.recipients.contains(r) {
                party.recipients.push(r.clone());
            }
        }
        // The party's keys as they now stand, all of them, to read out.
        added.sign_pub_fingerprint = party
            .sign_pub
            .as_deref()
            .and_then(|pk| TrustedKey::from_base64(pk).ok())
            .map(|k| k.fingerprint());
        added.recipients = party
            .recipients
            .iter()
            .filter_map(|r| crypto::parse_recipient(r).ok())
            .map(|r| (r.to_string(), recipient_fingerprint(&r)))
            .collect();
        let pq = party
            .recipients
            .iter()
            .filter(|r| r.starts_with("age1pq1"))
            .count();
        if pq > 0 && pq < party.recipients.len() {
            added.warnings.push(format!(
                "party {name} now has post-quantum and classic recipients: pack --to {name} will refuse \
                 to seal to both (the classic one would undo the post-quantum protection); once {name} \
                 reads post-quantum bundles, pouch keyring remove {name} --recipient age1… (the classic one)"
            ));
        }
        Ok(added)
    }

    /// Gives party `name` the new signing key `new`, in force from `from`:
    /// the old key stays, as a previous key, for what it signed before
    /// `from`; the new one counts for what is signed from `from` on.
    /// Returns the new key's fingerprint.
    pub fn rotate(&mut self, name: &str, new: &str, from: time::OffsetDateTime) -> Result<String> {
        let key = TrustedKey::load(new)?;
        self.check_key_is_new(&key)?;
        let party = self.party_mut(name)?;
        let Some(old) = party.sign_pub.clone() else {
            return Err(Error::Usage(format!(
                "party {name} has no signing key to rotate: pouch keyring add {name} --sign-pub FILE"
            )));
        };
        let from_text = manifest::format_time(from);
        if let Some(old_from) = &party.sign_pub_valid_from {
            if time_of(old_from)? >= from {
                return Err(Error::Usage(format!(
                    "party {name}'s current key is in force from {old_from}; the new key's --valid-from must be later"
                )));
            }
        }
        party.previous_keys.push(PreviousKey {
            sign_pub: old,
            valid_from: party.sign_pub_valid_from.take(),
            valid_until: from_text.clone(),
        });
        party.sign_pub = Some(key.to_base64());
        party.sign_pub_valid_from = Some(from_text);
        Ok(key.fingerprint())
    }

    /// Revokes a signing key of party `name` (its current one, or `key`):
    /// it leaves the party and nothing it signed is accepted any more, by
    /// any command, whatever date it claims. `key` may also be one the
    /// keyring never held (a key the party reports lost). Returns the key id.
    pub fn revoke(
        &mut self,
        name: &str,
        key: Option<&str>,
        reason: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<String> {
        manifest::check_party_name(name).map_err(|e| Error::Usage(format!("party name {e}")))?;
        let key = match key {
            Some(k) => TrustedKey::load(k)?,
            None => match self.get(name).and_then(|p| p.sign_pub.as_deref()) {
                Some(pk) => TrustedKey::from_base64(pk)?,
                None => {
                    return Err(Error::Usage(format!(
                        "party {name} has no current signing key; name the key: --sign-pub FILE"
                    )))
                }
            },
        };
        let pk = key.to_base64();
        if let Some(r) = self.revoked.iter().find(|r| r.sign_pub == pk) {
            return Err(Error::Refused(format!(
                "key {} is already revoked (party {}, {})",
                key.key_id, r.party, r.revoked
            )));
        }
        let holder = self.parties.iter().find(|p| {
            p.sign_pub.as_deref() == Some(pk.as_str())
                || p.previous_keys.iter().any(|o| o.sign_pub == pk)
        });
        match holder {
            Some(p) if p.name != name => {
                return Err(Error::Usage(format!(
                    "key {} is party {}'s, not {name}'s: pouch keyring revoke {} --sign-pub …",
                    key.key_id, p.name, p.name
                )))
            }
            Some(_) => self.drop_sign_pub(name, &pk),
            None => self.check_key_is_new(&key)?,
        }
        self.revoked.push(Revoked {
            sign_pub: pk,
            party: name.to_string(),
            revoked: manifest::format_time(now),
            reason: reason.map(str::to_string),
        });
        Ok(key.key_id)
    }

    /// Removes a party (its revocations stay), or with `recipients` or
    /// `sign_pubs` only those keys of it. Returns what was removed.
    pub fn remove(
        &mut self,
        name: &str,
        recipients: &[String],
        sign_pubs: &[String],
    ) -> Result<Vec<String>> {
        if recipients.is_empty() && sign_pubs.is_empty() {
            self.party_mut(name)?;
            self.parties.retain(|p| p.name != name);
            return Ok(vec![format!("party {name}")]);
        }
        let mut removed = Vec::new();
        for r in recipients {
            let want = crypto::parse_recipient(r)?;
            let party = self.party_mut(name)?;
            let before = party.recipients.len();
            party
                .recipients
                .retain(|have| crypto::parse_recipient(have).ok().as_ref() != Some(&want));
            if party.recipients.len() == before {
                return Err(Error::Usage(format!(
                    "party {name} has no recipient {}",
                    crypto::fingerprint(&want)
                )));
            }
            removed.push(format!("recipient {}", crypto::fingerprint(&want)));
        }
        for k in sign_pubs {
            let key = TrustedKey::load(k)?;
            let pk = key.to_base64();
            let party = self.party_mut(name)?;
            let held = party.sign_pub.as_deref() == Some(pk.as_str())
                || party.previous_keys.iter().any(|o| o.sign_pub == pk);
            if !held {
                return Err(Error::Usage(format!(
                    "party {name} has no signing key {}",
                    key.key_id
                )));
            }
            self.drop_sign_pub(name, &pk);
            removed.push(format!("signing key {}", key.key_id));
        }
        Ok(removed)
    }

    /// Takes the signing key `pk` (current or previous) from party `name`.
    fn drop_sign_pub(&mut self, name: &str, pk: &str) {
        if let Some(p) = self.parties.iter_mut().find(|p| p.name == name) {
            if p.sign_pub.as_deref() == Some(pk) {
                p.sign_pub = None;
                p.sign_pub_valid_from = None;
            }
            p.previous_keys.retain(|o| o.sign_pub != pk);
        }
    }

    fn party_mut(&mut self, name: &str) -> Result<&mut Party> {
        self.parties
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::Refused(format!("no party called {name} in the keyring")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        let kp = crate::signature::generate(None).expect("a key");
        kp.public.lines().nth(1).unwrap_or_default().to_string()
    }

    fn at(s: &str) -> time::OffsetDateTime {
        parse_when(s).expect("a time")
    }

    /// Saved and read back, as every command reads it.
    fn reloaded(k: &Keyring) -> Keyring {
        let (_dir, path) = crate::scratch::file("keyring.toml", None);
        k.save(&path).expect("saved");
        Keyring::load(&path).expect("loads")
    }

    #[test]
    fn a_keyring_of_before_rotation_loads_with_keys_good_at_any_time() {
        let old = format!(
            "format_version = 1\n[[party]]\nname = \"desk\"\nsign_pub = \"{}\"\n",
            key()
        );
        let (_dir, path) = crate::scratch::file("keyring.toml", Some(old.as_bytes()));
        let k = Keyring::load(&path).expect("an old keyring loads");
        let keys = k.trusted_keys();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].valid_from.is_none() && keys[0].valid_until.is_none());
        assert!(keys[0].revoked.is_none());
    }

    #[test]
    fn rotate_then_revoke_round_trips_through_the_file() {
        let (one, two) = (key(), key());
        let mut k = Keyring {
            format_version: 1,
            ..Keyring::default()
        };
        k.add("desk", Some(&one), &[]).expect("added");
        k.rotate("desk", &two, at("2027-01-01")).expect("rotated");
        let k = reloaded(&k);
        let keys = k.trusted_keys();
        let until: Vec<_> = keys.iter().map(|t| t.valid_until).collect();
        let from: Vec<_> = keys.iter().map(|t| t.valid_from).collect();
        assert_eq!(until, [None, Some(at("2027-01-01"))]);
        assert_eq!(from, [Some(at("2027-01-01")), None]);
        let mut k = k;
        k.revoke("desk", Some(&one), Some("stolen"), at("2027-02-01"))
            .expect("revoked");
        let k = reloaded(&k);
        assert_eq!(
            k.parties[0].previous_keys.len(),
            0,
            "the key left the party"
        );
        let keys = k.trusted_keys();
        assert!(keys[0].revoked.as_deref().unwrap_or("").contains("stolen"));
        assert!(k.clone().add("other", Some(&one), &[]).is_err());
        assert!(parse_when("tomorrow").is_err());
    }
}
