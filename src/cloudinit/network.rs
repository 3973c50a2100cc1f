//! What network-config says about a machine's NICs, as data for the v1 and
//! v2 templates (`templates/network-config-v1.yaml.j2` and `-v2`).
//!
//! v2 keys each NIC by its manifest label and matches it by MAC, never
//! renaming it (`set-name` breaks DHCP under systemd-networkd). Its IPv4
//! default route is a `0.0.0.0/0` route; its IPv6 gateway is `gateway6`,
//! because cloud-init before 23.1 (Debian 12 ships 22.4) turns a `::/0`
//! route into `::/64` in every renderer but netplan (LP: #2003562). v1 has no
//! match: its `physical` entries name the device and give its MAC. NICs on
//! user-mode networking (user, passt) always use DHCP. A NIC with only a
//! static IPv6 address keeps DHCP for IPv4, as the original renders it.

use serde::Serialize;

use crate::desired::{Addressing, MachineSpec, NetworkVersion};

#[derive(Debug, Serialize)]
pub struct NetworkContext {
    pub interfaces: Vec<NicContext>,
    pub nameservers: NameserversContext,
}

#[derive(Debug, Serialize)]
pub struct NicContext {
    /// The manifest's label: the v2 key and the v1 `name`.
    pub label: String,
    pub mac: String,
    /// DHCP for IPv4: without a static IPv4 address.
    pub dhcp4: bool,
    /// DHCP for IPv6: only without any static address.
    pub dhcp6: bool,
    pub ipv4: Option<StaticContext>,
    pub ipv6: Option<StaticContext>,
    /// Both static addresses, for v2's `addresses`.
    pub addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct StaticContext {
    /// Address with prefix length, e.g. `10.0.0.5/24`.
    pub address: String,
    /// The default gateway; no route is written without one.
    pub gateway: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NameserversContext {
    pub addresses: Vec<String>,
    pub search: Vec<String>,
    /// Whether there is anything to write.
    pub any: bool,
}

/// The template that renders this network-config version.
pub fn template_name(version: NetworkVersion) -> &'static str {
    match version {
        NetworkVersion::V1 => "network-config-v1.yaml.j2",
        NetworkVersion::V2 => "network-config-v2.yaml.j2",
    }
}

pub fn context(machine: &MachineSpec) -> NetworkContext {
    let interfaces = machine
        .interfaces
        .iter()
        .map(|nic| {
            let (ipv4, ipv6) = match &nic.addressing {
                Addressing::Dhcp => (None, None),
                Addressing::Static { ipv4, ipv6 } => (
                    ipv4.as_ref().map(|v4| StaticContext {
                        address: v4.address.to_string(),
                        gateway: v4.gateway.map(|g| g.to_string()),
                    }),
                    ipv6.as_ref().map(|v6| StaticContext {
                        address: v6.address.to_string(),
                        gateway: v6.gateway.map(|g| g.to_string()),
                    }),
                ),
            };
            let addresses = [&ipv4, &ipv6]
                .into_iter()
                .flatten()
                .map(|s| s.address.clone())
                .collect();
            NicContext {
                label: nic.name.clone(),
                mac: nic.mac.to_string(),
                dhcp4: ipv4.is_none(),
                dhcp6: ipv4.is_none() && ipv6.is_none(),
                ipv4,
                ipv6,
                addresses,
            }
        })
        .collect();
    let ns = &machine.nameservers;
    NetworkContext {
        interfaces,
        nameservers: NameserversContext {
            addresses: ns.addresses.iter().map(ToString::to_string).collect(),
            search: ns.search.clone(),
            any: !ns.addresses.is_empty() || !ns.search.is_empty(),
        },
    }
}
