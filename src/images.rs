//! The image cache: download, checksum and OpenPGP verification of base
//! images, and the records that say what was verified. Arrives with the
//! Images issue.
