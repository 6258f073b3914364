//! X-Wing, the hybrid KEM behind age's `mlkem768x25519` recipients, as an
//! [`hpke::Kem`] (HPKE KEM id 0x647a, "MLKEM768-X25519").
//!
//! The construction (draft-connolly-cfrg-xwing-kem):
//! - the private key is a 32-byte seed; SHAKE256(seed) gives 96 bytes: the
//!   ML-KEM-768 key generation seed `d ‖ z` (64 bytes) and the X25519 scalar;
//! - the public key is the ML-KEM-768 encapsulation key (1,184 bytes) followed
//!   by the X25519 public value (32 bytes);
//! - the encapsulated key is the ML-KEM ciphertext (1,088 bytes) followed by an
//!   ephemeral X25519 share (32 bytes);
//! - the shared secret is SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ `\.//^\`).
//!
//! ML-KEM, X25519 and SHA-3 come from the `ml-kem`, `x25519-dalek` and `sha3`
//! crates; this module only composes them, plus two checks the reference
//! implementation makes and the crates leave to the caller: the FIPS 203
//! modulus check on encapsulation keys, and the refusal of X25519 shares that
//! give an all-zero (non-contributory) shared secret.

use hpke::generic_array::typenum::{Sum, Unsigned, U1024, U192, U32, U96};
use hpke::kem::SharedSecret;
use hpke::{Deserializable, HpkeError, Serializable};
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
use rand::{CryptoRng, RngCore};
use sha3::digest::{Digest, ExtendableOutput, Update, XofReader};
use sha3::{Sha3_256, Shake256};

/// The X-Wing combiner's domain separator.
const LABEL: &[u8] = br"\.//^\";

/// ML-KEM-768 sizes.
const MLKEM_EK_BYTES: usize = 1184;
const MLKEM_CT_BYTES: usize = 1088;
/// ML-KEM's modulus q.
const MLKEM_Q: u16 = 3329;

type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;
type EncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;

/// The KEM, for use as `hpke`'s type parameter.
pub struct XWing;

/// The 32-byte seed and what it expands to.
#[derive(Clone)]
pub struct PrivateKey {
    seed: [u8; 32],
    dk_m: DecapsulationKey,
    sk_x: x25519_dalek::StaticSecret,
    public: PublicKey,
}

impl PrivateKey {
    /// The private key for a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut expanded = Shake256::default().chain(seed).finalize_xof();
        let mut d = [0u8; 32];
        let mut z = [0u8; 32];
        let mut x = [0u8; 32];
        expanded.read(&mut d);
        expanded.read(&mut z);
        expanded.read(&mut x);
        let (dk_m, ek_m) = MlKem768::generate_deterministic(&d.into(), &z.into());
        let sk_x = x25519_dalek::StaticSecret::from(x);
        let pk_x = x25519_dalek::PublicKey::from(&sk_x);
        for secret in [&mut d, &mut z, &mut x] {
            zeroize(secret);
        }
        Self {
            seed: *seed,
            dk_m,
            sk_x,
            public: PublicKey { ek_m, pk_x },
        }
    }

    /// The public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        zeroize(&mut self.seed);
    }
}

fn zeroize(bytes: &mut [u8; 32]) {
    age::secrecy::zeroize::Zeroize::zeroize(bytes);
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}
impl Eq for PrivateKey {}

impl Serializable for PrivateKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.seed);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let seed: &[u8; 32] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?;
        Ok(Self::from_seed(seed))
    }
}

/// The 1,216-byte public key.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKey {
    ek_m: EncapsulationKey,
    pk_x: x25519_dalek::PublicKey,
}

impl Eq for PublicKey {}

impl Serializable for PublicKey {
    type OutputSize = Sum<U1024, U192>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf[..MLKEM_EK_BYTES].copy_from_slice(&self.ek_m.as_bytes());
        buf[MLKEM_EK_BYTES..].copy_from_slice(self.pk_x.as_bytes());
    }
}

impl Deserializable for PublicKey {
    /// Parses and checks a public key: the ML-KEM part must pass the FIPS 203
    /// modulus check and the X25519 part must not be a low-order point.
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let size = <Self as Serializable>::OutputSize::to_usize();
        if encoded.len() != size {
            return Err(HpkeError::IncorrectInputLength(size, encoded.len()));
        }
        let (m, x) = encoded
            .split_first_chunk::<MLKEM_EK_BYTES>()
            .ok_or(HpkeError::IncorrectInputLength(size, encoded.len()))?;
        if !mlkem_coefficients_reduced(m) {
            return Err(HpkeError::ValidationError);
        }
        let x: [u8; 32] = x
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(size, encoded.len()))?;
        if is_low_order(x) {
            return Err(HpkeError::ValidationError);
        }
        let ek_m = EncapsulationKey::from_bytes(&(*m).into());
        Ok(Self {
            ek_m,
            pk_x: x.into(),
        })
    }
}

/// The 1,120-byte encapsulated key.
#[derive(Clone)]
pub struct EncappedKey {
    ct_m: ml_kem::Ciphertext<MlKem768>,
    ct_x: [u8; 32],
}

impl Serializable for EncappedKey {
    type OutputSize = Sum<U1024, U96>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf[..MLKEM_CT_BYTES].copy_from_slice(&self.ct_m);
        buf[MLKEM_CT_BYTES..].copy_from_slice(&self.ct_x);
    }
}

impl Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let size = <Self as Serializable>::OutputSize::to_usize();
        if encoded.len() != size {
            return Err(HpkeError::IncorrectInputLength(size, encoded.len()));
        }
        let wrong_length = || HpkeError::IncorrectInputLength(size, encoded.len());
        let (m, x) = encoded
            .split_first_chunk::<MLKEM_CT_BYTES>()
            .ok_or_else(wrong_length)?;
        Ok(Self {
            ct_m: (*m).into(),
            ct_x: x.try_into().map_err(|_| wrong_length())?,
        })
    }
}

impl hpke::Kem for XWing {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;
    const KEM_ID: u16 = 0x647a;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        sk.public.clone()
    }

    /// HPKE's DeriveKeyPair for X-Wing: the seed is
    /// SHAKE256-LabeledDerive(ikm, "DeriveKeyPair", "", 32).
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let mut seed = [0u8; 32];
        Shake256::default()
            .chain(ikm)
            .chain(b"HPKE-v1")
            .chain(b"KEM")
            .chain(Self::KEM_ID.to_be_bytes())
            .chain(13u16.to_be_bytes())
            .chain(b"DeriveKeyPair")
            .chain(32u16.to_be_bytes())
            .finalize_xof()
            .read(&mut seed);
        let sk = PrivateKey::from_seed(&seed);
        zeroize(&mut seed);
        let pk = sk.public.clone();
        (sk, pk)
    }

    fn decap(
        sk: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        enc: &EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            // X-Wing has no authenticated mode; age never asks for one.
            return Err(HpkeError::DecapError);
        }
        let ss_m = sk
            .dk_m
            .decapsulate(&enc.ct_m)
            .map_err(|()| HpkeError::DecapError)?;
        let ss_x = sk
            .sk_x
            .diffie_hellman(&x25519_dalek::PublicKey::from(enc.ct_x));
        if !ss_x.was_contributory() {
            return Err(HpkeError::DecapError);
        }
        Ok(combine(&ss_m, ss_x.as_bytes(), &enc.ct_x, &sk.public.pk_x))
    }

    fn encap<R: CryptoRng + RngCore>(
        pk: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        rng: &mut R,
    ) -> Result<(SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        // The order of the random draws (ML-KEM's 32 bytes, then the X25519
        // scalar) is X-Wing's, so known-answer tests reproduce.
        let (ct_m, ss_m) = pk
            .ek_m
            .encapsulate(rng)
            .map_err(|()| HpkeError::EncapError)?;
        let mut scalar = [0u8; 32];
        rng.fill_bytes(&mut scalar);
        let ek_x = x25519_dalek::StaticSecret::from(scalar);
        zeroize(&mut scalar);
        let ct_x = x25519_dalek::PublicKey::from(&ek_x).to_bytes();
        let ss_x = ek_x.diffie_hellman(&pk.pk_x);
        if !ss_x.was_contributory() {
            return Err(HpkeError::EncapError);
        }
        let ss = combine(&ss_m, ss_x.as_bytes(), &ct_x, &pk.pk_x);
        Ok((ss, EncappedKey { ct_m, ct_x }))
    }
}

fn combine(
    ss_m: &[u8],
    ss_x: &[u8; 32],
    ct_x: &[u8; 32],
    pk_x: &x25519_dalek::PublicKey,
) -> SharedSecret<XWing> {
    let digest = Sha3_256::new()
        .chain_update(ss_m)
        .chain_update(ss_x)
        .chain_update(ct_x)
        .chain_update(pk_x.as_bytes())
        .chain_update(LABEL)
        .finalize();
    let mut ss = SharedSecret::<XWing>::default();
    ss.0.copy_from_slice(&digest);
    ss
}

/// FIPS 203, 7.2: an encapsulation key's 12-bit coefficients must all be
/// below q (ByteEncode12(ByteDecode12(ek)) == ek). `ek` is 1,184 bytes: three
/// polynomials of 256 coefficients (1,152 bytes), then the 32-byte seed ρ.
fn mlkem_coefficients_reduced(ek: &[u8]) -> bool {
    ek[..MLKEM_EK_BYTES - 32].chunks_exact(3).all(|b| {
        let (b0, b1, b2) = (u16::from(b[0]), u16::from(b[1]), u16::from(b[2]));
        let low = b0 | ((b1 & 0x0f) << 8);
        let high = (b1 >> 4) | (b2 << 4);
        low < MLKEM_Q && high < MLKEM_Q
    })
}

/// Whether an X25519 public value is a low-order point. Every clamped scalar
/// is a multiple of the cofactor, so such a point gives all zeros whatever
/// the scalar; any other point does not.
pub fn is_low_order(point: [u8; 32]) -> bool {
    x25519_dalek::x25519([0x55; 32], point) == [0u8; 32]
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpke::Kem as _;

    #[test]
    fn encapsulation_and_decapsulation_agree() {
        let sk = PrivateKey::from_seed(&[3u8; 32]);
        let pk = PublicKey::from_bytes(&sk.public().to_bytes()).expect("own key parses");
        let (ss, enc) = XWing::encap(&pk, None, &mut rand::rngs::OsRng).expect("encap");
        let enc = EncappedKey::from_bytes(&enc.to_bytes()).expect("own enc parses");
        let back = XWing::decap(&sk, None, &enc).expect("decap");
        assert_eq!(ss.0, back.0);
    }

    #[test]
    fn low_order_points_are_recognised() {
        assert!(is_low_order([0u8; 32]));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(is_low_order(one));
        assert!(!is_low_order(x25519_dalek::X25519_BASEPOINT_BYTES));
    }

    #[test]
    fn an_unreduced_coefficient_fails_the_modulus_check() {
        let sk = PrivateKey::from_seed(&[9u8; 32]);
        let mut bytes = sk.public().to_bytes().to_vec();
        assert!(PublicKey::from_bytes(&bytes).is_ok());
        // Coefficient 0 becomes 0xfff = 4095 >= q.
        bytes[0] = 0xff;
        bytes[1] |= 0x0f;
        assert!(matches!(
            PublicKey::from_bytes(&bytes),
            Err(HpkeError::ValidationError)
        ));
    }

    #[test]
    fn a_non_contributory_share_is_refused() {
        let sk = PrivateKey::from_seed(&[5u8; 32]);
        let (_, enc) = XWing::encap(sk.public(), None, &mut rand::rngs::OsRng).expect("encap");
        let mut bytes = enc.to_bytes().to_vec();
        bytes[MLKEM_CT_BYTES..].copy_from_slice(&[0u8; 32]);
        let enc = EncappedKey::from_bytes(&bytes).expect("right length");
        assert!(matches!(
            XWing::decap(&sk, None, &enc),
            Err(HpkeError::DecapError)
        ));
    }
}

/// The HPKE known-answer vector for exactly age's suite (KEM 0x647a,
/// HKDF-SHA256, ChaCha20-Poly1305), from the HPKE-PQ test vectors.
#[cfg(test)]
mod known_answer {
    use super::*;
    use hpke::aead::ChaCha20Poly1305;
    use hpke::kdf::HkdfSha256;
    use hpke::{Kem as _, OpModeR, OpModeS};

    /// Hands out the vector's encapsulation randomness, and nothing more.
    struct Replay<'a>(&'a [u8]);

    impl RngCore for Replay<'_> {
        fn next_u32(&mut self) -> u32 {
            hpke::rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            hpke::rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            assert!(
                dest.len() <= self.0.len(),
                "asked for more randomness than ikmE"
            );
            let (now, rest) = self.0.split_at(dest.len());
            dest.copy_from_slice(now);
            self.0 = rest;
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Replay<'_> {}

    fn field(v: &serde_json::Value, name: &str) -> Vec<u8> {
        hex::decode(v[name].as_str().expect("a hex string")).expect("hex")
    }

    #[test]
    fn the_hpke_pq_vector_reproduces_exactly() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/pq/hpke_pq_647a_hkdfsha256_chacha.json"
        );
        let text = std::fs::read_to_string(path).expect("read the vector");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["kem_id"], 0x647a);
        assert_eq!(v["kdf_id"], 1);
        assert_eq!(v["aead_id"], 3);
        assert_eq!(v["mode"], 0);

        let (sk, pk) = XWing::derive_keypair(&field(&v, "ikmR"));
        assert_eq!(sk.to_bytes().as_slice(), field(&v, "skRm"));
        assert_eq!(pk.to_bytes().as_slice(), field(&v, "pkRm"));
        assert_eq!(
            PublicKey::from_bytes(&field(&v, "pkRm")).expect("pkRm parses"),
            pk
        );

        let info = field(&v, "info");
        let ikm_e = field(&v, "ikmE");
        let mut rng = Replay(&ikm_e);
        let (enc, mut sender) = hpke::setup_sender::<ChaCha20Poly1305, HkdfSha256, XWing, _>(
            &OpModeS::Base,
            &pk,
            &info,
            &mut rng,
        )
        .expect("setup_sender");
        assert_eq!(enc.to_bytes().as_slice(), field(&v, "enc"));
        assert!(rng.0.is_empty(), "all of ikmE is used");

        let enc = EncappedKey::from_bytes(&field(&v, "enc")).expect("enc parses");
        let mut receiver = hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeR::Base,
            &sk,
            &enc,
            &info,
        )
        .expect("setup_receiver");

        let encryptions = v["encryptions"].as_array().expect("encryptions");
        assert!(!encryptions.is_empty());
        for e in encryptions {
            let (pt, aad, ct) = (field(e, "pt"), field(e, "aad"), field(e, "ct"));
            assert_eq!(sender.seal(&pt, &aad).expect("seal"), ct);
            assert_eq!(receiver.open(&ct, &aad).expect("open"), pt);
        }
        let exports = v["exports"].as_array().expect("exports");
        assert!(!exports.is_empty());
        for x in exports {
            let mut out = vec![0u8; x["L"].as_u64().expect("L") as usize];
            sender
                .export(&field(x, "exporter_context"), &mut out)
                .expect("export");
            assert_eq!(out, field(x, "exported_value"));
            out.fill(0);
            receiver
                .export(&field(x, "exporter_context"), &mut out)
                .expect("export");
            assert_eq!(out, field(x, "exported_value"));
        }
    }
}
