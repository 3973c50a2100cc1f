//! `lvlab status`: each machine's state and how to reach it, and whether
//! its image is cached. Without a manifest, a landing page that says how to
//! start.

mod table;

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::reconcile_args::Session;
use super::{CliError, GlobalArgs, Printer};
use crate::desired::{EnvironmentSpec, MachineSpec};
use crate::observe::{runtime, ObservedEnvironment};

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

#[derive(Serialize)]
struct MachineStatus {
    environment: String,
    machine: String,
    domain: String,
    state: String,
    vcpus: Option<u32>,
    memory_mib: Option<u64>,
    /// Guest addresses from DHCP leases or the guest agent.
    addresses: Vec<String>,
    /// Where the guest's SSH answers (`127.0.0.1:PORT` for a passt forward,
    /// `ADDRESS:22` for a static address), while it runs.
    ssh: Option<String>,
    uptime_seconds: Option<u64>,
    image: String,
    image_cached: bool,
    /// virtiofs tags the guest can mount.
    mount_tags: Vec<String>,
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
    let lab = session.lab()?;
    let observed = lab.observe()?;
    let mut rows = Vec::new();
    for env in &lab.environments {
        let Some(seen) = observed.environment(&env.name) else {
            continue;
        };
        for machine in &env.machines {
            let host = lab.hosts.get(&env.libvirt_uri);
            let files = seen.files(&machine.vm_name);
            let deployed = seen.domain(&machine.domain_name).is_some();
            let runtime = deployed
                .then(|| runtime::read(host, &machine.domain_name))
                .flatten();
            rows.push(MachineStatus {
                environment: env.name.clone(),
                machine: machine.vm_name.clone(),
                domain: machine.domain_name.clone(),
                state: state(env, seen, machine),
                vcpus: runtime.as_ref().map(|r| r.vcpus),
                memory_mib: runtime.as_ref().map(|r| r.memory_mib),
                addresses: runtime
                    .as_ref()
                    .map(|r| r.addresses.clone())
                    .unwrap_or_default(),
                ssh: runtime
                    .as_ref()
                    .and_then(|r| r.uptime)
                    .and(host.ssh_endpoint(machine, files))
                    .map(|e| e.address.to_string()),
                uptime_seconds: runtime.as_ref().and_then(|r| r.uptime).map(|d| d.as_secs()),
                image: machine.os.clone(),
                image_cached: observed
                    .images
                    .get(&machine.image_path)
                    .is_some_and(|i| i.present),
                mount_tags: machine
                    .shared_directories
                    .iter()
                    .map(|d| d.mount_tag.clone())
                    .collect(),
            });
        }
    }
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

fn state(spec: &EnvironmentSpec, env: &ObservedEnvironment, machine: &MachineSpec) -> String {
    let Some(domain) = env.domain(&machine.domain_name) else {
        return "undeployed".into();
    };
    let label = domain.state.label();
    match &domain.mark {
        None => format!("{label} (not lvlab's)"),
        Some(mark) if !spec.owns_machine(mark, machine) => format!("{label} (another lab's)"),
        Some(_) => label.into(),
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
