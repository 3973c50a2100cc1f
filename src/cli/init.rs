//! `lvlab init [IMAGE...]`: make the image caches hold the manifest's
//! images (or the named ones), downloaded and verified, several at once.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::image_set::{self, CachedImage, ImageSet};
use super::progress::{self, bytes};
use super::{CliError, GlobalArgs, Printer};
use crate::images::catalog::CATALOG;
use petgraph::graph::DiGraph;

use crate::actions::image::ImageJob;
use crate::apply;
use crate::images::{
    EnsureOptions, EnsuredImage, FetchOptions, Fetcher, ImageError, Outcome, PreviousFate,
};

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
    let set = image_set::load(global)?;
    let jobs = select(&set, &args.images)?;
    check_conflicts(&jobs)?;
    let fetcher =
        Fetcher::new(FetchOptions::from_env()).map_err(|e| CliError::Other(e.to_string()))?;
    let mut options = EnsureOptions {
        refresh: args.refresh,
        ..EnsureOptions::default()
    };
    if args.refresh {
        let (files, problems) = image_set::domain_files(&set.uris);
        for problem in problems {
            tracing::warn!("{problem}; superseded images are kept");
        }
        options.domain_files = files;
    }
    // Keys that share a cache file (same source; validation made sure they
    // verify it alike) are fetched once.
    let mut unique: Vec<&CachedImage> = Vec::new();
    let mut slot = Vec::new();
    for job in &jobs {
        match unique.iter().position(|u| same_file(u, job)) {
            Some(i) => slot.push(i),
            None => {
                slot.push(unique.len());
                unique.push(job);
            }
        }
    }
    let reporter = progress::reporter(global.quiet);
    // The same image action apply runs, on the same executor: a graph of
    // independent image jobs, `--jobs` at a time.
    let graph: DiGraph<ImageJob, ()> = {
        let mut graph = DiGraph::new();
        for image in &unique {
            graph.add_node(ImageJob::new(
                &image.spec,
                &image.cache_dir,
                &fetcher,
                &options,
                reporter.as_ref(),
            ));
        }
        graph
    };
    let outcome = apply::execute(
        &graph,
        args.jobs as usize,
        // init's progress is the image reporter's.
        &apply::NoObserver,
        super::apply::interrupt_flag(),
    );
    if outcome.interrupted {
        reporter.finish();
        printer.error("Interrupted: images not started were left as they were; run init again.");
        return Ok(ExitCode::from(130));
    }
    // Image jobs depend on nothing, so without an interrupt every one ran.
    let results: Vec<Result<EnsuredImage, Arc<ImageError>>> = graph
        .node_weights()
        .map(|job| job.take_result().expect("every image job ran"))
        .collect();
    reporter.finish();
    for (job, &i) in jobs.iter().zip(&slot) {
        if let Ok(done) = &results[i] {
            printer.out(&format!(
                "{}: {} -> {}",
                job.spec.key,
                summary(done),
                done.path.display()
            ));
        }
    }
    let mut failed: Vec<Arc<ImageError>> = results.into_iter().filter_map(Result::err).collect();
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

fn same_file(a: &CachedImage, b: &CachedImage) -> bool {
    a.cache_dir == b.cache_dir && a.spec.file_name == b.spec.file_name
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

/// The images to fetch: the named keys or all of them.
fn select<'a>(set: &'a ImageSet, names: &[String]) -> Result<Vec<&'a CachedImage>, CliError> {
    if names.is_empty() {
        if set.manifest.is_none() {
            return Err(CliError::Other(format!(
                "no Lvlab.yml here: name the catalog images to download, e.g. `lvlab init debian13`\n\n{}",
                catalog_text()
            )));
        }
        return Ok(set.images.iter().collect());
    }
    let mut out = Vec::new();
    for name in names {
        let found: Vec<&CachedImage> = set.images.iter().filter(|i| i.spec.key == *name).collect();
        if found.is_empty() {
            let known: Vec<&str> = {
                let mut k: Vec<&str> = set.images.iter().map(|i| i.spec.key.as_str()).collect();
                k.dedup();
                k
            };
            let origin = match &set.manifest {
                Some(path) => format!("in {}", path.display()),
                None => "in the built-in catalog".into(),
            };
            let choices = match crate::manifest::did_you_mean(name, &known) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("images: {}", known.join(", ")),
            };
            return Err(CliError::Other(format!(
                "no image `{name}` {origin}; {choices}"
            )));
        }
        out.extend(found);
    }
    Ok(out)
}

/// Two image keys that would write the same cache file from different
/// sources. Manifest resolution names sources apart, so this guards the
/// rule rather than the manifest.
fn check_conflicts(jobs: &[&CachedImage]) -> Result<(), CliError> {
    for (i, a) in jobs.iter().enumerate() {
        for b in &jobs[i + 1..] {
            if same_file(a, b) && a.spec.source != b.spec.source {
                return Err(ImageError::Conflict {
                    keys: vec![a.spec.key.clone(), b.spec.key.clone()],
                    path: a.cache_dir.join(&a.spec.file_name),
                    sources: vec![a.spec.source.to_string(), b.spec.source.to_string()],
                }
                .into());
            }
        }
    }
    Ok(())
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
