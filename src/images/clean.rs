//! What `lvlab images clean` removes from the image caches, as a value: a
//! [`CleanPlan`] says which files go and why, which stay because a domain
//! uses them, and which records are rewritten; [`DirCleanup::apply`]
//! carries one directory's part out. Never a file a defined domain's disk
//! uses, never a file lvlab did not make. Which files domains use is asked
//! of libvirt by the caller ([`crate::observe::disks::domain_files_on`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::cache::{self, CacheFile, CacheFileKind};
use super::record::{self, ImageRecord};
use super::set::{ImageSet, ScanError, ScannedDir};
use super::DomainFiles;

/// Why a file is no longer needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalReason {
    /// An image no image key of the set claims.
    Unclaimed,
    /// An image its key no longer means: `init --refresh` brought a newer
    /// `image_file`.
    Superseded { image_file: String },
    /// A download that failed verification.
    FailedVerification,
    /// A `.partial` download of no claimed image.
    UnfinishedDownload,
    /// A record or verification file of the unclaimed `image_file`.
    BelongsToUnclaimed { image_file: String },
}

/// A file that goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub path: PathBuf,
    pub size: u64,
    pub reason: RemovalReason,
}

/// Who uses a file that would otherwise go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InUse {
    /// These domains (`domain (uri)`).
    By(Vec<String>),
    /// Libvirt could not be asked, so any domain might.
    Unknown,
}

/// An image that would go for `reason` but stays because it is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub path: PathBuf,
    pub reason: RemovalReason,
    pub users: InUse,
}

/// A record that stays but forgets files that go.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRewrite {
    pub image_file: String,
    pub record: ImageRecord,
}

/// One cache directory's part of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct DirCleanup {
    pub dir: PathBuf,
    pub kept: Vec<Kept>,
    pub removals: Vec<Removal>,
    pub rewrites: Vec<RecordRewrite>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CleanPlan {
    pub dirs: Vec<DirCleanup>,
}

impl CleanPlan {
    pub fn files(&self) -> usize {
        self.dirs.iter().map(|d| d.removals.len()).sum()
    }

    /// Bytes the removals free.
    pub fn bytes(&self) -> u64 {
        self.dirs
            .iter()
            .flat_map(|d| &d.removals)
            .map(|r| r.size)
            .sum()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot remove {}: {source}", path.display())]
pub struct RemoveError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// What cleaning the set's caches would do. `domain_files` are the files
/// defined domains use; `None` (libvirt could not be asked) keeps every
/// image that would go.
pub fn plan(set: &ImageSet, domain_files: Option<&DomainFiles>) -> Result<CleanPlan, ScanError> {
    let dirs = set
        .scan()?
        .iter()
        .map(|scanned| plan_dir(set, scanned, domain_files))
        .collect();
    Ok(CleanPlan { dirs })
}

impl DirCleanup {
    /// Removes the files, telling `removed` of each, then rewrites the
    /// records that stay. Stops at the first file that cannot be removed.
    pub fn apply(&self, mut removed: impl FnMut(&Removal)) -> Result<(), RemoveError> {
        for removal in &self.removals {
            std::fs::remove_file(&removal.path).map_err(|source| RemoveError {
                path: removal.path.clone(),
                source,
            })?;
            removed(removal);
        }
        for rewrite in &self.rewrites {
            if let Err(err) = record::save(&self.dir, &rewrite.image_file, &rewrite.record) {
                tracing::warn!("cannot update the record of {}: {err}", rewrite.image_file);
            }
        }
        Ok(())
    }
}

fn plan_dir(
    set: &ImageSet,
    scanned: &ScannedDir,
    domain_files: Option<&DomainFiles>,
) -> DirCleanup {
    let ScannedDir {
        dir,
        files,
        records,
    } = scanned;
    let claimed = claimed(set, scanned);
    let mut kept = Vec::new();
    let mut removals: Vec<(&CacheFile, RemovalReason)> = Vec::new();
    let mut kept_records: BTreeSet<&str> = BTreeSet::new();
    for file in files {
        let Some(reason) = unneeded(file, &claimed) else {
            continue;
        };
        if let CacheFileKind::Image { image_file, .. } = &file.kind {
            if let Some(users) = users(file, domain_files) {
                kept_records.insert(image_file.as_str());
                kept.push(Kept {
                    path: file.path.clone(),
                    reason,
                    users,
                });
                continue;
            }
        }
        removals.push((file, reason));
    }
    // Records and verification files go with the last image they describe.
    for (image_file, _) in records {
        if claimed.contains(image_file.as_str()) || kept_records.contains(image_file.as_str()) {
            continue;
        }
        for file in files {
            let owned = matches!(&file.kind,
                CacheFileKind::Record { image_file: f } | CacheFileKind::Verification { image_file: f }
                if f == image_file);
            if owned && !claimed_elsewhere(file, records, &claimed) {
                let reason = RemovalReason::BelongsToUnclaimed {
                    image_file: image_file.clone(),
                };
                removals.push((file, reason));
            }
        }
    }
    let removed: BTreeSet<&str> = removals.iter().map(|(f, _)| f.name.as_str()).collect();
    DirCleanup {
        dir: dir.clone(),
        kept,
        rewrites: rewrites(records, &removed),
        removals: removals
            .into_iter()
            .map(|(file, reason)| Removal {
                path: file.path.clone(),
                size: file.size,
                reason,
            })
            .collect(),
    }
}

/// The image files in this directory an image of the set claims: those
/// whose record (if any) is about the image's source.
fn claimed<'a>(set: &'a ImageSet, scanned: &ScannedDir) -> BTreeSet<&'a str> {
    set.images
        .iter()
        .filter(|i| i.cache_dir == scanned.dir)
        .filter(|i| {
            scanned
                .records
                .iter()
                .find(|(name, _)| *name == i.spec.file_name)
                .is_none_or(|(_, r)| r.source == i.spec.source.to_string())
        })
        .map(|i| i.spec.file_name.as_str())
        .collect()
}

/// Why `file` is not needed, if it is not.
fn unneeded(file: &CacheFile, claimed: &BTreeSet<&str>) -> Option<RemovalReason> {
    match &file.kind {
        CacheFileKind::Image {
            image_file,
            current,
        } => {
            if !claimed.contains(image_file.as_str()) {
                Some(RemovalReason::Unclaimed)
            } else if !current {
                Some(RemovalReason::Superseded {
                    image_file: image_file.clone(),
                })
            } else {
                None
            }
        }
        CacheFileKind::Rejected => Some(RemovalReason::FailedVerification),
        CacheFileKind::Partial => {
            let image = file.name.trim_end_matches(cache::PARTIAL);
            let wanted = claimed
                .iter()
                .any(|c| image == *c || image.starts_with(&stem(c)));
            (!wanted).then_some(RemovalReason::UnfinishedDownload)
        }
        _ => None,
    }
}

/// The domains that use `file`; `Unknown` when libvirt could not be asked.
fn users(file: &CacheFile, domain_files: Option<&DomainFiles>) -> Option<InUse> {
    let Some(map) = domain_files else {
        return Some(InUse::Unknown);
    };
    let canonical = std::fs::canonicalize(&file.path).unwrap_or(file.path.clone());
    map.get(&canonical).cloned().map(InUse::By)
}

/// The stem a versioned name starts with (`d.qcow2` -> `d-`).
fn stem(file: &str) -> String {
    match file.rsplit_once('.') {
        Some((stem, _)) => format!("{stem}-"),
        None => format!("{file}-"),
    }
}

/// A verification file (a shared key file) another claimed record still names.
fn claimed_elsewhere(
    file: &CacheFile,
    records: &[(String, ImageRecord)],
    claimed: &BTreeSet<&str>,
) -> bool {
    records
        .iter()
        .filter(|(name, _)| claimed.contains(name.as_str()))
        .flat_map(|(_, r)| r.files.values())
        .any(|f| {
            f.checksum.as_ref().is_some_and(|c| c.file == file.name)
                || f.signature.as_ref().is_some_and(|s| {
                    s.keys_file.as_deref() == Some(&file.name)
                        || s.signature_file.as_deref() == Some(&file.name)
                })
        })
}

/// The records that stay but name removed files, without those files.
fn rewrites(records: &[(String, ImageRecord)], removed: &BTreeSet<&str>) -> Vec<RecordRewrite> {
    let mut out = Vec::new();
    for (image_file, rec) in records {
        if removed.contains(format!("{image_file}{}", record::SUFFIX).as_str()) {
            continue;
        }
        let mut rec = rec.clone();
        let before = rec.files.len();
        rec.files.retain(|name, _| !removed.contains(name.as_str()));
        if rec.files.len() != before {
            out.push(RecordRewrite {
                image_file: image_file.clone(),
                record: rec,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::set::fixtures::{cache, set, spec, superseded};

    fn names(paths: impl Iterator<Item = PathBuf>) -> Vec<String> {
        let mut names: Vec<String> = paths
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_unclaimed_image_goes_with_its_record_and_checksum_copy_but_not_a_shared_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let kept = spec("debian13").file_name;
        let gone = spec("debian12").file_name;
        cache(dir, "debian13", &[&kept], 10);
        cache(dir, "debian12", &[&gone], 100);
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        std::fs::write(dir.join("x.qcow2.rejected"), "bad").unwrap();
        std::fs::write(dir.join(format!("{kept}.partial")), "half").unwrap();
        std::fs::write(dir.join("other.qcow2.partial"), "half").unwrap();

        let plan = plan(&set(dir, &["debian13"]), Some(&DomainFiles::new())).unwrap();
        let [cleanup] = &plan.dirs[..] else {
            panic!("one directory: {plan:?}")
        };
        let removed = names(cleanup.removals.iter().map(|r| r.path.clone()));
        let mut expected = vec![
            gone.clone(),
            format!("{gone}.SUMS"),
            format!("{gone}{}", record::SUFFIX),
            "other.qcow2.partial".to_string(),
            "x.qcow2.rejected".to_string(),
        ];
        expected.sort();
        assert_eq!(removed, expected, "keys.asc is the kept image's too");
        let reason = |name: &str| {
            cleanup
                .removals
                .iter()
                .find(|r| r.path == dir.join(name))
                .map(|r| r.reason.clone())
                .unwrap()
        };
        assert_eq!(reason(&gone), RemovalReason::Unclaimed);
        assert_eq!(
            reason(&format!("{gone}.SUMS")),
            RemovalReason::BelongsToUnclaimed {
                image_file: gone.clone()
            }
        );
        assert_eq!(
            reason("x.qcow2.rejected"),
            RemovalReason::FailedVerification
        );
        assert_eq!(
            reason("other.qcow2.partial"),
            RemovalReason::UnfinishedDownload
        );
        assert!(cleanup.kept.is_empty() && cleanup.rewrites.is_empty());
        assert_eq!(plan.files(), 5);
        let sizes = 100 + 4 + 4 + 3;
        let record_size = std::fs::metadata(dir.join(format!("{gone}{}", record::SUFFIX)))
            .unwrap()
            .len();
        assert_eq!(plan.bytes(), sizes + record_size);

        let mut told = Vec::new();
        cleanup.apply(|r| told.push(r.path.clone())).unwrap();
        assert_eq!(names(told.into_iter()), expected);
        let left = names(std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()));
        let mut want = vec![
            kept.clone(),
            format!("{kept}.SUMS"),
            format!("{kept}.partial"),
            format!("{kept}{}", record::SUFFIX),
            "keys.asc".to_string(),
            "notes.txt".to_string(),
        ];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn a_superseded_image_stays_while_a_domain_uses_it_or_libvirt_cannot_say() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (old, new) = superseded(dir);
        let set = set(dir, &["debian13"]);
        let superseded = RemovalReason::Superseded {
            image_file: old.clone(),
        };

        let in_use = DomainFiles::from([(
            std::fs::canonicalize(dir.join(&old)).unwrap(),
            vec!["web (test:///default)".to_string()],
        )]);
        let plan_in_use = plan(&set, Some(&in_use)).unwrap();
        let cleanup = &plan_in_use.dirs[0];
        assert_eq!(
            cleanup.kept,
            [Kept {
                path: dir.join(&old),
                reason: superseded.clone(),
                users: InUse::By(vec!["web (test:///default)".into()]),
            }]
        );
        assert!(cleanup.removals.is_empty() && cleanup.rewrites.is_empty());

        let unknown = plan(&set, None).unwrap();
        assert_eq!(unknown.dirs[0].kept[0].users, InUse::Unknown);
        assert_eq!(unknown.files(), 0);

        let unused = plan(&set, Some(&DomainFiles::new())).unwrap();
        let cleanup = &unused.dirs[0];
        assert_eq!(
            cleanup.removals,
            [Removal {
                path: dir.join(&old),
                size: 10,
                reason: superseded,
            }]
        );
        let [rewrite] = &cleanup.rewrites[..] else {
            panic!("the record forgets the old file: {cleanup:?}")
        };
        assert_eq!(rewrite.image_file, old);
        assert_eq!(rewrite.record.files.keys().collect::<Vec<_>>(), [new]);
        cleanup.apply(|_| {}).unwrap();
        assert!(!dir.join(&old).exists() && dir.join(new).exists());
        let saved = record::load(dir, &old).unwrap();
        assert_eq!(saved, rewrite.record);
    }
}
