//! The payload stream, `age(zstd(tar))`: the tar writer and strict reader with
//! the entry policy, the age layer (classic and post-quantum recipients), and
//! the stream plumbing (hashing, limits, the two-thread pipeline).

pub mod archive;
pub mod crypto;
pub mod handoff;
pub mod hashing;
pub mod header;
pub(crate) mod pipeline;
pub mod pq;
pub mod strict_tar;
