//! The custody records: the hash-chained ledger, signed receipts, and the
//! keyring of named parties.

pub mod channel;
pub mod intent;
pub mod keyring;
pub mod ledger;
pub mod ledger_seal;
pub mod receipt;
pub mod reconcile;
