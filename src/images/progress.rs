//! How the image pipeline tells the world what it is doing. The pipeline
//! calls a [`Reporter`]; the command line decides whether that becomes
//! progress bars, plain lines, or nothing. Nothing here prints.

use std::time::Duration;

/// What an image job is busy with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fetching the checksum file.
    Checksums,
    /// Fetching the signing keys or a detached signature, and checking it.
    Signature,
    /// Downloading (or copying) the image itself.
    Download,
    /// Hashing a file already on disk (a placed-by-hand or cached image).
    Hashing,
    /// Uploading a cached image to a host's images pool.
    Upload,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Checksums => "checksums",
            Phase::Signature => "signature",
            Phase::Download => "download",
            Phase::Hashing => "hashing",
            Phase::Upload => "upload",
        }
    }
}

/// Receives progress from image jobs, possibly from several threads at once.
/// `image` is the image key a job works for.
pub trait Reporter: Send + Sync {
    /// A job starts.
    fn on_start(&self, image: &str) {
        let _ = image;
    }
    /// A job enters a phase.
    fn on_phase(&self, image: &str, phase: Phase) {
        let _ = (image, phase);
    }
    /// A transfer (or hashing pass) starts: `done` bytes are already there
    /// (a resumed download), `total` is the size when known.
    fn on_transfer(&self, image: &str, url: &str, done: u64, total: Option<u64>) {
        let _ = (image, url, done, total);
    }
    /// `bytes` more bytes arrived.
    fn on_progress(&self, image: &str, bytes: u64) {
        let _ = (image, bytes);
    }
    /// An attempt failed; the next starts after `delay`.
    fn on_retry(&self, image: &str, attempt: u32, delay: Duration, error: &str) {
        let _ = (image, attempt, delay, error);
    }
    /// The job finished; `summary` says how (verified, cached, failed ...).
    fn on_done(&self, image: &str, ok: bool, summary: &str) {
        let _ = (image, ok, summary);
    }
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {}
