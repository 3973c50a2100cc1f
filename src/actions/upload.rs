//! The upload step: the cached image into the images pool of the host
//! whose machines boot it, with the image progress reporter's bar.

use std::path::Path;

use crate::apply::ActionError;
use crate::desired::ImageSpec;
use crate::host::{images_pool, Host};
use crate::images::{Phase, Reporter};

/// Uploads the file `image_path`'s key means now (a `--refresh` may have
/// brought a newer one) into the pool at `dir` on `host`.
pub fn upload_image(
    host: &Host,
    spec: &ImageSpec,
    image_path: &Path,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<(), ActionError> {
    let cache_dir = image_path.parent().unwrap_or(Path::new("/"));
    let image = crate::images::ensure::current_path(cache_dir, spec);
    // A bar of its own beside the image's download bar.
    let target = crate::plan::host_label(host.uri());
    let bar = format!("{}@{target}", spec.key);
    reporter.on_start(&bar);
    reporter.on_phase(&bar, Phase::Upload);
    let size = std::fs::metadata(&image).map(|m| m.len()).ok();
    reporter.on_transfer(&bar, target, 0, size);
    let result = images_pool::upload(&host.connection(), dir, &image, &|bytes| {
        reporter.on_progress(&bar, bytes)
    });
    let ok = result.is_ok();
    reporter.on_done(&bar, ok, if ok { "uploaded, checked" } else { "failed" });
    result.map_err(|source| ActionError::ImageUpload {
        key: spec.key.clone(),
        source,
    })
}
