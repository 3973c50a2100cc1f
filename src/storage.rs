//! The one door to disk and seed files. Everything that creates, fills,
//! sizes or removes a machine's volumes goes through here, so that a later
//! backend (libvirt storage pools, for remote hosts) replaces only this
//! module. Today: local files, qemu-img where a format needs it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("qemu-img {args} failed: {stderr}\n  hint: is qemu-utils installed (scripts/setup.sh installs it)?")]
    QemuImg { args: String, stderr: String },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { what, path, source }
}

/// How the boot disk relates to the cached image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromImage {
    Copy,
    Overlay,
}

/// Creates `path` from `image`, grown to `size` bytes when that is larger
/// than the image. The volume appears complete or not at all: it is built
/// beside its final name and renamed.
pub fn create_from_image(
    image: &Path,
    path: &Path,
    how: FromImage,
    size: Option<u64>,
) -> Result<(), StorageError> {
    let partial = partial_path(path);
    ensure_parent(path)?;
    let format = image_format(image)?;
    match how {
        FromImage::Copy if format == "qcow2" => {
            // std::fs::copy uses copy_file_range (reflinks where the
            // filesystem offers them): the cost is the disk's bandwidth.
            fs::copy(image, &partial).map_err(io("copy the image to", &partial))?;
        }
        FromImage::Copy => qemu_img(&[
            "convert",
            "-O",
            "qcow2",
            "-f",
            format,
            &s(image),
            &s(&partial),
        ])?,
        FromImage::Overlay => qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            format,
            "-b",
            &s(image),
            &s(&partial),
        ])?,
    }
    if let Some(size) = size {
        if size > virtual_size(&partial)? {
            qemu_img(&["resize", "-q", &s(&partial), &size.to_string()])?;
        }
    }
    fs::rename(&partial, path).map_err(io("move into place", path))
}

/// A blank qcow2 volume of `size` bytes.
pub fn create_blank(path: &Path, size: u64) -> Result<(), StorageError> {
    let partial = partial_path(path);
    ensure_parent(path)?;
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &s(&partial),
        &size.to_string(),
    ])?;
    fs::rename(&partial, path).map_err(io("move into place", path))
}

/// Writes `bytes` to `path` with `mode`, atomically.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = partial_path(path);
    ensure_parent(path)?;
    let _ = fs::remove_file(&partial);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&partial)
        .map_err(io("create", &partial))?;
    std::io::Write::write_all(&mut file, bytes).map_err(io("write", &partial))?;
    file.sync_all().map_err(io("write", &partial))?;
    fs::rename(&partial, path).map_err(io("move into place", path))
}

/// Removes `names` from `dir`, then `dir` itself if nothing else is in it,
/// then its parent if that is empty too. Files lvlab did not make are left
/// where they are.
pub fn remove_files(dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, StorageError> {
    for name in names {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &path)(e)),
        }
    }
    let left: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", dir)(e)),
    };
    if left.is_empty() {
        fs::remove_dir(dir).map_err(io("remove", dir))?;
        if let Some(parent) = dir.parent() {
            // The environment directory goes once its last machine has.
            let _ = fs::remove_dir(parent);
        }
    }
    Ok(left)
}

/// Whether a volume (disk, seed, image) exists.
pub fn volume_exists(path: &Path) -> bool {
    path.is_file()
}

pub fn directory_exists(path: &Path) -> bool {
    path.is_dir()
}

/// A small text file lvlab keeps beside the volumes, if it is there.
pub fn read_text(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Directories on the way are 0755 whatever the umask: the QEMU process of
/// `qemu:///system` runs as another user and must reach the files.
fn ensure_parent(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(parent)
        .map_err(io("create directory", parent))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// `qcow2` when the file starts with qcow2's magic, else `raw`.
fn image_format(path: &Path) -> Result<&'static str, StorageError> {
    let mut magic = [0u8; 4];
    let mut file = fs::File::open(path).map_err(io("open", path))?;
    let n = file.read(&mut magic).map_err(io("read", path))?;
    Ok(if n == 4 && &magic == QCOW2_MAGIC {
        "qcow2"
    } else {
        "raw"
    })
}

/// The size the guest sees: from the qcow2 header, or a raw file's length.
pub fn virtual_size(path: &Path) -> Result<u64, StorageError> {
    let mut header = [0u8; 32];
    let mut file = fs::File::open(path).map_err(io("open", path))?;
    let n = file.read(&mut header).map_err(io("read", path))?;
    if n == 32 && &header[..4] == QCOW2_MAGIC {
        let size: [u8; 8] = header[24..32].try_into().expect("8 bytes");
        return Ok(u64::from_be_bytes(size));
    }
    Ok(file.metadata().map_err(io("read", path))?.len())
}

fn qemu_img(args: &[&str]) -> Result<(), StorageError> {
    let output =
        Command::new("qemu-img")
            .args(args)
            .output()
            .map_err(|e| StorageError::QemuImg {
                args: args.join(" "),
                stderr: e.to_string(),
            })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(StorageError::QemuImg {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn image(dir: &Path) -> PathBuf {
        let path = dir.join("base.qcow2");
        create_blank(&path, 64 * MIB).unwrap();
        path
    }

    #[test]
    fn copies_grow_but_never_shrink() {
        let dir = tempfile::tempdir().unwrap();
        let base = image(dir.path());
        let grown = dir.path().join("vm/disk0.qcow2");
        create_from_image(&base, &grown, FromImage::Copy, Some(128 * MIB)).unwrap();
        assert_eq!(virtual_size(&grown).unwrap(), 128 * MIB);
        let kept = dir.path().join("vm/disk1.qcow2");
        create_from_image(&base, &kept, FromImage::Copy, Some(MIB)).unwrap();
        assert_eq!(virtual_size(&kept).unwrap(), 64 * MIB, "never shrunk");
        assert!(!partial_path(&grown).exists());
    }

    #[test]
    fn overlays_point_at_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let base = image(dir.path());
        let overlay = dir.path().join("disk0.qcow2");
        create_from_image(&base, &overlay, FromImage::Overlay, None).unwrap();
        let info = Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&overlay)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["backing-filename"], base.display().to_string());
        assert_eq!(info["virtual-size"], 64 * MIB);
    }

    #[test]
    fn remove_files_leaves_what_lvlab_did_not_make() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("env/vm");
        write_file(&vm.join("user-data"), b"x", 0o600).unwrap();
        write_file(&vm.join("notes.txt"), b"mine", 0o644).unwrap();
        let left = remove_files(&vm, &["user-data".into(), "disk0.qcow2".into()]).unwrap();
        assert_eq!(left, vec![vm.join("notes.txt")]);
        assert!(vm.join("notes.txt").exists());
        fs::remove_file(vm.join("notes.txt")).unwrap();
        assert!(remove_files(&vm, &[]).unwrap().is_empty());
        assert!(
            !vm.exists() && !dir.path().join("env").exists(),
            "the environment dir goes too"
        );
    }

    #[test]
    fn directories_on_the_way_are_traversable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_file(&dir.path().join("a/b/file"), b"x", 0o600).unwrap();
        for d in ["a", "a/b"] {
            let mode = fs::metadata(dir.path().join(d))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode & 0o755, 0o755, "{d}");
        }
    }

    #[test]
    fn written_files_get_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_file(&path, b"hash", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_file(&path, b"again", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"again");
    }
}
