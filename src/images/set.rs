//! Which images a command works on and where their caches are: a
//! manifest's images (each in the cache of the machines that use it), or,
//! with no manifest, the built-in catalog in the default cache. Decides
//! only from the resolved model; reading the caches is [`ImageSet::scan`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::cache::{self, default_cache_dir, CacheFile};
use super::catalog::CATALOG;
use super::record::ImageRecord;
use crate::desired::{Desired, ImageAddress, ImageSpec};

/// An image in one cache directory.
#[derive(Debug, Clone)]
pub struct CachedImage {
    pub spec: ImageSpec,
    pub cache_dir: PathBuf,
    /// `<environment>/<vm_name>` of each machine that uses it from this cache.
    pub machines: Vec<String>,
}

impl CachedImage {
    /// The image's key and the file it goes to in its cache.
    pub fn address(&self) -> ImageAddress {
        ImageAddress {
            key: self.spec.key.clone(),
            path: self.cache_dir.join(&self.spec.file_name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImageSet {
    /// `None` when the built-in catalog stands in for a manifest.
    pub manifest: Option<PathBuf>,
    pub images: Vec<CachedImage>,
    /// The manifest's libvirt URIs, each once (for the catalog, the one
    /// whose domains may use the default cache).
    pub uris: Vec<String>,
}

/// One cache directory as read: its files and the records among them.
pub struct ScannedDir {
    pub dir: PathBuf,
    pub files: Vec<CacheFile>,
    pub records: Vec<(String, ImageRecord)>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", dir.display())]
pub struct ScanError {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Why [`ImageSet::select`] found nothing to work on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    /// No names and no manifest: the catalog is too much to fetch whole.
    #[error("no Lvlab.yml here: name the catalog images to download")]
    NothingNamed,
    #[error("no image `{name}` {origin}; {choices}")]
    Unknown {
        name: String,
        /// `in <manifest>` or `in the built-in catalog`.
        origin: String,
        /// A did-you-mean, or the known keys.
        choices: String,
    },
}

impl ImageSet {
    /// The manifest's images in the caches [`crate::desired::image_placements`]
    /// puts them in.
    pub fn from_desired(desired: &Desired) -> Self {
        let placements = crate::desired::image_placements(&desired.images, &desired.environments);
        let mut images = Vec::new();
        for (key, by_dir) in placements {
            let spec = &desired.images[key];
            for (dir, machines) in by_dir {
                images.push(CachedImage {
                    spec: spec.clone(),
                    cache_dir: dir,
                    machines,
                });
            }
        }
        Self {
            manifest: Some(desired.manifest_path.clone()),
            images,
            uris: crate::desired::libvirt_uris(&desired.environments),
        }
    }

    /// The built-in catalog in the default cache, with the libvirt whose
    /// domains may use that cache.
    pub fn catalog() -> Self {
        let dir = default_cache_dir();
        Self {
            manifest: None,
            images: CATALOG
                .iter()
                .map(|e| CachedImage {
                    spec: e.to_spec(),
                    cache_dir: dir.clone(),
                    machines: Vec::new(),
                })
                .collect(),
            uris: vec![default_uri().to_string()],
        }
    }

    pub fn cache_dirs(&self) -> BTreeSet<PathBuf> {
        self.images.iter().map(|i| i.cache_dir.clone()).collect()
    }

    /// Every cache directory's files and records, in path order.
    pub fn scan(&self) -> Result<Vec<ScannedDir>, ScanError> {
        let mut out = Vec::new();
        for dir in self.cache_dirs() {
            let (files, records) = cache::scan(&dir).map_err(|source| ScanError {
                dir: dir.clone(),
                source,
            })?;
            out.push(ScannedDir {
                dir,
                files,
                records: records.into_iter().collect(),
            });
        }
        Ok(out)
    }

    /// The images the keys `names` name (in every cache each goes to), or
    /// all of a manifest's when `names` is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&CachedImage>, SelectError> {
        if names.is_empty() {
            if self.manifest.is_none() {
                return Err(SelectError::NothingNamed);
            }
            return Ok(self.images.iter().collect());
        }
        let mut out = Vec::new();
        for name in names {
            let found: Vec<&CachedImage> =
                self.images.iter().filter(|i| i.spec.key == *name).collect();
            if found.is_empty() {
                return Err(self.unknown(name));
            }
            out.extend(found);
        }
        Ok(out)
    }

    fn unknown(&self, name: &str) -> SelectError {
        let mut known: Vec<&str> = self.images.iter().map(|i| i.spec.key.as_str()).collect();
        known.dedup();
        let origin = match &self.manifest {
            Some(path) => format!("in {}", path.display()),
            None => "in the built-in catalog".into(),
        };
        let choices = match crate::manifest::did_you_mean(name, &known) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("images: {}", known.join(", ")),
        };
        SelectError::Unknown {
            name: name.to_string(),
            origin,
            choices,
        }
    }
}

/// The libvirt that uses the default cache: the system one for root's
/// cache under /var/lib/libvirt, else the user's session.
fn default_uri() -> &'static str {
    if default_cache_dir().starts_with("/var/lib/libvirt") {
        "qemu:///system"
    } else {
        "qemu:///session"
    }
}

/// Caches written by hand for the tests of `set`, `listing` and `clean`.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::{CachedImage, ImageSet};
    use crate::desired::ImageSpec;
    use crate::images::record::{
        self, ChecksumRecord, FileRecord, ImageRecord, SignatureRecord, FORMAT,
    };

    pub fn spec(key: &str) -> ImageSpec {
        crate::images::catalog::find(key).unwrap().to_spec()
    }

    /// The set of images `keys` in `dir`, as a manifest would claim them.
    pub fn set(dir: &Path, keys: &[&str]) -> ImageSet {
        ImageSet {
            manifest: Some(dir.join("Lvlab.yml")),
            images: keys
                .iter()
                .map(|key| CachedImage {
                    spec: spec(key),
                    cache_dir: dir.to_path_buf(),
                    machines: Vec::new(),
                })
                .collect(),
            uris: Vec::new(),
        }
    }

    fn entry(size: u64, checksum_file: &str, keys_file: &str) -> FileRecord {
        FileRecord {
            size,
            verified: true,
            digest: None,
            checksum: Some(ChecksumRecord {
                url: "https://example.org/SUMS".into(),
                file: checksum_file.into(),
                sha256: "0".repeat(64),
            }),
            signature: Some(SignatureRecord {
                signature: "clearsigned".into(),
                signature_file: None,
                keys: "https://example.org/keys.asc".into(),
                keys_file: Some(keys_file.into()),
                key_fingerprint: "F".repeat(40),
            }),
            recorded_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    /// Caches `key`'s image as `files` (the last one current), each with
    /// `size` bytes, its checksum copy and the shared `keys.asc`.
    pub fn cache(dir: &Path, key: &str, files: &[&str], size: usize) -> ImageRecord {
        let spec = spec(key);
        let checksum_file = format!("{}.SUMS", spec.file_name);
        let mut record = ImageRecord {
            format: FORMAT,
            source: spec.source.to_string(),
            current: files.last().unwrap().to_string(),
            files: BTreeMap::new(),
        };
        for file in files {
            std::fs::write(dir.join(file), vec![0u8; size]).unwrap();
            record.files.insert(
                file.to_string(),
                entry(size as u64, &checksum_file, "keys.asc"),
            );
        }
        std::fs::write(dir.join(&checksum_file), "sums").unwrap();
        std::fs::write(dir.join("keys.asc"), "keys").unwrap();
        record::save(dir, &spec.file_name, &record).unwrap();
        record
    }

    /// debian13 cached as its own file, superseded by a newer one (10 bytes
    /// each), as `init --refresh` leaves it: (old, new).
    pub fn superseded(dir: &Path) -> (String, &'static str) {
        let old = spec("debian13").file_name;
        let new = "debian-13-generic-amd64-0123456789ab.qcow2";
        cache(dir, "debian13", &[&old, new], 10);
        (old, new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_names_the_libvirt_of_the_default_cache() {
        // Without a URI, no domain's files are known, and `init --refresh`
        // could remove a superseded image a domain still uses.
        let set = ImageSet::catalog();
        assert_eq!(set.uris, [default_uri()]);
        let system = default_cache_dir().starts_with("/var/lib/libvirt");
        assert_eq!(set.uris[0] == "qemu:///system", system);
    }

    #[test]
    fn the_catalog_needs_names_and_an_unknown_one_gets_a_suggestion() {
        let set = ImageSet::catalog();
        assert_eq!(set.select(&[]).unwrap_err(), SelectError::NothingNamed);
        let err = set.select(&["debian21".into()]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no image `debian21` in the built-in catalog; did you mean `debian"),
            "{err}"
        );
        let picked = set.select(&["debian13".into()]).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].spec.key, "debian13");
    }
}
