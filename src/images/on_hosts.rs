//! The images uploaded to hosts' images pools (`images list`, `images
//! clean` per host): for each remote host the manifest's machines use, the
//! pool's volumes, which image keys they are and which machines boot
//! them. Only lvlab's images pools are read, and only their image volumes
//! are ever removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::desired::{Desired, MachineSpec};
use crate::host::{images_pool, Host, Hosts};
use crate::observe::host_images::uses_images_pool;

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

/// The images pools of the manifest's hosts with what they hold, and the
/// hosts that could not be read (each with libvirt's message).
pub fn list(desired: &Desired) -> (Vec<HostImage>, Vec<String>) {
    let machines: Vec<&MachineSpec> = desired
        .environments
        .iter()
        .flat_map(|e| &e.machines)
        .filter(|m| uses_images_pool(m))
        .collect();
    let pools: BTreeSet<(&str, PathBuf)> = machines
        .iter()
        .map(|m| (m.libvirt_uri.as_str(), images_pool::images_pool_dir(m)))
        .collect();
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (uri, dir) in pools {
        let volumes = Host::open(uri).and_then(|h| images_pool::list(&h.connection(), &dir));
        let volumes = match volumes {
            Ok(volumes) => volumes,
            Err(err) => {
                problems.push(err.to_string());
                continue;
            }
        };
        for (name, size) in volumes {
            let users: Vec<&&MachineSpec> = machines
                .iter()
                .filter(|m| m.libvirt_uri == uri && images_pool::images_pool_dir(m) == dir)
                .filter(|m| boots(desired, m, &name))
                .collect();
            let mut images: Vec<String> = desired
                .images
                .values()
                .filter(|spec| spec.file_name == name)
                .map(|spec| spec.key.clone())
                .collect();
            images.extend(users.iter().map(|m| m.os.clone()));
            images.sort();
            images.dedup();
            found.push(HostImage {
                uri: uri.to_string(),
                path: dir.join(&name),
                size,
                images,
                machines: users
                    .iter()
                    .map(|m| format!("{}/{}", m.environment, m.vm_name))
                    .collect(),
            });
        }
    }
    (found, problems)
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
/// pool, through `hosts` (opened once for every image removed: each
/// opening of a remote host is an SSH login).
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
