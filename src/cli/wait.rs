//! `--wait`: its arguments, and the bridge from the library's wait for SSH
//! ([`crate::observe::ssh_wait`]) to the operation's [`Ui`].

use std::time::Duration;

use clap::Args;

use crate::desired::MachineSpec;
use crate::host::SshEndpoint;
use crate::observe::ssh_wait::{self, WaitReporter};
use crate::reconcile::{Lab, SshWait, Ui};

#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// After applying, wait until every started machine answers on SSH
    #[arg(long)]
    pub wait: bool,

    /// How long --wait, and a provisioning, waits for SSH (software
    /// emulation boots slowly)
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait_timeout: u64,
}

impl WaitArgs {
    /// These arguments when `--wait` was given.
    pub fn requested(&self) -> Option<&dyn SshWait> {
        self.wait.then_some(self as &dyn SshWait)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.wait_timeout)
    }
}

impl SshWait for WaitArgs {
    /// Waits for the given machines' SSH (every selected one when
    /// `vm_names` is empty); an error lists those not ready.
    fn wait(&self, lab: &Lab, vm_names: &[String], ui: &dyn Ui) -> Result<(), String> {
        let machines: Vec<_> = lab
            .environments
            .iter()
            .flat_map(|env| {
                let host = lab.hosts.get(&env.libvirt_uri);
                env.machines.iter().map(move |machine| (host, machine))
            })
            .filter(|(_, m)| vm_names.is_empty() || vm_names.contains(&m.vm_name))
            .collect();
        ssh_wait::wait_for_ssh(&machines, self.timeout(), &ToUi(ui)).map_err(|err| err.to_string())
    }
}

/// The wait's news, told to the operation's view.
struct ToUi<'a>(&'a dyn Ui);

impl WaitReporter for ToUi<'_> {
    fn no_endpoint(&self, machine: &MachineSpec) {
        self.0.ssh_no_endpoint(&machine.vm_name);
    }

    fn answered(&self, machine: &MachineSpec, endpoint: &SshEndpoint, after: Duration) {
        let connect = endpoint.command(&machine.cloud_init.user);
        self.0.ssh_ready(&machine.vm_name, after, &connect);
    }

    fn still_waiting(&self, machines: &[&str], elapsed: Duration) {
        self.0.ssh_waiting(machines, elapsed);
    }
}
