//! Files cannot be redirected (issue 16, item 2) and a full filesystem is
//! named as such (item 6): planted symlinks at the names lvlab writes are
//! never written through, directories others can write are refused, a
//! private local image stays private in the cache, and ENOSPC reads "no
//! space left on <path>". Real files in temporary directories; machines on
//! libvirt's test driver; the image cache through the real binary.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/plan_apply.rs"]
mod plan_apply;
#[path = "support/tiny_image.rs"]
mod support;
#[path = "support/tiny_lab.rs"]
mod tiny_lab;
use plan_apply::plan_apply;
use support::{image_bytes, tiny_image};
use tiny_lab::TinyLab;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lvlab::desired::Desired;
use lvlab::plan::{Selection, Target};
use lvlab::reconcile::Lab;
use lvlab::storage::{self, FromImage};

const VICTIM: &[u8] = b"precious bytes that are not lvlab's\n";

impl TinyLab {
    /// A file that is not lvlab's, and a symlink to it at `link`.
    fn plant(&self, link: &Path, victim: &str) -> PathBuf {
        let victim = self.path().join(victim);
        std::fs::write(&victim, VICTIM).unwrap();
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(&victim, link).unwrap();
        victim
    }
}

/// Plans and applies `desired`; the failures, if any.
fn apply(desired: &Desired) -> Vec<String> {
    let lab = Lab::open(desired, desired.environments.iter().collect()).unwrap();
    let (_, outcome) = plan_apply(&lab, Target::Running, &Selection::default());
    outcome
        .failed
        .into_iter()
        .map(|(_, why)| why.to_string())
        .collect()
}

fn is_regular(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn planted_symlinks_at_disk_partial_disk_and_seed_names_are_never_written_through() {
    let fx = TinyLab::new("16M");
    let web = fx.vm_dir("web");
    let db = fx.vm_dir("db");
    let partial = fx.plant(&web.join("disk0.qcow2.partial"), "partial-victim");
    let disk = fx.plant(&db.join("disk0.qcow2"), "disk-victim");
    let seed = fx.plant(&web.join("user-data"), "seed-victim");
    let iso = fx.plant(&db.join("cidata.iso"), "iso-victim");
    for dir in [&web, &db] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let failed = apply(&fx.manifest(
        "      - vm_name: web\n        disks: [{name: root, size: 32M}, {name: data, size: 8M}]\n      - vm_name: db\n",
    ));
    assert!(failed.is_empty(), "{failed:?}");

    for victim in [&partial, &disk, &seed, &iso] {
        assert!(
            std::fs::read(victim).unwrap() == VICTIM,
            "{} was written through a symlink",
            victim.display()
        );
    }
    for made in [
        web.join("disk0.qcow2"),
        web.join("disk1.qcow2"),
        web.join("user-data"),
        db.join("disk0.qcow2"),
        db.join("cidata.iso"),
    ] {
        assert!(is_regular(&made), "{} is lvlab's own file", made.display());
    }
    assert_eq!(
        storage::virtual_size(&db.join("disk0.qcow2")).unwrap(),
        16 << 20,
        "the disk was made from the image, not taken from the link"
    );
}

#[test]
fn vm_directories_others_can_write_or_own_are_refused() {
    let fx = TinyLab::new("16M");
    let web = fx.vm_dir("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::set_permissions(&web, std::fs::Permissions::from_mode(0o775)).unwrap();
    let db = fx.vm_dir("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Owned by nobody (the tests run as root, which may give files away).
    std::os::unix::fs::chown(&db, Some(65534), Some(65534)).unwrap();

    let failed = apply(&fx.manifest("      - vm_name: web\n      - vm_name: db\n")).join("\n");
    let web_error = format!("{} is writable by its group (mode 775)", web.display());
    let db_error = format!("{} is owned by uid 65534", db.display());
    assert!(failed.contains(&web_error), "{failed}");
    assert!(failed.contains(&db_error), "{failed}");
    assert!(failed.contains("chmod go-w"), "{failed}");
    for dir in [&web, &db] {
        let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert!(left.is_empty(), "nothing written into {}", dir.display());
    }
}

#[test]
fn directories_lvlab_makes_are_traversable_and_pass_its_own_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c");
    storage::ensure_dir(&path).unwrap();
    for d in ["a", "a/b", "a/b/c"] {
        assert_eq!(mode(&dir.path().join(d)), 0o755, "{d}");
    }
}

/// `lvlab apply --target stopped` of one machine under `umask`: the modes
/// of what it made, by path relative to the fixture, directories first.
fn modes_under_umask(umask: &str) -> Vec<(&'static str, u32)> {
    let (fx, _) = with_local_image(0o644);
    let manifest = fx.path().join("Lvlab.yml");
    std::fs::write(&manifest, fx.manifest_text("      - vm_name: web\n")).unwrap();
    let out = Command::new("sh")
        .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env("LVLAB_STATE_DIR", fx.path().join("state"))
        .env("HOME", fx.path())
        .env_remove("LVLAB_LOG")
        .arg("-f")
        .arg(&manifest)
        .args(["apply", "--auto-approve", "--target", "stopped"])
        .output()
        .unwrap();
    assert_ok(&out);
    let user_data = std::fs::read_to_string(fx.vm_dir("web").join("user-data")).unwrap();
    assert!(user_data.contains("$6$"), "a password hash: {user_data}");
    [
        "cache",
        "cache/cloud-images",
        "cache/cloud-images/tiny.qcow2",
        "vms",
        "vms/lab",
        "vms/lab/web",
        "vms/lab/web/disk0.qcow2",
        "vms/lab/web/user-data",
        "vms/lab/web/ssh_host_ed25519_key",
        "vms/lab/web/known_hosts",
    ]
    .iter()
    .map(|path| (*path, mode(&fx.path().join(path))))
    .collect()
}

#[test]
fn directories_are_0755_and_disks_and_images_0644_whatever_the_umask() {
    let directories = [
        "cache",
        "cache/cloud-images",
        "vms",
        "vms/lab",
        "vms/lab/web",
    ];
    let wanted = |path: &str| {
        if directories.contains(&path) {
            0o755
        } else if path.ends_with("user-data") || path.ends_with("_key") {
            0o600
        } else {
            0o644
        }
    };
    for umask in ["077", "022"] {
        for (path, mode) in modes_under_umask(umask) {
            assert_eq!(mode, wanted(path), "umask {umask}: {path}: {mode:o}");
        }
    }
}

/// `lvlab init` for one image from a local file, with the cache in `fx`.
fn init(fx: &TinyLab) -> Output {
    std::fs::write(
        fx.path().join("Lvlab.yml"),
        fx.manifest_text("      - vm_name: web\n"),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env("HOME", fx.path())
        .env_remove("LVLAB_LOG")
        .arg("-f")
        .arg(fx.path().join("Lvlab.yml"))
        .arg("init")
        .output()
        .unwrap()
}

/// A fixture whose cache is empty and whose image is a local file.
fn with_local_image(source_mode: u32) -> (TinyLab, PathBuf) {
    let fx = TinyLab {
        dir: tempfile::tempdir().unwrap(),
    };
    let source = fx.path().join("source/tiny.qcow2");
    tiny_image(&source, "16M");
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(source_mode)).unwrap();
    (fx, source)
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_planted_symlink_at_the_image_cache_partial_is_replaced() {
    let (fx, source) = with_local_image(0o644);
    let cache = fx.path().join("cache/cloud-images");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = fx.plant(&cache.join("tiny.qcow2.partial"), "cache-victim");

    assert_ok(&init(&fx));
    assert!(
        std::fs::read(&victim).unwrap() == VICTIM,
        "the download went through the symlink"
    );
    let cached = cache.join("tiny.qcow2");
    assert!(is_regular(&cached));
    assert!(std::fs::read(&cached).unwrap() == std::fs::read(&source).unwrap());
}

#[test]
fn a_private_local_image_is_cached_private() {
    let (fx, _) = with_local_image(0o600);
    assert_ok(&init(&fx));
    assert_eq!(
        mode(&fx.path().join("cache/cloud-images/tiny.qcow2")),
        0o600
    );
}

#[test]
fn an_image_cache_others_can_write_is_refused() {
    let (fx, _) = with_local_image(0o644);
    let cache = fx.path().join("cache/cloud-images");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = init(&fx);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{} is writable by others", cache.display())),
        "{stderr}"
    );
    assert!(!cache.join("tiny.qcow2").exists());
}

/// A 2 MiB tmpfs, unmounted when dropped; `None` (with a message) where
/// this process may not mount.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2M,mode=0755", "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self { dir }),
            other => {
                eprintln!("SKIPPED: cannot mount a small tmpfs to fill ({other:?})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn assert_no_space(message: &str, path: &Path) {
    assert!(
        message.contains(&format!("no space left on {}", path.display())),
        "{message}"
    );
    assert!(!message.contains("qemu-utils"), "{message}");
}

#[test]
fn a_full_filesystem_is_no_space_left_on_the_path() {
    let Some(tmpfs) = Tmpfs::mount() else { return };
    let outside = tempfile::tempdir().unwrap();
    // A raw image goes through `qemu-img convert`, a qcow2 one is copied.
    let raw = outside.path().join("big.raw");
    std::fs::write(&raw, image_bytes(1, 4 << 20)).unwrap();
    let disk = tmpfs.path().join("vm/disk0.qcow2");
    let err = storage::create_from_image(&raw, &disk, FromImage::Copy, None).unwrap_err();
    assert_no_space(&err.to_string(), &disk);

    let qcow2 = outside.path().join("big.qcow2");
    let converted = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .status()
        .unwrap();
    assert!(converted.success());
    let err = storage::create_from_image(&qcow2, &disk, FromImage::Copy, None).unwrap_err();
    assert_no_space(&err.to_string(), &disk);
    let left: Vec<_> = std::fs::read_dir(tmpfs.path().join("vm"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "no temporary is left behind: {left:?}");
}

#[test]
fn a_full_image_cache_is_no_space_left_on_the_path() {
    let Some(tmpfs) = Tmpfs::mount() else { return };
    let fx = TinyLab {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::create_dir_all(fx.path().join("source")).unwrap();
    std::fs::write(fx.path().join("source/tiny.qcow2"), image_bytes(1, 4 << 20)).unwrap();
    symlink(tmpfs.path(), fx.path().join("cache")).unwrap();
    let out = init(&fx);
    assert!(!out.status.success());
    let partial = fx.path().join("cache/cloud-images/tiny.qcow2.partial");
    assert_no_space(&String::from_utf8_lossy(&out.stderr), &partial);
}

#[test]
fn a_symlink_at_a_final_name_is_replaced_with_a_warning() {
    let fx = TinyLab::new("16M");
    let web = fx.vm_dir("web");
    let link = web.join("user-data");
    let victim = fx.plant(&link, "seed-victim");
    std::fs::set_permissions(&web, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        fx.path().join("Lvlab.yml"),
        fx.manifest_text("      - vm_name: web\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env("NO_COLOR", "1")
        .env("HOME", fx.path())
        .env_remove("LVLAB_LOG")
        .arg("-f")
        .arg(fx.path().join("Lvlab.yml"))
        .args(["cloudinit", "web"])
        .output()
        .unwrap();
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "replacing the symlink at {}: lvlab never writes through links",
            link.display()
        )),
        "{stderr}"
    );
    assert!(std::fs::read(&victim).unwrap() == VICTIM);
    assert!(is_regular(&link), "the seed is lvlab's own file now");
}
