//! `lvlab status`'s facts: each selected machine's state (and whose its
//! domain is), its resources and addresses while it runs, where its SSH
//! answers and whether its image is cached. Reads only.

use serde::Serialize;

use super::{runtime, Observed, ObservedEnvironment};
use crate::desired::{EnvironmentSpec, MachineSpec};
use crate::host::Hosts;

#[derive(Debug, Serialize)]
pub struct MachineStatus {
    pub environment: String,
    /// The libvirt URI the machine is placed on.
    pub host: String,
    pub machine: String,
    pub domain: String,
    pub state: String,
    pub vcpus: Option<u32>,
    pub memory_mib: Option<u64>,
    /// Guest addresses from DHCP leases or the guest agent.
    pub addresses: Vec<String>,
    /// Where the guest's SSH answers (`127.0.0.1:PORT` for a passt forward,
    /// `ADDRESS:22` for a static address; `... via HOST` on a remote
    /// host), while it runs.
    pub ssh: Option<String>,
    /// The `ProxyCommand` that reaches [`Self::ssh`] from here, when the
    /// machine's host is another machine (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_proxy_command: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub image: String,
    pub image_cached: bool,
    /// virtiofs tags the guest can mount.
    pub mount_tags: Vec<String>,
}

/// Every machine of `environments`, in manifest order, as `observed` and
/// each machine's host see it now.
pub fn machines(
    environments: &[&EnvironmentSpec],
    observed: &Observed,
    hosts: &Hosts,
) -> Vec<MachineStatus> {
    let mut rows = Vec::new();
    for env in environments {
        for machine in &env.machines {
            rows.push(match observed.of(machine) {
                Some(seen) => machine_status(env, seen, observed, hosts, machine),
                None => unreachable(machine),
            });
        }
    }
    rows
}

/// A machine whose host could not be opened: only the manifest's facts.
fn unreachable(machine: &MachineSpec) -> MachineStatus {
    MachineStatus {
        environment: machine.environment.clone(),
        host: machine.libvirt_uri.clone(),
        machine: machine.vm_name.clone(),
        domain: machine.domain_name.clone(),
        state: "unreachable".into(),
        vcpus: None,
        memory_mib: None,
        addresses: Vec::new(),
        ssh: None,
        ssh_proxy_command: None,
        uptime_seconds: None,
        image: machine.os.clone(),
        image_cached: false,
        mount_tags: Vec::new(),
    }
}

fn machine_status(
    env: &EnvironmentSpec,
    seen: &ObservedEnvironment,
    observed: &Observed,
    hosts: &Hosts,
    machine: &MachineSpec,
) -> MachineStatus {
    let host = hosts.of(machine);
    let files = seen.files(&machine.vm_name);
    let deployed = seen.domain(&machine.domain_name).is_some();
    let runtime = deployed
        .then(|| runtime::read(host, &machine.domain_name))
        .flatten();
    // Only a running guest answers; its uptime may be unknown (a remote
    // host's is).
    let running = seen
        .domain(&machine.domain_name)
        .is_some_and(|d| d.state == super::PowerState::Running);
    let ssh = running.then(|| host.ssh_endpoint(machine, files)).flatten();
    MachineStatus {
        environment: env.name.clone(),
        host: machine.libvirt_uri.clone(),
        machine: machine.vm_name.clone(),
        domain: machine.domain_name.clone(),
        state: state(env, seen, machine),
        vcpus: runtime.as_ref().map(|r| r.vcpus),
        memory_mib: runtime.as_ref().map(|r| r.memory_mib),
        addresses: runtime
            .as_ref()
            .map(|r| r.addresses.clone())
            .unwrap_or_default(),
        ssh: ssh.as_ref().map(|e| e.describe()),
        ssh_proxy_command: ssh.and_then(|e| e.route.proxy_command().ok().flatten()),
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
    }
}

/// The domain's power state, or `undeployed`; a domain lvlab did not make,
/// or another lab's, says so.
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
