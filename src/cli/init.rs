//! `lvlab init [IMAGE...]`: make the image caches hold the manifest's
//! images (or the named ones), downloaded and verified, several at once.
//! The fetching is [`crate::reconcile::init`]'s; this module picks the
//! images and renders what became of each.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::image_set::{self, LoadedImages};
use super::progress::{self, bytes};
use super::{CliError, GlobalArgs, Printer};
use crate::desired::ImageAddress;
use crate::images::catalog::CATALOG;
use crate::images::set::SelectError;
use crate::images::{EnsuredImage, ImageError, Outcome, PreviousFate};
use crate::reconcile::init::{init_images, InitOptions, InitOutcome};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Image keys to fetch (default: every image of the manifest; without a
    /// manifest, name catalog images)
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Images to download at once
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub jobs: u16,

    /// Ask the publishers again: fetch checksum files and keys anew, and
    /// download an image whose published file changed (beside the old one)
    #[arg(long)]
    pub refresh: bool,
}

pub fn run(global: &GlobalArgs, args: &InitArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let LoadedImages { desired, set } = image_set::load(global)?;
    let selected: Vec<ImageAddress> = set
        .select(&args.images)
        .map_err(select_error)?
        .iter()
        .map(|image| image.address())
        .collect();
    let reporter = progress::reporter(global.quiet);
    let options = InitOptions {
        jobs: usize::from(args.jobs),
        refresh: args.refresh,
        uris: &set.uris,
    };
    let outcome = init_images(
        &desired,
        &selected,
        &options,
        reporter.as_ref(),
        super::apply::interrupt_flag(),
    )?;
    let InitOutcome::Ran(results) = outcome else {
        reporter.finish();
        printer.error("Interrupted: images not started were left as they were; run init again.");
        return Ok(ExitCode::from(130));
    };
    reporter.finish();
    for image in &selected {
        let result = results.iter().find(|(path, _)| *path == image.path);
        if let Some((_, Ok(done))) = result {
            printer.out(&format!(
                "{}: {} -> {}",
                image.key,
                summary(done),
                done.path.display()
            ));
        }
    }
    let mut failed: Vec<Arc<ImageError>> = results
        .into_iter()
        .filter_map(|(_, result)| result.err())
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let count = failed.len();
    for err in &failed[..count - 1] {
        printer.error(&format!("error: {err}"));
    }
    let last = failed.pop().expect("at least one failure");
    if count > 1 {
        return Err(CliError::Other(format!("{last}\n({count} images failed)")));
    }
    Err(CliError::Other(last.to_string()))
}

fn select_error(err: SelectError) -> CliError {
    match err {
        SelectError::NothingNamed => CliError::Other(format!(
            "no Lvlab.yml here: name the catalog images to download, e.g. `lvlab init debian13`\n\n{}",
            catalog_text()
        )),
        other => CliError::Other(other.to_string()),
    }
}

/// What one image's result means, in a line.
fn summary(done: &EnsuredImage) -> String {
    let algorithm = done
        .file
        .digest
        .as_ref()
        .map(|d| crate::images::checksums::algorithm_name(d.algorithm))
        .unwrap_or("?");
    let what = match (&done.file.verified, &done.file.signature) {
        (true, Some(sig)) => format!("verified ({algorithm}, signed by {})", sig.key_fingerprint),
        (true, None) => format!("verified ({algorithm}, checksum file not signed)"),
        (false, _) => "UNVERIFIED (no checksum_url: nothing to check it against)".to_string(),
    };
    let how = match &done.outcome {
        Outcome::Cached => format!("cached since {}, no request made", done.file.recorded_at),
        Outcome::Confirmed => "cached, still the published file".into(),
        Outcome::Adopted => "found in the cache and recorded".into(),
        Outcome::Downloaded { resumed_from: 0 } => format!("downloaded {}", bytes(done.file.size)),
        Outcome::Downloaded { resumed_from } => format!(
            "downloaded {} (resumed at {})",
            bytes(done.file.size),
            bytes(*resumed_from)
        ),
        Outcome::Updated {
            previous,
            previous_fate,
            ..
        } => {
            let fate = match previous_fate {
                PreviousFate::KeptInUse(domains) => {
                    format!("kept, used by {}", domains.join(", "))
                }
                PreviousFate::KeptUnknown => {
                    "kept (could not ask libvirt which domains use it)".into()
                }
                PreviousFate::Removed => "removed, no domain used it".into(),
            };
            format!("a new published image was downloaded; the previous {previous} was {fate}")
        }
    };
    format!("{what}; {how}")
}

pub fn catalog_text() -> String {
    let mut out = String::from("built-in catalog:\n");
    for e in CATALOG {
        let check = if e.keys_url.is_some() {
            "checksum + OpenPGP signature"
        } else {
            "checksum (publisher does not sign it)"
        };
        out.push_str(&format!("  {:<12} {} [{check}]\n", e.key, e.description));
    }
    out.push_str(&format!(
        "cache: {}",
        crate::images::cache::default_cache_dir().display()
    ));
    out
}
