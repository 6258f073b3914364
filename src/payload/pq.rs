//! age's hybrid post-quantum recipient type, `mlkem768x25519`.
//!
//! This is the recipient type of the age specification (C2SP `age.md`) that
//! the reference implementation ships since v1.3.0, byte for byte:
//!
//! - a recipient is the 1,216-byte X-Wing encapsulation key (ML-KEM-768 and
//!   X25519), Bech32-encoded with the HRP `age1pq` and no length limit;
//! - an identity is the 32-byte X-Wing seed, Bech32-encoded in upper case
//!   with the HRP `AGE-SECRET-KEY-PQ-`; X-Wing expands it with SHAKE256;
//! - wrapping a file key is HPKE base mode with KEM 0x647a (X-Wing),
//!   HKDF-SHA256 and ChaCha20-Poly1305, info `age-encryption.org/mlkem768x25519`
//!   and no associated data. The stanza is `-> mlkem768x25519 <enc>` with the
//!   1,120-byte encapsulated key as its only argument and the 32-byte sealed
//!   file key as its body;
//! - these recipients carry the label `postquantum`, so the age encryptor
//!   refuses to mix them with classic ones (which would throw the
//!   post-quantum protection away).
//!
//! The HPKE key schedule is the `hpke` crate's and the KEM's parts come from
//! `ml-kem`, `x25519-dalek` and `sha3` (composed in `src/pq/xwing.rs`). The `x-wing` crate
//! cannot be used: it needs `kem` 0.3, while age 0.12 pins the pre-release
//! `kem` 0.3.0-pre.0, and Cargo allows only one of the two in a build.

mod xwing;

use std::collections::HashSet;
use std::fmt;

use age::secrecy::zeroize::{Zeroize, Zeroizing};
use age::secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretString};
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{bech32_decode, bech32_encode, hpke_open, hpke_seal};
use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
use hpke::{Deserializable, HpkeError, Serializable};

use xwing::XWing;

/// The stanza tag.
pub const STANZA_TAG: &str = crate::format::manifest::KIND_PQ;
/// The label these recipients return, which keeps classic recipients out.
pub const LABEL: &str = "postquantum";
/// The HPKE info string.
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// Bech32 human-readable parts.
const RECIPIENT_HRP: &str = "age1pq";
const IDENTITY_HRP: &str = "AGE-SECRET-KEY-PQ-";
/// Sizes on the wire.
const SEED_BYTES: usize = 32;
const ENC_BYTES: usize = 1120;
const BODY_BYTES: usize = FILE_KEY_BYTES + 16;

fn hrp(s: &str) -> bech32::Hrp {
    bech32::Hrp::parse_unchecked(s)
}

/// An `age1pq1…` recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(xwing::PublicKey);

impl Recipient {
    fn from_key_bytes(bytes: &[u8]) -> Result<Self, &'static str> {
        xwing::PublicKey::from_bytes(bytes).map(Self).map_err(|e| match e {
            HpkeError::IncorrectInputLength(..) => {
                "wrong length for an ML-KEM-768 + X25519 public key"
            }
            _ => "not a valid key: its ML-KEM-768 part fails the modulus check or its X25519 part is a low-order point",
        })
    }
}

impl std::str::FromStr for Recipient {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        bech32_decode(
            s,
            |_| "invalid Bech32 encoding",
            |h| {
                (h.as_str() == RECIPIENT_HRP)
                    .then_some(())
                    .ok_or("not an age1pq1… recipient")
            },
            |_, bytes| Self::from_key_bytes(&bytes.collect::<Vec<_>>()),
        )
        .and_then(|r| {
            // Only the canonical encoding: no non-zero padding bits, no upper case.
            (r.to_string() == s)
                .then_some(r)
                .ok_or("not the canonical encoding of its key")
        })
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(hrp(RECIPIENT_HRP), &self.0.to_bytes()))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pq::Recipient({self})")
    }
}

impl age::Recipient for Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        // The key was checked when parsed, so sealing cannot fail.
        let (enc, body) = hpke_seal::<XWing, _>(
            &self.0,
            INFO,
            file_key.expose_secret(),
            &mut rand::rngs::OsRng,
        );
        let stanza = Stanza {
            tag: STANZA_TAG.to_string(),
            args: vec![BASE64_STANDARD_NO_PAD.encode(enc.to_bytes())],
            body,
        };
        Ok((vec![stanza], HashSet::from([LABEL.to_string()])))
    }
}

/// An `AGE-SECRET-KEY-PQ-1…` identity: the X-Wing seed.
#[derive(Clone)]
pub struct Identity {
    key: xwing::PrivateKey,
    recipient: Recipient,
}

impl Identity {
    /// A fresh identity from the operating system's random source (which,
    /// as for the age crate's X25519 identities, is assumed to work).
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut seed = SecretBox::new(Box::new([0u8; SEED_BYTES]));
        rand::rngs::OsRng.fill_bytes(seed.expose_secret_mut());
        Self::from_seed(&seed)
    }

    fn from_seed(seed: &SecretBox<[u8; SEED_BYTES]>) -> Self {
        let key = xwing::PrivateKey::from_seed(seed.expose_secret());
        let recipient = Recipient(key.public().clone());
        Self { key, recipient }
    }

    /// The matching recipient.
    pub fn to_public(&self) -> Recipient {
        self.recipient.clone()
    }

    /// The identity in its file form, `AGE-SECRET-KEY-PQ-1…`.
    pub fn to_string(&self) -> SecretString {
        let mut seed = Zeroizing::new(self.key.to_bytes());
        let mut lower = Zeroizing::new(bech32_encode(hrp(IDENTITY_HRP), seed.as_slice()));
        let upper = lower.to_uppercase();
        seed.zeroize();
        lower.zeroize();
        SecretString::from(upper)
    }

    /// Unwraps one `mlkem768x25519` stanza. `Err` is a malformed stanza (a
    /// header failure), `Ok(None)` a stanza for somebody else.
    fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, &'static str> {
        let [enc] = stanza.args.as_slice() else {
            return Err("an mlkem768x25519 stanza must have exactly one argument");
        };
        // The base64 engine rejects padding and non-zero trailing bits, so only
        // the canonical encoding of exactly 1,120 bytes passes.
        let enc = BASE64_STANDARD_NO_PAD
            .decode(enc)
            .map_err(|_| "the mlkem768x25519 argument is not canonical base64")?;
        if enc.len() != ENC_BYTES {
            return Err("the mlkem768x25519 argument has the wrong length");
        }
        if stanza.body.len() != BODY_BYTES {
            return Err("the mlkem768x25519 stanza body has the wrong length");
        }
        let encapped = xwing::EncappedKey::from_bytes(&enc).map_err(|_| "bad encapsulated key")?;
        match hpke_open::<XWing>(&encapped, &self.key, INFO, &stanza.body) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                let file_key = FileKey::try_init_with_mut(|k| {
                    k.copy_from_slice(&plain);
                    Ok::<(), ()>(())
                })
                .map_err(|()| "bad file key")?;
                Ok(Some(file_key))
            }
            // An X25519 share that leaves an all-zero shared secret (a
            // low-order point or the identity) is malformed, as in the
            // reference implementation.
            Err(HpkeError::DecapError) => {
                Err("the X25519 part of the encapsulated key is not contributory")
            }
            // A wrong key and a damaged stanza look the same: not ours.
            Err(_) => Ok(None),
        }
    }
}

impl std::str::FromStr for Identity {
    type Err = &'static str;

    /// Parses `AGE-SECRET-KEY-PQ-1…`. The error never contains the input.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err("post-quantum identities are upper case");
        }
        let id = bech32_decode(
            s,
            |_| "invalid Bech32 encoding",
            |h| {
                (h.as_str().eq_ignore_ascii_case(IDENTITY_HRP))
                    .then_some(())
                    .ok_or("not an AGE-SECRET-KEY-PQ-1… identity")
            },
            |_, bytes| {
                let mut seed = SecretBox::new(Box::new([0u8; SEED_BYTES]));
                let mut n = 0;
                for b in bytes {
                    if n == SEED_BYTES {
                        return Err("wrong length for a post-quantum identity");
                    }
                    seed.expose_secret_mut()[n] = b;
                    n += 1;
                }
                if n != SEED_BYTES {
                    return Err("wrong length for a post-quantum identity");
                }
                Ok(Self::from_seed(&seed))
            },
        )?;
        // Only the canonical encoding: no non-zero padding bits.
        if id.to_string().expose_secret() != s {
            return Err("not the canonical encoding of a post-quantum identity");
        }
        Ok(id)
    }
}

impl age::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        match self.unwrap(stanza) {
            Ok(Some(key)) => Some(Ok(key)),
            Ok(None) => None,
            Err(_) => Some(Err(age::DecryptError::InvalidHeader)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::{Identity as _, Recipient as _};

    #[test]
    fn generated_identity_round_trips_through_its_text_forms() {
        let id = Identity::generate();
        let text = id.to_string();
        assert!(text.expose_secret().starts_with("AGE-SECRET-KEY-PQ-1"));
        let back: Identity = text.expose_secret().parse().expect("parses");
        assert_eq!(back.to_public(), id.to_public());
        let r = id.to_public().to_string();
        assert!(r.starts_with("age1pq1"), "{r}");
        assert_eq!(r.parse::<Recipient>().expect("parses"), id.to_public());
    }

    #[test]
    fn a_wrapped_file_key_unwraps_only_with_the_right_identity() {
        let id = Identity::generate();
        let other = Identity::generate();
        let file_key = FileKey::new(Box::new([7u8; FILE_KEY_BYTES]));
        let (stanzas, labels) = id.to_public().wrap_file_key(&file_key).expect("wraps");
        assert_eq!(labels, HashSet::from([LABEL.to_string()]));
        assert_eq!(stanzas.len(), 1);
        assert_eq!(stanzas[0].body.len(), BODY_BYTES);
        let got = id.unwrap_stanza(&stanzas[0]).expect("ours").expect("opens");
        assert_eq!(got.expose_secret(), &[7u8; FILE_KEY_BYTES]);
        assert!(other.unwrap_stanza(&stanzas[0]).is_none());
    }

    /// The seed's Bech32 form with one of the 4 padding bits after the key's
    /// last bit set, and a valid checksum.
    fn with_padding_bit(hrp_text: &str, data: &[u8]) -> String {
        use bech32::primitives::iter::{ByteIterExt, Fe32IterExt};
        let mut fes: Vec<bech32::Fe32> = data.iter().copied().bytes_to_fes().collect();
        let last = fes.len() - 1;
        fes[last] = bech32::Fe32::try_from(fes[last].to_u8() | 1).expect("5 bits");
        fes.into_iter()
            .with_checksum::<bech32::Bech32>(&hrp(hrp_text))
            .chars()
            .collect()
    }

    #[test]
    fn only_canonical_bech32_is_accepted() {
        let id = Identity::generate();
        let seed = id.key.to_bytes();
        let odd = with_padding_bit(IDENTITY_HRP, &seed).to_uppercase();
        assert_ne!(odd, *id.to_string().expose_secret());
        assert_eq!(
            odd.parse::<Identity>().err(),
            Some("not the canonical encoding of a post-quantum identity")
        );
        // A key of 1,216 bytes ends on a group boundary plus 3 bits: 2 bits of padding.
        let key = id.to_public().0.to_bytes();
        let odd = with_padding_bit(RECIPIENT_HRP, &key);
        assert_ne!(odd, id.to_public().to_string());
        assert!(odd.parse::<Recipient>().is_err());
        // Upper-case recipients are not what anyone writes.
        assert!(id
            .to_public()
            .to_string()
            .to_uppercase()
            .parse::<Recipient>()
            .is_err());
    }
}
