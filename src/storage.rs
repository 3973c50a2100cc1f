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

/// Writes `bytes` to `path` with `mode`, atomically (see
/// [`write_atomically`]), creating the directories on the way.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StorageError> {
    ensure_parent(path)?;
    write_atomically(path, bytes, mode).map_err(io("write", path))
}

/// Suffix of the temporary files [`write_atomically`] makes.
pub const TEMPORARY: &str = ".tmp";

/// The one way lvlab writes a small file: into a temporary file of its own
/// beside `path` (`<name>.<16 random hex>.tmp`, created exclusively and
/// never through a symlink), synced, then renamed over `path`. A reader
/// sees the old content or the new, and concurrent writers of one path
/// (two image jobs wanting one key file) never share a temporary file: the
/// last rename wins and every writer succeeds.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let (temporary, mut file) = create_temporary(path, mode)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let result = written.and_then(|()| fs::rename(&temporary, path));
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn create_temporary(path: &Path, mode: u32) -> std::io::Result<(PathBuf, fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut attempts = 0;
    loop {
        let temporary = temporary_path(path)?;
        let opened = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary);
        match opened {
            Ok(file) => return Ok((temporary, file)),
            // 64 random bits collide only by malice: try another name.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => {
                attempts += 1
            }
            Err(err) => return Err(err),
        }
    }
}

fn temporary_path(path: &Path) -> std::io::Result<PathBuf> {
    let mut tag = [0u8; 8];
    getrandom::fill(&mut tag).map_err(|err| std::io::Error::other(err.to_string()))?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{:016x}{TEMPORARY}", u64::from_le_bytes(tag)));
    Ok(path.with_file_name(name))
}

/// Whether `name` is a temporary file of [`write_atomically`].
pub fn is_temporary(name: &str) -> bool {
    name.strip_suffix(TEMPORARY)
        .and_then(|rest| rest.rsplit_once('.'))
        .is_some_and(|(file, tag)| {
            !file.is_empty() && tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit())
        })
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

/// Suffix of a volume being built beside its final name.
pub const PARTIAL: &str = ".partial";

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(PARTIAL);
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

    #[test]
    fn concurrent_writers_of_one_file_all_succeed_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.asc");
        std::thread::scope(|scope| {
            for i in 0..8u8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..50 {
                        write_atomically(path, &[i; 4096], 0o644).unwrap();
                    }
                });
            }
        });
        let content = fs::read(&path).unwrap();
        assert!(content.len() == 4096 && content.iter().all(|b| *b == content[0]));
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["signer.asc"]);
    }

    #[test]
    fn temporaries_are_recognised_and_symlinks_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let temporary = temporary_path(&path).unwrap();
        let name = temporary.file_name().unwrap().to_str().unwrap();
        assert!(is_temporary(name), "{name}");
        for other in ["f.tmp", "f.partial", "f.0123.tmp", ".0123456789abcdef.tmp"] {
            assert!(!is_temporary(other), "{other}");
        }
        // A symlink at the final name is replaced, never written through.
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        write_atomically(&path, b"x", 0o644).unwrap();
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!target.exists());
    }
}
