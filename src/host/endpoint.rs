//! How to reach a guest's SSH server from the machine lvlab runs on: the
//! one rule `status`, `--wait` and the SSH verbs share. A passt forward is
//! on the host's loopback; a static address is the guest's own. The host
//! answers which loopback that is and how to get there ([`Route`]): for
//! this machine, `127.0.0.1` directly; for a remote host, through an SSH
//! connection to that host (`ssh -W`, as a `ProxyCommand`).

use std::net::SocketAddr;

use serde::Serialize;

use super::{Host, Place, SshHop};
use crate::desired::{Addressing, MachineSpec};
use crate::escape::shell_quote;
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Connect to the address as it is.
    Direct,
    /// The address is as the hypervisor host sees it (its loopback, a
    /// network of its own): reached through an SSH connection to that
    /// host, `ssh -W` (see [`SshHop::proxy_command`]).
    ProxyCommand(SshHop),
    /// The hypervisor host is another machine lvlab has no SSH hop to;
    /// why, naming its URI.
    Unreachable(String),
}

impl Route {
    /// The `ProxyCommand` an ssh client needs (`None`: it connects
    /// directly); an error says why the address is out of reach.
    pub fn proxy_command(&self) -> Result<Option<String>, String> {
        match self {
            Route::Direct => Ok(None),
            Route::ProxyCommand(hop) => Ok(Some(hop.proxy_command())),
            Route::Unreachable(why) => Err(why.clone()),
        }
    }
}

impl SshEndpoint {
    /// The `ssh` command (for a shell) that logs in as `user`; through
    /// the host's hop when the route has one.
    pub fn command(&self, user: &str) -> String {
        let mut words = vec!["ssh".to_string()];
        if let Ok(Some(proxy)) = self.route.proxy_command() {
            words.push("-o".into());
            words.push(shell_quote(&format!("ProxyCommand={proxy}")));
        }
        if self.address.port() != 22 {
            words.push(format!("-p {}", self.address.port()));
        }
        words.push(format!("{user}@{}", self.address.ip()));
        words.join(" ")
    }

    /// The address and, for a remote host, which host's it is
    /// (`127.0.0.1:40022 via hv2`).
    pub fn describe(&self) -> String {
        match &self.route {
            Route::Direct => self.address.to_string(),
            Route::ProxyCommand(hop) => format!("{} via {}", self.address, hop.host),
            Route::Unreachable(_) => format!("{} (no SSH hop to its host)", self.address),
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
                // passt listens on its host's loopback; the route says whose.
                address: SocketAddr::from(([127, 0, 0, 1], *port)),
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

    /// How this machine reaches any address of the host's guests: as it
    /// is here; through the SSH hop for a remote host.
    pub fn route(&self) -> Route {
        match &self.place {
            Place::ThisMachine => Route::Direct,
            Place::Remote(remote) => match remote.hop() {
                Ok(hop) => Route::ProxyCommand(hop.clone()),
                Err(why) => Route::Unreachable(why),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::RemoteHost;

    #[test]
    fn the_connect_line_carries_the_hosts_proxy_command_quoted_for_the_shell() {
        let hop = RemoteHost::parse("qemu+ssh://root@hv2/system?keyfile=/k/my%20id")
            .hop()
            .unwrap()
            .clone();
        let endpoint = SshEndpoint {
            address: SocketAddr::from(([127, 0, 0, 1], 24022)),
            route: Route::ProxyCommand(hop),
            forwarded: true,
        };
        assert_eq!(
            endpoint.command("admin"),
            "ssh -o 'ProxyCommand=ssh -W %h:%p -i '\\''/k/my id'\\'' -l root hv2' \
             -p 24022 admin@127.0.0.1"
        );
        assert_eq!(endpoint.describe(), "127.0.0.1:24022 via hv2");
    }
}
