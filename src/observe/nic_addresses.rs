//! The addresses a running guest's NICs have, by MAC: libvirt's DHCP
//! leases first (network NICs), then the guest agent (every NIC). `ssh`
//! and `hosts` need to know which NIC an address is on: a user-mode NIC's
//! address means nothing outside the guest.

use std::collections::BTreeMap;
use std::net::IpAddr;

use virt::sys;

use crate::libvirt::Connection;

/// Usable addresses (see [`super::runtime::is_usable_address`]) by MAC
/// (lowercase, as [`crate::desired::MacAddress`] prints); empty for a
/// domain that does not run or that neither source knows about.
pub fn by_mac(conn: &Connection, domain_name: &str) -> BTreeMap<String, Vec<IpAddr>> {
    let mut found: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    let Ok(domain) = conn.raw().lookup_domain_by_name(domain_name) else {
        return found;
    };
    if !domain.is_active().unwrap_or(false) {
        return found;
    }
    for source in [
        sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
    ] {
        for nic in domain.interface_addresses(source, 0).unwrap_or_default() {
            let Some(mac) = nic.hwaddr.as_deref().map(str::to_ascii_lowercase) else {
                continue;
            };
            if found.contains_key(&mac) {
                continue;
            }
            let usable: Vec<IpAddr> = nic
                .addrs
                .iter()
                .filter_map(|a| a.addr.parse().ok())
                .filter(|a| super::runtime::is_usable_address(*a))
                .collect();
            if !usable.is_empty() {
                found.insert(mac, usable);
            }
        }
    }
    found
}
