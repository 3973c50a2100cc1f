//! The image cache: download, checksum and OpenPGP verification of base
//! images, and the records that say what was verified.
//!
//! [`ensure`] makes a cache hold an image (the work of the plan's image
//! step, which `apply` and `lvlab init` run); [`set`] says which images a
//! command works on and in which caches, [`listing`] what those caches
//! hold and [`clean`] what of it can go. The other modules are parts:
//! [`fetch`] (HTTP and local sources), [`hash`] (streaming digests),
//! [`checksums`] (checksum-file formats), [`signature`] (OpenPGP),
//! [`record`] (what was verified), [`cache`] (file naming and listing),
//! [`shared`] (what the parallel jobs of a run share), [`catalog`] (images
//! known without a manifest) and [`progress`] (the reporter the pipeline
//! talks to). Nothing here prints or talks to libvirt.

pub mod cache;
pub mod catalog;
pub mod checksums;
pub mod clean;
pub mod ensure;
mod error;
pub mod fetch;
pub mod hash;
pub mod listing;
pub mod on_hosts;
pub mod progress;
pub mod record;
pub mod set;
pub mod shared;
pub mod signature;

pub use ensure::{ensure_image, DomainFiles, EnsureOptions, EnsuredImage, Outcome, PreviousFate};
pub use error::ImageError;
pub use fetch::{FetchError, FetchOptions, Fetcher};
pub use progress::{Phase, Reporter};
pub use shared::SharedFiles;
