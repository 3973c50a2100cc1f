//! What the image caches hold (`lvlab images list`): every file, what it
//! is, which image keys claim it, whether it was verified and which
//! machines use it. Facts only; the CLI renders them.

use std::path::PathBuf;

use serde::Serialize;

use super::cache::CacheFileKind;
use super::set::{CachedImage, ImageSet, ScanError};

/// What a listed file is (the JSON `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Image,
    Record,
    Verification,
    Partial,
    Rejected,
    Temporary,
    Foreign,
}

impl FileKind {
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Record => "record",
            FileKind::Verification => "verification",
            FileKind::Partial => "partial",
            FileKind::Rejected => "rejected",
            FileKind::Temporary => "temporary",
            FileKind::Foreign => "foreign",
        }
    }
}

/// One file in an image cache.
#[derive(Debug, Clone, Serialize)]
pub struct ListedFile {
    pub path: PathBuf,
    pub size: u64,
    pub kind: FileKind,
    /// Image keys this file belongs to.
    pub images: Vec<String>,
    /// For images: whether it is the file its image key means now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    pub machines: Vec<String>,
    /// For an image uploaded to a host's images pool: the host's URI
    /// (`path` is then the volume's path on that host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Every file in the set's cache directories, directory by directory.
pub fn list(set: &ImageSet) -> Result<Vec<ListedFile>, ScanError> {
    let mut out = Vec::new();
    for scanned in set.scan()? {
        let claimants = |image_file: &str| {
            set.images
                .iter()
                .filter(|i| i.cache_dir == scanned.dir && i.spec.file_name == image_file)
                .collect::<Vec<&CachedImage>>()
        };
        for file in &scanned.files {
            let (kind, image_file, current) = match &file.kind {
                CacheFileKind::Image {
                    image_file,
                    current,
                } => (FileKind::Image, Some(image_file.as_str()), Some(*current)),
                CacheFileKind::Record { image_file } => {
                    (FileKind::Record, Some(image_file.as_str()), None)
                }
                CacheFileKind::Verification { image_file } => {
                    (FileKind::Verification, Some(image_file.as_str()), None)
                }
                CacheFileKind::Partial => (FileKind::Partial, None, None),
                CacheFileKind::Rejected => (FileKind::Rejected, None, None),
                CacheFileKind::Temporary => (FileKind::Temporary, None, None),
                CacheFileKind::Foreign => (FileKind::Foreign, None, None),
            };
            let owners = image_file.map(claimants).unwrap_or_default();
            let verified = match (kind, image_file) {
                (FileKind::Image, Some(image_file)) => scanned
                    .records
                    .iter()
                    .find(|(name, _)| name == image_file)
                    .and_then(|(_, r)| r.files.get(&file.name))
                    .map(|f| f.verified),
                _ => None,
            };
            let machines = if current == Some(true) {
                owners.iter().flat_map(|i| i.machines.clone()).collect()
            } else {
                Vec::new()
            };
            out.push(ListedFile {
                path: file.path.clone(),
                size: file.size,
                kind,
                images: owners.iter().map(|i| i.spec.key.clone()).collect(),
                current,
                verified,
                machines,
                host: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::set::fixtures::{set, superseded};

    #[test]
    fn each_file_says_what_it_is_and_only_the_current_image_its_machines() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (old, new) = superseded(dir);
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let mut set = set(dir, &["debian13"]);
        set.images[0].machines = vec!["lab/web".into()];

        let files = list(&set).unwrap();
        let row = |name: &str| {
            files
                .iter()
                .find(|f| f.path == dir.join(name))
                .unwrap_or_else(|| panic!("{name} listed: {files:?}"))
        };
        let current = row(new);
        assert_eq!(current.kind, FileKind::Image);
        assert_eq!(
            (current.current, current.verified),
            (Some(true), Some(true))
        );
        assert_eq!(current.images, ["debian13"]);
        assert_eq!(current.machines, ["lab/web"]);
        let superseded = row(&old);
        assert_eq!(superseded.current, Some(false));
        assert!(superseded.machines.is_empty());
        assert_eq!(row(&format!("{old}.SUMS")).kind, FileKind::Verification);
        let record = row(&format!("{old}{}", crate::images::record::SUFFIX));
        assert_eq!((record.kind, record.current), (FileKind::Record, None));
        let foreign = row("notes.txt");
        assert_eq!(foreign.kind, FileKind::Foreign);
        assert!(foreign.images.is_empty());
        assert_eq!(files.len(), 6, "and keys.asc: {files:?}");
    }
}
