//! Where things live in an image cache directory, and what each file there
//! is. Naming only; the pipeline decides when files appear and go.
//!
//! For an image file `F` (the URL's last segment):
//! - `F`: the image, immutable once verified;
//! - `F.partial`: a download in progress (resumed by the next `init`);
//! - `F.rejected`: a download that failed its checksum, kept for inspection;
//! - `F.lvlab.json`: the verification record ([`super::record`]);
//! - `F.<checksum file>` and `F.<signature file>`: what it was verified with;
//! - `<stem>-<digest12>.<ext>`: a newer published version, downloaded beside
//!   `F` by `init --refresh` (the record says which file is current);
//! - the key file, under its URL's last segment, shared by images;
//! - `<name>.<16 hex>.tmp`: a file being written
//!   ([`crate::storage::write_atomically`]).
//!
//! A checksum file, signature or key file whose layout name another source
//! already holds gets `<stem>-<sha12 of its URL>.<ext>` instead
//! ([`super::shared::SharedFiles::file_name`]); the record names the file
//! either way.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::record::{self, ImageRecord};
pub use crate::manifest::versioned_name;
pub use crate::storage::PARTIAL;

pub const REJECTED: &str = ".rejected";

/// The cache used without a manifest: `/var/lib/libvirt/images/lvlab/
/// cloud-images` as root (the manifest's default base), otherwise
/// `$XDG_DATA_HOME/lvlab/cloud-images` (`~/.local/share/lvlab/cloud-images`).
pub fn default_cache_dir() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/libvirt/images/lvlab/cloud-images");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("lvlab").join("cloud-images")
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

pub fn with_suffix(dir: &Path, file: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{file}{suffix}"))
}

pub fn partial_path(dir: &Path, file: &str) -> PathBuf {
    with_suffix(dir, file, PARTIAL)
}

pub fn rejected_path(dir: &Path, file: &str) -> PathBuf {
    with_suffix(dir, file, REJECTED)
}

/// What a file in a cache directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheFileKind {
    /// An image the record named `image_file` describes.
    Image { image_file: String, current: bool },
    /// A verification record.
    Record { image_file: String },
    /// A checksum file, detached signature or key file a record names.
    Verification { image_file: String },
    /// An unfinished download.
    Partial,
    /// A download that failed verification.
    Rejected,
    /// A file being written, or left by a write that was cut short.
    Temporary,
    /// Nothing lvlab recorded: lvlab leaves it alone.
    Foreign,
}

#[derive(Debug, Clone)]
pub struct CacheFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub kind: CacheFileKind,
}

/// Every file in `dir` (none when it does not exist), and the records found.
pub fn scan(dir: &Path) -> io::Result<(Vec<CacheFile>, BTreeMap<String, ImageRecord>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(err) => return Err(err),
    };
    let mut names = BTreeMap::new();
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            names.insert(name.to_string(), meta.len());
        }
    }
    let records = records_among(dir, names.keys());
    let mut owner: BTreeMap<String, CacheFileKind> = BTreeMap::new();
    for (image_file, rec) in &records {
        owner.insert(
            format!("{image_file}{}", record::SUFFIX),
            CacheFileKind::Record {
                image_file: image_file.clone(),
            },
        );
        for (file, f) in &rec.files {
            owner.insert(
                file.clone(),
                CacheFileKind::Image {
                    image_file: image_file.clone(),
                    current: *file == rec.current,
                },
            );
            let extra = [
                f.checksum.as_ref().map(|c| c.file.clone()),
                f.signature.as_ref().and_then(|s| s.signature_file.clone()),
                f.signature.as_ref().and_then(|s| s.keys_file.clone()),
            ];
            for name in extra.into_iter().flatten() {
                owner.entry(name).or_insert(CacheFileKind::Verification {
                    image_file: image_file.clone(),
                });
            }
        }
    }
    let files = names
        .iter()
        .map(|(name, size)| {
            let kind = owner.get(name).cloned().unwrap_or_else(|| {
                if name.ends_with(PARTIAL) {
                    CacheFileKind::Partial
                } else if name.ends_with(REJECTED) {
                    CacheFileKind::Rejected
                } else if crate::storage::is_temporary(name) {
                    CacheFileKind::Temporary
                } else {
                    CacheFileKind::Foreign
                }
            });
            CacheFile {
                name: name.clone(),
                path: dir.join(name),
                size: *size,
                kind,
            }
        })
        .collect();
    Ok((files, records))
}

/// The records of `dir`, by image file, among the file `names` found there.
fn records_among<'n>(
    dir: &Path,
    names: impl Iterator<Item = &'n String>,
) -> BTreeMap<String, ImageRecord> {
    names
        .filter_map(|name| name.strip_suffix(record::SUFFIX))
        .filter_map(|image_file| Some((image_file.to_string(), record::load(dir, image_file)?)))
        .collect()
}

/// The URL (or path) the records of `dir` say the checksum file, signature
/// or key file `name` was fetched from, when a record names it.
pub fn recorded_source(dir: &Path, name: &str) -> Option<String> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    let records = records_among(dir, names.iter());
    records
        .values()
        .flat_map(|record| record.files.values())
        .find_map(|file| {
            let checksum = file.checksum.as_ref();
            let signature = file.signature.as_ref();
            let sources = [
                checksum.map(|c| (Some(&c.file), &c.url)),
                signature.map(|s| (s.signature_file.as_ref(), &s.signature)),
                signature.map(|s| (s.keys_file.as_ref(), &s.keys)),
            ];
            sources
                .into_iter()
                .flatten()
                .find(|(file, _)| file.is_some_and(|f| f == name))
                .map(|(_, source)| source.clone())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_lvlabs_and_recorded_sources_are_found() {
        use crate::desired::ChecksumAlgorithm;
        use record::{ChecksumRecord, FileRecord, SignatureRecord};
        let dir = tempfile::tempdir().unwrap();
        let keys_url = "http://b.invalid/keys/signer.asc";
        let record = ImageRecord {
            format: record::FORMAT,
            source: "http://a.invalid/x.qcow2".into(),
            current: "x.qcow2".into(),
            files: BTreeMap::from([(
                "x.qcow2".into(),
                FileRecord {
                    size: 1,
                    verified: true,
                    digest: Some(record::Digest {
                        algorithm: ChecksumAlgorithm::Sha256,
                        hex: "00".into(),
                    }),
                    checksum: Some(ChecksumRecord {
                        url: "http://a.invalid/SUMS".into(),
                        file: "x.qcow2.SUMS".into(),
                        sha256: "00".into(),
                    }),
                    signature: Some(SignatureRecord {
                        signature: "clearsigned".into(),
                        signature_file: None,
                        keys: keys_url.into(),
                        keys_file: Some("signer-0123456789ab.asc".into()),
                        key_fingerprint: "AB".into(),
                    }),
                    recorded_at: record::now_rfc3339(),
                },
            )]),
        };
        record::save(dir.path(), "x.qcow2", &record).unwrap();
        let found = |name| recorded_source(dir.path(), name);
        assert_eq!(found("signer-0123456789ab.asc").as_deref(), Some(keys_url));
        assert_eq!(
            found("x.qcow2.SUMS").as_deref(),
            Some("http://a.invalid/SUMS")
        );
        assert_eq!(found("signer.asc"), None);

        let temporary = "x.qcow2.lvlab.json.0123456789abcdef.tmp";
        std::fs::write(dir.path().join(temporary), b"{").unwrap();
        let (files, _) = scan(dir.path()).unwrap();
        let kind = |name: &str| {
            files
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.kind.clone())
        };
        assert_eq!(kind(temporary), Some(CacheFileKind::Temporary));
    }
}
