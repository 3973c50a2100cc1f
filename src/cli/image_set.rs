//! Which images a command works on and where their caches are: the
//! manifest's images (each in the cache of the machines that use it), or,
//! with no manifest, the built-in catalog in the default cache.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{CliError, GlobalArgs};
use crate::desired::ImageSpec;
use crate::images::cache::default_cache_dir;
use crate::images::catalog::CATALOG;
use crate::images::DomainFiles;
use crate::libvirt::Connection;
use crate::observe::disks;

/// An image in one cache directory.
#[derive(Debug, Clone)]
pub struct CachedImage {
    pub spec: ImageSpec,
    pub cache_dir: PathBuf,
    /// `<environment>/<vm_name>` of each machine that uses it from this cache.
    pub machines: Vec<String>,
}

pub struct ImageSet {
    /// `None` when the built-in catalog stands in for a manifest.
    pub manifest: Option<PathBuf>,
    pub images: Vec<CachedImage>,
    /// The manifest's libvirt URIs, each once (for the catalog, the one
    /// whose domains may use the default cache).
    pub uris: Vec<String>,
}

impl ImageSet {
    pub fn cache_dirs(&self) -> BTreeSet<PathBuf> {
        self.images.iter().map(|i| i.cache_dir.clone()).collect()
    }
}

/// The manifest's images, or the catalog when there is no manifest here
/// and none was named.
pub fn load(global: &GlobalArgs) -> Result<ImageSet, CliError> {
    let Some(path) = super::manifest_here(global) else {
        return Ok(catalog());
    };
    let desired = super::load_manifest(&path, global.config.as_deref(), global.connect.as_deref())?;
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
    Ok(ImageSet {
        manifest: Some(desired.manifest_path.clone()),
        images,
        uris: super::libvirt_uris(&desired.environments),
    })
}

/// The built-in catalog in the default cache, with the libvirt whose
/// domains may use that cache.
fn catalog() -> ImageSet {
    let dir = default_cache_dir();
    ImageSet {
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

/// The libvirt that uses the default cache: the system one for root's
/// cache under /var/lib/libvirt, else the user's session.
fn default_uri() -> &'static str {
    if default_cache_dir().starts_with("/var/lib/libvirt") {
        "qemu:///system"
    } else {
        "qemu:///session"
    }
}

/// Files the domains on `uris` use. `None` when any URI cannot be read:
/// then nothing may be removed on the grounds that no domain uses it.
pub fn domain_files(uris: &[String]) -> (Option<DomainFiles>, Vec<String>) {
    let mut all = DomainFiles::new();
    let mut problems = Vec::new();
    for uri in uris {
        match Connection::open(uri).and_then(|conn| disks::domain_files(&conn)) {
            Ok(files) => {
                for (file, users) in files {
                    let entry = all.entry(file).or_default();
                    for user in users {
                        let user = format!("{user} ({uri})");
                        if !entry.contains(&user) {
                            entry.push(user);
                        }
                    }
                }
            }
            Err(err) => problems.push(err.to_string()),
        }
    }
    let files = problems.is_empty().then_some(all);
    (files, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_names_the_libvirt_of_the_default_cache() {
        // Without a URI, no domain's files are known, and `init --refresh`
        // could remove a superseded image a domain still uses.
        let set = catalog();
        assert_eq!(set.uris, [default_uri()]);
        let system = default_cache_dir().starts_with("/var/lib/libvirt");
        assert_eq!(set.uris[0] == "qemu:///system", system);
    }
}
