//! The images uploaded to hosts' images pools (`images list`, `images
//! clean` per host): for each remote host the manifest's machines use, the
//! pool's volumes, which image keys they are and which machines boot
//! them. Only lvlab's images pools are read, and only their image volumes
//! are ever removed.

use std::path::{Path, PathBuf};

use crate::desired::{Desired, MachineSpec};
use crate::host::{images_pool, Hosts};
use crate::observe::host_images::{self, uses_images_pool};

/// One image volume in a host's images pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostImage {
    pub uri: String,
    /// The volume's path on the host.
    pub path: PathBuf,
    pub size: u64,
    /// The image keys whose cached file it is.
    pub images: Vec<String>,
    /// The machines on that host booting it (`environment/vm_name`).
    pub machines: Vec<String>,
}

/// The machines whose images go to their host's images pool.
fn pool_machines(desired: &Desired) -> Vec<&MachineSpec> {
    desired
        .environments
        .iter()
        .flat_map(|e| &e.machines)
        .filter(|m| uses_images_pool(m))
        .collect()
}

/// The hosts holding the manifest's images pools, each opened once (a
/// remote host's opening is an SSH login), and the messages of those that
/// could not be.
pub fn open_hosts(desired: &Desired) -> (Hosts, Vec<String>) {
    let machines = pool_machines(desired);
    if machines.is_empty() {
        return (Hosts::default(), Vec::new());
    }
    match Hosts::open(machines.iter().map(|m| m.libvirt_uri.as_str())) {
        Ok(hosts) => {
            let problems = hosts.all_unreachable().iter().map(|u| u.to_string());
            let problems = problems.collect();
            (hosts, problems)
        }
        Err(err) => (Hosts::default(), vec![err.to_string()]),
    }
}

/// The images pools of the manifest's hosts among `hosts` with what they
/// hold, and what could not be read.
pub fn list(desired: &Desired, hosts: &Hosts) -> (Vec<HostImage>, Vec<String>) {
    let machines = pool_machines(desired);
    let reachable = machines
        .iter()
        .copied()
        .filter(|m| hosts.find(&m.libvirt_uri).is_some());
    let pools = match host_images::read(hosts, reachable) {
        Ok(pools) => pools,
        Err(err) => return (Vec::new(), vec![err.to_string()]),
    };
    let mut found = Vec::new();
    for pool in pools {
        for (name, size) in &pool.volumes {
            let users: Vec<&&MachineSpec> = machines
                .iter()
                .filter(|m| {
                    m.libvirt_uri == pool.uri && images_pool::images_pool_dir(m) == pool.dir
                })
                .filter(|m| boots(desired, m, name))
                .collect();
            let mut images: Vec<String> = desired
                .images
                .values()
                .filter(|spec| &spec.file_name == name)
                .map(|spec| spec.key.clone())
                .collect();
            images.extend(users.iter().map(|m| m.os.clone()));
            images.sort();
            images.dedup();
            found.push(HostImage {
                uri: pool.uri.clone(),
                path: pool.dir.join(name),
                size: *size,
                images,
                machines: users
                    .iter()
                    .map(|m| format!("{}/{}", m.environment, m.vm_name))
                    .collect(),
            });
        }
    }
    (found, Vec::new())
}

/// Whether `machine` boots the volume `name`: its image's file now (after
/// a `--refresh`) or the one its URL names.
fn boots(desired: &Desired, machine: &MachineSpec, name: &str) -> bool {
    let cache_dir = machine.image_path.parent().unwrap_or(Path::new("/"));
    let current = super::ensure::current_path(cache_dir, &desired.images[&machine.os]);
    [current.as_path(), machine.image_path.as_path()]
        .iter()
        .any(|path| crate::host::pools::volume_name(path) == name)
}

/// Removes the uploaded image at `image.path` from its host's images
/// pool, through `hosts` (from [`open_hosts`]).
pub fn remove(hosts: &Hosts, image: &HostImage) -> Result<(), String> {
    let host = hosts
        .find(&image.uri)
        .ok_or_else(|| match hosts.unreachable(&image.uri) {
            Some(unreachable) => unreachable.to_string(),
            None => format!("host {} was not opened", image.uri),
        })?;
    let dir = image.path.parent().unwrap_or(Path::new("/"));
    let name = crate::host::pools::volume_name(&image.path);
    images_pool::remove(&host.connection(), dir, &name).map_err(|e| e.to_string())
}
