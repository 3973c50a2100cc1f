//! Where downloaded bytes go: the `.partial` file, hashed right behind the
//! writes when a digest is wanted.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use super::{Downloaded, FetchError};
use crate::desired::ChecksumAlgorithm;
use crate::images::hash::{self, HexDigest, TrailingHasher, BUFFER_SIZE};
use crate::images::progress::Reporter;
use crate::storage;

/// Opens the `.partial` through the storage door: started afresh with
/// `mode` (whatever was at its name, a symlink included, is replaced), or
/// reopened without following a symlink when `start` bytes are resumed.
pub(super) fn open_partial(partial: &Path, start: u64, mode: u32) -> Result<File, FetchError> {
    let opened = if start == 0 {
        storage::start_partial(partial, mode)
    } else {
        storage::resume_partial(partial)
    };
    opened.map_err(|source| FetchError::Write {
        path: partial.to_path_buf(),
        source,
    })
}

/// Hashes a `.partial` that already holds the whole file.
pub(super) fn finish_existing(
    partial: &Path,
    algorithm: Option<ChecksumAlgorithm>,
    size: u64,
) -> Result<Downloaded, FetchError> {
    let digest = algorithm
        .map(|algorithm| hash::hash_file(partial, algorithm, &mut |_| {}).map(|(hex, _)| hex))
        .transpose()
        .map_err(|source| read_error(partial, source))?;
    Ok(Downloaded {
        size,
        digest,
        resumed_from: size,
    })
}

pub(super) enum PumpError {
    Read(io::Error),
    Write(FetchError),
}

/// Where downloaded bytes go: the `.partial` file, hashed behind the writes
/// when a digest is wanted.
pub(super) struct Sink<'a> {
    file: File,
    path: &'a Path,
    /// Bytes in the file, including those there before this attempt.
    written: u64,
    hasher: Option<TrailingHasher>,
    buffer: Vec<u8>,
}

impl<'a> Sink<'a> {
    /// Writes to `file` (opened at `path`, `written` bytes in already).
    pub(super) fn new(
        file: File,
        path: &'a Path,
        written: u64,
        algorithm: Option<ChecksumAlgorithm>,
    ) -> Result<Self, FetchError> {
        let hasher = algorithm
            .map(|algorithm| TrailingHasher::start(path, algorithm, written))
            .transpose()
            .map_err(|source| read_error(path, source))?;
        Ok(Self {
            file,
            path,
            written,
            hasher,
            buffer: vec![0u8; BUFFER_SIZE],
        })
    }

    fn write_error(&self, source: io::Error) -> FetchError {
        FetchError::Write {
            path: self.path.to_path_buf(),
            source,
        }
    }

    /// Copies `reader` to the file until it ends; returns the bytes copied.
    pub(super) fn pump(
        &mut self,
        mut reader: impl Read,
        image: &str,
        reporter: &dyn Reporter,
    ) -> Result<u64, PumpError> {
        let mut received = 0u64;
        loop {
            let n = match reader.read(&mut self.buffer) {
                Ok(0) => return Ok(received),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(PumpError::Read(err)),
            };
            if let Err(err) = self.file.write_all(&self.buffer[..n]) {
                return Err(PumpError::Write(self.write_error(err)));
            }
            self.written += n as u64;
            if let Some(hasher) = &self.hasher {
                hasher.written(self.written);
            }
            received += n as u64;
            reporter.on_progress(image, n as u64);
        }
    }

    /// Flushes the file to disk (while the hasher catches up) and returns
    /// the digest.
    pub(super) fn finish(self) -> Result<Option<HexDigest>, FetchError> {
        self.file
            .sync_all()
            .map_err(|source| self.write_error(source))?;
        self.hasher
            .map(TrailingHasher::finish)
            .transpose()
            .map_err(|source| read_error(self.path, source))
    }
}

fn read_error(path: &Path, source: io::Error) -> FetchError {
    FetchError::Read {
        path: path.to_path_buf(),
        source,
    }
}
