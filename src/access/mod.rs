//! How to reach a lab's machines from the host: what `lvlab ssh`,
//! `ssh-config` and `hosts` need to know of each machine ([`MachineReach`],
//! gathered by [`gather`]: the only I/O here), and the pure renderings of it
//! ([`ssh`], [`ssh_config`], [`hosts`]). Never changes a domain.

pub mod hosts;
pub mod ssh;
pub mod ssh_config;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Serialize;

use crate::cloudinit::host_key::KNOWN_HOSTS_FILE;
use crate::desired::{Addressing, Attachment, EnvironmentSpec, MachineSpec, PublicKey};
use crate::host::{Host, Route};
use crate::libvirt::LibvirtError;
use crate::observe::{domains, nic_addresses};
use crate::reconcile::Lab;

/// What lvlab knows of how to reach one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineReach {
    pub environment: String,
    pub machine: String,
    pub domain: String,
    pub hostname: String,
    pub fqdn: String,
    /// The manifest's user (cloud-init's `user`).
    pub user: String,
    /// Whether this lab's domain runs: only then is there anything to
    /// reach.
    pub state: ReachState,
    /// Where its SSH server listens, when lvlab can tell.
    pub endpoint: Option<SocketAddr>,
    /// How this machine gets to that address: directly, or through an SSH
    /// hop to its host when that is another machine.
    pub route: Route,
    /// The private key beside the manifest's `pubkey` file (the same path
    /// without `.pub`), when it exists.
    pub identity_file: Option<PathBuf>,
    /// The machine's known_hosts file (its SSH host key under
    /// [`MachineReach::domain`]), when lvlab made one.
    pub known_hosts: Option<PathBuf>,
    /// Its addresses for `/etc/hosts`: each static IPv4 address, and the
    /// IPv4 addresses a DHCP NIC on a libvirt network was given.
    pub addresses: Vec<IpAddr>,
}

/// The machine's domain, as far as reaching it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReachState {
    Running,
    /// Defined but not running (shut off, paused, ...).
    NotRunning,
    Undeployed,
    /// A domain with the machine's name that is not this lab's.
    NotOurs,
}

impl ReachState {
    pub fn describe(self) -> &'static str {
        match self {
            ReachState::Running => "running",
            ReachState::NotRunning => "not running",
            ReachState::Undeployed => "not deployed",
            ReachState::NotOurs => "another lab's domain (or not lvlab's) has its name",
        }
    }
}

/// Every machine of the lab's environments (only those named in `names`,
/// when any), in manifest order, with what libvirt says of it now.
pub fn gather(lab: &Lab, names: &[String]) -> Result<Vec<MachineReach>, LibvirtError> {
    let mut found = Vec::new();
    for env in &lab.environments {
        for machine in &env.machines {
            if !names.is_empty() && !names.contains(&machine.vm_name) {
                continue;
            }
            // A machine on a host that could not be opened cannot be
            // reached: an error when named, left out of a listing.
            let Some(host) = lab.hosts.find(&machine.libvirt_uri) else {
                let unreachable = lab.hosts.unreachable(&machine.libvirt_uri);
                match unreachable {
                    Some(u) if !names.is_empty() => {
                        return Err(LibvirtError::Connect {
                            uri: u.uri.clone(),
                            message: u.message.clone(),
                            hint:
                                "the machine's host is unreachable; the lab's other hosts answered",
                        })
                    }
                    Some(u) => tracing::warn!("{}: {u}", machine.vm_name),
                    None => {}
                }
                continue;
            };
            let conn = host.connection();
            let state = match domains::find(&conn, &machine.domain_name)? {
                None => ReachState::Undeployed,
                Some(d)
                    if !d
                        .mark
                        .as_ref()
                        .is_some_and(|m| env.owns_machine(m, machine)) =>
                {
                    ReachState::NotOurs
                }
                Some(d) if d.state == domains::PowerState::Running => ReachState::Running,
                Some(_) => ReachState::NotRunning,
            };
            let leased = match state {
                ReachState::Running => {
                    dhcp_addresses(machine, &nic_addresses::by_mac(&conn, &machine.domain_name))
                }
                _ => Vec::new(),
            };
            found.push(reach(host, env, machine, state, &leased));
        }
    }
    Ok(found)
}

/// One machine's reach, from its spec, its domain's state and the
/// addresses its DHCP NICs on libvirt networks were given.
pub fn reach(
    host: &Host,
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    state: ReachState,
    leased: &[IpAddr],
) -> MachineReach {
    let running = state == ReachState::Running;
    let known_hosts = machine.vm_dir.join(KNOWN_HOSTS_FILE);
    let mut addresses: Vec<IpAddr> = static_ipv4(machine).collect();
    addresses.extend(leased.iter().filter(|a| a.is_ipv4()));
    MachineReach {
        environment: env.name.clone(),
        machine: machine.vm_name.clone(),
        domain: machine.domain_name.clone(),
        hostname: machine.hostname.clone(),
        fqdn: machine.fqdn.clone(),
        user: machine.cloud_init.user.clone(),
        state,
        endpoint: running
            .then(|| ssh_endpoint(host, machine, leased))
            .flatten(),
        route: host.route(),
        identity_file: identity_file(machine),
        known_hosts: crate::storage::volume_exists(&known_hosts).then_some(known_hosts),
        addresses,
    }
}

/// The host's SSH endpoint rule (a passt forward on its loopback, else a
/// static IPv4 address), then an address the DHCP NICs on libvirt networks
/// were given.
fn ssh_endpoint(host: &Host, machine: &MachineSpec, leased: &[IpAddr]) -> Option<SocketAddr> {
    // Read now: the machine's recorded definition names its forward.
    let files = crate::observe::machine_files(host.storage_for(machine).as_ref(), machine);
    host.ssh_endpoint(machine, &files)
        .map(|endpoint| endpoint.address)
        .or_else(|| leased.first().map(|address| SocketAddr::new(*address, 22)))
}

fn static_ipv4(machine: &MachineSpec) -> impl Iterator<Item = IpAddr> + '_ {
    machine
        .interfaces
        .iter()
        .filter_map(|nic| match &nic.addressing {
            Addressing::Static { ipv4: Some(v4), .. } => Some(IpAddr::V4(v4.address.addr())),
            _ => None,
        })
}

/// Of the addresses a guest's NICs have (`by_mac`, see
/// [`nic_addresses::by_mac`]), those of its DHCP NICs on libvirt networks,
/// IPv4 first: not user-mode NICs', which mean nothing outside the guest,
/// and not static NICs' (the manifest's).
pub fn dhcp_addresses(
    machine: &MachineSpec,
    by_mac: &std::collections::BTreeMap<String, Vec<IpAddr>>,
) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = machine
        .interfaces
        .iter()
        .filter(|nic| matches!(nic.attachment, Attachment::Network { .. }))
        .filter(|nic| nic.addressing == Addressing::Dhcp)
        .filter_map(|nic| by_mac.get(&nic.mac.to_string()))
        .flatten()
        .copied()
        .collect();
    addresses.sort_by_key(|a| a.is_ipv6());
    addresses
}

/// The private key beside the manifest's `pubkey` file, when that is a
/// `.pub` file and the other exists.
fn identity_file(machine: &MachineSpec) -> Option<PathBuf> {
    let Some(PublicKey::File(public)) = &machine.cloud_init.pubkey else {
        return None;
    };
    let private = public.to_str()?.strip_suffix(".pub")?;
    let private = PathBuf::from(private);
    private.is_file().then_some(private)
}

/// Why a machine cannot be reached, with what to do about it.
pub fn unreachable_reason(reach: &MachineReach) -> String {
    match reach.state {
        ReachState::Running => format!(
            "{}: no SSH endpoint lvlab knows (give it a passt NIC with ssh_port, a static \
             address, or a DHCP NIC on a libvirt network whose lease or guest agent \
             reports an address)",
            reach.machine
        ),
        ReachState::NotOurs => format!(
            "{}: {} ({}); see `lvlab status`",
            reach.machine,
            reach.state.describe(),
            reach.domain
        ),
        state => format!(
            "{} is {}; start it with `lvlab up {}`",
            reach.machine,
            state.describe(),
            reach.machine
        ),
    }
}
