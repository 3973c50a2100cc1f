//! `lvlab images list` and `lvlab images clean`: renders what the image
//! caches hold ([`crate::images::listing`]) and the plan of what can go
//! ([`crate::images::clean`]), and removes it on `--force`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::image_set;
use super::progress::bytes;
use super::{CliError, GlobalArgs, Printer};
use crate::desired::Desired;
use crate::host::Hosts;
use crate::images::clean::{self, DirCleanup, InUse, RemovalReason};
use crate::images::listing::{self, FileKind, ListedFile};
use crate::images::on_hosts::{self, HostImage};
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
    let loaded = image_set::load(global)?;
    let (set, desired) = (&loaded.set, &loaded.desired);
    match &args.command {
        ImagesCommand::List { json } => list(set, desired, *json, printer),
        ImagesCommand::Clean { force } => clean(set, desired, *force, printer),
    }
}

/// The images uploaded to the manifest's hosts (opened once, in `hosts`);
/// a host that cannot be opened or read is a warning (the caches are
/// still listed and cleaned).
fn host_images(desired: &Desired, printer: &Printer) -> (Vec<HostImage>, Hosts) {
    let (hosts, mut problems) = on_hosts::open_hosts(desired);
    let (images, unread) = on_hosts::list(desired, &hosts);
    problems.extend(unread);
    for problem in problems {
        printer.error(&format!("warning: {problem}"));
    }
    (images, hosts)
}

fn list(
    set: &ImageSet,
    desired: &Desired,
    json: bool,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let mut rows = listing::list(set).map_err(|e| CliError::Other(e.to_string()))?;
    let (on_hosts, _) = host_images(desired, printer);
    if json {
        rows.extend(on_hosts.iter().map(host_row));
        let text =
            serde_json::to_string_pretty(&rows).map_err(|e| CliError::Other(e.to_string()))?;
        printer.out(&text);
        return Ok(ExitCode::SUCCESS);
    }
    print_host_images(&on_hosts, printer);
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

/// An uploaded image as a row of `images list --json`.
fn host_row(image: &HostImage) -> ListedFile {
    ListedFile {
        path: image.path.clone(),
        size: image.size,
        kind: FileKind::Image,
        images: image.images.clone(),
        current: None,
        verified: None,
        machines: image.machines.clone(),
        host: Some(image.uri.clone()),
    }
}

/// Per host and images pool, each uploaded image.
fn print_host_images(images: &[HostImage], printer: &Printer) {
    let mut heading = None;
    for image in images {
        let dir = image.path.parent().unwrap_or(Path::new("/"));
        let this = format!("{} {}:", crate::plan::host_label(&image.uri), dir.display());
        if heading.as_ref() != Some(&this) {
            printer.out(&this);
            heading = Some(this);
        }
        printer.out(&list_line(&host_row(image)));
    }
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
        (FileKind::Image, None, None) => "uploaded",
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

fn clean(
    set: &ImageSet,
    desired: &Desired,
    force: bool,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let (domain_files, problems) = crate::observe::disks::domain_files_on(&set.uris);
    for problem in &problems {
        printer.error(&format!("warning: {problem}"));
    }
    let plan =
        clean::plan(set, domain_files.as_ref()).map_err(|e| CliError::Other(e.to_string()))?;
    for dir in &plan.dirs {
        clean_dir(dir, force, printer)?;
    }
    let (unused, hosts) = unused_host_images(desired, domain_files.as_ref(), printer);
    for image in &unused {
        clean_host_image(image, &hosts, force, printer)?;
    }
    let files = plan.files() + unused.len();
    let size = plan.bytes() + unused.iter().map(|i| i.size).sum::<u64>();
    let verb = if force { "removed" } else { "would free" };
    let hint = if force || files == 0 {
        ""
    } else {
        "; run `lvlab images clean --force` to remove them"
    };
    printer.out(&format!("{files} files, {verb} {}{hint}", bytes(size)));
    Ok(ExitCode::SUCCESS)
}

/// The uploaded images no machine of the manifest on their host boots and
/// no domain's disk there uses (none when the domains could not be read),
/// and their hosts, to remove them through.
fn unused_host_images(
    desired: &Desired,
    domain_files: Option<&crate::images::DomainFiles>,
    printer: &Printer,
) -> (Vec<HostImage>, Hosts) {
    let Some(domain_files) = domain_files else {
        return (Vec::new(), Hosts::default());
    };
    let (images, hosts) = host_images(desired, printer);
    let unused = images
        .into_iter()
        .filter(|image| image.machines.is_empty())
        .filter(|image| {
            let on_host = format!("({})", image.uri);
            let users = domain_files.get(&image.path);
            let used = users.is_some_and(|u| u.iter().any(|user| user.ends_with(&on_host)));
            if used {
                printer.out(&format!(
                    "keep   {} {} (in use by {})",
                    crate::plan::host_label(&image.uri),
                    image.path.display(),
                    users.map(|u| u.join(", ")).unwrap_or_default()
                ));
            }
            !used
        })
        .collect();
    (unused, hosts)
}

fn clean_host_image(
    image: &HostImage,
    hosts: &Hosts,
    force: bool,
    printer: &Printer,
) -> Result<(), CliError> {
    let host = crate::plan::host_label(&image.uri);
    let path = image.path.display();
    let why = "no machine on that host boots it";
    if !force {
        printer.out(&format!("would remove {host} {path} ({why})"));
        return Ok(());
    }
    on_hosts::remove(hosts, image).map_err(CliError::Other)?;
    printer.out(&format!("removed {host} {path} ({why})"));
    Ok(())
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
