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

/// Writes `seed` and its ISO into `dir` (created if missing) and returns
/// the paths written, documents first: [`write_seed_at`] with the ISO in
/// `dir` too.
pub fn write_seed(
    volumes: &dyn Storage,
    dir: &Path,
    seed: &Seed,
) -> Result<Vec<PathBuf>, CloudInitError> {
    write_seed_at(volumes, dir, &dir.join(ISO_FILE), seed)
}

/// Writes `seed`'s documents into `dir` on the machine lvlab runs on and
/// its ISO as the volume `iso` on `volumes` (the machine's host), and
/// returns the paths written, documents first; the seed's host key is
/// kept before them (in `dir`, with the other inputs lvlab keeps between
/// runs), so no seed holds a key lvlab has not kept. Each file is written
/// beside its final name and renamed, created with its mode from the
/// start.
pub fn write_seed_at(
    volumes: &dyn Storage,
    dir: &Path,
    iso: &Path,
    seed: &Seed,
) -> Result<Vec<PathBuf>, CloudInitError> {
    let image = iso::build(seed)?;
    let kept = match &seed.host_key {
        Some(key) => key.write(dir)?.to_vec(),
        None => Vec::new(),
    };
    let mut written = Vec::with_capacity(6);
    for (name, text) in seed.documents() {
        let path = dir.join(name);
        crate::storage::write_file(&path, text.as_bytes(), PRIVATE)?;
        written.push(path);
    }
    volumes.write_volume(iso, &image)?;
    written.push(iso.to_path_buf());
    written.extend(kept);
    Ok(written)
}
