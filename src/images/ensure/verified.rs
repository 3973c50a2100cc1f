//! The download step: bring the image a verified checksum file describes
//! into the cache (a recorded copy, a file placed by hand, or a download)
//! and retire the file it supersedes.

use std::path::{Path, PathBuf};

use super::{
    download, install, new_record, settle, target_name, EnsureOptions, EnsuredImage, Outcome,
    PreviousFate,
};
use crate::desired::ImageSpec;
use crate::images::cache;
use crate::images::checksums::algorithm_name;
use crate::images::error::{ImageError, Mismatch};
use crate::images::fetch::{Downloaded, Fetcher};
use crate::images::hash;
use crate::images::progress::{Phase, Reporter};
use crate::images::record::{
    self, ChecksumRecord, Digest, FileRecord, ImageRecord, SignatureRecord,
};

/// What a verified checksum file says the image must be.
pub struct VerifiedListing {
    pub expected: Digest,
    pub checksum: ChecksumRecord,
    pub signature: Option<SignatureRecord>,
}

impl VerifiedListing {
    /// The record of a file of `size` bytes that matched this listing.
    fn file_record(&self, size: u64) -> FileRecord {
        FileRecord {
            size,
            verified: true,
            digest: Some(self.expected.clone()),
            checksum: Some(self.checksum.clone()),
            signature: self.signature.clone(),
            recorded_at: record::now_rfc3339(),
        }
    }
}

/// Brings the image that `listing` describes into the cache: an already
/// recorded file with that digest, a file placed by hand, or a download.
pub fn download_verified(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    dir: &Path,
    record: Option<ImageRecord>,
    listing: VerifiedListing,
    options: &EnsureOptions,
    reporter: &dyn Reporter,
) -> Result<EnsuredImage, ImageError> {
    let mut record = record.unwrap_or_else(|| new_record(spec, &spec.file_name));
    if let Some((name, size)) = recorded_copy(&record, dir, &listing.expected) {
        let file = listing.file_record(size);
        return settle(dir, spec, &mut record, name, file, Outcome::Confirmed);
    }
    let canonical = dir.join(&spec.file_name);
    if canonical.exists() && !record.files.contains_key(&spec.file_name) {
        // Placed by hand, or recorded by nothing: it must match to stay.
        let size = adopt(spec, dir, &listing.expected, reporter)?;
        let file = listing.file_record(size);
        let name = spec.file_name.clone();
        return settle(dir, spec, &mut record, name, file, Outcome::Adopted);
    }
    let target = target_name(dir, spec, &listing.expected.hex[..12]);
    let downloaded = download_checked(fetcher, spec, dir, &target, &listing.expected, reporter)?;
    let file = listing.file_record(downloaded.size);
    let resumed_from = downloaded.resumed_from;
    let previous = (record.files.contains_key(&record.current) && record.current != target)
        .then(|| record.current.clone());
    let outcome = match previous {
        None => Outcome::Downloaded { resumed_from },
        Some(previous) => Outcome::Updated {
            resumed_from,
            previous_fate: retire(dir, &previous, &mut record, options),
            previous,
        },
    };
    settle(dir, spec, &mut record, target, file, outcome)
}

/// A recorded file that already is the published image: (name, size).
fn recorded_copy(record: &ImageRecord, dir: &Path, expected: &Digest) -> Option<(String, u64)> {
    record
        .files
        .iter()
        .find(|(name, f)| {
            f.digest.as_ref() == Some(expected)
                && std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == f.size)
        })
        .map(|(name, f)| (name.clone(), f.size))
}

/// Hashes a file found at the image's path; it stays only if it matches.
/// Returns its size.
fn adopt(
    spec: &ImageSpec,
    dir: &Path,
    expected: &Digest,
    reporter: &dyn Reporter,
) -> Result<u64, ImageError> {
    let key = &spec.key;
    let canonical = dir.join(&spec.file_name);
    let io_err = |source| ImageError::Io {
        key: key.clone(),
        path: canonical.clone(),
        source,
    };
    reporter.on_phase(key, Phase::Hashing);
    let size = std::fs::metadata(&canonical).map(|m| m.len()).ok();
    reporter.on_transfer(key, &canonical.display().to_string(), 0, size);
    let (actual, size) = hash::hash_file(&canonical, expected.algorithm, &mut |n| {
        reporter.on_progress(key, n)
    })
    .map_err(io_err)?;
    if actual != expected.hex {
        let kept = cache::rejected_path(dir, &spec.file_name);
        std::fs::rename(&canonical, &kept).map_err(io_err)?;
        return Err(mismatch(spec, expected, actual, kept));
    }
    Ok(size)
}

/// Downloads the image to `<dir>/<target>` through its `.partial`, which
/// becomes the image only when its digest matches (else `.rejected`).
fn download_checked(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    dir: &Path,
    target: &str,
    expected: &Digest,
    reporter: &dyn Reporter,
) -> Result<Downloaded, ImageError> {
    let key = &spec.key;
    let target_path = dir.join(target);
    let partial = cache::partial_path(dir, target);
    reporter.on_phase(key, Phase::Download);
    let attempt = || {
        let algorithm = Some(expected.algorithm);
        download(fetcher, spec, &partial, &target_path, algorithm, reporter)
    };
    let mut downloaded = attempt()?;
    if downloaded.digest.as_deref() != Some(&expected.hex) && downloaded.resumed_from > 0 {
        // The kept .partial may have been of an older published file.
        tracing::info!("{key}: resumed download does not match; downloading it whole");
        let _ = std::fs::remove_file(&partial);
        downloaded = attempt()?;
    }
    let actual = downloaded.digest.clone().unwrap_or_default();
    if actual != expected.hex {
        let kept = cache::rejected_path(dir, target);
        std::fs::rename(&partial, &kept).map_err(|source| ImageError::Io {
            key: key.clone(),
            path: partial.clone(),
            source,
        })?;
        return Err(mismatch(spec, expected, actual, kept));
    }
    install(&partial, &target_path, key)?;
    Ok(downloaded)
}

/// A superseded image goes unless a defined domain uses it (or lvlab cannot
/// tell).
fn retire(
    dir: &Path,
    previous: &str,
    record: &mut ImageRecord,
    options: &EnsureOptions,
) -> PreviousFate {
    let path = dir.join(previous);
    let Some(domain_files) = &options.domain_files else {
        return PreviousFate::KeptUnknown;
    };
    let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let users = domain_files
        .get(&canonical)
        .or_else(|| domain_files.get(&path));
    if let Some(users) = users {
        return PreviousFate::KeptInUse(users.clone());
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {
            record.files.remove(previous);
            PreviousFate::Removed
        }
        Err(err) => {
            tracing::warn!("cannot remove {}: {err}", path.display());
            PreviousFate::KeptUnknown
        }
    }
}

fn mismatch(spec: &ImageSpec, expected: &Digest, actual: String, kept: PathBuf) -> ImageError {
    ImageError::Mismatch(Box::new(Mismatch {
        key: spec.key.clone(),
        url: spec.source.to_string(),
        algorithm: algorithm_name(expected.algorithm),
        expected: expected.hex.clone(),
        actual,
        kept,
    }))
}
