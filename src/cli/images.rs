//! `lvlab images list` and `lvlab images clean`: what the image caches hold,
//! and removing what no image claims any more.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::image_set::{self, ImageSet};
use super::progress::bytes;
use super::{CliError, GlobalArgs, Printer};
use crate::images::cache::{self, CacheFile, CacheFileKind};
use crate::images::record::{self, ImageRecord};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Every file in the image caches: which image, size, verified or not,
    /// used by which machines
    List {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove cached files no image claims (dry run unless --force); never
    /// a file a defined domain's disk uses
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
    let set = image_set::load(global)?;
    match &args.command {
        ImagesCommand::List { json } => list(&set, *json, printer),
        ImagesCommand::Clean { force } => clean(&set, *force, printer),
    }
}

#[derive(Debug, Serialize)]
struct Row {
    path: PathBuf,
    size: u64,
    /// image, record, verification, partial, rejected, temporary, foreign
    kind: &'static str,
    /// Image keys this file belongs to.
    images: Vec<String>,
    /// For images: whether it is the file its image key means now.
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
    machines: Vec<String>,
}

/// One cache directory: its files and the records among them.
type ScannedDir = (PathBuf, Vec<CacheFile>, Vec<(String, ImageRecord)>);

fn scan(set: &ImageSet) -> Result<Vec<ScannedDir>, CliError> {
    let mut out = Vec::new();
    for dir in set.cache_dirs() {
        let (files, records) = cache::scan(&dir)
            .map_err(|e| CliError::Other(format!("cannot read {}: {e}", dir.display())))?;
        out.push((dir, files, records.into_iter().collect()));
    }
    Ok(out)
}

fn rows(set: &ImageSet) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    for (dir, files, records) in scan(set)? {
        let claimants = |image_file: &str| {
            set.images
                .iter()
                .filter(|i| i.cache_dir == dir && i.spec.file_name == image_file)
                .collect::<Vec<_>>()
        };
        for file in files {
            let (kind, image_file, current) = match &file.kind {
                CacheFileKind::Image {
                    image_file,
                    current,
                } => ("image", Some(image_file.as_str()), Some(*current)),
                CacheFileKind::Record { image_file } => ("record", Some(image_file.as_str()), None),
                CacheFileKind::Verification { image_file } => {
                    ("verification", Some(image_file.as_str()), None)
                }
                CacheFileKind::Partial => ("partial", None, None),
                CacheFileKind::Rejected => ("rejected", None, None),
                CacheFileKind::Temporary => ("temporary", None, None),
                CacheFileKind::Foreign => ("foreign", None, None),
            };
            let owners = image_file.map(claimants).unwrap_or_default();
            let verified = match (&file.kind, image_file) {
                (CacheFileKind::Image { .. }, Some(image_file)) => records
                    .iter()
                    .find(|(name, _)| name == image_file)
                    .and_then(|(_, r)| r.files.get(&file.name))
                    .map(|f| f.verified),
                _ => None,
            };
            let machines = if current == Some(true) {
                owners.iter().flat_map(|i| i.machines.clone()).collect()
            } else {
                Vec::new()
            };
            rows.push(Row {
                path: file.path.clone(),
                size: file.size,
                kind,
                images: owners.iter().map(|i| i.spec.key.clone()).collect(),
                current,
                verified,
                machines,
            });
        }
    }
    Ok(rows)
}

fn list(set: &ImageSet, json: bool, printer: &Printer) -> Result<ExitCode, CliError> {
    let rows = rows(set)?;
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
            let name = row
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let status = match (row.kind, row.verified, row.current) {
                ("image", Some(true), Some(true)) => "verified".to_string(),
                ("image", Some(false), Some(true)) => "UNVERIFIED".to_string(),
                ("image", Some(true), Some(false)) => "verified, superseded".to_string(),
                ("image", _, _) => "image, superseded".to_string(),
                (kind, _, _) => kind.to_string(),
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
            printer.out(&format!(
                "  {name:<48} {:>10}  {status:<22} {images}{machines}",
                bytes(row.size)
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn group_by_dir(rows: &[Row]) -> Vec<(PathBuf, Vec<&Row>)> {
    let mut out: Vec<(PathBuf, Vec<&Row>)> = Vec::new();
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
    let (domain_files, problems) = image_set::domain_files(&set.uris);
    for problem in &problems {
        printer.error(&format!("warning: {problem}"));
    }
    let mut freed = 0u64;
    let mut count = 0usize;
    for (dir, files, records) in scan(set)? {
        let claimed: BTreeSet<&str> = set
            .images
            .iter()
            .filter(|i| i.cache_dir == dir)
            .filter(|i| {
                records
                    .iter()
                    .find(|(name, _)| *name == i.spec.file_name)
                    .is_none_or(|(_, r)| r.source == i.spec.source.to_string())
            })
            .map(|i| i.spec.file_name.as_str())
            .collect();
        let mut remove: Vec<(&CacheFile, String)> = Vec::new();
        let mut kept_records: BTreeSet<&str> = BTreeSet::new();
        for file in &files {
            let reason = match &file.kind {
                CacheFileKind::Image {
                    image_file,
                    current,
                } => {
                    if !claimed.contains(image_file.as_str()) {
                        Some("no image in the manifest claims it".to_string())
                    } else if !current {
                        Some(format!("superseded by a newer {image_file}"))
                    } else {
                        None
                    }
                }
                CacheFileKind::Rejected => Some("failed verification".into()),
                CacheFileKind::Partial => {
                    let image = file.name.trim_end_matches(cache::PARTIAL);
                    (!claimed
                        .iter()
                        .any(|c| image == *c || image.starts_with(&stem(c))))
                    .then(|| "unfinished download of an unclaimed image".into())
                }
                _ => None,
            };
            let Some(reason) = reason else { continue };
            if matches!(file.kind, CacheFileKind::Image { .. }) {
                let users = match &domain_files {
                    None => Some(vec!["(unknown: libvirt could not be asked)".to_string()]),
                    Some(map) => {
                        let canonical =
                            std::fs::canonicalize(&file.path).unwrap_or(file.path.clone());
                        map.get(&canonical).cloned()
                    }
                };
                if let Some(users) = users {
                    printer.out(&format!(
                        "keep   {} ({reason}, but in use by {})",
                        file.path.display(),
                        users.join(", ")
                    ));
                    if let CacheFileKind::Image { image_file, .. } = &file.kind {
                        kept_records.insert(image_file.as_str());
                    }
                    continue;
                }
            }
            remove.push((file, reason));
        }
        // Records and verification files go with the last image they describe.
        for (image_file, _) in &records {
            let unclaimed = !claimed.contains(image_file.as_str());
            if unclaimed && !kept_records.contains(image_file.as_str()) {
                for file in &files {
                    let owned = matches!(&file.kind,
                        CacheFileKind::Record { image_file: f } | CacheFileKind::Verification { image_file: f }
                        if f == image_file);
                    if owned && !claimed_elsewhere(file, &records, &claimed) {
                        remove.push((file, format!("belongs to the unclaimed {image_file}")));
                    }
                }
            }
        }
        for (file, reason) in &remove {
            freed += file.size;
            count += 1;
            if force {
                std::fs::remove_file(&file.path).map_err(|e| {
                    CliError::Other(format!("cannot remove {}: {e}", file.path.display()))
                })?;
                printer.out(&format!("removed {} ({reason})", file.path.display()));
            } else {
                printer.out(&format!("would remove {} ({reason})", file.path.display()));
            }
        }
        if force {
            forget_removed(&dir, &records, &remove);
        }
    }
    let verb = if force { "removed" } else { "would free" };
    let hint = if force || count == 0 {
        ""
    } else {
        "; run `lvlab images clean --force` to remove them"
    };
    printer.out(&format!("{count} files, {verb} {}{hint}", bytes(freed)));
    Ok(ExitCode::SUCCESS)
}

/// The stem a versioned name starts with (`d.qcow2` -> `d-`).
fn stem(file: &str) -> String {
    match file.rsplit_once('.') {
        Some((stem, _)) => format!("{stem}-"),
        None => format!("{file}-"),
    }
}

/// A verification file (a shared key file) another claimed record still names.
fn claimed_elsewhere(
    file: &CacheFile,
    records: &[(String, ImageRecord)],
    claimed: &BTreeSet<&str>,
) -> bool {
    records
        .iter()
        .filter(|(name, _)| claimed.contains(name.as_str()))
        .flat_map(|(_, r)| r.files.values())
        .any(|f| {
            f.checksum.as_ref().is_some_and(|c| c.file == file.name)
                || f.signature.as_ref().is_some_and(|s| {
                    s.keys_file.as_deref() == Some(&file.name)
                        || s.signature_file.as_deref() == Some(&file.name)
                })
        })
}

/// Drops removed superseded files from the records that stay.
fn forget_removed(
    dir: &std::path::Path,
    records: &[(String, ImageRecord)],
    removed: &[(&CacheFile, String)],
) {
    for (image_file, rec) in records {
        let mut rec = rec.clone();
        let before = rec.files.len();
        rec.files
            .retain(|name, _| !removed.iter().any(|(f, _)| f.name == *name));
        let record_removed = removed
            .iter()
            .any(|(f, _)| f.name == format!("{image_file}{}", record::SUFFIX));
        if rec.files.len() != before && !record_removed {
            if let Err(err) = record::save(dir, image_file, &rec) {
                tracing::warn!("cannot update the record of {image_file}: {err}");
            }
        }
    }
}
