//! The verification record kept next to each cached image,
//! `<image file>.lvlab.json`: which files the image's name has stood for,
//! which one it means now, and for each what was verified, against which
//! checksum file and key, and when. A later `init` trusts the record and
//! makes no request; `--refresh` checks it against the publisher again.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::desired::ChecksumAlgorithm;

/// Bumped when the layout changes incompatibly; other versions are
/// re-verified rather than trusted.
pub const FORMAT: u32 = 1;
/// Suffix of record files.
pub const SUFFIX: &str = ".lvlab.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub format: u32,
    /// The URL or path the image is fetched from.
    pub source: String,
    /// The file (in the same directory) the image means now.
    pub current: String,
    /// Every file this record owns, by name.
    pub files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub size: u64,
    /// True when a checksum (and, when configured, a signature) was checked.
    pub verified: bool,
    /// The file's digest; absent for an unverified image, which is not hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureRecord>,
    /// RFC 3339, UTC.
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub algorithm: ChecksumAlgorithm,
    pub hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumRecord {
    pub url: String,
    /// The cached copy, in the same directory.
    pub file: String,
    /// SHA-256 of the checksum file as verified.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureRecord {
    /// `clearsigned`, or the detached signature's URL.
    pub signature: String,
    /// The cached copy of a detached signature, in the same directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_file: Option<String>,
    /// Where the keys came from.
    pub keys: String,
    /// The cached copy of keys fetched over HTTP, in the same directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<String>,
    /// Fingerprint of the primary key whose key (or subkey) made the signature.
    pub key_fingerprint: String,
}

impl ImageRecord {
    pub fn current_file(&self) -> Option<&FileRecord> {
        self.files.get(&self.current)
    }
}

/// `sha512:<hex>` of the image `machine` boots from, when it was verified.
pub fn verified_digest(
    machine: &crate::desired::MachineSpec,
    image: &crate::desired::ImageSpec,
) -> Option<String> {
    let record = load(machine.image_path.parent()?, &image.file_name)?;
    let digest = record.current_file()?.digest.clone()?;
    Some(format!(
        "{}:{}",
        super::checksums::algorithm_name(digest.algorithm),
        digest.hex
    ))
}

/// `<image file>.lvlab.json` in `dir`.
pub fn path(dir: &Path, image_file: &str) -> PathBuf {
    dir.join(format!("{image_file}{SUFFIX}"))
}

/// The record of `spec`'s image in `dir`, when it is about the same source
/// (a record of another URL under the same file name says nothing).
pub fn load_for(dir: &Path, spec: &crate::desired::ImageSpec) -> Option<ImageRecord> {
    load(dir, &spec.file_name).filter(|r| r.source == spec.source.to_string())
}

/// The file `spec` means in `dir`, given its record: the record's current
/// file, or `<dir>/<file_name>` before any record exists.
pub fn current_path(
    dir: &Path,
    spec: &crate::desired::ImageSpec,
    record: Option<&ImageRecord>,
) -> PathBuf {
    match record {
        Some(record) => dir.join(&record.current),
        None => dir.join(&spec.file_name),
    }
}

/// The record for `image_file`, if one exists and is readable. A damaged
/// record, or one of another format, counts as none: the image is then
/// verified again instead of trusted.
pub fn load(dir: &Path, image_file: &str) -> Option<ImageRecord> {
    let path = path(dir, image_file);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
        Err(err) => {
            tracing::warn!("cannot read {}: {err}; verifying again", path.display());
            return None;
        }
    };
    match serde_json::from_slice::<ImageRecord>(&text) {
        Ok(record) if record.format == FORMAT => Some(record),
        Ok(record) => {
            tracing::warn!(
                "{}: record format {} is not {FORMAT}; verifying again",
                path.display(),
                record.format
            );
            None
        }
        Err(err) => {
            tracing::warn!(
                "{}: damaged record ({err}); verifying again",
                path.display()
            );
            None
        }
    }
}

/// Writes the record atomically (see [`crate::storage::write_atomically`]).
pub fn save(dir: &Path, image_file: &str, record: &ImageRecord) -> io::Result<()> {
    let path = path(dir, image_file);
    let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    crate::storage::write_atomically(&path, &json, FILE_MODE)
}

/// Mode of the files the cache holds: readable by the QEMU of
/// `qemu:///system`, which runs as another user.
pub const FILE_MODE: u32 = 0o644;

/// Now as RFC 3339 in UTC, to the second.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29T12:34:56Z"
        );
    }

    #[test]
    fn round_trip_and_damaged_records() {
        let dir = tempfile::tempdir().unwrap();
        let record = ImageRecord {
            format: FORMAT,
            source: "https://example.invalid/x.qcow2".into(),
            current: "x.qcow2".into(),
            files: BTreeMap::from([(
                "x.qcow2".into(),
                FileRecord {
                    size: 3,
                    verified: true,
                    digest: Some(Digest {
                        algorithm: ChecksumAlgorithm::Sha256,
                        hex: "ab".into(),
                    }),
                    checksum: None,
                    signature: None,
                    recorded_at: now_rfc3339(),
                },
            )]),
        };
        save(dir.path(), "x.qcow2", &record).unwrap();
        assert_eq!(load(dir.path(), "x.qcow2"), Some(record));
        std::fs::write(path(dir.path(), "x.qcow2"), b"{ not json").unwrap();
        assert_eq!(load(dir.path(), "x.qcow2"), None);
        assert_eq!(load(dir.path(), "y.qcow2"), None);
    }
}
