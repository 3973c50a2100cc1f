//! `lvlab init`: make the image caches hold the chosen images, downloaded
//! and verified, several at once. Plans through [`plan::images_plan`] (one
//! step per cache file: keys that share one are fetched once) and runs the
//! plan's image steps as the image jobs `apply` runs.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::actions::image::ImageJob;
use crate::apply;
use crate::desired::{Desired, ImageAddress};
use crate::images::Reporter;
use crate::images::{EnsureOptions, EnsuredImage, FetchError, FetchOptions, Fetcher, ImageError};
use crate::plan::{self, Address, PlanError};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Fetcher(FetchError),
}

/// How `init` fetches.
pub struct InitOptions<'a> {
    /// Images at most at once.
    pub jobs: usize,
    /// Ask the publishers again (checksum files, keys, changed images).
    pub refresh: bool,
    /// The libvirt hosts whose domains may use a superseded image (asked
    /// with `refresh` only, so that one in use is kept).
    pub uris: &'a [String],
}

/// What became of each image step.
pub enum InitOutcome {
    /// Interrupted: images not started were left as they were.
    Interrupted,
    /// Every step ran: each cache file's result, in plan order.
    Ran(Vec<(PathBuf, Result<EnsuredImage, Arc<ImageError>>)>),
}

/// Fetches and verifies `selected` into their caches, telling `reporter`
/// of each download.
pub fn init_images(
    desired: &Desired,
    selected: &[ImageAddress],
    options: &InitOptions,
    reporter: &dyn Reporter,
    interrupt: &AtomicBool,
) -> Result<InitOutcome, InitError> {
    let observed = crate::observe::images(desired, selected);
    let plan = plan::images_plan(desired, &observed, selected.to_vec())?;
    let fetcher = Fetcher::new(FetchOptions::from_env()).map_err(InitError::Fetcher)?;
    let mut ensure = EnsureOptions {
        refresh: options.refresh,
        ..EnsureOptions::default()
    };
    if options.refresh {
        let (files, problems) = crate::observe::disks::domain_files_on(options.uris);
        for problem in problems {
            tracing::warn!("{problem}; superseded images are kept");
        }
        ensure.domain_files = files;
    }
    let graph = plan.graph.filter_map(
        |_, step| match &step.address {
            Address::Image { key, path } => Some(ImageJob::new(
                &desired.images[key],
                path,
                &fetcher,
                &ensure,
                reporter,
            )),
            Address::Machine { .. } | Address::HostImage { .. } => None,
        },
        |_, &()| Some(()),
    );
    // init's progress is the image reporter's.
    let outcome = apply::execute(&graph, options.jobs, &apply::NoObserver, interrupt);
    if outcome.interrupted {
        return Ok(InitOutcome::Interrupted);
    }
    // Image jobs depend on nothing, so without an interrupt every one ran.
    Ok(InitOutcome::Ran(
        graph
            .node_weights()
            .map(|job| {
                (
                    job.image_path.to_path_buf(),
                    job.take_result().expect("every image job ran"),
                )
            })
            .collect(),
    ))
}
