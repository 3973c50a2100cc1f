//! Ensuring an image, the work behind the plan's image step (run by
//! `apply` and `lvlab init`): make sure an image is in a cache directory,
//! downloaded and verified ([`ensure_image`]), built from finer steps: fetch the checksum
//! file ([`fetch_checksums`]), check its signature ([`verify_signature`],
//! in `signed`), download and check the image ([`download_verified`], in
//! `verified`).
//!
//! Rules: a verified image is immutable and, once recorded, needs no
//! request; a file that fails verification never stays at the image's
//! path (it becomes `<file>.rejected`); a newer published image goes beside
//! the old one, which is removed only when no defined domain uses it.

mod signed;
mod verified;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use signed::{verify_signature, SignedListing, SIGNATURE_SUFFIXES};
pub use verified::{download_verified, VerifiedListing};

use super::cache;
use super::checksums;
use super::error::ImageError;
use super::fetch::{Downloaded, Fetcher, Small};
use super::hash;
use super::progress::{Phase, Reporter};
use super::record::{self, ChecksumRecord, Digest, FileRecord, ImageRecord};
use super::shared::SharedFiles;
use crate::desired::{ChecksumAlgorithm, ChecksumSpec, ImageSpec, Source};

/// Checksum files, signatures and key files larger than this are refused.
const SMALL_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct EnsureOptions {
    /// Check the publisher again even for a verified image, and fetch the
    /// keys again.
    pub refresh: bool,
    /// Which files defined domains use; `None` when unknown, in which case
    /// a superseded image is always kept.
    pub domain_files: Option<DomainFiles>,
    /// What the image jobs of this run share: one per run, for every job.
    pub shared: Arc<SharedFiles>,
}

/// Files that defined domains' disks use (directly or through a backing
/// chain), each with the domains that use it.
pub type DomainFiles = BTreeMap<PathBuf, Vec<String>>;

/// How an image came to be ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded earlier; no request was made.
    Cached,
    /// Already there and still what the publisher lists.
    Confirmed,
    /// A file found at the image's path (placed by hand) was verified.
    Adopted,
    /// Downloaded now (`resumed_from` bytes came from an earlier attempt).
    Downloaded { resumed_from: u64 },
    /// The publisher has a new image: it was downloaded beside the old one.
    Updated {
        resumed_from: u64,
        previous: String,
        previous_fate: PreviousFate,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousFate {
    /// Kept: these domains use it.
    KeptInUse(Vec<String>),
    /// Kept: lvlab could not ask libvirt which domains use it.
    KeptUnknown,
    Removed,
}

/// An image ready in the cache.
#[derive(Debug, Clone)]
pub struct EnsuredImage {
    pub key: String,
    /// The file the image key means now.
    pub path: PathBuf,
    pub file: FileRecord,
    pub outcome: Outcome,
}

/// The file `spec` means in `cache_dir` now (see [`record::current_path`]).
pub fn current_path(cache_dir: &Path, spec: &ImageSpec) -> PathBuf {
    record::current_path(cache_dir, spec, record::load_for(cache_dir, spec).as_ref())
}

/// Makes `cache_dir` hold `spec`'s image, verified as its manifest entry
/// asks (or recorded as unverified when it has no checksum).
pub fn ensure_image(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    cache_dir: &Path,
    options: &EnsureOptions,
    reporter: &dyn Reporter,
) -> Result<EnsuredImage, ImageError> {
    let key = spec.key.as_str();
    crate::storage::ensure_dir(cache_dir).map_err(|source| ImageError::Storage {
        key: key.to_string(),
        source,
    })?;
    let record = record::load_for(cache_dir, spec);

    if let Some(record) = &record {
        if let Some(file) = trusted(record, spec, cache_dir, options.refresh) {
            return Ok(EnsuredImage {
                key: key.to_string(),
                path: cache_dir.join(&record.current),
                file: file.clone(),
                outcome: Outcome::Cached,
            });
        }
    }
    match &spec.checksum {
        None => ensure_unverified(fetcher, spec, cache_dir, record, reporter),
        Some(checksum) => {
            let listing = check_listing(fetcher, spec, checksum, cache_dir, options, reporter)?;
            download_verified(fetcher, spec, cache_dir, record, listing, options, reporter)
        }
    }
}

/// The checksum and signature steps: fetches the checksum file, checks its
/// signature when one is configured, keeps a copy in the cache, and finds
/// the image's digest in it.
fn check_listing(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    checksum: &ChecksumSpec,
    cache_dir: &Path,
    options: &EnsureOptions,
    reporter: &dyn Reporter,
) -> Result<VerifiedListing, ImageError> {
    let key = spec.key.as_str();
    reporter.on_phase(key, Phase::Checksums);
    let fetched = fetch_checksums(fetcher, &options.shared, spec, checksum)?;
    let (listing, signature) = match &spec.signature {
        Some(sig) => {
            reporter.on_phase(key, Phase::Signature);
            let signed = verify_signature(fetcher, spec, sig, &fetched, cache_dir, options)?;
            (signed.listing, Some(signed.record))
        }
        None => (String::from_utf8_lossy(&fetched).into_owned(), None),
    };
    let expected =
        checksums::find(&listing, &spec.published_name, checksum.algorithm).map_err(|source| {
            ImageError::Listing {
                key: key.to_string(),
                checksum_url: checksum.source.to_string(),
                source,
            }
        })?;
    let checksum_file = options
        .shared
        .file_name(cache_dir, &checksum.file_name, &checksum.source);
    keep_copy(spec, &cache_dir.join(&checksum_file), &fetched)?;
    Ok(VerifiedListing {
        expected: Digest {
            algorithm: checksum.algorithm,
            hex: expected,
        },
        checksum: ChecksumRecord {
            url: checksum.source.to_string(),
            file: checksum_file,
            sha256: hash::sha256_hex(&fetched),
        },
        signature,
    })
}

/// The record's current file, when it can be used without any request.
fn trusted<'r>(
    record: &'r ImageRecord,
    spec: &ImageSpec,
    dir: &Path,
    refresh: bool,
) -> Option<&'r FileRecord> {
    let file = record.current_file()?;
    let on_disk = std::fs::metadata(dir.join(&record.current)).ok()?;
    if on_disk.len() != file.size {
        tracing::warn!(
            "{}: size {} differs from the recorded {}; verifying again",
            dir.join(&record.current).display(),
            on_disk.len(),
            file.size
        );
        return None;
    }
    let Some(checksum) = &spec.checksum else {
        // Nothing to compare an unverified image with, refresh or not.
        return Some(file);
    };
    if refresh {
        return None;
    }
    let same_checksum = file.verified
        && file.checksum.as_ref().map(|c| c.url.as_str()) == Some(&checksum.source.to_string())
        && file.digest.as_ref().map(|d| d.algorithm) == Some(checksum.algorithm);
    let same_signature = match (&spec.signature, &file.signature) {
        (None, _) => true,
        (Some(sig), Some(rec)) => rec.keys == sig.keys.to_string(),
        (Some(_), None) => false,
    };
    (same_checksum && same_signature).then_some(file)
}

fn ensure_unverified(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    dir: &Path,
    record: Option<ImageRecord>,
    reporter: &dyn Reporter,
) -> Result<EnsuredImage, ImageError> {
    let key = &spec.key;
    let canonical = dir.join(&spec.file_name);
    let entry = |size| FileRecord {
        size,
        verified: false,
        digest: None,
        checksum: None,
        signature: None,
        recorded_at: record::now_rfc3339(),
    };
    let (target, outcome, file) = match std::fs::metadata(&canonical) {
        // A file placed by hand (or an earlier lvlab's): recorded as it is.
        Ok(meta) if record.is_none() => {
            (spec.file_name.clone(), Outcome::Adopted, entry(meta.len()))
        }
        _ => {
            let tag = hash::sha256_hex(spec.source.to_string().as_bytes());
            let target = target_name(dir, spec, &tag[..12]);
            reporter.on_phase(key, Phase::Download);
            let partial = cache::partial_path(dir, &target);
            let target_path = dir.join(&target);
            let downloaded = download(fetcher, spec, &partial, &target_path, None, reporter)?;
            install(&partial, &target_path, key)?;
            (
                target,
                Outcome::Downloaded {
                    resumed_from: downloaded.resumed_from,
                },
                entry(downloaded.size),
            )
        }
    };
    let mut record = record.unwrap_or_else(|| new_record(spec, &target));
    settle(dir, spec, &mut record, target, file, outcome)
}

/// Fetches the checksum file (on every check: a `latest` URL moves on;
/// once per run however many images it lists).
pub fn fetch_checksums(
    fetcher: &Fetcher,
    shared: &SharedFiles,
    spec: &ImageSpec,
    checksum: &ChecksumSpec,
) -> Result<Vec<u8>, ImageError> {
    fetch_required(fetcher, shared, spec, "checksum file", &checksum.source)
}

/// A small file that must exist, fetched once per run: its absence is an
/// error naming `what`.
fn fetch_required(
    fetcher: &Fetcher,
    shared: &SharedFiles,
    spec: &ImageSpec,
    what: &'static str,
    source: &Source,
) -> Result<Vec<u8>, ImageError> {
    let fail = |source| ImageError::Fetch {
        key: spec.key.clone(),
        what,
        source,
    };
    match shared
        .fetch_small(fetcher, source, SMALL_LIMIT)
        .map_err(fail)?
    {
        Small::Found(bytes) => Ok(bytes),
        Small::NotFound => Err(fail(not_found(source))),
    }
}

fn not_found(source: &Source) -> super::fetch::FetchError {
    match source {
        Source::Http(url) => super::fetch::FetchError::Status {
            url: url.clone(),
            status: 404,
            attempts: 1,
        },
        Source::File(path) => super::fetch::FetchError::Read {
            path: path.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        },
    }
}

/// The name a new download goes to: the image's own file name, or a name
/// tagged with `tag` when that is taken (the old file may still be in use).
fn target_name(dir: &Path, spec: &ImageSpec, tag: &str) -> String {
    if dir.join(&spec.file_name).exists() {
        cache::versioned_name(&spec.file_name, tag)
    } else {
        spec.file_name.clone()
    }
}

/// Downloads the image into `partial`, hashing it with `algorithm`; a
/// failure names `target` as the place for a manual download.
fn download(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    partial: &Path,
    target: &Path,
    algorithm: Option<ChecksumAlgorithm>,
    reporter: &dyn Reporter,
) -> Result<Downloaded, ImageError> {
    fetcher
        .download(&spec.source, partial, algorithm, &spec.key, reporter)
        .map_err(|source| ImageError::Download {
            key: spec.key.clone(),
            source,
            manual_path: target.to_path_buf(),
        })
}

/// Keeps a verified small file (checksum file, signature, keys) in the cache.
fn keep_copy(spec: &ImageSpec, path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    crate::storage::write_atomically(path, bytes, record::FILE_MODE).map_err(|source| {
        ImageError::Io {
            key: spec.key.clone(),
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The atomic step: a complete, checked `.partial` becomes the image.
fn install(partial: &Path, target: &Path, key: &str) -> Result<(), ImageError> {
    std::fs::rename(partial, target).map_err(|source| ImageError::Io {
        key: key.to_string(),
        path: target.to_path_buf(),
        source,
    })
}

fn new_record(spec: &ImageSpec, current: &str) -> ImageRecord {
    ImageRecord {
        format: record::FORMAT,
        source: spec.source.to_string(),
        current: current.to_string(),
        files: BTreeMap::new(),
    }
}

/// Records `name` as the file the image key means now, and says so.
fn settle(
    dir: &Path,
    spec: &ImageSpec,
    record: &mut ImageRecord,
    name: String,
    file: FileRecord,
    outcome: Outcome,
) -> Result<EnsuredImage, ImageError> {
    record.current = name.clone();
    record.files.insert(name.clone(), file.clone());
    save(dir, spec, record)?;
    Ok(EnsuredImage {
        key: spec.key.clone(),
        path: dir.join(name),
        file,
        outcome,
    })
}

fn save(dir: &Path, spec: &ImageSpec, record: &ImageRecord) -> Result<(), ImageError> {
    record::save(dir, &spec.file_name, record).map_err(|source| ImageError::Io {
        key: spec.key.clone(),
        path: record::path(dir, &spec.file_name),
        source,
    })
}
