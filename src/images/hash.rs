//! Streaming SHA-256/SHA-512: bytes are hashed as they arrive, never read
//! back whole. [`HashPipe`] hashes on a second thread so that a download
//! and its verification overlap; [`hash_file`] hashes what is on disk.
//!
//! The digests come from the system's libcrypto (the `openssl` crate), the
//! same code `openssl dgst` runs: SHA-NI for SHA-256 and the AVX2/BMI2 path
//! for SHA-512. RustCrypto's `sha2` matches it for SHA-256 but measured
//! about 25% slower for SHA-512 on this project's machines (see README,
//! "Performance").

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use openssl::hash::{Hasher, MessageDigest};

use crate::desired::ChecksumAlgorithm;

/// Size of the buffers bytes travel in, from the socket to the file and the
/// hasher.
pub const BUFFER_SIZE: usize = 256 * 1024;
/// Buffers in flight between a download and its hasher: bounds memory at
/// `BUFFERS * BUFFER_SIZE` per download.
const BUFFERS: usize = 8;

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

/// SHA-256 of a small byte string (checksum files, records), hex.
pub fn sha256_hex(bytes: &[u8]) -> HexDigest {
    let mut hasher = StreamHasher::new(ChecksumAlgorithm::Sha256);
    hasher.update(bytes);
    hasher.finish()
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

/// Hashes the file at `path` (or its first `limit` bytes), calling
/// `progress` with each chunk's length.
pub fn hash_file(
    path: &Path,
    algorithm: ChecksumAlgorithm,
    limit: Option<u64>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(HexDigest, u64)> {
    let file = File::open(path)?;
    let mut reader: Box<dyn Read> = match limit {
        Some(limit) => Box::new(file.take(limit)),
        None => Box::new(file),
    };
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

/// A hasher on its own thread, fed through a bounded channel of reusable
/// buffers: the caller fills a buffer (from the network), writes it to the
/// file, and submits it; the hasher hands it back when done. Memory stays at
/// a few buffers whatever the file size.
pub struct HashPipe {
    to_hasher: Option<SyncSender<(Vec<u8>, usize)>>,
    free: Receiver<Vec<u8>>,
    allocated: usize,
    worker: Option<JoinHandle<HexDigest>>,
}

impl HashPipe {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let (to_hasher, inbox) = mpsc::sync_channel::<(Vec<u8>, usize)>(BUFFERS);
        let (give_back, free) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        let worker = std::thread::Builder::new()
            .name("lvlab-hash".into())
            .spawn(move || {
                let mut hasher = StreamHasher::new(algorithm);
                for (buffer, len) in inbox {
                    hasher.update(&buffer[..len]);
                    // The feeder may have finished and dropped its end.
                    let _ = give_back.try_send(buffer);
                }
                hasher.finish()
            })
            .expect("cannot start a hashing thread");
        Self {
            to_hasher: Some(to_hasher),
            free,
            allocated: 0,
            worker: Some(worker),
        }
    }

    /// An empty buffer of [`BUFFER_SIZE`] bytes to fill.
    pub fn buffer(&mut self) -> Vec<u8> {
        if let Ok(buffer) = self.free.try_recv() {
            return buffer;
        }
        if self.allocated < BUFFERS {
            self.allocated += 1;
            return vec![0u8; BUFFER_SIZE];
        }
        // Every buffer is with the hasher: wait for one (back-pressure).
        self.free.recv().unwrap_or_else(|_| vec![0u8; BUFFER_SIZE])
    }

    /// Hands the first `len` bytes of `buffer` to the hasher.
    pub fn submit(&mut self, buffer: Vec<u8>, len: usize) {
        if let Some(tx) = &self.to_hasher {
            // The worker only stops when the sender is dropped.
            let _ = tx.send((buffer, len));
        }
    }

    /// Feeds a slice by copying it into pipe buffers.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let mut buffer = self.buffer();
            let n = bytes.len().min(buffer.len());
            buffer[..n].copy_from_slice(&bytes[..n]);
            self.submit(buffer, n);
            bytes = &bytes[n..];
        }
    }

    /// Waits for the hasher to finish everything submitted.
    pub fn finish(mut self) -> HexDigest {
        self.to_hasher.take();
        self.worker
            .take()
            .expect("finish is called once")
            .join()
            .expect("the hashing thread panicked")
    }
}

impl Drop for HashPipe {
    fn drop(&mut self) {
        self.to_hasher.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
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

    #[test]
    fn the_pipe_hashes_what_it_is_fed_in_order() {
        let data: Vec<u8> = (0..3 * BUFFER_SIZE + 17)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut pipe = HashPipe::new(ChecksumAlgorithm::Sha256);
        for chunk in data.chunks(BUFFER_SIZE / 3 + 1) {
            pipe.feed(chunk);
        }
        assert_eq!(pipe.finish(), sha256_hex(&data));
    }

    #[test]
    fn a_file_prefix_hashes_like_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abcdef").unwrap();
        let mut seen = 0;
        let (digest, n) = hash_file(&path, ChecksumAlgorithm::Sha256, Some(3), &mut |k| {
            seen += k
        })
        .unwrap();
        assert_eq!((digest.as_str(), n, seen), (ABC_256, 3, 3));
    }
}
