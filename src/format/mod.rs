//! On-disk formats as bytes, with no filesystem: the manifests, the one name
//! policy, and display escaping of anything read from the medium.

pub mod manifest;
pub mod portable;
pub mod sanitize;
