//! The payload stream, `age(zstd(tar))`: the tar writer and strict reader with
//! the entry policy, the age layer (classic and post-quantum recipients, the
//! payload's STREAM chunks), and
//! the stream plumbing (hashing, limits, the two-thread pipeline).

pub mod archive;
pub mod crypto;
pub mod handoff;
pub mod hashing;
pub mod header;
pub mod pipeline;
pub mod pq;
pub mod stream;
pub mod strict_tar;
