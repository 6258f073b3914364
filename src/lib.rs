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
//! exit codes. The operations, each a function over an options struct that
//! returns a report, are re-exported here:
//! - [`keygen()`]: age identity (X25519, or post-quantum ML-KEM-768 + X25519)
//!   and minisign key pair;
//! - [`pack()`]: seal sources into a bundle; [`dry_run`] says what it would do;
//! - [`verify()`]: check signature and payload, and with an identity the contents;
//! - [`unpack()`]: verify and extract safely;
//! - [`inspect()`]: describe a bundle;
//! - [`resplit()`]: re-cut a bundle's payload for another medium;
//! - [`repair::repair()`]: restore damaged parts from the PAR2 recovery files;
//! - [`audit()`]: check bundles, receipts and ledgers without a decryption key.
//!
//! The modules are laid out by idea (the README's "Development" section draws
//! the map): [`format`](mod@format) (on-disk formats as bytes, and the one name policy),
//! [`payload`] (the `age(zstd(tar))` stream), [`disk`] (durable files and
//! parts), [`bundle`] (opening a bundle on the medium once), [`custody`]
//! (ledger, receipts, keyring) and [`settings`] (config and precedence).

#![forbid(unsafe_code)]

pub mod acknowledge;
pub mod audit;
pub mod binding;
pub mod bundle;
pub mod custody;
pub mod cut;
pub mod delta;
pub mod demo;
pub mod disk;
pub mod error;
pub mod format;
pub mod inspect;
pub mod interrupt;
pub mod keygen;
pub mod listing;
pub mod mixup;
pub mod notice;
pub mod pack;
pub mod parity;
pub mod passphrase;
pub mod payload;
pub mod progress;
pub mod repair;
pub mod resplit;
#[cfg(test)]
mod scratch;
pub mod settings;
pub mod signature;
pub mod unpack;
pub mod verify;

pub use audit::{audit, AuditOptions, AuditReport};
pub use error::{Error, Result};
pub use inspect::{inspect, InspectReport};
pub use keygen::{keygen, KeygenReport};
pub use pack::{dry_run, pack, DryRun, PackOptions, PackReport};
pub use resplit::{resplit, ResplitOptions};
pub use unpack::{unpack, UnpackOptions, UnpackReport};
pub use verify::{verify, VerifyOptions, VerifyReport};
