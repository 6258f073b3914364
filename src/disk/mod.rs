//! The disk: durable files (temporary name, fsync, rename, fsync the folder),
//! folders kept open to reach their entries, payload parts, and filesystem facts (FAT limits, removable media).

pub mod durable;
pub mod folder;
pub mod leftovers;
pub mod lock;
pub mod manifest_file;
pub mod media;
pub mod space;
