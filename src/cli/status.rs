//! `lvlab status`: each machine's state and how to reach it, and whether
//! its image is cached ([`crate::observe::status`]), as a table or JSON.
//! Without a manifest, a landing page that says how to start.

use std::process::ExitCode;

use clap::Args;

use super::reconcile_args::Session;
use super::{CliError, GlobalArgs, Printer};
use crate::observe::status::MachineStatus;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    if super::manifest_here(global).is_none() {
        // A script asked for JSON: no manifest means no machines.
        printer.out(if args.json { "[]" } else { LANDING.trim_end() });
        return Ok(ExitCode::SUCCESS);
    }
    let session = Session::load(global, args.env.clone())?;
    let rows = session.lab()?.status()?;
    if args.json {
        printer.out(&serde_json::to_string_pretty(&rows).expect("rows serialize"));
    } else {
        printer.out(table(&rows).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[MachineStatus]) -> String {
    let with_shares = rows.iter().any(|r| !r.mount_tags.is_empty());
    let mut header = vec![
        "ENVIRONMENT",
        "MACHINE",
        "DOMAIN",
        "STATE",
        "CPU",
        "MEMORY",
        "ADDRESS",
        "SSH",
        "UPTIME",
        "IMAGE",
    ];
    if with_shares {
        header.push("SHARES");
    }
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.environment.clone(),
                r.machine.clone(),
                r.domain.clone(),
                r.state.clone(),
                r.vcpus.map_or_else(dash, |v| v.to_string()),
                r.memory_mib.map_or_else(dash, |m| format!("{m} MiB")),
                if r.addresses.is_empty() {
                    dash()
                } else {
                    r.addresses.join(",")
                },
                r.ssh.clone().unwrap_or_else(dash),
                r.uptime_seconds.map_or_else(dash, human_duration),
                format!(
                    "{} ({})",
                    r.image,
                    if r.image_cached {
                        "cached"
                    } else {
                        "not cached"
                    }
                ),
            ];
            if with_shares {
                row.push(if r.mount_tags.is_empty() {
                    dash()
                } else {
                    r.mount_tags.join(",")
                });
            }
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cols: Vec<&str>| {
        cols.iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header) + "\n";
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

fn human_duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

const LANDING: &str = "\
No Lvlab.yml here.

lvlab turns an Lvlab.yml manifest into libvirt lab VMs. To start:
  - copy examples/demo/Lvlab.yml (a lab that runs without internet) or
    examples/full/Lvlab.yml (every feature) from lvlab's repository;
  - lvlab validate       check it
  - lvlab plan           see what would be created
  - lvlab up --all       create and start every machine
  - lvlab status         see them
Name another manifest with -f FILE.
";
