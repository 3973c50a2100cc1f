//! `lvlab images list` and `lvlab images clean`: renders what the image
//! caches hold ([`crate::images::listing`]) and the plan of what can go
//! ([`crate::images::clean`]), and removes it on `--force`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::image_set;
use super::progress::bytes;
use super::{CliError, GlobalArgs, Printer};
use crate::images::clean::{self, DirCleanup, InUse, RemovalReason};
use crate::images::listing::{self, FileKind, ListedFile};
use crate::images::set::ImageSet;

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Every file in the image caches: which image, size, verified or not,
    /// used by which machines
    #[command(after_help = examples!(
        "lvlab images list" => "a table of every cached file",
        "lvlab images list --json" => "the same as JSON",
    ))]
    List {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove cached files no image claims (dry run unless --force); never
    /// a file a defined domain's disk uses
    #[command(after_help = examples!(
        "lvlab images clean" => "say what would be removed, remove nothing",
        "lvlab images clean --force" => "remove it",
    ))]
    Clean {
        /// Remove them (without it, only say what would go)
        #[arg(long)]
        force: bool,
    },
}

pub fn run(
    global: &GlobalArgs,
    args: &ImagesArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let set = image_set::load(global)?.set;
    match &args.command {
        ImagesCommand::List { json } => list(&set, *json, printer),
        ImagesCommand::Clean { force } => clean(&set, *force, printer),
    }
}

fn list(set: &ImageSet, json: bool, printer: &Printer) -> Result<ExitCode, CliError> {
    let rows = listing::list(set).map_err(|e| CliError::Other(e.to_string()))?;
    if json {
        let text =
            serde_json::to_string_pretty(&rows).map_err(|e| CliError::Other(e.to_string()))?;
        printer.out(&text);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        let dirs: Vec<String> = set
            .cache_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        printer.out(&format!("no cached files in {}", dirs.join(", ")));
        return Ok(ExitCode::SUCCESS);
    }
    for (dir, group) in group_by_dir(&rows) {
        printer.out(&format!("{}:", dir.display()));
        for row in group {
            printer.out(&list_line(row));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_line(row: &ListedFile) -> String {
    let name = row
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let status = match (row.kind, row.verified, row.current) {
        (FileKind::Image, Some(true), Some(true)) => "verified",
        (FileKind::Image, Some(false), Some(true)) => "UNVERIFIED",
        (FileKind::Image, Some(true), Some(false)) => "verified, superseded",
        (FileKind::Image, _, _) => "image, superseded",
        (kind, _, _) => kind.label(),
    };
    let images = if row.images.is_empty() {
        "-".to_string()
    } else {
        row.images.join(",")
    };
    let machines = if row.machines.is_empty() {
        String::new()
    } else {
        format!("  used by {}", row.machines.join(", "))
    };
    format!(
        "  {name:<48} {:>10}  {status:<22} {images}{machines}",
        bytes(row.size)
    )
}

fn group_by_dir(rows: &[ListedFile]) -> Vec<(PathBuf, Vec<&ListedFile>)> {
    let mut out: Vec<(PathBuf, Vec<&ListedFile>)> = Vec::new();
    for row in rows {
        let dir = row.path.parent().map(PathBuf::from).unwrap_or_default();
        match out.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, group)) => group.push(row),
            None => out.push((dir, vec![row])),
        }
    }
    out
}

fn clean(set: &ImageSet, force: bool, printer: &Printer) -> Result<ExitCode, CliError> {
    let (domain_files, problems) = crate::observe::disks::domain_files_on(&set.uris);
    for problem in &problems {
        printer.error(&format!("warning: {problem}"));
    }
    let plan =
        clean::plan(set, domain_files.as_ref()).map_err(|e| CliError::Other(e.to_string()))?;
    for dir in &plan.dirs {
        clean_dir(dir, force, printer)?;
    }
    let verb = if force { "removed" } else { "would free" };
    let hint = if force || plan.files() == 0 {
        ""
    } else {
        "; run `lvlab images clean --force` to remove them"
    };
    printer.out(&format!(
        "{} files, {verb} {}{hint}",
        plan.files(),
        bytes(plan.bytes())
    ));
    Ok(ExitCode::SUCCESS)
}

/// One directory: what stays in use, then what goes (or would).
fn clean_dir(dir: &DirCleanup, force: bool, printer: &Printer) -> Result<(), CliError> {
    for kept in &dir.kept {
        let users = match &kept.users {
            InUse::By(users) => users.join(", "),
            InUse::Unknown => "(unknown: libvirt could not be asked)".to_string(),
        };
        printer.out(&format!(
            "keep   {} ({}, but in use by {users})",
            kept.path.display(),
            reason_text(&kept.reason)
        ));
    }
    if !force {
        for removal in &dir.removals {
            printer.out(&format!(
                "would remove {} ({})",
                removal.path.display(),
                reason_text(&removal.reason)
            ));
        }
        return Ok(());
    }
    dir.apply(|removal| {
        printer.out(&format!(
            "removed {} ({})",
            removal.path.display(),
            reason_text(&removal.reason)
        ))
    })
    .map_err(|e| CliError::Other(e.to_string()))
}

fn reason_text(reason: &RemovalReason) -> String {
    match reason {
        RemovalReason::Unclaimed => "no image in the manifest claims it".into(),
        RemovalReason::Superseded { image_file } => format!("superseded by a newer {image_file}"),
        RemovalReason::FailedVerification => "failed verification".into(),
        RemovalReason::UnfinishedDownload => "unfinished download of an unclaimed image".into(),
        RemovalReason::BelongsToUnclaimed { image_file } => {
            format!("belongs to the unclaimed {image_file}")
        }
    }
}
