//! `lvlab hosts`: the lab's name/address lines for `/etc/hosts`, printed,
//! as a shell heredoc, or put into a file as a marked block that the next
//! run replaces. What the lines are is [`crate::access::hosts`]'.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, GlobalArgs, Printer};
use crate::access::hosts;

#[derive(Debug, Args)]
pub struct HostsArgs {
    /// Machines to list (default: all)
    #[arg(value_name = "VM")]
    pub vms: Vec<String>,

    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Put the lines into FILE (e.g. /etc/hosts) as a block marked
    /// `# BEGIN lvlab ENV` ... `# END lvlab ENV`, replacing the block a
    /// previous run put there; atomically, keeping the file's mode and owner
    #[arg(long, value_name = "FILE", conflicts_with_all = ["heredoc", "json"])]
    pub append: Option<PathBuf>,

    /// Print a shell command that appends the marked blocks to /etc/hosts
    #[arg(long, conflicts_with = "json")]
    pub heredoc: bool,

    /// Print JSON: one object per line (address, fqdn, hostname, machine)
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, args: &HostsArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let reaches = super::ssh::gather(global, args.env.clone(), &args.vms)?;
    let environments = hosts::environments(&reaches);
    let lines = hosts::lines(&environments, &reaches).map_err(CliError::Other)?;
    if args.json {
        printer.out(&serde_json::to_string_pretty(&lines).expect("lines serialize"));
    } else if let Some(file) = &args.append {
        hosts::append_to(file, &environments, &lines).map_err(CliError::Other)?;
        printer.out(&format!(
            "{} address line(s) of {} in {}",
            lines.len(),
            environments.join(", "),
            file.display()
        ));
    } else if args.heredoc {
        printer.out(hosts::heredoc(&environments, &lines).trim_end());
    } else {
        printer.out(hosts::plain(&environments, &lines).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
