//! On-disk formats as bytes, with no filesystem: the manifests, the one name
//! policy (which also escapes names for display), and the one strict TOML
//! reader every file pouch reads goes through.

pub mod delta;
pub mod entries;
pub mod filter;
pub mod manifest;
pub mod names;
pub mod par2;
pub mod parity;
pub mod parts_list;
pub mod strict_toml;
