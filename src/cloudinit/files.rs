//! Writing a seed into a machine's directory: the three documents and
//! `cidata.iso`. Each file is written to a temporary name and renamed into
//! place, so a reader never sees half a seed file. Every seed file is
//! created with mode 0600: user-data may hold a password hash or, in a
//! `user_data` override, anything at all, and the ISO carries it. libvirt
//! hands the files to QEMU's user when it starts the domain.

use std::path::{Path, PathBuf};

use super::{iso, CloudInitError, Seed};

/// The seed ISO's file name in the machine's directory.
pub const ISO_FILE: &str = "cidata.iso";

/// The mode of every seed file.
pub const PRIVATE: u32 = 0o600;

/// Writes `seed` and its ISO into `dir` (created if missing) and returns the
/// paths written, documents first; the seed's host key before them, so no
/// seed holds a key lvlab has not kept.
pub fn write_seed(dir: &Path, seed: &Seed) -> Result<Vec<PathBuf>, CloudInitError> {
    let image = iso::build(seed)?;
    let kept = match &seed.host_key {
        Some(key) => key.write(dir)?.to_vec(),
        None => Vec::new(),
    };
    let mut written = Vec::with_capacity(6);
    for (name, text) in seed.documents() {
        written.push(write_file(&dir.join(name), text.as_bytes(), PRIVATE)?);
    }
    written.push(write_file(&dir.join(ISO_FILE), &image, PRIVATE)?);
    written.extend(kept);
    Ok(written)
}

/// Through the storage door, which writes beside the final name and
/// renames, creating the file with `mode` from the start.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, CloudInitError> {
    crate::storage::write_file(path, bytes, mode)?;
    Ok(path.to_path_buf())
}
