//! Where a host keeps machines' volumes (disks, the seed ISO), behind one
//! trait: [`Storage`]. Two implementations: [`LocalFiles`], files of the
//! machine lvlab runs on (through [`crate::storage`], which owns the rules
//! for writing them safely), and [`super::PoolVolumes`], volumes of libvirt
//! storage pools (any host, the only way on a remote one). A machine's
//! `storage:` picks one ([`super::Host::storage_for`]). What lvlab keeps
//! between runs (recorded definition and seed documents, seed inputs,
//! password hashes, host keys) is never a volume: it is local files in the
//! VM directory, written through [`crate::storage`] directly.
//!
//! Paths are the host's paths (a pool's volume path is one too), so the
//! manifest's resolved paths stay the one way to name a volume. The image
//! cache is lvlab's own, on the machine lvlab runs on (it downloads and
//! verifies there); [`Storage::create_from_image`] is where a cached image
//! meets the host: the local storage reads it in place, a pool storage
//! builds the volume on the image's volume in the host's images pool.

use std::path::{Path, PathBuf};

use crate::storage::{self, FromImage, StorageError};

/// A host's volumes of one kind.
pub trait Storage: Send + Sync {
    /// Creates the volume `path` from the cached `image` (a copy or an
    /// overlay), grown to `size` bytes when larger; complete or not at all.
    fn create_from_image(
        &self,
        image: &Path,
        path: &Path,
        how: FromImage,
        size: Option<u64>,
    ) -> Result<(), StorageError>;

    /// A blank qcow2 volume of `size` bytes.
    fn create_blank(&self, path: &Path, size: u64) -> Result<(), StorageError>;

    /// A raw volume holding `bytes` (the seed ISO), readable by its owner
    /// only, replacing the one there.
    fn write_volume(&self, path: &Path, bytes: &[u8]) -> Result<(), StorageError>;

    /// Whether a volume (disk, seed ISO) exists.
    fn volume_exists(&self, path: &Path) -> bool;

    /// Names of the volumes in `dir` (none when it does not exist).
    fn volume_names(&self, dir: &Path) -> Vec<String>;

    /// Removes the volumes `names` from `dir` (and the temporaries left
    /// for them), then `dir` (and, for files, its parent) when nothing
    /// else is in it; returns what is left in `dir`.
    fn remove_volumes(&self, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, StorageError>;
}

/// The files of the machine lvlab runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalFiles;

impl Storage for LocalFiles {
    fn create_from_image(
        &self,
        image: &Path,
        path: &Path,
        how: FromImage,
        size: Option<u64>,
    ) -> Result<(), StorageError> {
        storage::create_from_image(image, path, how, size)
    }

    fn create_blank(&self, path: &Path, size: u64) -> Result<(), StorageError> {
        storage::create_blank(path, size)
    }

    fn write_volume(&self, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        storage::write_file(path, bytes, crate::cloudinit::files::PRIVATE)
    }

    fn volume_exists(&self, path: &Path) -> bool {
        storage::volume_exists(path)
    }

    fn volume_names(&self, dir: &Path) -> Vec<String> {
        storage::file_names(dir)
    }

    fn remove_volumes(&self, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, StorageError> {
        storage::remove_files(dir, names)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_written_volume_reads_back_private_with_its_directories_made() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("env/vm/cidata.iso");
        LocalFiles.write_volume(&path, b"iso").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"iso");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(storage::directory_exists(&root.path().join("env/vm")));
    }

    #[test]
    fn only_regular_files_are_volumes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::write(dir.join("disk0.qcow2"), "x").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink(dir.join("disk0.qcow2"), dir.join("disk1.qcow2")).unwrap();
        assert!(LocalFiles.volume_exists(&dir.join("disk0.qcow2")));
        assert!(
            !LocalFiles.volume_exists(&dir.join("disk1.qcow2")),
            "a symlink"
        );
        assert!(!LocalFiles.volume_exists(&dir.join("sub")));
        assert_eq!(LocalFiles.volume_names(dir), ["disk0.qcow2"]);
        assert!(LocalFiles.volume_names(&dir.join("missing")).is_empty());
    }

    #[test]
    fn a_blank_volume_has_its_size_and_removing_files_removes_the_emptied_directories() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("env/vm");
        let disk = dir.join("disk0.qcow2");
        LocalFiles.create_blank(&disk, 1 << 20).unwrap();
        assert_eq!(storage::virtual_size(&disk).unwrap(), 1 << 20);
        let left = LocalFiles
            .remove_volumes(&dir, &["disk0.qcow2".to_string()])
            .unwrap();
        assert!(left.is_empty());
        assert!(!storage::directory_exists(&dir));
        assert!(!storage::directory_exists(&root.path().join("env")));
    }

    #[test]
    fn a_volume_from_an_image_is_grown_to_its_size() {
        let root = tempfile::tempdir().unwrap();
        let image = root.path().join("image.qcow2");
        storage::create_blank(&image, 1 << 20).unwrap();
        let disk = root.path().join("vm/disk0.qcow2");
        LocalFiles
            .create_from_image(&image, &disk, FromImage::Overlay, Some(2 << 20))
            .unwrap();
        assert!(LocalFiles.volume_exists(&disk));
        assert_eq!(storage::virtual_size(&disk).unwrap(), 2 << 20);
    }
}
