//! `lvlab smoke [--image KEY]`: a self-test of this host ([`crate::smoke`]).
//! Picks the image (the manifest's, else the catalog's), prints each step
//! on stderr as it ends and the table (or `--json`) on stdout; exits 1
//! when a step failed.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::image_set::{self, LoadedImages};
use super::{CliError, GlobalArgs, Printer};
use crate::images::set::{CachedImage, ImageSet};
use crate::images::Reporter;
use crate::smoke::{self, Report, SmokeReporter, SmokeRequest, StepResult, Verdict};

/// The libvirt the test runs on without `--connect`: the manifest's
/// default, which needs no root and starts by itself.
const DEFAULT_URI: &str = "qemu:///session";
/// The catalog image booted without `--image` and without a manifest.
const DEFAULT_IMAGE: &str = "debian12";

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The image to boot: a key of the manifest's images, else of the
    /// built-in catalog (default: the image of the manifest's first
    /// machine; without a manifest, debian12)
    #[arg(long, value_name = "KEY")]
    pub image: Option<String>,

    /// How long to wait for the guest's SSH (software emulation boots
    /// slowly)
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait_timeout: u64,

    /// Print the report as one JSON document
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, args: &SmokeArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let image = choose_image(global, args.image.as_deref())?;
    let request = SmokeRequest {
        image,
        uri: global.connect.clone().unwrap_or(DEFAULT_URI.into()),
        wait: Duration::from_secs(args.wait_timeout),
        work_dir: std::env::temp_dir(),
    };
    let progress = Progress {
        printer,
        quiet: global.quiet,
    };
    let report = smoke::run(&request, &progress, super::apply::interrupt_flag())
        .map_err(|err| CliError::Other(err.to_string()))?;
    if args.json {
        printer.out(&serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        printer.out(&table(&report));
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `key` (or the default) among the manifest's images when there is a
/// manifest, else (or when the manifest has no such key) the catalog's.
fn choose_image(global: &GlobalArgs, key: Option<&str>) -> Result<CachedImage, CliError> {
    let LoadedImages { desired, set } = image_set::load(global)?;
    let key = key.map(str::to_string).unwrap_or_else(|| {
        desired
            .environments
            .iter()
            .flat_map(|env| &env.machines)
            .map(|machine| machine.os.clone())
            .next()
            .unwrap_or(DEFAULT_IMAGE.into())
    });
    let wanted = std::slice::from_ref(&key);
    let found = match set.select(wanted) {
        Ok(found) => Ok(found[0].clone()),
        Err(err) if set.manifest.is_some() => ImageSet::catalog()
            .select(wanted)
            .map(|found| found[0].clone())
            .map_err(|_| err),
        Err(err) => Err(err),
    };
    found.map_err(|err| CliError::Other(err.to_string()))
}

/// Each step on stderr as it ends (not with `--quiet`), and the download
/// bars on a terminal.
struct Progress<'p> {
    printer: &'p Printer,
    quiet: bool,
}

impl SmokeReporter for Progress<'_> {
    fn finished(&self, step: &StepResult) {
        if !self.quiet {
            eprintln!("smoke: {}", row(step).trim_end());
        }
    }

    fn waiting_for_ssh(&self, elapsed: Duration) {
        if !self.quiet {
            eprintln!("smoke: waiting for SSH... [{}s elapsed]", elapsed.as_secs());
        }
    }

    fn download_reporter(&self) -> Box<dyn Reporter> {
        if self.printer.progress_stderr() {
            super::progress::reporter(false)
        } else {
            Box::new(crate::images::progress::Silent)
        }
    }
}

const STEP_WIDTH: usize = 11;
const VERDICT_WIDTH: usize = 8;
const TIME_WIDTH: usize = 8;

/// The report as a table, then the verdict with the failed step's whole
/// message.
fn table(report: &Report) -> String {
    let mut text = format!(
        "lvlab smoke: image {} on {} (domain {})\n\n{:<STEP_WIDTH$} {:<VERDICT_WIDTH$} {:>TIME_WIDTH$}  DETAIL\n",
        report.image, report.uri, report.domain, "STEP", "RESULT", "TIME"
    );
    for step in &report.steps {
        text.push_str(&row(step));
        text.push('\n');
    }
    text.push('\n');
    match report.first_failure() {
        None => text.push_str(&format!("PASSED in {:.1}s", report.seconds)),
        Some(failed) => text.push_str(&format!(
            "FAILED at {} ({:.1}s in all):\n{}",
            failed.step.name(),
            report.seconds,
            indent(&failed.detail)
        )),
    }
    text
}

/// One step: name, verdict, time and the first line of its detail.
fn row(step: &StepResult) -> String {
    let verdict = match step.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Skipped => "skipped",
    };
    let time = step.seconds.map_or(String::new(), |s| format!("{s:.1}s"));
    let detail = step.detail.lines().next().unwrap_or_default();
    format!(
        "{:<STEP_WIDTH$} {verdict:<VERDICT_WIDTH$} {time:>TIME_WIDTH$}  {detail}",
        step.step.name()
    )
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::Step;

    fn step(step: Step, verdict: Verdict, seconds: Option<f64>, detail: &str) -> StepResult {
        StepResult {
            step,
            verdict,
            seconds,
            detail: detail.into(),
        }
    }

    #[test]
    fn the_table_aligns_the_steps_and_names_the_failure_in_full() {
        let report = Report {
            image: "debian12".into(),
            uri: "qemu:///session".into(),
            domain: "smoke-abc123_smoke".into(),
            passed: false,
            seconds: 12.34,
            steps: vec![
                step(
                    Step::Up,
                    Verdict::Pass,
                    Some(2.04),
                    "smoke-abc123_smoke defined",
                ),
                step(
                    Step::Ssh,
                    Verdict::Fail,
                    Some(5.0),
                    "not reachable on SSH within 5s\n  hint: raise --wait-timeout",
                ),
                step(
                    Step::CloudInit,
                    Verdict::Skipped,
                    None,
                    "`ssh` did not pass",
                ),
            ],
        };
        assert_eq!(
            table(&report),
            "lvlab smoke: image debian12 on qemu:///session (domain smoke-abc123_smoke)\n\
             \n\
             STEP        RESULT       TIME  DETAIL\n\
             up          pass         2.0s  smoke-abc123_smoke defined\n\
             ssh         FAIL         5.0s  not reachable on SSH within 5s\n\
             cloud-init  skipped            `ssh` did not pass\n\
             \n\
             FAILED at ssh (12.3s in all):\n\
             \x20 not reachable on SSH within 5s\n\
             \x20   hint: raise --wait-timeout"
        );
    }
}
