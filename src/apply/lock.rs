//! One apply per (libvirt URI, environment) at a time, whichever manifest
//! it comes from: an OS file lock in lvlab's state directory on the host
//! lvlab runs on, holding the holder's PID for messages.

use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Overrides where the locks live (tests; hosts without `/run`).
pub const STATE_DIR_VAR: &str = "LVLAB_STATE_DIR";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another lvlab (PID {holder}) is changing environment {environment} on {uri}; waited {waited}s for it (lock: {})\n  hint: wait for it to finish, or raise --lock-timeout", path.display())]
    Busy {
        environment: String,
        uri: String,
        holder: String,
        waited: u64,
        path: PathBuf,
    },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lvlab's state directory {} {problem}\n  hint: remove it (lvlab creates it again, mode 0700), or set {STATE_DIR_VAR} to a directory only you can write", path.display())]
    UnsafeStateDir { path: PathBuf, problem: String },
    #[error("lvlab has no state directory: neither {STATE_DIR_VAR}, XDG_RUNTIME_DIR nor HOME is set\n  hint: set {STATE_DIR_VAR} to a directory only you can write")]
    NoStateDir,
}

/// Held until dropped; the OS releases it if the process dies.
#[derive(Debug)]
pub struct EnvironmentLock {
    _file: File,
}

/// How often a waiting apply tries the lock again.
const RETRY: Duration = Duration::from_millis(100);

impl EnvironmentLock {
    /// The locks of every (canonical URI, environment) pair, taken in
    /// sorted order so that two applies over the same pairs cannot each
    /// hold one the other waits for.
    pub fn acquire_all(
        state_dir: &Path,
        pairs: impl IntoIterator<Item = (String, String)>,
        timeout: Duration,
    ) -> Result<Vec<Self>, LockError> {
        let sorted: std::collections::BTreeSet<(String, String)> = pairs.into_iter().collect();
        sorted
            .iter()
            .map(|(uri, environment)| Self::acquire(state_dir, uri, environment, timeout))
            .collect()
    }

    /// The lock of `environment` on the libvirt at `uri` (canonical, as
    /// libvirt reports it) in `state_dir`, waiting up to `timeout`.
    pub fn acquire(
        state_dir: &Path,
        uri: &str,
        environment: &str,
        timeout: Duration,
    ) -> Result<Self, LockError> {
        prepare_state_dir(state_dir)?;
        let path = state_dir.join(lock_file_name(uri, environment));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // Never through a symlink someone put in its place.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(RETRY)
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(LockError::Busy {
                        environment: environment.to_string(),
                        uri: uri.to_string(),
                        holder: holder.trim().to_string(),
                        waited: timeout.as_secs(),
                        path,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// Where lvlab keeps its locks: `$LVLAB_STATE_DIR`, else `/run/lvlab` as
/// root, else `$XDG_RUNTIME_DIR/lvlab`, else `~/.local/state/lvlab`.
pub fn state_dir() -> Result<PathBuf, LockError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(STATE_DIR_VAR) {
        return Ok(PathBuf::from(dir));
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(PathBuf::from("/run/lvlab"));
    }
    if let Some(runtime) = var("XDG_RUNTIME_DIR") {
        return Ok(PathBuf::from(runtime).join("lvlab"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".local/state/lvlab"))
        .ok_or(LockError::NoStateDir)
}

/// Creates `dir` (mode 0700) when missing; refuses one that is not a
/// directory of this user that only this user can write, as anyone who
/// can write it could replace the locks.
pub fn prepare_state_dir(dir: &Path) -> Result<(), LockError> {
    let io = |source| LockError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(e)),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    let problem = if !meta.is_dir() {
        Some("is not a directory (a symlink?)".to_string())
    } else if meta.uid() != me {
        Some(format!("belongs to user {}, not to you ({me})", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "can be written by others (mode {:o})",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(LockError::UnsafeStateDir {
            path: dir.to_path_buf(),
            problem,
        }),
        None => Ok(()),
    }
}

/// `<uri>.<environment>.<hash>.lock` with every character but letters,
/// digits, `-` and `_` of the URI made `_`; the hash of both keeps URIs
/// that sanitise alike apart.
pub fn lock_file_name(uri: &str, environment: &str) -> String {
    let readable: String = uri
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let digest = Sha256::digest(format!("{uri}\0{environment}"));
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{readable}.{environment}.{hash}.lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "qemu:///session";

    #[test]
    fn a_second_holder_waits_then_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let lock = |env, timeout| EnvironmentLock::acquire(&state, URI, env, timeout);
        let first = lock("lab", Duration::ZERO).unwrap();
        let err = lock("lab", Duration::from_millis(300)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id())) && text.contains(URI),
            "{text}"
        );
        assert!(lock("other", Duration::ZERO).is_ok(), "per environment");
        assert!(
            EnvironmentLock::acquire(&state, "test:///default", "lab", Duration::ZERO).is_ok(),
            "per URI"
        );
        drop(first);
        assert!(lock("lab", Duration::ZERO).is_ok());
        let mode = std::fs::metadata(&state).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn several_locks_are_taken_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let held = EnvironmentLock::acquire(&state, URI, "a", Duration::ZERO).unwrap();
        std::thread::scope(|scope| {
            let pairs = ["b", "a"].map(|env| (URI.to_string(), env.to_string()));
            let waiting = scope
                .spawn(|| EnvironmentLock::acquire_all(&state, pairs, Duration::from_secs(10)));
            // While it waits for `a`, it holds nothing after `a`: `b` is free.
            std::thread::sleep(Duration::from_millis(300));
            let b = EnvironmentLock::acquire(&state, URI, "b", Duration::ZERO);
            assert!(b.is_ok(), "b was taken before a");
            drop(b);
            drop(held);
            assert_eq!(waiting.join().unwrap().unwrap().len(), 2);
        });
    }

    #[test]
    fn the_lock_file_is_never_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        prepare_state_dir(&state).unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, state.join(lock_file_name(URI, "lab"))).unwrap();
        let err = EnvironmentLock::acquire(&state, URI, "lab", Duration::ZERO).unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_state_directory_others_can_write_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let err = EnvironmentLock::acquire(&state, URI, "lab", Duration::ZERO).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&state.display().to_string()) && text.contains("written by others"),
            "{text}"
        );
        std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        // Only root can give a directory away; elsewhere this part proves nothing.
        if std::os::unix::fs::chown(&state, Some(65534), None).is_ok() {
            let text = prepare_state_dir(&state).unwrap_err().to_string();
            assert!(text.contains("belongs to user 65534"), "{text}");
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(matches!(
            prepare_state_dir(&link),
            Err(LockError::UnsafeStateDir { .. })
        ));
    }

    #[test]
    fn lock_names_are_readable_and_distinct() {
        let name = lock_file_name("qemu+ssh://host/system", "lab");
        assert!(name.starts_with("qemu_ssh___host_system.lab."), "{name}");
        assert!(name.ends_with(".lock"));
        assert_ne!(
            lock_file_name("qemu:///a.b", "lab"),
            lock_file_name("qemu:///a_b", "lab")
        );
    }
}
