//! Writing a seed into a machine's directory: the three documents and
//! `cidata.iso`. Each file is written to a temporary name and renamed into
//! place, so a reader never sees half a seed file, and a file that holds a
//! password hash is created with mode 0600 (never widened after the fact).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{iso, CloudInitError, Seed};

/// The seed ISO's file name in the machine's directory.
pub const ISO_FILE: &str = "cidata.iso";

/// Writes `seed` and its ISO into `dir` (created if missing) and returns the
/// paths written, documents first.
pub fn write_seed(dir: &Path, seed: &Seed) -> Result<Vec<PathBuf>, CloudInitError> {
    fs::create_dir_all(dir).map_err(|source| CloudInitError::Io {
        path: dir.to_path_buf(),
        action: "create directory",
        source,
    })?;
    let mode = if seed.holds_password_hash {
        0o600
    } else {
        0o644
    };
    let image = iso::build(seed)?;
    let mut written = Vec::with_capacity(4);
    for (name, text) in seed.documents() {
        written.push(write_file(&dir.join(name), text.as_bytes(), mode)?);
    }
    written.push(write_file(&dir.join(ISO_FILE), &image, mode)?);
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, CloudInitError> {
    let io_error = |action: &'static str| {
        move |source| CloudInitError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    // A leftover from an interrupted run could have another mode.
    match fs::remove_file(&temporary) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("remove")(err));
        }
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(io_error("create"))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error("write"))?;
    fs::rename(&temporary, path).map_err(io_error("rename into place"))?;
    Ok(path.to_path_buf())
}
