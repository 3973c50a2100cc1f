//! The one door to local files. Everything that creates, fills, sizes or
//! removes a machine's volumes goes through a host's
//! [`crate::host::Storage`], whose local implementation
//! ([`crate::host::LocalFiles`]) is this module; every file the image
//! cache writes goes through here directly. A later backend (libvirt
//! storage pools, for remote hosts) is a second `Storage`. qemu-img where
//! a format needs it.
//!
//! Files cannot be redirected: every file is written under a name lvlab
//! has just created itself (`O_CREAT|O_EXCL|O_NOFOLLOW`) and renamed into
//! place, so a symlink planted at the final name is replaced, never
//! written through; a download's `.partial` being resumed is reopened with
//! `O_NOFOLLOW`. A directory lvlab writes into must be its own: created by
//! it, or owned by the running user (or root) and writable by no one else
//! ([`ensure_dir`]). Only directories are checked for ownership: libvirt
//! re-owns disks, seeds and backing files to its QEMU user.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
    #[error("no space left on {}\n  hint: free space on that filesystem (or move the directory elsewhere) and run again", path.display())]
    NoSpace { path: PathBuf },
    #[error("{} {problem}: lvlab writes only into directories it made or that are yours and writable by no one else\n  hint: {hint}", path.display())]
    UntrustedDirectory {
        path: PathBuf,
        problem: String,
        hint: String,
    },
    #[error("cannot run qemu-img: {source}\n  hint: is qemu-utils installed (scripts/setup.sh installs it)?")]
    QemuImgMissing { source: std::io::Error },
    #[error("qemu-img {args} failed: {stderr}")]
    QemuImg { args: String, stderr: String },
    /// A volume in a libvirt storage pool.
    #[error(transparent)]
    Pool(#[from] crate::host::PoolError),
}

/// How an I/O error on `path` is told: a full filesystem as "no space left
/// on <path>", anything else as "cannot <what> <path>: <error>".
fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| {
        if is_no_space(&source) {
            StorageError::NoSpace { path }
        } else {
            StorageError::Io { what, path, source }
        }
    }
}

/// Whether `err` means the filesystem (or the user's quota) is full.
pub fn is_no_space(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The words for an I/O error on `path` that every error type uses: "no
/// space left on <path>" for a full filesystem, else the error itself.
pub fn describe_io(path: &Path, err: &std::io::Error) -> String {
    if is_no_space(err) {
        format!("no space left on {}", path.display())
    } else {
        format!("{}: {err}", path.display())
    }
}

/// How the boot disk relates to the cached image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromImage {
    Copy,
    Overlay,
}

/// Creates `path` from `image`, grown to `size` bytes when that is larger
/// than the image. The volume appears complete or not at all: it is built
/// under a fresh temporary name beside `path` and renamed.
///
/// qemu-img follows symlinks and has no "create exclusively" switch, so
/// lvlab creates the temporary file itself (`O_EXCL|O_NOFOLLOW`, in a
/// directory only its owner can write) and hands qemu-img that name: a
/// symlink planted at `path` or at an old `<name>.partial` is never opened.
/// A copy keeps the image's restrictive mode bits.
pub fn create_from_image(
    image: &Path,
    path: &Path,
    how: FromImage,
    size: Option<u64>,
) -> Result<(), StorageError> {
    ensure_parent(path)?;
    let format = image_format(image)?;
    let source = fs::metadata(image).map_err(io("read", image))?;
    let mode = match how {
        FromImage::Copy => source.permissions().mode() & DISK_MODE,
        FromImage::Overlay => DISK_MODE,
    };
    let mut temporary = Temporary::create(path, mode).map_err(io("create", path))?;
    let target = temporary.path.clone();
    match how {
        FromImage::Copy if format == "qcow2" => {
            // io::copy between files is copy_file_range (reflinks where
            // the filesystem offers them): the cost is the disk's bandwidth.
            let mut from = fs::File::open(image).map_err(io("open", image))?;
            std::io::copy(&mut from, &mut temporary.file)
                .and_then(|_| temporary.file.sync_all())
                .map_err(io("copy the image to", path))?;
        }
        FromImage::Copy => qemu_img(
            &[
                "convert",
                "-O",
                "qcow2",
                "-f",
                format,
                &s(image),
                &s(&target),
            ],
            path,
        )?,
        FromImage::Overlay => qemu_img(
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                format,
                "-b",
                &s(image),
                &s(&target),
            ],
            path,
        )?,
    }
    if let Some(size) = size {
        if size > virtual_size(&target)? {
            qemu_img(&["resize", "-q", &s(&target), &size.to_string()], path)?;
        }
    }
    temporary
        .rename_to(path)
        .map_err(io("move into place", path))
}

/// A blank qcow2 volume of `size` bytes, made like [`create_from_image`].
pub fn create_blank(path: &Path, size: u64) -> Result<(), StorageError> {
    ensure_parent(path)?;
    let temporary = Temporary::create(path, DISK_MODE).map_err(io("create", path))?;
    qemu_img(
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            &s(&temporary.path),
            &size.to_string(),
        ],
        path,
    )?;
    temporary
        .rename_to(path)
        .map_err(io("move into place", path))
}

/// Disks are readable by all, as qemu-img made them before: libvirt
/// re-owns them to its QEMU user anyway.
const DISK_MODE: u32 = 0o644;

/// Writes `bytes` to `path` with `mode`, atomically (see
/// [`write_atomically`]), creating the directories on the way.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StorageError> {
    ensure_parent(path)?;
    write_atomically(path, bytes, mode).map_err(io("write", path))
}

/// Replaces the content of the existing regular file `path` (a user's
/// file, such as `/etc/hosts`) atomically as [`write_atomically`] does,
/// keeping its mode, owner and group. A symlink is refused rather than
/// replaced: the file it points to is the one meant.
pub fn rewrite_file(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    use std::io::Write;
    let meta = fs::symlink_metadata(path).map_err(io("read", path))?;
    if !meta.file_type().is_file() {
        let problem = std::io::Error::other("not a regular file (give a symlink's target)");
        return Err(io("rewrite", path)(problem));
    }
    let mut temporary = Temporary::create(path, meta.mode() & 0o7777).map_err(io("write", path))?;
    std::os::unix::fs::fchown(&temporary.file, Some(meta.uid()), Some(meta.gid()))
        .map_err(io("keep the owner of", path))?;
    temporary.file.write_all(bytes).map_err(io("write", path))?;
    temporary.file.sync_all().map_err(io("write", path))?;
    temporary.rename_to(path).map_err(io("write", path))
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
    let mut temporary = Temporary::create(path, mode)?;
    temporary.file.write_all(bytes)?;
    temporary.file.sync_all()?;
    temporary.rename_to(path)
}

/// A file lvlab has just created under a fresh name beside its final one;
/// removed when dropped unless renamed into place.
struct Temporary {
    path: PathBuf,
    file: fs::File,
    kept: bool,
}

impl Temporary {
    fn create(beside: &Path, mode: u32) -> std::io::Result<Self> {
        let mut attempts = 0;
        loop {
            let path = temporary_path(beside)?;
            match create_new(&path, mode) {
                Ok(file) => {
                    return Ok(Self {
                        path,
                        file,
                        kept: false,
                    })
                }
                // 64 random bits collide only by malice: try another name.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// rename(2) replaces whatever is at `path`, a symlink included,
    /// without following it.
    fn rename_to(mut self, path: &Path) -> std::io::Result<()> {
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            tracing::warn!(
                "replacing the symlink at {}: lvlab never writes through links",
                path.display()
            );
        }
        fs::rename(&self.path, path)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Creates `path`, which must not exist, never through a symlink.
fn create_new(path: &Path, mode: u32) -> std::io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // The umask only narrows the mode given at open; the promised mode
    // (0644 disks and images that libvirt's QEMU user reads, 0600 seeds)
    // must not depend on the caller's umask.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Starts a download's `.partial` afresh: whatever is at `path` (an old
/// partial, a planted symlink) is removed, and a new file is created
/// exclusively with `mode`.
pub fn start_partial(path: &Path, mode: u32) -> std::io::Result<fs::File> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        tracing::warn!(
            "replacing the symlink at {}: lvlab never writes through links",
            path.display()
        );
    }
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    create_new(path, mode)
}

/// Reopens a `.partial` being resumed, for appending, never through a
/// symlink.
pub fn resume_partial(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// The length of the regular file at `path`: 0 for none, or for anything
/// else there (a symlink is not resumed, it is replaced).
pub fn partial_length(path: &Path) -> u64 {
    fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file())
        .map_or(0, |m| m.len())
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
    temporary_of(name).is_some()
}

/// The final name a temporary file `name` was made for.
fn temporary_of(name: &str) -> Option<&str> {
    let (file, tag) = name.strip_suffix(TEMPORARY)?.rsplit_once('.')?;
    (!file.is_empty() && tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(file)
}

/// Removes `names` from `dir` (and temporaries left for them by an
/// interrupted run), then `dir` itself if nothing else is in it, then its
/// parent if that is empty too. Files lvlab did not make are left where
/// they are.
pub fn remove_files(dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, StorageError> {
    let leftovers = list(dir)?.into_iter().filter(|path| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        temporary_of(name).is_some_and(|of| names.iter().any(|n| n == of))
    });
    for path in names.iter().map(|n| dir.join(n)).chain(leftovers) {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &path)(e)),
        }
    }
    let left = list(dir)?;
    if left.is_empty() && directory_exists(dir) {
        fs::remove_dir(dir).map_err(io("remove", dir))?;
        remove_parent_if_empty(dir);
    }
    Ok(left)
}

/// Once `dir` is gone, its parent too if nothing else is in it: the
/// environment directory goes once its last machine has.
pub fn remove_parent_if_empty(dir: &Path) {
    if let (false, Some(parent)) = (directory_exists(dir), dir.parent()) {
        let _ = fs::remove_dir(parent);
    }
}

/// The entries of `dir`; none when it does not exist.
fn list(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("read", dir)(e)),
    }
}

/// Whether a volume (disk, seed) exists: a regular file, not a symlink
/// (one planted there is replaced when the volume is made).
pub fn volume_exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

pub fn directory_exists(path: &Path) -> bool {
    path.is_dir()
}

/// Names of the regular files in `dir`: a symlink is never lvlab's, even
/// when its name is.
pub fn file_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let entry = e.ok()?;
            entry.file_type().ok()?.is_file().then_some(())?;
            entry.file_name().into_string().ok()
        })
        .collect()
}

/// A small text file lvlab keeps beside the volumes, if it is there.
pub fn read_text(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn ensure_parent(path: &Path) -> Result<(), StorageError> {
    ensure_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes sure lvlab may write into `dir`: creates what is missing (0755
/// whatever the umask: the QEMU process of `qemu:///system` runs as another
/// user and must reach the files), and refuses a directory that someone
/// else could use to redirect lvlab's files: owned by another user (root
/// aside), or writable by group or others, or a symlink someone else made.
pub fn ensure_dir(dir: &Path) -> Result<(), StorageError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|d| !d.as_os_str().is_empty())
        .take_while(|d| fs::symlink_metadata(d).is_err())
        .collect();
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(0o755))
                .map_err(io("set the mode of", d))?,
            // Another lvlab made it meanwhile: checked below like any other.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("create directory", d)(e)),
        }
    }
    check_dir(dir)
}

fn check_dir(dir: &Path) -> Result<(), StorageError> {
    let untrusted = |problem: String, hint: String| StorageError::UntrustedDirectory {
        path: dir.to_path_buf(),
        problem,
        hint,
    };
    let link = fs::symlink_metadata(dir).map_err(io("read", dir))?;
    if link.file_type().is_symlink() && !trusted_owner(link.uid()) {
        return Err(untrusted(
            format!("is a symlink made by uid {}", link.uid()),
            format!("remove it ({}) if you did not make it", dir.display()),
        ));
    }
    let meta = fs::metadata(dir).map_err(io("read", dir))?;
    if !meta.is_dir() {
        return Err(untrusted(
            "is not a directory".into(),
            format!("move it out of the way ({})", dir.display()),
        ));
    }
    let fix = format!(
        "chown {} {d} && chmod go-w {d}, or remove {d}",
        running_uid(),
        d = dir.display()
    );
    if !trusted_owner(meta.uid()) {
        return Err(untrusted(format!("is owned by uid {}", meta.uid()), fix));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 {
            "others"
        } else {
            "its group"
        };
        return Err(untrusted(
            format!("is writable by {who} (mode {:o})", mode & 0o7777),
            fix,
        ));
    }
    Ok(())
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == running_uid()
}

fn running_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Suffix of a file being filled beside its final name: an image download
/// being resumed, or a disk an older lvlab was building.
pub const PARTIAL: &str = ".partial";

const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// `qcow2` when the file starts with qcow2's magic, else `raw`.
pub fn image_format(path: &Path) -> Result<&'static str, StorageError> {
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

/// Runs qemu-img, which writes the volume that becomes `volume`: a full
/// filesystem is told as such, naming `volume`.
fn qemu_img(args: &[&str], volume: &Path) -> Result<(), StorageError> {
    let output = Command::new("qemu-img")
        .args(args)
        .output()
        .map_err(|source| StorageError::QemuImgMissing { source })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if stderr.contains("No space left on device") || stderr.contains("Disk quota exceeded") {
        return Err(StorageError::NoSpace {
            path: volume.to_path_buf(),
        });
    }
    Err(StorageError::QemuImg {
        args: args.join(" "),
        stderr,
    })
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
        let mut names: Vec<_> = fs::read_dir(dir.path().join("vm"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["disk0.qcow2", "disk1.qcow2"], "no temporary left");
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
    fn temporaries_left_for_removed_files_go_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("vm");
        write_file(&vm.join("notes.txt"), b"mine", 0o644).unwrap();
        let left_over = temporary_path(&vm.join("disk0.qcow2")).unwrap();
        let foreign = temporary_path(&vm.join("notes.txt")).unwrap();
        fs::write(&left_over, b"half a disk").unwrap();
        fs::write(&foreign, b"not for a removed name").unwrap();
        let left = remove_files(&vm, &["disk0.qcow2".into()]).unwrap();
        assert!(!left_over.exists());
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn a_partial_is_resumed_only_when_it_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let partial = dir.path().join("image.partial");
        std::os::unix::fs::symlink(&target, &partial).unwrap();
        assert_eq!(partial_length(&partial), 0, "a symlink is not resumed");
        let err = resume_partial(&partial).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        use std::io::Write;
        start_partial(&partial, 0o600)
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert_eq!(partial_length(&partial), 3);
        resume_partial(&partial).unwrap().write_all(b"er").unwrap();
        assert_eq!(fs::read(&partial).unwrap(), b"newer");
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
    fn a_rewritten_file_keeps_its_mode_and_owner_and_a_symlink_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        // As root (the test machine), give it to another user first.
        let owner = if running_uid() == 0 {
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
            (65534, 65534)
        } else {
            let meta = fs::metadata(&path).unwrap();
            (meta.uid(), meta.gid())
        };
        rewrite_file(&path, b"new").unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!((meta.uid(), meta.gid()), owner);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(rewrite_file(&link, b"via the link").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let left = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 2, "no temporary file is left");
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
