//! Who may claim what: a claim on the medium is believed only when the key
//! of the party it names vouches for it. A channel's sequence numbers belong
//! to its sender party (receipts, which belong to the receiving party, are
//! checked in [`crate::custody::receipt`]). The recipients a manifest lists
//! must be the whole truth of the payload's age header ([`header_recipients`]).

use serde::Serialize;
use std::path::Path;

use std::io::{BufReader, Read};

use crate::disk::durable::{open_regular, parent_of};
use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::format::names::escape;
use crate::payload::header::{stanza_problem, stanza_tags, MAX_HEADER_BYTES};
use crate::signature::{self, TrustedKey};

/// Whether the channel a manifest names is vouched for by its sender party.
/// A channel's sequence numbers belong to its sender party: only a bundle
/// signed by one of that party's keys is checked against them and counted
/// in them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "binding", rename_all = "snake_case")]
pub enum ChannelBinding {
    /// The manifest names no sender.
    NoChannel,
    /// Signed by a key of the keyring party the manifest names as sender.
    Bound {
        /// That party.
        party: String,
    },
    /// Signed by a key that no keyring party holds (a `--trust` file), or
    /// not checked: the claim is shown but not believed, and the channel's
    /// sequence numbers are neither checked nor consumed.
    Unbound,
    /// Signed by someone else than the sender party: refused (only inspect
    /// and audit report this; the other commands fail).
    Refused {
        /// Who signed it instead.
        signer: String,
    },
}

impl ChannelBinding {
    /// The sender party that vouched for the channel, if one did.
    pub fn party(&self) -> Option<&str> {
        match self {
            ChannelBinding::Bound { party } => Some(party),
            _ => None,
        }
    }
}

/// Checks that a verified signature belongs to this manifest: its trusted
/// comment names the bundle, the key was its party's when the manifest says
/// it was made, and the manifest names the key that signed it.
/// Then the channel: a manifest naming `sender = X` is bound when one of
/// keyring party X's keys signed it. Signed by another party's key, or by a
/// key that is not X's while X is a known party, it is refused; signed by a
/// `--trust` key no party holds, it is [unbound].
///
/// [unbound]: ChannelBinding::Unbound
pub fn bind(
    v: &signature::Verified,
    manifest: &Manifest,
    manifest_path: &Path,
    trusted: &[TrustedKey],
) -> Result<ChannelBinding> {
    let sig_path = signature::signature_path(manifest_path);
    signature::check_trusted_comment(
        &v.trusted_comment,
        &manifest.bundle_id,
        &manifest.name,
        &sig_path,
    )?;
    // A rotated key counts only for what its party signed while it was the
    // party's key, by the manifest's own (signed) creation time.
    v.check_made_at(&manifest.created, &sig_path)?;
    if manifest.signer.key_id != v.key_id {
        return Err(Error::BadManifest {
            path: manifest_path.to_path_buf(),
            reason: format!(
                "names signer {} but was signed by {}",
                manifest.signer.key_id, v.key_id
            ),
        });
    }
    let Some(sender) = manifest.channel.sender.as_deref() else {
        return Ok(ChannelBinding::NoChannel);
    };
    let refuse = |signer: String| Error::ChannelClaim {
        path: manifest_path.to_path_buf(),
        signer,
        channel: format!(
            "{sender}:{}",
            manifest.channel.receiver.as_deref().unwrap_or("?")
        ),
    };
    match v.party.as_deref() {
        Some(party) if party == sender => Ok(ChannelBinding::Bound {
            party: party.to_string(),
        }),
        Some(party) => Err(refuse(format!("party {}", escape(party)))),
        None if trusted.iter().any(|k| k.party.as_deref() == Some(sender)) => Err(refuse(format!(
            "key {}, which is not one of {}'s keys",
            v.key_id,
            escape(sender)
        ))),
        None => Ok(ChannelBinding::Unbound),
    }
}

/// The binding of a manifest whose signature was not checked.
pub fn unchecked_channel(manifest: &Manifest) -> ChannelBinding {
    match manifest.channel.sender {
        None => ChannelBinding::NoChannel,
        Some(_) => ChannelBinding::Unbound,
    }
}

/// The recipient stanzas found in a payload's age header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderRecipients {
    /// Their types, in order (`X25519`, `mlkem768x25519`, `grease stanza`, or
    /// whatever else stands there).
    pub stanzas: Vec<String>,
    /// What is wrong with them for the manifest's recipients, if anything.
    pub problem: Option<String>,
}

/// The recipient stanzas of the age header of the payload beside
/// `manifest_path`, read from its first bytes alone (no key, no other
/// part), and what is wrong with them for the recipients the manifest lists.
pub fn header_recipients(
    manifest_path: &Path,
    manifest: &Manifest,
    parts: &[crate::format::manifest::Part],
) -> Result<HeaderRecipients> {
    // The payload's first bytes: the single file, or the first part, beside
    // the manifest.
    let (file_name, size) = match parts.first() {
        None => (&manifest.payload.file, manifest.payload.size),
        Some(part) => (&part.file, part.size),
    };
    let first = parent_of(manifest_path).join(file_name);
    let file = open_regular(&first)?;
    // The size first, as every read of the payload does: nothing but the
    // file the manifest describes is read.
    let found = file.metadata().map(|m| m.len()).unwrap_or(0);
    if found != size {
        return Err(Error::PayloadMismatch {
            path: first,
            what: "size",
            expected: size.to_string(),
            found: found.to_string(),
        });
    }
    let tags = stanza_tags(BufReader::new(file.take(MAX_HEADER_BYTES))).map_err(|e| {
        Error::CorruptPayload {
            path: first.clone(),
            reason: format!("its age header cannot be read: {e}"),
        }
    })?;
    Ok(HeaderRecipients {
        problem: stanza_problem(&tags, &listed_kinds(manifest)),
        stanzas: tags.iter().map(|t| escape(t)).collect(),
    })
}

pub(crate) fn listed_kinds(manifest: &Manifest) -> Vec<&str> {
    manifest
        .recipients
        .iter()
        .map(|r| r.kind.as_str())
        .collect()
}
