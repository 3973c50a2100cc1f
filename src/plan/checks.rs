//! What must hold on the observed host before anything is created: the
//! machines asked for exist, no foreign domain holds their names, their
//! networks exist and run, their static addresses fit them and no other MAC
//! holds them, their vCPUs and memory fit the host, their shared directories
//! exist and virtiofsd is there, their local images exist. Every selected
//! machine is checked and every problem is reported at once; what is worth
//! knowing but no problem becomes a note of the plan. Pure: reads only
//! [`CheckInput`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::{PlanError, Selection, Target};
use crate::desired::{Addressing, Attachment, Desired, EnvironmentSpec, MachineSpec};
use crate::observe::networks::{Lease, Leases, NetworkIpv4};
use crate::observe::ObservedEnvironment;

/// Everything the checks read. All plain data.
pub struct CheckInput<'a> {
    pub desired: &'a Desired,
    pub environments: &'a [&'a EnvironmentSpec],
    pub observed: &'a crate::observe::Observed,
    pub target: Target,
    pub selection: &'a Selection,
}

/// The checks passed. Only [`check`] makes one, so [`super::build`] can rely
/// on what it vouches for (no foreign domain under a wanted name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feasible {
    pub(super) notes: Vec<String>,
}

impl Feasible {
    /// What the plan should say besides its actions.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// One reason the plan cannot be carried out on the observed host.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Problem {
    #[error(
        "domain {domain} exists on {uri} but was not made by lvlab, and machine {vm_name} of \
         environment {environment} needs that name\n  hint: rename or remove the domain \
         (virsh -c {uri} undefine {domain}), or rename the machine in the manifest"
    )]
    ForeignDomain {
        domain: String,
        uri: String,
        environment: String,
        vm_name: String,
    },
    #[error(
        "domain {domain} on {uri} is owned by another lab ({owner}), and machine {vm_name} of \
         environment {environment} needs that name\n  hint: take it over with --adopt if it is \
         this lab's (e.g. the checkout moved), or rename the machine or use another environment name"
    )]
    OtherLabDomain {
        domain: String,
        uri: String,
        /// The mark's machine, environment and VM directory or lab_id.
        owner: String,
        environment: String,
        vm_name: String,
    },
    #[error(
        "machine {vm_name} needs libvirt network {network}, which {uri} does not have\n  hint: \
         define it (virsh -c {uri} net-define FILE), or attach the NIC elsewhere"
    )]
    NetworkMissing {
        vm_name: String,
        network: String,
        uri: String,
    },
    #[error(
        "machine {vm_name} needs libvirt network {network}, which is not active\n  hint: \
         virsh -c {uri} net-start {network}"
    )]
    NetworkInactive {
        vm_name: String,
        network: String,
        uri: String,
    },
    #[error("machine {vm_name}, interface {interface}: {problem}")]
    StaticAddress {
        vm_name: String,
        interface: String,
        problem: String,
    },
    #[error(
        "machine {vm_name}, interface {interface}: {address} is leased on network {network} \
         to another MAC, {holder}\n  hint: pick another address, or stop the guest with MAC \
         {holder} (virsh -c {uri} net-dhcp-leases {network} shows the lease)"
    )]
    AddressLeased {
        vm_name: String,
        interface: String,
        address: Ipv4Addr,
        network: String,
        holder: String,
        uri: String,
    },
    #[error(
        "machine {vm_name} shares {}, which does not exist\n  hint: create the \
         directory, or fix `source` in shared_directories", path.display()
    )]
    ShareMissing { vm_name: String, path: PathBuf },
    #[error("{}", no_virtiofsd(vm_name))]
    NoVirtiofsd { vm_name: String },
    #[error(
        "machine {vm_name} asks for {cpu} vCPUs; {domain_type} guests on {uri} can have at \
         most {max}\n  hint: set `cpu` to {max} or less"
    )]
    TooManyVcpus {
        vm_name: String,
        cpu: u32,
        max: u32,
        domain_type: String,
        uri: String,
    },
    #[error(
        "machine {vm_name} asks for {memory_mib} MiB of memory; the host at {uri} has \
         {host_mib} MiB\n  hint: set `memory` below {host_mib}"
    )]
    MemoryOverHost {
        vm_name: String,
        memory_mib: u64,
        host_mib: u64,
        uri: String,
    },
    #[error(
        "image {key}: {}, its image_url, does not exist\n  hint: fix image_url, or put \
         the image file there", path.display()
    )]
    ImageSourceMissing { key: String, path: PathBuf },
    #[error(
        "images {} and {} have different image_urls but one cache file, {}\n  hint: this is \
         a bug in lvlab's cache naming; until it is fixed, give one of them a different \
         cloud_image_basedir", keys[0], keys[1], path.display()
    )]
    ImagePathShared { keys: [String; 2], path: PathBuf },
}

/// The message rendering gives for shares without virtiofsd, said once.
fn no_virtiofsd(vm_name: &str) -> String {
    crate::domain::DomainError::NoVirtiofsd {
        vm_name: vm_name.to_string(),
    }
    .to_string()
}

/// Every problem one plan found, in machine order.
#[derive(Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let [one] = self.0.as_slice() {
            return write!(f, "{one}");
        }
        write!(f, "{} problems stop this plan:", self.0.len())?;
        for problem in &self.0 {
            let text = problem.to_string().replace('\n', "\n    ");
            write!(f, "\n  - {text}")?;
        }
        Ok(())
    }
}

/// Checks every selected machine against its observed host.
pub fn check(input: &CheckInput) -> Result<Feasible, PlanError> {
    check_selection(input)?;
    let mut checks = Checks::default();
    for env in input.environments {
        let selected = env
            .machines
            .iter()
            .filter(|m| is_selected(input.selection, m));
        for machine in selected {
            // A machine on an unreachable host is not planned: the plan
            // says so, and nothing is checked.
            let Some(observed) = input.observed.of(machine) else {
                continue;
            };
            checks.owner(input, env, observed, machine);
            checks.machine(input, observed, machine);
        }
    }
    for image in &input.selection.images {
        checks.image(input, &image.key, &image.path);
    }
    checks.notes.extend(static_address_notes(&checks.in_range));
    checks.notes.extend(memory_notes(input));
    checks.notes.extend(crate::kvm_probe::plan_notes(input));
    if checks.problems.is_empty() {
        Ok(Feasible {
            notes: checks.notes,
        })
    } else {
        Err(PlanError::Infeasible(Problems(checks.problems)))
    }
}

pub fn is_selected(selection: &Selection, machine: &MachineSpec) -> bool {
    selection.machines.is_empty() || selection.machines.contains(&machine.vm_name)
}

fn check_selection(input: &CheckInput) -> Result<(), PlanError> {
    let known: Vec<&str> = input
        .environments
        .iter()
        .flat_map(|e| e.machines.iter().map(|m| m.vm_name.as_str()))
        .collect();
    let wanted = input
        .selection
        .machines
        .iter()
        .chain(&input.selection.replace)
        .chain(&input.selection.reprovision);
    for name in wanted {
        if !known.contains(&name.as_str()) {
            return Err(PlanError::UnknownMachine {
                name: name.clone(),
                known: known.join(", "),
            });
        }
    }
    let listless = input
        .environments
        .iter()
        .flat_map(|e| &e.machines)
        .find(|m| input.selection.reprovision.contains(&m.vm_name) && m.provision.is_empty());
    if let Some(machine) = listless {
        return Err(PlanError::NothingToProvision {
            name: machine.vm_name.clone(),
        });
    }
    let images = &input.desired.images;
    if let Some(image) = input
        .selection
        .images
        .iter()
        .find(|i| !images.contains_key(&i.key))
    {
        return Err(PlanError::UnknownImage {
            key: image.key.clone(),
            known: images.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    Ok(())
}

/// A static address inside a network's DHCP range, for a note.
struct InRange {
    vm_name: String,
    address: Ipv4Addr,
    mac: String,
    range: (Ipv4Addr, Ipv4Addr),
    /// Whether the network's leases could be read.
    leases_known: bool,
}

#[derive(Default)]
struct Checks {
    problems: Vec<Problem>,
    notes: Vec<String>,
    /// By (URI, network).
    in_range: BTreeMap<(String, String), Vec<InRange>>,
    /// Images already checked: cache path -> the image key found there first.
    images: BTreeMap<PathBuf, String>,
}

impl Checks {
    /// The domain under the machine's name, if any, must be this lab's
    /// machine, or another lab's taken over with `--adopt`.
    fn owner(
        &mut self,
        input: &CheckInput,
        spec: &EnvironmentSpec,
        env: &ObservedEnvironment,
        machine: &MachineSpec,
    ) {
        let Some(domain) = env.domain(&machine.domain_name) else {
            return;
        };
        let (uri, environment, vm_name) = (
            env.uri.clone(),
            machine.environment.clone(),
            machine.vm_name.clone(),
        );
        match &domain.mark {
            None => self.problems.push(Problem::ForeignDomain {
                domain: domain.name.clone(),
                uri,
                environment,
                vm_name,
            }),
            Some(mark) if !input.selection.adopt && !spec.owns_machine(mark, machine) => {
                self.problems.push(Problem::OtherLabDomain {
                    domain: domain.name.clone(),
                    uri,
                    owner: mark.owner(),
                    environment,
                    vm_name,
                })
            }
            Some(_) => {}
        }
    }

    fn machine(&mut self, input: &CheckInput, env: &ObservedEnvironment, machine: &MachineSpec) {
        if input.target == Target::Absent {
            return;
        }
        self.image(input, &machine.os, &machine.image_path);
        if input.selection.images_only {
            return;
        }
        self.shares(env, machine);
        self.size(env, machine);
        self.attachments(env, machine);
    }

    /// A local image that must be copied into the cache but is not there.
    fn image(&mut self, input: &CheckInput, key: &str, path: &Path) {
        let spec = &input.desired.images[key];
        if let Some(first) = self.images.get(path) {
            // Manifest resolution names each source's file apart; should two
            // sources still meet, one machine would boot the other's image.
            let first = &input.desired.images[first];
            let problem = Problem::ImagePathShared {
                keys: [first.key.clone(), spec.key.clone()],
                path: path.to_path_buf(),
            };
            if first.source != spec.source && !self.problems.contains(&problem) {
                self.problems.push(problem);
            }
            return;
        }
        self.images.insert(path.to_path_buf(), key.to_string());
        let Some(state) = input.observed.images.get(path) else {
            return;
        };
        if let Some(path) = &state.missing_source {
            if super::build::image_reason(spec, Some(state), path).is_some() {
                self.problems.push(Problem::ImageSourceMissing {
                    key: spec.key.clone(),
                    path: path.clone(),
                });
            }
        }
    }

    fn shares(&mut self, env: &ObservedEnvironment, machine: &MachineSpec) {
        let files = env.files(&machine.vm_name);
        for path in &files.missing_shares {
            self.problems.push(Problem::ShareMissing {
                vm_name: machine.vm_name.clone(),
                path: path.clone(),
            });
        }
        if !machine.shared_directories.is_empty() && env.host.lacks_virtiofsd() {
            self.problems.push(Problem::NoVirtiofsd {
                vm_name: machine.vm_name.clone(),
            });
        }
    }

    /// vCPUs against the limit for the machine's domain type, memory against
    /// the host's. A domain type the host does not offer is rendering's
    /// error, reported there.
    fn size(&mut self, env: &ObservedEnvironment, machine: &MachineSpec) {
        let host = &env.host;
        let offered = host.offered_types();
        let domain_type = crate::domain::resolve_domain_type(machine.domain_type, &offered).ok();
        let max = domain_type
            .as_ref()
            .and_then(|t| Some((t, *env.limits.max_vcpus.get(t)?)));
        if let Some((domain_type, max)) = max.filter(|(_, max)| machine.cpu > *max) {
            self.problems.push(Problem::TooManyVcpus {
                vm_name: machine.vm_name.clone(),
                cpu: machine.cpu,
                max,
                domain_type: domain_type.clone(),
                uri: env.uri.clone(),
            });
        }
        let host_mib = env.limits.memory_kib.map(|kib| kib / 1024);
        if let Some(host_mib) = host_mib.filter(|host| machine.memory_mib > *host) {
            self.problems.push(Problem::MemoryOverHost {
                vm_name: machine.vm_name.clone(),
                memory_mib: machine.memory_mib,
                host_mib,
                uri: env.uri.clone(),
            });
        }
    }

    fn attachments(&mut self, env: &ObservedEnvironment, machine: &MachineSpec) {
        for nic in &machine.interfaces {
            let Attachment::Network { network } = &nic.attachment else {
                continue;
            };
            let Some(observed) = env.networks.get(network) else {
                self.problems.push(Problem::NetworkMissing {
                    vm_name: machine.vm_name.clone(),
                    network: network.clone(),
                    uri: env.uri.clone(),
                });
                continue;
            };
            if !observed.active {
                self.problems.push(Problem::NetworkInactive {
                    vm_name: machine.vm_name.clone(),
                    network: network.clone(),
                    uri: env.uri.clone(),
                });
                continue;
            }
            let (Addressing::Static { ipv4: Some(v4), .. }, Some(net)) =
                (&nic.addressing, &observed.ipv4)
            else {
                continue;
            };
            let address = v4.address.addr();
            let mac = nic.mac.to_string();
            let range = match static_v4_fit(address, network, net) {
                Ok(range) => range,
                Err(problem) => {
                    self.problems.push(Problem::StaticAddress {
                        vm_name: machine.vm_name.clone(),
                        interface: nic.name.clone(),
                        problem,
                    });
                    continue;
                }
            };
            if let Leases::Listed(leases) = &observed.leases {
                if let Some(lease) = lease_collision(address, &mac, leases) {
                    self.problems.push(Problem::AddressLeased {
                        vm_name: machine.vm_name.clone(),
                        interface: nic.name.clone(),
                        address,
                        network: network.clone(),
                        holder: lease.mac.clone(),
                        uri: env.uri.clone(),
                    });
                    continue;
                }
            }
            if let Some(range) = range {
                self.in_range
                    .entry((env.uri.clone(), network.clone()))
                    .or_default()
                    .push(InRange {
                        vm_name: machine.vm_name.clone(),
                        address,
                        mac,
                        range,
                        leases_known: matches!(observed.leases, Leases::Listed(_)),
                    });
            }
        }
    }
}

/// A static address must lie in its network's subnet; inside a DHCP range
/// it works but may collide, so the range is returned for a note.
fn static_v4_fit(
    address: Ipv4Addr,
    network: &str,
    net: &NetworkIpv4,
) -> Result<Option<(Ipv4Addr, Ipv4Addr)>, String> {
    if !net.subnet.contains(&address) {
        return Err(format!(
            "{address} is outside network {network}'s subnet {}",
            net.subnet
        ));
    }
    Ok(net
        .dhcp_ranges
        .iter()
        .find(|(start, end)| (*start..=*end).contains(&address))
        .copied())
}

/// The lease that gives `address` to a MAC other than `mac`: a real
/// collision. A lease held by `mac` itself is the machine's own.
pub fn lease_collision<'l>(address: Ipv4Addr, mac: &str, leases: &'l [Lease]) -> Option<&'l Lease> {
    leases
        .iter()
        .find(|lease| lease.ip == IpAddr::V4(address) && !lease.mac.eq_ignore_ascii_case(mac))
}

/// One note per network with static addresses inside its DHCP range: what
/// can collide, the two ways out, and whether leases were checked.
fn static_address_notes(in_range: &BTreeMap<(String, String), Vec<InRange>>) -> Vec<String> {
    in_range
        .iter()
        .map(|((uri, network), addresses)| {
            let first = &addresses[0];
            let (start, end) = first.range;
            let listed: Vec<String> = addresses
                .iter()
                .map(|a| format!("{} ({})", a.address, a.vm_name))
                .collect();
            let mut note = format!(
                "network {network} on {uri} hands out {start}-{end} by DHCP, and static \
                 {} inside that range: {}. Its DHCP server may give one of them to another \
                 guest. To rule that out, shrink the range (virsh -c {uri} net-edit {network}) \
                 or reserve each address for its machine's MAC (virsh -c {uri} net-update \
                 {network} add ip-dhcp-host \"<host mac='{}' ip='{}'/>\" --live --config).",
                if addresses.len() == 1 {
                    "address is"
                } else {
                    "addresses are"
                },
                listed.join(", "),
                first.mac,
                first.address,
            );
            if addresses.iter().any(|a| !a.leases_known) {
                note.push_str(&format!(
                    " {uri} cannot list DHCP leases, so there was no check for another guest \
                     holding one of them now."
                ));
            }
            note
        })
        .collect()
}

/// Machines that start on one host may each fit but not all together:
/// worth a note, not an error (they need not all run at once).
fn memory_notes(input: &CheckInput) -> Vec<String> {
    if input.target != Target::Running || input.selection.images_only {
        return Vec::new();
    }
    let mut by_host: BTreeMap<&str, (u64, Option<u64>)> = BTreeMap::new();
    for env in input.environments {
        for machine in env.machines.iter() {
            let Some(observed) = input.observed.of(machine) else {
                continue;
            };
            let host = by_host
                .entry(observed.uri.as_str())
                .or_insert((0, observed.limits.memory_kib.map(|kib| kib / 1024)));
            if is_selected(input.selection, machine) {
                host.0 += machine.memory_mib;
            }
        }
    }
    by_host
        .into_iter()
        .filter_map(|(uri, (total, host))| {
            let host = host.filter(|host| total > *host)?;
            Some(format!(
                "the machines on {uri} ask for {total} MiB of memory together, more than the \
                 host's {host} MiB; running them all at once relies on the host overcommitting"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(mac: &str, ip: &str) -> Lease {
        Lease {
            mac: mac.into(),
            ip: ip.parse().unwrap(),
        }
    }

    /// Leases as dnsmasq on a stock `default` network hands them out: one
    /// IPv4 lease of another guest, one of the machine itself, one IPv6.
    fn leases() -> Vec<Lease> {
        vec![
            lease("52:54:00:aa:bb:cc", "192.168.122.10"),
            lease("52:54:00:12:34:56", "192.168.122.11"),
            lease("52:54:00:aa:bb:cc", "fd00::10"),
        ]
    }

    #[test]
    fn an_address_leased_to_another_mac_collides_and_names_that_mac() {
        let leases = leases();
        let hit = lease_collision(
            "192.168.122.10".parse().unwrap(),
            "52:54:00:12:34:56",
            &leases,
        );
        assert_eq!(hit.map(|l| l.mac.as_str()), Some("52:54:00:aa:bb:cc"));
    }

    #[test]
    fn the_machines_own_lease_free_addresses_and_no_leases_never_collide() {
        let leases = leases();
        let own = "192.168.122.11".parse().unwrap();
        assert_eq!(lease_collision(own, "52:54:00:12:34:56", &leases), None);
        assert_eq!(
            lease_collision(own, "52:54:00:12:34:56".to_uppercase().as_str(), &leases),
            None,
            "MACs compare without case"
        );
        let free = "192.168.122.12".parse().unwrap();
        assert_eq!(lease_collision(free, "52:54:00:12:34:56", &leases), None);
        assert_eq!(lease_collision(own, "52:54:00:12:34:56", &[]), None);
    }

    #[test]
    fn a_static_address_must_be_in_the_subnet_and_may_be_in_a_dhcp_range() {
        let net = crate::observe::networks::parse_ipv4(
            "<network><ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>\
             <range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>",
        )
        .unwrap();
        let fit = |ip: &str| static_v4_fit(ip.parse().unwrap(), "default", &net);
        let range = (
            "192.168.122.2".parse().unwrap(),
            "192.168.122.254".parse().unwrap(),
        );
        assert_eq!(fit("192.168.122.10"), Ok(Some(range)));
        assert_eq!(fit("192.168.122.255"), Ok(None));
        assert!(fit("10.0.0.1")
            .unwrap_err()
            .contains("outside network default's subnet"));
    }
}
