//! `lvlab status`: each machine's state and how to reach it, and whether
//! its image is cached ([`crate::observe::status`]), as a table that fits
//! the terminal (`-o wide`: every column) or JSON. Without a manifest, a
//! landing page that says how to start.

mod table;

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::reconcile_args::Session;
use super::{CliError, GlobalArgs, Printer};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// `wide`: every column (domain, vCPUs, memory, every address, SSH,
    /// image, shares), none cut to fit the terminal
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        value_enum,
        conflicts_with = "json"
    )]
    pub output: Option<TableFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Wide,
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
        let options = table::TableOptions {
            wide: args.output == Some(TableFormat::Wide),
            terminal_width: printer.stdout_columns(),
            color: printer.color_stdout(),
        };
        printer.out(table::render(&rows, &options).trim_end());
    }
    Ok(ExitCode::SUCCESS)
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
