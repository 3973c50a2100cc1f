//! One apply per environment at a time: an OS file lock next to the
//! environment's VM directories, holding the holder's PID for messages.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::desired::EnvironmentSpec;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another lvlab (PID {holder}) is changing environment {environment}; waited {waited}s for it (lock: {})\n  hint: wait for it to finish, or raise --lock-timeout", path.display())]
    Busy {
        environment: String,
        holder: String,
        waited: u64,
        path: PathBuf,
    },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held until dropped; the OS releases it if the process dies.
#[derive(Debug)]
pub struct EnvironmentLock {
    _file: File,
}

/// How often a waiting apply tries the lock again.
const RETRY: Duration = Duration::from_millis(100);

impl EnvironmentLock {
    /// The lock of `env`, waiting up to `timeout`; `None` for an environment
    /// without machines, which has no directory to lock.
    pub fn acquire_for(
        env: &EnvironmentSpec,
        timeout: Duration,
    ) -> Result<Option<Self>, LockError> {
        basedir(env)
            .map(|base| Self::acquire(base, &env.name, timeout))
            .transpose()
    }

    /// `<disk_image_basedir>/<environment>.lock`, waiting up to `timeout`.
    pub fn acquire(base: &Path, environment: &str, timeout: Duration) -> Result<Self, LockError> {
        let path = base.join(format!("{environment}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(base).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
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

/// The environment's `disk_image_basedir`. The setting is per machine and
/// the spec keeps only what it resolved to, each machine's
/// `<disk_image_basedir>/<environment>/<vm_name>/`: the first machine's
/// directory, two levels up.
fn basedir(env: &EnvironmentSpec) -> Option<&Path> {
    env.machines.first()?.vm_dir.parent()?.parent()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = EnvironmentLock::acquire(dir.path(), "lab", Duration::ZERO).unwrap();
        let err =
            EnvironmentLock::acquire(dir.path(), "lab", Duration::from_millis(300)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id())),
            "{text}"
        );
        assert!(
            EnvironmentLock::acquire(dir.path(), "other", Duration::ZERO).is_ok(),
            "per environment"
        );
        drop(first);
        assert!(EnvironmentLock::acquire(dir.path(), "lab", Duration::ZERO).is_ok());
    }
}
