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
