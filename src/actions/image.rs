//! The image action: make a cache hold an image, verified. One function,
//! [`ensure_image`](crate::images::ensure_image), run as the job of a
//! plan's image step, by `apply` and by `init` (whose plan has only those).

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::apply::{ActionError, Job, JobInfo};
use crate::desired::ImageSpec;
use crate::images::{ensure_image, EnsureOptions, EnsuredImage, Fetcher, ImageError, Reporter};

/// One image into one cache (a plan's image step); keeps its result for
/// the caller to report.
pub struct ImageJob<'a> {
    pub spec: &'a ImageSpec,
    /// The step's address: the image's file in its cache directory.
    pub image_path: &'a Path,
    pub fetcher: &'a Fetcher,
    pub options: &'a EnsureOptions,
    pub reporter: &'a dyn Reporter,
    result: Mutex<Option<Result<EnsuredImage, Arc<ImageError>>>>,
}

impl<'a> ImageJob<'a> {
    pub fn new(
        spec: &'a ImageSpec,
        image_path: &'a Path,
        fetcher: &'a Fetcher,
        options: &'a EnsureOptions,
        reporter: &'a dyn Reporter,
    ) -> Self {
        Self {
            spec,
            image_path,
            fetcher,
            options,
            reporter,
            result: Mutex::new(None),
        }
    }

    /// The result, once the job ran.
    pub fn take_result(&self) -> Option<Result<EnsuredImage, Arc<ImageError>>> {
        self.result.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Job for ImageJob<'_> {
    fn info(&self) -> JobInfo {
        JobInfo {
            address: format!("image.{}", self.spec.key),
            action: "download and verify".to_string(),
        }
    }

    fn run(&self) -> Result<(), ActionError> {
        let key = &self.spec.key;
        self.reporter.on_start(key);
        let cache_dir = self.image_path.parent().unwrap_or(Path::new("/"));
        let result = ensure_image(
            self.fetcher,
            self.spec,
            cache_dir,
            self.options,
            self.reporter,
        );
        let ok = result.is_ok();
        self.reporter
            .on_done(key, ok, if ok { "ready" } else { "failed" });
        // The caller takes the result back and the executor gets the error:
        // both hold it.
        let result = result.map_err(Arc::new);
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(source) => Err(ActionError::Image {
                key: key.clone(),
                source: source.clone(),
            }),
        };
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        outcome
    }
}
