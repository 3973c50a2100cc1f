//! The libvirt networks of a connection: whether each is active, its IPv4
//! subnet and DHCP ranges, and the DHCP leases it has handed out, so a plan
//! can check NICs before defining.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use virt::sys;

use crate::libvirt::{Connection, LibvirtError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedNetwork {
    pub active: bool,
    pub ipv4: Option<NetworkIpv4>,
    pub leases: Leases,
}

/// The DHCP leases of a network, as libvirt's network lease call lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Leases {
    Listed(Vec<Lease>),
    /// The driver cannot list leases (the test driver answers
    /// "unsupported"), or the call failed: no collision check is possible.
    Unknown,
}

/// One address a network's DHCP server gave to a MAC. Only what a
/// collision check needs: expiry times would make every plan look stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub mac: String,
    pub ip: std::net::IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkIpv4 {
    pub subnet: Ipv4Net,
    pub dhcp_ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
}

/// Every network on `conn`, by name.
pub fn list(conn: &Connection) -> Result<BTreeMap<String, ObservedNetwork>, LibvirtError> {
    let networks = conn
        .raw()
        .list_all_networks(0)
        .map_err(|e| conn.error("list networks", e))?;
    networks
        .iter()
        .map(|network| {
            let read = || -> Result<(String, ObservedNetwork), virt::error::Error> {
                let name = network.name()?;
                let active = network.is_active()?;
                let xml = network.xml_desc(0)?;
                let leases = if active {
                    leases(conn, network)
                } else {
                    Leases::Listed(Vec::new())
                };
                Ok((
                    name,
                    ObservedNetwork {
                        active,
                        ipv4: parse_ipv4(&xml),
                        leases,
                    },
                ))
            };
            read().map_err(|e| conn.error("read a network", e))
        })
        .collect()
}

/// The network's current DHCP leases. The safe `virt` wrapper has no call
/// for them, so this goes through `virt::sys` (virNetworkGetDHCPLeases).
fn leases(conn: &Connection, network: &virt::network::Network) -> Leases {
    let mut array: *mut sys::virNetworkDHCPLeasePtr = std::ptr::null_mut();
    // SAFETY: `network` is a live handle; libvirt allocates `array` and its
    // `count` leases, which are read here and freed below exactly once.
    let count =
        unsafe { sys::virNetworkGetDHCPLeases(network.as_ptr(), std::ptr::null(), &mut array, 0) };
    if count < 0 {
        let err = virt::error::Error::last_error();
        tracing::debug!(uri = conn.uri(), "DHCP leases unknown: {}", err.message());
        return Leases::Unknown;
    }
    let mut leases = Vec::new();
    for i in 0..count as usize {
        // SAFETY: libvirt returned `count` valid lease pointers in `array`.
        unsafe {
            let lease = *array.add(i);
            if let (Some(mac), Some(ip)) = (c_text((*lease).mac), c_text((*lease).ipaddr)) {
                if let Ok(ip) = ip.parse() {
                    leases.push(Lease { mac, ip });
                }
            }
            sys::virNetworkDHCPLeaseFree(lease);
        }
    }
    if !array.is_null() {
        // SAFETY: the array itself was allocated by libvirt with malloc.
        unsafe { libc_free(array.cast()) };
    }
    Leases::Listed(leases)
}

extern "C" {
    /// The C library's `free`, which libvirt's docs name for the lease array.
    #[link_name = "free"]
    fn libc_free(ptr: *mut std::os::raw::c_void);
}

/// A C string owned by libvirt, copied.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string.
unsafe fn c_text(ptr: *const std::os::raw::c_char) -> Option<String> {
    (!ptr.is_null()).then(|| std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned())
}

/// The first IPv4 `<ip>` of a network definition, with its DHCP ranges.
pub fn parse_ipv4(xml: &str) -> Option<NetworkIpv4> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let ip = doc.descendants().find(|n| {
        n.has_tag_name("ip")
            && n.parent().is_some_and(|p| p.has_tag_name("network"))
            && n.attribute("family").is_none_or(|f| f == "ipv4")
    })?;
    let address: Ipv4Addr = ip.attribute("address")?.parse().ok()?;
    let prefix = match (ip.attribute("prefix"), ip.attribute("netmask")) {
        (Some(prefix), _) => prefix.parse().ok()?,
        (None, Some(mask)) => u32::from(mask.parse::<Ipv4Addr>().ok()?).count_ones() as u8,
        (None, None) => 24,
    };
    let dhcp_ranges = ip
        .descendants()
        .filter(|n| n.has_tag_name("range"))
        .filter_map(|r| {
            Some((
                r.attribute("start")?.parse().ok()?,
                r.attribute("end")?.parse().ok()?,
            ))
        })
        .collect();
    Some(NetworkIpv4 {
        subnet: Ipv4Net::new(address, prefix).ok()?.trunc(),
        dhcp_ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_subnet_and_dhcp_ranges_with_netmask_or_prefix() {
        let with_mask =
            "<network><name>n</name><ip address='192.168.122.1' netmask='255.255.255.0'>\
            <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>";
        let v4 = parse_ipv4(with_mask).unwrap();
        assert_eq!(v4.subnet.to_string(), "192.168.122.0/24");
        assert_eq!(
            v4.dhcp_ranges,
            [(
                "192.168.122.2".parse().unwrap(),
                "192.168.122.254".parse().unwrap()
            )]
        );
        let with_prefix = "<network><ip family='ipv6' address='fd00::1' prefix='64'/>\
            <ip address='10.9.0.1' prefix='16'/></network>";
        let v4 = parse_ipv4(with_prefix).unwrap();
        assert_eq!(v4.subnet.to_string(), "10.9.0.0/16");
        assert!(v4.dhcp_ranges.is_empty());
        assert_eq!(parse_ipv4("<network><name>isolated</name></network>"), None);
    }
}
