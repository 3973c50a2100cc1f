//! Where a host keeps machines' volumes and files, behind one trait:
//! [`Storage`]. One implementation today, [`LocalFiles`], the files of the
//! machine lvlab runs on (through [`crate::storage`], which owns the rules
//! for writing them safely). The remote-host work adds a second one on
//! libvirt storage pools; the actions and observations call only the trait.
//!
//! Paths are the host's paths (a pool's volume path is one too), so the
//! manifest's resolved paths stay the one way to name a volume. The image
//! cache is lvlab's own, on the machine lvlab runs on (it downloads and
//! verifies there); [`Storage::create_from_image`] is where a cached image
//! meets the host: the local storage reads it in place, a pool storage
//! would upload it into its pool once and build the volume there.

use std::path::{Path, PathBuf};

use crate::storage::{self, FromImage, StorageError};

/// A host's volumes and machine files.
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

    /// Writes a small file (seed, recorded definition) with `mode`,
    /// atomically, creating its directories.
    fn write_file(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), StorageError>;

    /// Removes `names` from `dir` (and the temporaries left for them), then
    /// `dir` and its parent when empty; returns what is left in `dir`.
    fn remove_files(&self, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, StorageError>;

    /// Names of the regular files in `dir` (none when it does not exist).
    fn file_names(&self, dir: &Path) -> Vec<String>;

    /// Whether a volume (disk, seed ISO) exists.
    fn volume_exists(&self, path: &Path) -> bool;

    /// Whether `path` is a directory (a machine's, a shared one).
    fn directory_exists(&self, path: &Path) -> bool;

    /// A small file's text (a recorded definition or seed document).
    fn read_text(&self, path: &Path) -> Option<String>;
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

    fn write_file(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), StorageError> {
        storage::write_file(path, bytes, mode)
    }

    fn remove_files(&self, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, StorageError> {
        storage::remove_files(dir, names)
    }

    fn file_names(&self, dir: &Path) -> Vec<String> {
        storage::file_names(dir)
    }

    fn volume_exists(&self, path: &Path) -> bool {
        storage::volume_exists(path)
    }

    fn directory_exists(&self, path: &Path) -> bool {
        storage::directory_exists(path)
    }

    fn read_text(&self, path: &Path) -> Option<String> {
        storage::read_text(path)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_written_file_reads_back_with_its_mode_and_its_directories_made() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("env/vm/domain.xml");
        LocalFiles.write_file(&path, b"<domain/>", 0o600).unwrap();
        assert_eq!(LocalFiles.read_text(&path).as_deref(), Some("<domain/>"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(LocalFiles.directory_exists(&root.path().join("env/vm")));
        assert!(
            !LocalFiles.directory_exists(&path),
            "a file is no directory"
        );
    }

    #[test]
    fn only_regular_files_are_volumes_and_file_names() {
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
        assert_eq!(LocalFiles.file_names(dir), ["disk0.qcow2"]);
        assert!(LocalFiles.file_names(&dir.join("missing")).is_empty());
    }

    #[test]
    fn a_blank_volume_has_its_size_and_removing_files_removes_the_emptied_directories() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("env/vm");
        let disk = dir.join("disk0.qcow2");
        LocalFiles.create_blank(&disk, 1 << 20).unwrap();
        assert_eq!(storage::virtual_size(&disk).unwrap(), 1 << 20);
        let left = LocalFiles
            .remove_files(&dir, &["disk0.qcow2".to_string()])
            .unwrap();
        assert!(left.is_empty());
        assert!(!LocalFiles.directory_exists(&dir));
        assert!(!LocalFiles.directory_exists(&root.path().join("env")));
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
