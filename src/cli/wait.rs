//! `--wait`: its arguments, and the lines that say which machine answers
//! on SSH and how to connect. The waiting is
//! [`crate::observe::ssh_wait`]'s.

use std::time::Duration;

use clap::Args;

use super::{CliError, Printer};
use crate::desired::MachineSpec;
use crate::host::SshEndpoint;
use crate::observe::ssh_wait::{self, WaitReporter};
use crate::reconcile::Lab;

#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// After applying, wait until every started machine answers on SSH
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits (software emulation boots slowly)
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait_timeout: u64,
}

impl WaitArgs {
    /// These arguments when `--wait` was given.
    pub fn requested(&self) -> Option<WaitArgs> {
        self.wait.then(|| self.clone())
    }
}

/// Waits for the given machines' SSH (every selected one when `vm_names`
/// is empty); an error lists those not ready.
pub fn wait_for_ssh(
    lab: &Lab,
    vm_names: &[String],
    args: &WaitArgs,
    printer: &Printer,
) -> Result<(), CliError> {
    let machines: Vec<_> = lab
        .environments
        .iter()
        .flat_map(|env| {
            let host = lab.hosts.get(&env.libvirt_uri);
            env.machines.iter().map(move |machine| (host, machine))
        })
        .filter(|(_, m)| vm_names.is_empty() || vm_names.contains(&m.vm_name))
        .collect();
    let timeout = Duration::from_secs(args.wait_timeout);
    ssh_wait::wait_for_ssh(&machines, timeout, &Lines(printer))
        .map_err(|err| CliError::Other(err.to_string()))
}

/// The wait's news as lines on stdout.
struct Lines<'a>(&'a Printer);

impl WaitReporter for Lines<'_> {
    fn no_endpoint(&self, machine: &MachineSpec) {
        self.0.out(&format!(
            "{}: no SSH endpoint lvlab can reach (use a passt NIC with ssh_port, or a static address); not waiting",
            machine.vm_name
        ));
    }

    fn answered(&self, machine: &MachineSpec, endpoint: &SshEndpoint, after: Duration) {
        self.0.out(&format!(
            "{} answers on SSH after {}s: {}",
            machine.vm_name,
            after.as_secs(),
            endpoint.command(&machine.cloud_init.user)
        ));
    }

    fn still_waiting(&self, machines: &[&str], elapsed: Duration) {
        self.0.out(&format!(
            "waiting for SSH on {}... [{}s elapsed]",
            machines.join(", "),
            elapsed.as_secs()
        ));
    }
}
