//! Reads the world as it is: the libvirt host, its domains and lvlab's
//! marks on them, the per-VM files and the image cache. Never changes
//! anything. The result, [`Observed`], is plain data the planner reads.

pub mod capabilities;
pub mod disks;
pub mod domains;
pub mod networks;
pub mod osinfo;
pub mod runtime;
pub mod ssh;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::desired::{Desired, EnvironmentSpec, ImageSpec, MachineSpec};
use crate::domain::HostFacts;
use crate::images;
use crate::libvirt::{Hypervisors, LibvirtError};
use crate::storage;
pub use domains::{ObservedDomain, PowerState};

/// Files lvlab keeps in each VM directory besides disks and the seed ISO:
/// what it last defined and rendered, so a plan can show a diff.
pub const RECORDED_FILES: &[&str] = &["domain.xml", "meta-data", "user-data", "network-config"];

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub environments: Vec<ObservedEnvironment>,
    /// Every image path a selected machine uses.
    pub images: BTreeMap<PathBuf, ImageState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedEnvironment {
    pub name: String,
    pub uri: String,
    #[serde(skip)]
    pub host: HostFacts,
    /// The domains on the environment's connection whose names can be
    /// lvlab's for one of the selected environments on it, lvlab's or not,
    /// sorted by name; the host's other domains are never read.
    pub domains: Vec<ObservedDomain>,
    /// What one guest may ask of the host (vCPUs, memory).
    pub limits: capabilities::HostLimits,
    /// The connection's libvirt networks, by name.
    pub networks: BTreeMap<String, networks::ObservedNetwork>,
    /// The files of each machine in the manifest, by vm_name.
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
    pub fn environment(&self, name: &str) -> Option<&ObservedEnvironment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// A digest of everything a plan depends on: a saved plan made from a
    /// different fingerprint is stale.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("observed state serializes");
        format!("sha256:{:x}", Sha256::digest(json))
    }
}

/// Observes the given environments through `hypervisors` (which must hold
/// a connection for each environment's URI).
pub fn observe(
    desired: &Desired,
    environments: &[&EnvironmentSpec],
    hypervisors: &Hypervisors,
) -> Result<Observed, LibvirtError> {
    let mut observed = Observed {
        environments: Vec::new(),
        images: BTreeMap::new(),
    };
    // Environments on one libvirt share what it says: ask each URI once.
    let mut hosts: BTreeMap<&str, HostView> = BTreeMap::new();
    for env in environments {
        let uri = env.libvirt_uri.as_str();
        if !hosts.contains_key(uri) {
            let names: Vec<&str> = environments
                .iter()
                .filter(|e| e.libvirt_uri == uri)
                .map(|e| e.name.as_str())
                .collect();
            hosts.insert(uri, HostView::read(hypervisors.get(uri), &names)?);
        }
        let HostView {
            host,
            limits,
            domains,
            networks,
        } = hosts[uri].clone();
        let machines = env
            .machines
            .iter()
            .map(|m| (m.vm_name.clone(), machine_files(m)))
            .collect();
        for machine in &env.machines {
            // Machines often share an image: read its record once.
            observed
                .images
                .entry(machine.image_path.clone())
                .or_insert_with(|| image_state(machine, &desired.images[&machine.os]));
        }
        observed.environments.push(ObservedEnvironment {
            name: env.name.clone(),
            uri: env.libvirt_uri.clone(),
            host,
            limits,
            domains,
            networks,
            machines,
        });
    }
    Ok(observed)
}

/// What one libvirt connection reports, for the selected environments on
/// it.
#[derive(Clone)]
struct HostView {
    host: HostFacts,
    limits: capabilities::HostLimits,
    domains: Vec<ObservedDomain>,
    networks: BTreeMap<String, networks::ObservedNetwork>,
}

impl HostView {
    fn read(
        conn: &crate::libvirt::Connection,
        environments: &[&str],
    ) -> Result<Self, LibvirtError> {
        let caps = capabilities::read(conn)?;
        // Only a host that offers KVM has a probe answer worth reading.
        let kvm_probe = caps
            .kvm
            .then(|| crate::kvm_probe::cache::cached(conn, caps.hypervisor_version.as_deref()))
            .flatten();
        Ok(Self {
            limits: capabilities::limits(conn, &caps),
            host: host_facts(caps, kvm_probe),
            domains: domains::list(conn, environments)?,
            networks: networks::list(conn)?,
        })
    }
}

fn host_facts(
    caps: capabilities::HostCapabilities,
    kvm_probe: Option<crate::kvm_probe::ProbeRecord>,
) -> HostFacts {
    HostFacts {
        uri: caps.uri,
        arch: caps
            .arch
            .unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        domain_types: caps.domain_types.unwrap_or_default(),
        kvm: caps.kvm,
        virtiofsd: find_virtiofsd(),
        kvm_probe,
    }
}

/// Where Debian and `cargo install` put virtiofsd, after PATH.
fn find_virtiofsd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(home_cargo)
        .map(|dir| dir.join("virtiofsd"))
        .chain(["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// The image a machine boots from, as the cache and its record say.
fn image_state(machine: &MachineSpec, image: &ImageSpec) -> ImageState {
    let cache_dir = machine
        .image_path
        .parent()
        .unwrap_or(std::path::Path::new("/"));
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
        path,
        missing_source,
    }
}

/// What exists of a machine's files; reads only the small recorded files.
pub fn machine_files(machine: &MachineSpec) -> MachineFiles {
    let dir = &machine.vm_dir;
    MachineFiles {
        dir_exists: storage::directory_exists(dir),
        disks: machine
            .disks
            .iter()
            .map(|d| (d.path.clone(), storage::volume_exists(&d.path)))
            .collect(),
        seed_iso: storage::volume_exists(&crate::domain::seed_path(machine)),
        recorded: RECORDED_FILES
            .iter()
            .filter_map(|name| {
                storage::read_text(&dir.join(name)).map(|text| (name.to_string(), text))
            })
            .collect(),
        missing_shares: machine
            .shared_directories
            .iter()
            .filter(|d| !d.source.is_dir())
            .map(|d| d.source.clone())
            .collect(),
    }
}
