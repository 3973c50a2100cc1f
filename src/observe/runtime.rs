//! What a running domain looks like from the host, for `status`: its vCPUs
//! and memory, its addresses (libvirt's DHCP leases, else the guest agent),
//! and how long its QEMU process has run. Only `status` asks; plans never
//! need it.

use std::time::Duration;

use serde::Serialize;
use virt::sys;

use crate::host::Host;
use crate::libvirt::Connection;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Runtime {
    pub vcpus: u32,
    pub memory_mib: u64,
    /// `address/prefix` for each address the guest has, when known.
    pub addresses: Vec<String>,
    #[serde(serialize_with = "seconds")]
    pub uptime: Option<Duration>,
}

fn seconds<S: serde::Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

/// `None` when the domain does not exist. Addresses and uptime are best
/// effort: a guest without an agent leaves its addresses empty, a remote
/// host its uptime (see [`Host::uptime`]).
pub fn read(host: &Host, name: &str) -> Option<Runtime> {
    let domain = host.connection().raw().lookup_domain_by_name(name).ok()?;
    let info = domain.info().ok()?;
    let active = domain.is_active().unwrap_or(false);
    let addresses = if active {
        [
            sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
            sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
        ]
        .into_iter()
        .filter_map(|source| domain.interface_addresses(source, 0).ok())
        .map(|interfaces| {
            interfaces
                .iter()
                .filter(|i| i.name != "lo")
                .flat_map(|i| i.addrs.iter().map(|a| format!("{}/{}", a.addr, a.prefix)))
                .filter(|a| !a.starts_with("127.") && !a.starts_with("::1/"))
                .collect::<Vec<_>>()
        })
        .find(|found| !found.is_empty())
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    Some(Runtime {
        vcpus: info.nr_virt_cpu,
        memory_mib: info.max_mem / 1024,
        addresses,
        uptime: if active { host.uptime(name) } else { None },
    })
}

/// Whether the guest agent in `name` reports a usable address on an
/// interface other than loopback: the guest's network is up. An agent that
/// answers with only `lo` (or link-local addresses) started before the
/// network did.
pub fn agent_reports_network(conn: &Connection, name: &str) -> bool {
    conn.raw()
        .lookup_domain_by_name(name)
        .and_then(|d| d.interface_addresses(sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0))
        .is_ok_and(|interfaces| {
            interfaces.iter().any(|i| {
                i.name != "lo"
                    && i.addrs
                        .iter()
                        .any(|a| a.addr.parse().is_ok_and(is_usable_address))
            })
        })
}

/// Neither loopback, unspecified nor link-local: an address the guest got
/// from its network configuration.
pub(crate) fn is_usable_address(address: std::net::IpAddr) -> bool {
    match address {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_unspecified() || v4.is_link_local())
        }
        std::net::IpAddr::V6(v6) => {
            !(v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_addresses_mean_the_network_is_up() {
        for up in ["192.0.2.2", "10.0.2.15", "fd00::2", "2001:db8::5"] {
            assert!(is_usable_address(up.parse().unwrap()), "{up}");
        }
        for not_yet in [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.3.4",
            "::1",
            "::",
            "fe80::5054:ff:fe34:d843",
        ] {
            assert!(!is_usable_address(not_yet.parse().unwrap()), "{not_yet}");
        }
    }
}
