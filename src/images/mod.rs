//! The image cache: download, checksum and OpenPGP verification of base
//! images, and the records that say what was verified.

pub mod checksums;
pub mod fetch;
pub mod hash;
pub mod progress;
pub mod record;
pub mod signature;
