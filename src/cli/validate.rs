//! `lvlab validate`: load the manifest, report every problem, or summarize
//! what it describes.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{CliError, GlobalArgs, Printer};
use crate::desired::{Desired, EnvironmentSpec, ImageSpec, SettingsFile};
use crate::manifest;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Print every machine fully resolved, and which settings file supplied
    /// which value (YAML, or JSON with --json)
    #[arg(long)]
    pub show_resolved: bool,

    /// JSON instead of YAML or text
    #[arg(long)]
    pub json: bool,
}

/// The selected part of the desired state, as `--show-resolved` prints it.
#[derive(Serialize)]
struct Resolved<'a> {
    manifest: &'a std::path::Path,
    /// Which settings file supplied which value; the rest is the manifest's.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    settings_files: &'a [SettingsFile],
    environments: Vec<&'a EnvironmentSpec>,
    images: Vec<&'a ImageSpec>,
}

#[derive(Serialize)]
struct Summary<'a> {
    environment: &'a str,
    libvirt_uri: &'a str,
    machines: Vec<&'a str>,
    images: Vec<&'a str>,
}

pub fn run(
    global: &GlobalArgs,
    args: &ValidateArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let path = manifest::manifest_path(global.file.as_deref());
    let desired = super::load_manifest(&path, global.config.as_deref(), global.connect.as_deref())?;
    let environments = desired
        .environments(args.env.as_deref())
        .map_err(CliError::Other)?;
    let text = if args.show_resolved {
        let resolved = Resolved {
            manifest: &desired.manifest_path,
            settings_files: &desired.settings_files,
            images: desired.used_images(&environments),
            environments,
        };
        to_text(&resolved, args.json)?
    } else {
        let summaries: Vec<Summary> = environments
            .iter()
            .map(|env| summarize(&desired, env))
            .collect();
        if args.json {
            to_text(&summaries, true)?
        } else {
            summary_lines(&path, &desired.settings_files, &summaries)
        }
    };
    printer.out(text.trim_end());
    Ok(ExitCode::SUCCESS)
}

fn summarize<'a>(desired: &'a Desired, env: &'a EnvironmentSpec) -> Summary<'a> {
    Summary {
        environment: &env.name,
        libvirt_uri: &env.libvirt_uri,
        machines: env.machines.iter().map(|m| m.vm_name.as_str()).collect(),
        images: desired
            .used_images(&[env])
            .into_iter()
            .map(|i| i.key.as_str())
            .collect(),
    }
}

fn summary_lines(
    path: &std::path::Path,
    settings: &[SettingsFile],
    summaries: &[Summary],
) -> String {
    let mut out = format!("{}: valid\n", path.display());
    for file in settings {
        out.push_str(&format!(
            "  with settings from {} ({}, {} values)\n",
            file.path.display(),
            file.layer.describe(),
            file.supplies.len()
        ));
    }
    for s in summaries {
        let count = s.machines.len();
        let plural = if count == 1 { "" } else { "s" };
        out.push_str(&format!(
            "  {} ({}): {count} machine{plural} [{}], images [{}]\n",
            s.environment,
            s.libvirt_uri,
            s.machines.join(", "),
            s.images.join(", ")
        ));
    }
    out
}

fn to_text<T: Serialize>(value: &T, json: bool) -> Result<String, CliError> {
    let text = if json {
        serde_json::to_string_pretty(value).map_err(|e| CliError::Other(e.to_string()))?
    } else {
        serde_yaml::to_string(value).map_err(|e| CliError::Other(e.to_string()))?
    };
    Ok(text)
}
