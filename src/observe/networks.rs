//! The libvirt networks of a connection: whether each is active, and its
//! IPv4 subnet and DHCP ranges, so a plan can check NICs before defining.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::libvirt::{Connection, LibvirtError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedNetwork {
    pub active: bool,
    pub ipv4: Option<NetworkIpv4>,
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
                Ok((
                    name,
                    ObservedNetwork {
                        active,
                        ipv4: parse_ipv4(&xml),
                    },
                ))
            };
            read().map_err(|e| conn.error("read a network", e))
        })
        .collect()
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
