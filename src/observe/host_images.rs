//! What each host's images pool holds, for the machines whose disks live
//! in pools (today: those on a remote host): the pool's volumes with their
//! physical sizes, read once per host and pool directory. A missing pool
//! holds nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::desired::MachineSpec;
use crate::host::images_pool;
use crate::host::Hosts;
use crate::libvirt::LibvirtError;

/// One images pool on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostImages {
    /// The libvirt URI of the host (as the machines name it).
    pub uri: String,
    /// The pool's directory on the host.
    pub dir: PathBuf,
    /// Volume name -> physical size in bytes.
    pub volumes: BTreeMap<String, u64>,
}

/// Whether `machine`'s images are uploaded to its host's images pool: a
/// pool machine on a remote host (a remote host has only pools). A pool
/// machine here boots from the image cache, which is its images pool.
pub fn uses_images_pool(machine: &MachineSpec) -> bool {
    machine.storage == crate::desired::StorageKind::Pool
        && crate::host::is_remote_uri(&machine.libvirt_uri)
}

/// The images pools of `machines`' hosts, each listed once.
pub fn read<'m>(
    hosts: &Hosts,
    machines: impl IntoIterator<Item = &'m MachineSpec>,
) -> Result<Vec<HostImages>, LibvirtError> {
    let pools: BTreeSet<(&str, PathBuf)> = machines
        .into_iter()
        .filter(|m| uses_images_pool(m))
        .map(|m| (m.libvirt_uri.as_str(), images_pool::images_pool_dir(m)))
        .collect();
    pools
        .into_iter()
        .map(|(uri, dir)| {
            let volumes = images_pool::list(&hosts.get(uri).connection(), &dir)?;
            Ok(HostImages {
                uri: uri.to_string(),
                dir,
                volumes,
            })
        })
        .collect()
}

/// The pool at `dir` on `uri` among `pools`.
pub fn find<'a>(pools: &'a [HostImages], uri: &str, dir: &Path) -> Option<&'a HostImages> {
    pools.iter().find(|p| p.uri == uri && p.dir == dir)
}
