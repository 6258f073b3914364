//! Settings: the config file, pouch's home folder, and how flags, specs,
//! config and defaults combine.

pub mod config;
pub mod home;
pub mod resolve;
