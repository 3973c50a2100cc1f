//! Reads the world as it is: the libvirt host, its domains and lvlab's
//! marks on them, each machine's volumes (through its
//! [`crate::host::Storage`] on its host), the files lvlab records in its VM
//! directory, and the image cache. Never changes anything.
//! The result, [`Observed`], is plain data the planner reads. Also the
//! wait until guests answer on SSH ([`ssh_wait`]) and what `status` shows
//! of each machine ([`status`]), which only read too.

pub mod capabilities;
pub mod disks;
pub mod domains;
pub mod host_images;
pub mod networks;
pub mod nic_addresses;
pub mod osinfo;
pub mod runtime;
pub mod snapshots;
pub mod ssh;
pub mod ssh_wait;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::desired::{
    libvirt_uris, Desired, EnvironmentSpec, ImageAddress, ImageSpec, MachineSpec,
};
use crate::host::{Host, HostFacts, Hosts, Storage, Unreachable};
use crate::images;
use crate::libvirt::LibvirtError;
pub use domains::{ObservedDomain, PowerState};
pub use snapshots::ObservedSnapshot;

/// Files lvlab keeps in each VM directory besides disks and the seed ISO:
/// what it last defined and rendered, so a plan can show a diff.
pub const RECORDED_FILES: &[&str] = &["domain.xml", "meta-data", "user-data", "network-config"];

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// Each selected environment on each host it is placed on.
    pub environments: Vec<ObservedEnvironment>,
    /// Every image path a selected machine uses.
    pub images: BTreeMap<PathBuf, ImageState>,
    /// The images pools of the hosts whose machines use one.
    pub host_images: Vec<host_images::HostImages>,
    /// The hosts that could not be opened: their machines are not
    /// observed (nor planned).
    pub unreachable: Vec<Unreachable>,
}

/// One environment on one host: an environment whose machines are placed
/// on several hosts has one of these per host.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedEnvironment {
    pub name: String,
    /// The host's canonical URI.
    pub uri: String,
    /// The spellings of `uri` the manifest places this environment's
    /// machines with (usually one).
    pub uris: Vec<String>,
    #[serde(skip)]
    pub host: HostFacts,
    /// The domains on the host whose names can be lvlab's for one of the
    /// selected environments on it, lvlab's or not, sorted by name; the
    /// host's other domains are never read.
    pub domains: Vec<ObservedDomain>,
    /// What one guest may ask of the host (vCPUs, memory).
    pub limits: capabilities::HostLimits,
    /// The host's libvirt networks, by name.
    pub networks: BTreeMap<String, networks::ObservedNetwork>,
    /// The files of each machine the manifest places on this host, by
    /// vm_name.
    pub machines: BTreeMap<String, MachineFiles>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineFiles {
    pub dir_exists: bool,
    /// Each disk path and whether it exists.
    pub disks: BTreeMap<PathBuf, bool>,
    pub seed_iso: bool,
    /// Contents of the [`RECORDED_FILES`] that exist.
    pub recorded: BTreeMap<String, String>,
    /// Shared directory sources that do not exist.
    pub missing_shares: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageState {
    /// The file the image key means now (after a `--refresh`, maybe not
    /// the URL's own name).
    pub path: PathBuf,
    pub present: bool,
    /// Its verification record says it was checked.
    pub verified: bool,
    /// The record describes another file (its size differs).
    pub stale: bool,
    /// The file's size in bytes, when present.
    pub size: Option<u64>,
    /// The image's source, when it is a local file that does not exist.
    pub missing_source: Option<PathBuf>,
}

impl MachineFiles {
    /// Nothing found: no directory, no disks, no recorded files.
    pub fn none() -> &'static MachineFiles {
        static NONE: MachineFiles = MachineFiles {
            dir_exists: false,
            disks: BTreeMap::new(),
            seed_iso: false,
            recorded: BTreeMap::new(),
            missing_shares: Vec::new(),
        };
        &NONE
    }

    /// The host ports forwarded to the guest's SSH in the recorded
    /// definition (none without one).
    pub fn ssh_ports(&self) -> Vec<u16> {
        self.recorded
            .get("domain.xml")
            .map(|xml| crate::domain::forwarded_ssh_ports(xml))
            .unwrap_or_default()
    }
}

impl ObservedEnvironment {
    pub fn domain(&self, name: &str) -> Option<&ObservedDomain> {
        self.domains.iter().find(|d| d.name == name)
    }

    /// What was found of a machine's files (nothing, for a machine not
    /// observed).
    pub fn files(&self, vm_name: &str) -> &MachineFiles {
        self.machines.get(vm_name).unwrap_or(MachineFiles::none())
    }
}

impl Observed {
    /// What was observed of `machine`'s environment on the host the
    /// machine is placed on (`None` when that host is unreachable).
    pub fn of(&self, machine: &MachineSpec) -> Option<&ObservedEnvironment> {
        self.environments
            .iter()
            .find(|e| e.name == machine.environment && e.uris.contains(&machine.libvirt_uri))
    }

    /// The environment `name` on each host it was observed on.
    pub fn placements<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s ObservedEnvironment> {
        self.environments.iter().filter(move |e| e.name == name)
    }

    /// Why `machine`'s host could not be observed, when it could not.
    pub fn unreachable_host(&self, machine: &MachineSpec) -> Option<&Unreachable> {
        self.unreachable
            .iter()
            .find(|u| u.uri == machine.libvirt_uri)
    }

    /// A digest of everything a plan depends on, on every host: a saved
    /// plan made from a different fingerprint is stale.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("observed state serializes");
        format!("sha256:{:x}", Sha256::digest(json))
    }
}

/// Observes the given environments on every host their machines are
/// placed on: each host once, the hosts in parallel. `hosts` holds a host
/// (or its [`Unreachable`]) for each of [`crate::desired::libvirt_uris`].
pub fn observe(
    desired: &Desired,
    environments: &[&EnvironmentSpec],
    hosts: &Hosts,
) -> Result<Observed, LibvirtError> {
    let reachable: Vec<&Host> = hosts.iter().collect();
    let views = crate::parallel::in_parallel(&reachable, reachable.len(), |host| {
        let on_host = environments.iter().copied().filter(|env| {
            libvirt_uris([*env])
                .iter()
                .any(|uri| is_on(hosts, uri, host))
        });
        HostView::read(host, &lab_names(on_host))
    });
    let mut observed = Observed {
        environments: Vec::new(),
        images: BTreeMap::new(),
        host_images: Vec::new(),
        unreachable: Vec::new(),
    };
    for (host, view) in reachable.iter().zip(views) {
        let view = view?;
        for env in environments {
            let mut uris = libvirt_uris([*env]);
            uris.retain(|uri| is_on(hosts, uri, host));
            if uris.is_empty() {
                continue;
            }
            let machines = env
                .machines
                .iter()
                .filter(|m| uris.contains(&m.libvirt_uri))
                .map(|m| {
                    (
                        m.vm_name.clone(),
                        machine_files(host.storage_for(m).as_ref(), m),
                    )
                })
                .collect();
            observed.environments.push(ObservedEnvironment {
                name: env.name.clone(),
                uri: host.canonical_uri().to_string(),
                uris,
                host: view.facts.clone(),
                limits: view.limits.clone(),
                domains: view.domains.clone(),
                networks: view.networks.clone(),
                machines,
            });
        }
    }
    for env in environments {
        for machine in &env.machines {
            if let Some(unreachable) = hosts.unreachable(&machine.libvirt_uri) {
                if !observed.unreachable.contains(unreachable) {
                    observed.unreachable.push(unreachable.clone());
                }
                continue;
            }
            // Machines often share an image: read its record once.
            observed
                .images
                .entry(machine.image_path.clone())
                .or_insert_with(|| image_state(&machine.image_path, &desired.images[&machine.os]));
        }
    }
    let machines = environments
        .iter()
        .flat_map(|e| &e.machines)
        .filter(|m| hosts.unreachable(&m.libvirt_uri).is_none());
    observed.host_images = host_images::read(hosts, machines)?;
    Ok(observed)
}

/// Whether `uri` was opened as `host`.
fn is_on(hosts: &Hosts, uri: &str, host: &Host) -> bool {
    hosts
        .find(uri)
        .is_some_and(|h| h.canonical_uri() == host.canonical_uri())
}

/// The domain names `environments` can use: their names for a manifest's,
/// their machines' exact domain names for a one-off one.
fn lab_names<'e>(environments: impl Iterator<Item = &'e EnvironmentSpec>) -> domains::LabNames<'e> {
    let mut names = domains::LabNames::default();
    for env in environments {
        if env.one_off {
            names
                .exact
                .extend(env.machines.iter().map(|m| m.domain_name.as_str()));
        } else {
            names.environments.push(env.name.as_str());
        }
    }
    names
}

/// What one libvirt connection reports, for the selected environments on
/// it.
struct HostView {
    facts: HostFacts,
    limits: capabilities::HostLimits,
    domains: Vec<ObservedDomain>,
    networks: BTreeMap<String, networks::ObservedNetwork>,
}

impl HostView {
    fn read(host: &Host, names: &domains::LabNames) -> Result<Self, LibvirtError> {
        let conn = host.connection();
        let caps = capabilities::read(&conn)?;
        // Only a host that offers KVM has a probe answer worth reading.
        let kvm_probe = caps
            .kvm
            .then(|| crate::kvm_probe::cache::cached(&conn, caps.hypervisor_version.as_deref()))
            .flatten();
        Ok(Self {
            limits: capabilities::limits(&conn, &caps),
            facts: HostFacts::from_capabilities(caps, host.virtiofsd(), kvm_probe),
            domains: domains::list(&conn, names)?,
            networks: networks::list(&conn)?,
        })
    }
}

/// The images at `addresses` alone (no environment): what `init` plans
/// from. Reads their caches' records, nothing of libvirt.
pub fn images(desired: &Desired, addresses: &[ImageAddress]) -> Observed {
    let images = addresses
        .iter()
        .filter_map(|a| {
            let spec = desired.images.get(&a.key)?;
            Some((a.path.clone(), image_state(&a.path, spec)))
        })
        .collect();
    Observed {
        environments: Vec::new(),
        images,
        host_images: Vec::new(),
        unreachable: Vec::new(),
    }
}

/// The image at `image_path` (a file in its cache directory), as the cache
/// and its record say.
fn image_state(image_path: &std::path::Path, image: &ImageSpec) -> ImageState {
    let cache_dir = image_path.parent().unwrap_or(std::path::Path::new("/"));
    let record = images::record::load_for(cache_dir, image);
    let path = images::record::current_path(cache_dir, image, record.as_ref());
    let current = record.as_ref().and_then(|r| r.current_file());
    let size = std::fs::metadata(&path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let present = size.is_some();
    let missing_source = match &image.source {
        crate::desired::Source::File(source) if !source.is_file() => Some(source.clone()),
        _ => None,
    };
    ImageState {
        present,
        verified: current.is_some_and(|f| f.verified),
        stale: present && current.is_some_and(|f| Some(f.size) != size),
        size,
        path,
        missing_source,
    }
}

/// What exists of a machine's files: its volumes on `volumes` (its
/// storage on its host, listed once), and the recorded files in its VM
/// directory on this machine; reads only the small recorded files.
pub fn machine_files(volumes: &dyn Storage, machine: &MachineSpec) -> MachineFiles {
    let dir = &machine.vm_dir;
    let present = volumes.volume_names(&machine.volume_dir);
    let exists = |path: &std::path::Path| {
        path.parent() == Some(machine.volume_dir.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|name| present.iter().any(|p| p == name))
    };
    MachineFiles {
        dir_exists: crate::storage::directory_exists(dir),
        disks: machine
            .disks
            .iter()
            .map(|d| (d.path.clone(), exists(&d.path)))
            .collect(),
        seed_iso: exists(&crate::domain::seed_path(machine)),
        recorded: RECORDED_FILES
            .iter()
            .filter_map(|name| {
                crate::storage::read_text(&dir.join(name)).map(|text| (name.to_string(), text))
            })
            .collect(),
        missing_shares: machine
            .shared_directories
            .iter()
            .filter(|d| !crate::storage::directory_exists(&d.source))
            .map(|d| d.source.clone())
            .collect(),
    }
}
