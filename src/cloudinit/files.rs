//! Writing a seed into a machine's directory: the three documents and
//! `cidata.iso`. Each file is written to a temporary name and renamed into
//! place, so a reader never sees half a seed file. Every seed file is
//! created with mode 0600: user-data may hold a password hash or, in a
//! `user_data` override, anything at all, and the ISO carries it. libvirt
//! hands the files to QEMU's user when it starts the domain.

use std::path::{Path, PathBuf};

use super::{iso, CloudInitError, Seed};
use crate::host::Storage;

/// The seed ISO's file name in the machine's directory.
pub const ISO_FILE: &str = "cidata.iso";

/// The mode of every seed file.
pub const PRIVATE: u32 = 0o600;

/// Writes `seed` and its ISO into `dir` (created if missing) on `storage`
/// and returns the paths written, documents first; the seed's host key is
/// kept before them (in the VM directory on this machine, with the other
/// inputs lvlab keeps between runs), so no seed holds a key lvlab has not
/// kept. The storage writes beside the final name and renames, creating
/// each file with its mode from the start.
pub fn write_seed(
    storage: &dyn Storage,
    dir: &Path,
    seed: &Seed,
) -> Result<Vec<PathBuf>, CloudInitError> {
    let image = iso::build(seed)?;
    let kept = match &seed.host_key {
        Some(key) => key.write(dir)?.to_vec(),
        None => Vec::new(),
    };
    let documents = seed
        .documents()
        .into_iter()
        .map(|(name, text)| (name, text.as_bytes()));
    let mut written = Vec::with_capacity(6);
    for (name, bytes) in documents.chain([(ISO_FILE, image.as_slice())]) {
        let path = dir.join(name);
        storage.write_file(&path, bytes, PRIVATE)?;
        written.push(path);
    }
    written.extend(kept);
    Ok(written)
}
