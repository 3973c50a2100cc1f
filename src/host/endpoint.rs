//! How to reach a guest's SSH server from the machine lvlab runs on: the
//! one rule `status`, `--wait` and the SSH verbs share. A passt forward is
//! on the host's loopback; a static address is the guest's own. The host
//! answers which loopback that is and how to get there ([`Route`]): for
//! this machine, `127.0.0.1` directly.

use std::net::SocketAddr;

use serde::Serialize;

use super::{Host, Place};
use crate::desired::{Addressing, MachineSpec};
use crate::observe::MachineFiles;

/// Where a guest's SSH server answers, and the way there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshEndpoint {
    /// The address as seen from the end of [`Self::route`].
    pub address: SocketAddr,
    pub route: Route,
    /// Through a passt port forward on the host (whose passt a too early
    /// connection makes spin: see `observe::ssh_wait`), not the guest's
    /// own address.
    pub forwarded: bool,
}

/// The way from this machine to an endpoint's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Connect to the address as it is. The remote-host work adds
    /// `ProxyCommand { .. }`: the address is on the hypervisor host's
    /// loopback, reached through an SSH connection to that host.
    Direct,
}

impl SshEndpoint {
    /// The `ssh` command that logs in as `user`.
    pub fn command(&self, user: &str) -> String {
        let Route::Direct = self.route;
        if self.address.port() == 22 {
            format!("ssh {user}@{}", self.address.ip())
        } else {
            format!(
                "ssh -p {} {user}@{}",
                self.address.port(),
                self.address.ip()
            )
        }
    }
}

impl Host {
    /// Where `machine`'s SSH answers: the first passt forward recorded in
    /// its definition (`files`, as observed on this host's storage), else
    /// port 22 of its first static IPv4 address; `None` when lvlab knows
    /// no way to it (DHCP on a libvirt network: `status` shows its leases).
    pub fn ssh_endpoint(&self, machine: &MachineSpec, files: &MachineFiles) -> Option<SshEndpoint> {
        if let Some(port) = files.ssh_ports().first() {
            return Some(SshEndpoint {
                address: self.forward_address(*port),
                route: self.route(),
                forwarded: true,
            });
        }
        machine
            .interfaces
            .iter()
            .find_map(|nic| match &nic.addressing {
                Addressing::Static { ipv4: Some(v4), .. } => Some(SshEndpoint {
                    address: SocketAddr::from((v4.address.addr(), 22)),
                    route: self.route(),
                    forwarded: false,
                }),
                _ => None,
            })
    }

    /// Where passt listens for a forward: the host's loopback.
    fn forward_address(&self, port: u16) -> SocketAddr {
        match self.place {
            Place::ThisMachine => SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn route(&self) -> Route {
        match self.place {
            Place::ThisMachine => Route::Direct,
        }
    }
}
