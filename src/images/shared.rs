//! What the image jobs of one run share: each small file (checksum file,
//! signature, key file) fetched once however many images want it, and each
//! cache file name given to one source. `init` and `apply` make one
//! [`SharedFiles`] per run and hand it to every image job.
//!
//! Images that share a key URL or a checksum URL run in parallel: without
//! this, both fetch the same file and write the same cache name at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::cache;
use super::fetch::{FetchError, Fetcher, Small};
use crate::desired::Source;

#[derive(Debug, Default)]
pub struct SharedFiles {
    /// By source: what this run fetched from it. The slot's lock is held
    /// while one job fetches, so the others wait for its answer.
    fetched: Mutex<BTreeMap<String, Arc<Mutex<Option<Small>>>>>,
    /// Cache path -> the source it holds in this run.
    names: Mutex<BTreeMap<PathBuf, String>>,
}

impl SharedFiles {
    /// `source`, fetched by the first job of the run that asks; later
    /// callers get the same answer without a request. A failure is not
    /// kept: the next caller tries again and reports in its own words.
    pub fn fetch_small(
        &self,
        fetcher: &Fetcher,
        source: &Source,
        limit: u64,
    ) -> Result<Small, FetchError> {
        let slot = lock(&self.fetched)
            .entry(source.to_string())
            .or_default()
            .clone();
        let mut slot = lock(&slot);
        if let Some(small) = &*slot {
            return Ok(small.clone());
        }
        let small = fetcher.fetch_small(source, limit)?;
        *slot = Some(small.clone());
        Ok(small)
    }

    /// Whether this run already fetched `source`.
    pub fn fetched(&self, source: &Source) -> bool {
        let slot = lock(&self.fetched).get(&source.to_string()).cloned();
        slot.is_some_and(|slot| lock(&slot).is_some())
    }

    /// The name in `dir` of the file fetched from `source` whose layout name
    /// is `name`: `name` itself, unless another source holds it (in this
    /// run, or as a record in `dir` says); then `<stem>-<sha12>.<ext>`
    /// tagged with the source's digest, a name no other source gets.
    pub fn file_name(&self, dir: &Path, name: &str, source: &Source) -> String {
        let source = source.to_string();
        let mut names = lock(&self.names);
        let taken = match names.get(&dir.join(name)) {
            Some(holder) => *holder != source,
            None => cache::recorded_source(dir, name).is_some_and(|holder| holder != source),
        };
        let name = if taken {
            crate::manifest::name_for_source(name, &source)
        } else {
            name.to_string()
        };
        names.insert(dir.join(&name), source);
        name
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A job that panicked left consistent data: each write is one insert.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_per_source() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedFiles::default();
        let a = Source::Http("http://a.invalid/keys/signer.asc".into());
        let b = Source::Http("http://b.invalid/other/signer.asc".into());
        let first = shared.file_name(dir.path(), "signer.asc", &a);
        assert_eq!(first, "signer.asc");
        assert_eq!(shared.file_name(dir.path(), "signer.asc", &a), first);
        let second = shared.file_name(dir.path(), "signer.asc", &b);
        assert!(second.starts_with("signer-") && second.ends_with(".asc"));
        assert_eq!(shared.file_name(dir.path(), "signer.asc", &b), second);
        // Another directory is another namespace.
        let other = tempfile::tempdir().unwrap();
        assert_eq!(
            shared.file_name(other.path(), "signer.asc", &b),
            "signer.asc"
        );
    }
}
