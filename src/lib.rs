//! pouch seals files into signed, encrypted, checksummed bundles for transfer
//! between air-gapped systems, and checks and unpacks them at the other end.
//!
//! A bundle is three plain files: `NAME.toml` (the outer manifest, readable
//! without a key), `NAME.toml.minisig` (its minisign signature) and `NAME.age`
//! (the payload, `age(zstd(tar))`). Everything pouch writes can be read with the
//! stock `age`, `zstd`, `tar` and `minisign` tools.
//!
//! The library does the work and never prints, exits or reads the terminal;
//! the `pouch` binary parses arguments, renders reports and maps errors to
//! exit codes. Operations:
//! - [`keygen::keygen`]: age identity (X25519, or post-quantum ML-KEM-768 +
//!   X25519, see [`pq`]) and minisign key pair;
//! - [`pack::pack`]: seal sources into a bundle;
//! - [`verify::verify`]: check signature and payload, and with an identity the contents;
//! - [`unpack::unpack`]: verify and extract safely;
//! - [`inspect::inspect`]: describe a bundle.

#![forbid(unsafe_code)]

pub mod audit;
pub mod bundle;
pub mod custody;
pub mod demo;
pub mod disk;
pub mod error;
pub mod format;
pub mod inspect;
pub mod interrupt;
pub mod keygen;
pub mod pack;
pub mod payload;
pub mod progress;
pub mod resplit;
pub mod settings;
pub mod signature;
pub mod unpack;
pub mod verify;

pub use error::{Error, Result};
