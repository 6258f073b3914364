//! Delta bundles: a bundle that holds only what changed since an earlier
//! bundle of its channel (its base), and the recipient's building of the
//! new tree from the base's tree and the delta.
//!
//! - [`state`]: the recorded trees (sha256 and stat data per file) that
//!   make finding and checking a delta cost a `stat` per unchanged file;
//! - [`base`]: the sender's choice of base and its judgement, file by
//!   file, of what changed;
//! - [`onto`]: `unpack --onto`, which checks the tree in place against the
//!   base, builds the new tree beside it and swaps the two atomically.

pub mod base;
pub mod onto;
pub mod spill;
pub mod state;
mod walk;
