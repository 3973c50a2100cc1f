//! `lvlab ssh VM [-- CMD...]`: log into a machine with the system's ssh
//! (lvlab becomes that ssh, so its exit code is lvlab's); `lvlab
//! ssh-config`: `Host` blocks for `~/.ssh/config`. What to run and print
//! is [`crate::access`]'s.

use std::process::ExitCode;

use clap::Args;

use super::reconcile_args::Session;
use super::{CliError, GlobalArgs, Printer};
use crate::access::{self, MachineReach};
use crate::escape::shell_quote;

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The machine's vm_name
    #[arg(value_name = "VM")]
    pub vm: String,

    /// The machine's environment (needed when several use the name)
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Print the ssh command line (shell-quoted) instead of running it
    #[arg(long)]
    pub print: bool,

    /// A command to run instead of a login shell (after `--`; the remote
    /// user's shell runs it, as with ssh)
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// Machines to print blocks for (default: all)
    #[arg(value_name = "VM")]
    pub vms: Vec<String>,

    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Check each machine's host key against the one lvlab made for it,
    /// instead of the ephemeral-lab defaults (no check, no known_hosts)
    #[arg(long)]
    pub strict_host_keys: bool,

    /// Print JSON: each machine's user, endpoint, key and known_hosts
    #[arg(long)]
    pub json: bool,
}

pub fn ssh(global: &GlobalArgs, args: &SshArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let session = Session::load(global, args.env.clone())?;
    let machine = session
        .desired
        .machine(&args.vm, args.env.as_deref())
        .map_err(CliError::Other)?;
    let argv = access::ssh::command_for(&session.desired, machine, &args.command)?;
    if args.print {
        let words: Vec<String> = argv
            .iter()
            .map(|w| shell_quote(&w.to_string_lossy()))
            .collect();
        printer.out(&words.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    Err(exec(&argv))
}

/// Becomes ssh; returns only when that failed.
fn exec(argv: &[std::ffi::OsString]) -> CliError {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    CliError::Other(format!(
        "cannot run {}: {err}\n  hint: install OpenSSH's client (Debian: apt install openssh-client)",
        access::ssh::SSH
    ))
}

pub fn ssh_config(
    global: &GlobalArgs,
    args: &SshConfigArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let reaches = gather(global, args.env.clone(), &args.vms)?;
    if args.json {
        printer.out(&serde_json::to_string_pretty(&reaches).expect("reaches serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    let config =
        access::ssh_config::render(&reaches, args.strict_host_keys).map_err(CliError::Other)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if !config.text.is_empty() {
        printer.out(&config.text);
    }
    Ok(ExitCode::SUCCESS)
}

/// The named machines (all when none is named) of the selected
/// environments, with what libvirt says of them now.
pub(super) fn gather(
    global: &GlobalArgs,
    env: Option<String>,
    vms: &[String],
) -> Result<Vec<MachineReach>, CliError> {
    let session = Session::load(global, env)?;
    session.require_machines(vms)?;
    let lab = session.lab()?;
    Ok(access::gather(&lab, vms)?)
}
