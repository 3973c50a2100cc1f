//! The image actions the plan/apply engine schedules and `lvlab init`
//! calls: make sure an image is in a cache directory, downloaded and
//! verified ([`ensure_image`]), built from finer steps: fetch the checksum
//! file ([`fetch_checksums`]), check its signature ([`verify_signature`]),
//! download and check the image ([`download_verified`]).
//!
//! Rules: a verified image is immutable and, once recorded, needs no
//! request; a file that fails verification never stays at the image's
//! path (it becomes `<file>.rejected`); a newer published image goes beside
//! the old one, which is removed only when no defined domain uses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cache;
use super::checksums::{self, algorithm_name};
use super::error::{ImageError, Mismatch};
use super::fetch::{Fetcher, Small};
use super::hash;
use super::progress::{Phase, Reporter};
use super::record::{self, ChecksumRecord, Digest, FileRecord, ImageRecord, SignatureRecord};
use super::signature::Keyring;
use crate::desired::{ChecksumSpec, ImageSpec, SignatureSpec, Source};

/// Checksum files, signatures and key files larger than this are refused.
const SMALL_LIMIT: u64 = 16 * 1024 * 1024;
/// Suffixes tried for a detached signature, in order.
pub const SIGNATURE_SUFFIXES: [&str; 4] = [".gpg", ".sig", ".sign", ".asc"];

#[derive(Debug, Clone, Default)]
pub struct EnsureOptions {
    /// Check the publisher again even for a verified image, and fetch the
    /// keys again.
    pub refresh: bool,
    /// Which files defined domains use; `None` when unknown, in which case
    /// a superseded image is always kept.
    pub domain_files: Option<DomainFiles>,
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

/// The file `spec` means in `cache_dir` now: the record's current file, or
/// `<cache_dir>/<file_name>` before any record exists.
pub fn current_path(cache_dir: &Path, spec: &ImageSpec) -> PathBuf {
    record::load(cache_dir, &spec.file_name)
        .filter(|r| r.source == spec.source.to_string())
        .map(|r| cache_dir.join(r.current))
        .unwrap_or_else(|| cache_dir.join(&spec.file_name))
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
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Io {
            key: key.to_string(),
            path,
            source,
        }
    };
    std::fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let source = spec.source.to_string();
    let record = record::load(cache_dir, &spec.file_name).filter(|r| r.source == source);

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
            reporter.on_phase(key, Phase::Checksums);
            let fetched = fetch_checksums(fetcher, spec, checksum)?;
            let (listing, signature) = match &spec.signature {
                Some(sig) => {
                    reporter.on_phase(key, Phase::Signature);
                    let signed =
                        verify_signature(fetcher, spec, sig, &fetched, cache_dir, options.refresh)?;
                    (signed.listing, Some(signed.record))
                }
                None => (String::from_utf8_lossy(&fetched).into_owned(), None),
            };
            let expected = checksums::find(&listing, &spec.file_name, checksum.algorithm).map_err(
                |source| ImageError::Listing {
                    key: key.to_string(),
                    checksum_url: checksum.source.to_string(),
                    source,
                },
            )?;
            let checksum_path = cache_dir.join(&checksum.file_name);
            record::write_atomically(&checksum_path, &fetched).map_err(io_err(&checksum_path))?;
            let verified = VerifiedListing {
                expected: Digest {
                    algorithm: checksum.algorithm,
                    hex: expected,
                },
                checksum: ChecksumRecord {
                    url: checksum.source.to_string(),
                    file: checksum.file_name.clone(),
                    sha256: hash::sha256_hex(&fetched),
                },
                signature,
            };
            download_verified(
                fetcher, spec, cache_dir, record, verified, options, reporter,
            )
        }
    }
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
            let target = if canonical.exists() {
                cache::versioned_name(
                    &spec.file_name,
                    &hash::sha256_hex(spec.source.to_string().as_bytes())[..12],
                )
            } else {
                spec.file_name.clone()
            };
            reporter.on_phase(key, Phase::Download);
            let partial = cache::partial_path(dir, &target);
            let downloaded = fetcher
                .download(&spec.source, &partial, None, key, reporter)
                .map_err(|source| ImageError::Download {
                    key: key.clone(),
                    source,
                    manual_path: dir.join(&target),
                })?;
            install(&partial, &dir.join(&target), key)?;
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
    record.current = target.clone();
    record.files.insert(target.clone(), file.clone());
    save(dir, spec, &record)?;
    Ok(EnsuredImage {
        key: key.clone(),
        path: dir.join(target),
        file,
        outcome,
    })
}

/// Fetches the checksum file (always: a `latest` URL moves on).
pub fn fetch_checksums(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    checksum: &ChecksumSpec,
) -> Result<Vec<u8>, ImageError> {
    let fail = |source| ImageError::Fetch {
        key: spec.key.clone(),
        what: "checksum file",
        source,
    };
    match fetcher
        .fetch_small(&checksum.source, SMALL_LIMIT)
        .map_err(fail)?
    {
        Small::Found(bytes) => Ok(bytes),
        Small::NotFound => Err(fail(not_found(&checksum.source))),
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

/// A checksum file whose signature verified.
pub struct SignedListing {
    /// The text the signature covers (for a clearsigned file, only that).
    pub listing: String,
    pub record: SignatureRecord,
}

/// Checks the checksum file's signature: clearsigned, or detached (the
/// configured `checksum_sig_url`, else `<checksum_url>` + `.gpg`, `.sig`,
/// `.sign`, `.asc`).
pub fn verify_signature(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    sig: &SignatureSpec,
    checksum_bytes: &[u8],
    dir: &Path,
    refresh: bool,
) -> Result<SignedListing, ImageError> {
    let key = &spec.key;
    let checksum = spec
        .checksum
        .as_ref()
        .expect("a signature is only configured with a checksum");
    let checksum_url = checksum.source.to_string();
    let (keys_bytes, keys_file) = fetch_keys(fetcher, spec, sig, dir, refresh)?;
    let keys_origin = sig.keys.to_string();
    let sig_err = |source| ImageError::Signature {
        key: key.clone(),
        checksum_url: checksum_url.clone(),
        keys: keys_origin.clone(),
        source: Box::new(source),
    };
    let keyring = Keyring::parse(&keys_bytes, &keys_origin).map_err(sig_err)?;
    let text = String::from_utf8_lossy(checksum_bytes);
    if sig.detached.is_none() && checksums::is_clearsigned(&text) {
        let (listing, good) = keyring
            .verify_clearsigned(&text, &checksum_url)
            .map_err(sig_err)?;
        return Ok(SignedListing {
            listing,
            record: SignatureRecord {
                signature: "clearsigned".into(),
                signature_file: None,
                keys: keys_origin.clone(),
                keys_file,
                key_fingerprint: good.key_fingerprint,
            },
        });
    }
    let candidates: Vec<Source> = match &sig.detached {
        Some(source) => vec![source.clone()],
        None => SIGNATURE_SUFFIXES
            .iter()
            .map(|suffix| with_suffix(&checksum.source, suffix))
            .collect(),
    };
    let mut found = None;
    for candidate in &candidates {
        let fetched = fetcher
            .fetch_small(candidate, SMALL_LIMIT)
            .map_err(|source| ImageError::Fetch {
                key: key.clone(),
                what: "signature",
                source,
            })?;
        if let Small::Found(bytes) = fetched {
            found = Some((candidate, bytes));
            break;
        }
    }
    let Some((sig_source, sig_bytes)) = found else {
        return Err(ImageError::NotSigned {
            key: key.clone(),
            checksum_url,
            tried: candidates.iter().map(ToString::to_string).collect(),
        });
    };
    let good = keyring
        .verify_detached(checksum_bytes, &sig_bytes, &sig_source.to_string())
        .map_err(sig_err)?;
    let sig_name = format!(
        "{}.{}",
        spec.file_name,
        crate::manifest::cache_file_name(&sig_source.to_string())
    );
    let sig_path = dir.join(&sig_name);
    record::write_atomically(&sig_path, &sig_bytes).map_err(|source| ImageError::Io {
        key: key.clone(),
        path: sig_path,
        source,
    })?;
    Ok(SignedListing {
        listing: text.into_owned(),
        record: SignatureRecord {
            signature: sig_source.to_string(),
            signature_file: Some(sig_name),
            keys: keys_origin,
            keys_file,
            key_fingerprint: good.key_fingerprint,
        },
    })
}

/// The signing keys: read from a local file each time; fetched over HTTP
/// once and cached (again with `--refresh`).
fn fetch_keys(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    sig: &SignatureSpec,
    dir: &Path,
    refresh: bool,
) -> Result<(Vec<u8>, Option<String>), ImageError> {
    let fail = |source| ImageError::Fetch {
        key: spec.key.clone(),
        what: "signing keys",
        source,
    };
    let cached = dir.join(&sig.keys_file_name);
    let http = matches!(sig.keys, Source::Http(_));
    if http && !refresh {
        if let Ok(bytes) = std::fs::read(&cached) {
            return Ok((bytes, Some(sig.keys_file_name.clone())));
        }
    }
    let bytes = match fetcher.fetch_small(&sig.keys, SMALL_LIMIT).map_err(fail)? {
        Small::Found(bytes) => bytes,
        Small::NotFound => return Err(fail(not_found(&sig.keys))),
    };
    if !http {
        return Ok((bytes, None));
    }
    record::write_atomically(&cached, &bytes).map_err(|source| ImageError::Io {
        key: spec.key.clone(),
        path: cached.clone(),
        source,
    })?;
    Ok((bytes, Some(sig.keys_file_name.clone())))
}

fn with_suffix(source: &Source, suffix: &str) -> Source {
    match source {
        Source::Http(url) => Source::Http(format!("{url}{suffix}")),
        Source::File(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            Source::File(PathBuf::from(name))
        }
    }
}

/// What a verified checksum file says the image must be.
pub struct VerifiedListing {
    pub expected: Digest,
    pub checksum: ChecksumRecord,
    pub signature: Option<SignatureRecord>,
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
    let key = &spec.key;
    let expected = &listing.expected;
    let mut record = record.unwrap_or_else(|| new_record(spec, &spec.file_name));
    let verified_entry = |size| FileRecord {
        size,
        verified: true,
        digest: Some(expected.clone()),
        checksum: Some(listing.checksum.clone()),
        signature: listing.signature.clone(),
        recorded_at: record::now_rfc3339(),
    };
    // A recorded file that already is the published image.
    let known = record
        .files
        .iter()
        .find(|(name, f)| {
            f.digest.as_ref() == Some(expected)
                && std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == f.size)
        })
        .map(|(name, f)| (name.clone(), f.size));
    if let Some((name, size)) = known {
        let file = verified_entry(size);
        record.current = name.clone();
        record.files.insert(name.clone(), file.clone());
        save(dir, spec, &record)?;
        return Ok(EnsuredImage {
            key: key.clone(),
            path: dir.join(name),
            file,
            outcome: Outcome::Confirmed,
        });
    }
    let canonical = dir.join(&spec.file_name);
    let unrecorded_at_canonical = canonical.exists() && !record.files.contains_key(&spec.file_name);
    if unrecorded_at_canonical {
        // Placed by hand, or recorded by nothing: it must match to stay.
        reporter.on_phase(key, Phase::Hashing);
        let size = std::fs::metadata(&canonical).map(|m| m.len()).ok();
        reporter.on_transfer(key, &canonical.display().to_string(), 0, size);
        let (actual, size) = hash::hash_file(&canonical, expected.algorithm, None, &mut |n| {
            reporter.on_progress(key, n)
        })
        .map_err(|source| ImageError::Io {
            key: key.clone(),
            path: canonical.clone(),
            source,
        })?;
        if actual != expected.hex {
            let kept = cache::rejected_path(dir, &spec.file_name);
            std::fs::rename(&canonical, &kept).map_err(|source| ImageError::Io {
                key: key.clone(),
                path: canonical.clone(),
                source,
            })?;
            return Err(mismatch(spec, expected, actual, kept));
        }
        let file = verified_entry(size);
        record.current = spec.file_name.clone();
        record.files.insert(spec.file_name.clone(), file.clone());
        save(dir, spec, &record)?;
        return Ok(EnsuredImage {
            key: key.clone(),
            path: canonical,
            file,
            outcome: Outcome::Adopted,
        });
    }
    let target = if canonical.exists() {
        cache::versioned_name(&spec.file_name, &expected.hex[..12])
    } else {
        spec.file_name.clone()
    };
    let target_path = dir.join(&target);
    let partial = cache::partial_path(dir, &target);
    reporter.on_phase(key, Phase::Download);
    let mut downloaded = download(fetcher, spec, &partial, &target_path, expected, reporter)?;
    if downloaded.digest.as_deref() != Some(&expected.hex) && downloaded.resumed_from > 0 {
        // The kept .partial may have been of an older published file.
        tracing::info!("{key}: resumed download does not match; downloading it whole");
        let _ = std::fs::remove_file(&partial);
        downloaded = download(fetcher, spec, &partial, &target_path, expected, reporter)?;
    }
    let actual = downloaded.digest.clone().unwrap_or_default();
    if actual != expected.hex {
        let kept = cache::rejected_path(dir, &target);
        std::fs::rename(&partial, &kept).map_err(|source| ImageError::Io {
            key: key.clone(),
            path: partial.clone(),
            source,
        })?;
        return Err(mismatch(spec, expected, actual, kept));
    }
    install(&partial, &target_path, key)?;
    let file = verified_entry(downloaded.size);
    let previous = (record.files.contains_key(&record.current) && record.current != target)
        .then(|| record.current.clone());
    record.current = target.clone();
    record.files.insert(target.clone(), file.clone());
    let outcome = match previous {
        None => Outcome::Downloaded {
            resumed_from: downloaded.resumed_from,
        },
        Some(previous) => {
            let fate = retire(dir, &previous, &mut record, options);
            Outcome::Updated {
                resumed_from: downloaded.resumed_from,
                previous,
                previous_fate: fate,
            }
        }
    };
    save(dir, spec, &record)?;
    Ok(EnsuredImage {
        key: key.clone(),
        path: target_path,
        file,
        outcome,
    })
}

fn download(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    partial: &Path,
    target: &Path,
    expected: &Digest,
    reporter: &dyn Reporter,
) -> Result<super::fetch::Downloaded, ImageError> {
    fetcher
        .download(
            &spec.source,
            partial,
            Some(expected.algorithm),
            &spec.key,
            reporter,
        )
        .map_err(|source| ImageError::Download {
            key: spec.key.clone(),
            source,
            manual_path: target.to_path_buf(),
        })
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

fn save(dir: &Path, spec: &ImageSpec, record: &ImageRecord) -> Result<(), ImageError> {
    record::save(dir, &spec.file_name, record).map_err(|source| ImageError::Io {
        key: spec.key.clone(),
        path: record::path(dir, &spec.file_name),
        source,
    })
}
