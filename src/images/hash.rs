//! Streaming SHA-256/SHA-512 in fixed-size buffers, never a whole file in
//! memory. [`TrailingHasher`] hashes a file on a second thread right behind
//! the download that writes it, so that the two overlap; [`hash_file`]
//! hashes a file already on disk.
//!
//! Streamed digests come from the system's libcrypto (the `openssl` crate),
//! the same code `openssl dgst` runs: SHA-NI for SHA-256 and the AVX2/BMI2
//! path for SHA-512. RustCrypto's `sha2` matches it for SHA-256 but is 30%
//! slower for SHA-512 on this project's machines (see README, "Performance").

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use openssl::hash::{Hasher, MessageDigest};
use sha2::{Digest, Sha256};

use crate::desired::ChecksumAlgorithm;

/// Size of the buffers bytes travel in, from the socket to the file and the
/// hasher.
pub const BUFFER_SIZE: usize = 256 * 1024;

/// A hex digest, lowercase.
pub type HexDigest = String;

/// An incremental hash of one algorithm.
pub struct StreamHasher {
    hasher: Hasher,
}

impl StreamHasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let md = match algorithm {
            ChecksumAlgorithm::Sha256 => MessageDigest::sha256(),
            ChecksumAlgorithm::Sha512 => MessageDigest::sha512(),
        };
        // Creating a SHA-2 context fails only when libcrypto cannot allocate.
        let hasher = Hasher::new(md).expect("libcrypto cannot create a SHA-2 context");
        Self { hasher }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher
            .update(bytes)
            .expect("libcrypto SHA-2 update failed");
    }

    pub fn finish(mut self) -> HexDigest {
        let digest = self.hasher.finish().expect("libcrypto SHA-2 final failed");
        to_hex(&digest)
    }
}

/// SHA-256 of a small byte string (checksum files, records), hex, with
/// `sha2` like every other small digest in lvlab.
pub fn sha256_hex(bytes: &[u8]) -> HexDigest {
    format!("{:x}", Sha256::digest(bytes))
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Hashes the file at `path`, calling `progress` with each chunk's length.
pub fn hash_file(
    path: &Path,
    algorithm: ChecksumAlgorithm,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(HexDigest, u64)> {
    let mut reader = File::open(path)?;
    let mut hasher = StreamHasher::new(algorithm);
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..n]);
        total += n as u64;
        progress(n as u64);
    }
    Ok((hasher.finish(), total))
}

/// Hashes a file on its own thread while the caller is still writing it:
/// the caller says how many bytes the file holds after each write, and the
/// hasher reads them back from the page cache. The download never waits for
/// the hasher, which catches up while the file is flushed to disk; what gets
/// verified is what is in the file. Memory is one buffer, whatever the size.
pub struct TrailingHasher {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<io::Result<HexDigest>>>,
}

struct Shared {
    state: Mutex<Written>,
    changed: Condvar,
    /// The download failed: stop at once, however far behind.
    abandoned: AtomicBool,
}

struct Written {
    bytes: u64,
    /// No more bytes will come.
    closed: bool,
}

impl TrailingHasher {
    /// Starts hashing `path` from its first byte; `written` bytes are in it
    /// already (a resumed download).
    pub fn start(path: &Path, algorithm: ChecksumAlgorithm, written: u64) -> io::Result<Self> {
        let file = File::open(path)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(Written {
                bytes: written,
                closed: false,
            }),
            changed: Condvar::new(),
            abandoned: AtomicBool::new(false),
        });
        let for_worker = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("lvlab-hash".into())
            .spawn(move || trail(file, algorithm, &for_worker))?;
        Ok(Self {
            shared,
            worker: Some(worker),
        })
    }

    /// The file now holds `bytes` bytes.
    pub fn written(&self, bytes: u64) {
        self.update(|state| state.bytes = bytes);
    }

    /// Waits for the hasher to reach the end of what was written.
    pub fn finish(mut self) -> io::Result<HexDigest> {
        self.update(|state| state.closed = true);
        self.worker
            .take()
            .expect("finish is called once")
            .join()
            .expect("the hashing thread panicked")
    }

    fn update(&self, change: impl FnOnce(&mut Written)) {
        let mut state = self.shared.state.lock().expect("hash state lock");
        change(&mut state);
        self.shared.changed.notify_one();
    }
}

impl Drop for TrailingHasher {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.shared.abandoned.store(true, Ordering::Relaxed);
            self.update(|_| {});
            let _ = worker.join();
        }
    }
}

impl Shared {
    fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Waits until the file holds more than `hashed` bytes, or no more
    /// will come; returns (bytes written, closed).
    fn wait_beyond(&self, hashed: u64) -> (u64, bool) {
        let mut state = self.state.lock().expect("hash state lock");
        while state.bytes == hashed && !state.closed && !self.is_abandoned() {
            state = self.changed.wait(state).expect("hash state lock");
        }
        (state.bytes, state.closed)
    }
}

/// The hashing thread: reads what was written, then waits for more.
fn trail(mut file: File, algorithm: ChecksumAlgorithm, shared: &Shared) -> io::Result<HexDigest> {
    let mut hasher = StreamHasher::new(algorithm);
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut hashed = 0u64;
    loop {
        let (target, closed) = shared.wait_beyond(hashed);
        loop {
            if shared.is_abandoned() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "abandoned"));
            }
            if hashed == target {
                break;
            }
            let want = buffer.len().min((target - hashed) as usize);
            let n = match file.read(&mut buffer[..want]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            hasher.update(&buffer[..n]);
            hashed += n as u64;
        }
        if closed {
            return Ok(hasher.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ABC_512: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                           2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    #[test]
    fn known_answers() {
        assert_eq!(sha256_hex(b"abc"), ABC_256);
        let mut h = StreamHasher::new(ChecksumAlgorithm::Sha512);
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), ABC_512);
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Writes `data` after the first `already` bytes in pieces of `piece`,
    /// telling the hasher after each, and returns its digest.
    fn trail_writes(data: &[u8], already: usize, piece: usize) -> io::Result<HexDigest> {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial");
        std::fs::write(&path, &data[..already]).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let hasher = TrailingHasher::start(&path, ChecksumAlgorithm::Sha256, already as u64)?;
        let mut written = already;
        for chunk in data[already..].chunks(piece) {
            file.write_all(chunk).unwrap();
            written += chunk.len();
            hasher.written(written as u64);
        }
        hasher.finish()
    }

    #[test]
    fn the_trailing_hasher_hashes_everything_written_in_order() {
        let data = sample(3 * BUFFER_SIZE + 17);
        assert_eq!(trail_writes(&data, 0, 4096 + 3).unwrap(), sha256_hex(&data));
        assert_eq!(
            trail_writes(&data, 0, 2 * BUFFER_SIZE).unwrap(),
            sha256_hex(&data)
        );
    }

    #[test]
    fn the_trailing_hasher_includes_bytes_already_in_the_file() {
        let data = sample(BUFFER_SIZE + 1000);
        assert_eq!(trail_writes(&data, 700, 333).unwrap(), sha256_hex(&data));
        assert_eq!(
            trail_writes(&data, data.len(), 1).unwrap(),
            sha256_hex(&data)
        );
    }

    #[test]
    fn the_trailing_hasher_fails_when_the_file_holds_less_than_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        std::fs::write(&path, b"abc").unwrap();
        let hasher = TrailingHasher::start(&path, ChecksumAlgorithm::Sha256, 3).unwrap();
        hasher.written(10);
        let err = hasher.finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn an_abandoned_trailing_hasher_stops_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial");
        std::fs::write(&path, b"abc").unwrap();
        let hasher = TrailingHasher::start(&path, ChecksumAlgorithm::Sha256, 3).unwrap();
        drop(hasher); // joins the thread: the test would hang if it waited on
    }

    #[test]
    fn a_file_hashes_like_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let mut seen = 0;
        let (digest, n) = hash_file(&path, ChecksumAlgorithm::Sha256, &mut |k| seen += k).unwrap();
        assert_eq!((digest.as_str(), n, seen), (ABC_256, 3, 3));
    }
}
