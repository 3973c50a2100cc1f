//! NICs: the defaults mapping overlaid by each machine interface, addressing,
//! and stable MAC addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use super::{Layered, Resolver};
use crate::desired::{
    Addressing, Attachment, InterfaceSpec, MacAddress, MachineSpec, Nameservers, SshPort, StaticV4,
    StaticV6,
};
use crate::manifest::error::Problem;
use crate::manifest::names;
use crate::manifest::raw::{OneOrMany, RawInterface};
use crate::manifest::source::KeyPath;

const DEFAULT_NETWORK: &str = "default";

pub(super) fn resolve_interfaces(
    r: &mut Resolver,
    m: &Layered,
    environment: &str,
    vm_name: &str,
) -> Option<Vec<InterfaceSpec>> {
    let defaults = default_interface(r, m)?;
    let empty = RawInterface::default();
    let own: Vec<(&RawInterface, KeyPath)> = match &m.machine.interfaces {
        None => vec![(&empty, m.defaults_path.key("interfaces"))],
        Some(OneOrMany::Many(list)) => list
            .iter()
            .enumerate()
            .map(|(i, nic)| (nic, m.machine_path.key("interfaces").index(i)))
            .collect(),
        Some(OneOrMany::One(_)) => {
            r.report(
                Problem::value(
                    m.machine_path.key("interfaces"),
                    "a machine's `interfaces` must be a list",
                )
                .hint("put `- ` before the interface's first key to make it a list item"),
            );
            return None;
        }
    };
    let mut specs: Vec<InterfaceSpec> = Vec::new();
    let mut ok = true;
    for (i, (nic, path)) in own.iter().enumerate() {
        let merged = overlay(nic, &defaults);
        match resolve_interface(r, &merged, nic, i, path, environment, vm_name) {
            Some(spec) if specs.iter().any(|s| s.name == spec.name) => {
                r.report(Problem::value(
                    path.key("name"),
                    format!("interface `{}` is listed twice", spec.name),
                ));
                ok = false;
            }
            Some(spec) => specs.push(spec),
            None => ok = false,
        }
    }
    ok.then_some(specs)
}

/// `config_defaults.interfaces` is one mapping of defaults, not a list.
fn default_interface(r: &mut Resolver, m: &Layered) -> Option<RawInterface> {
    match &m.defaults.interfaces {
        None => Some(RawInterface::default()),
        Some(OneOrMany::One(nic)) => Some(nic.clone()),
        Some(OneOrMany::Many(_)) => {
            r.report(
                Problem::value(
                    m.defaults_path.key("interfaces"),
                    "in config_defaults, `interfaces` is one mapping of defaults, not a list",
                )
                .hint("remove the `- ` so the keys apply to every machine interface"),
            );
            None
        }
    }
}

/// `nic`'s keys, each falling back to the defaults `d`.
fn overlay(nic: &RawInterface, d: &RawInterface) -> RawInterface {
    RawInterface {
        name: nic.name.clone().or_else(|| d.name.clone()),
        network: nic.network.clone().or_else(|| d.network.clone()),
        network_type: nic.network_type.clone().or_else(|| d.network_type.clone()),
        ip4: nic.ip4.clone().or_else(|| d.ip4.clone()),
        ip6: nic.ip6.clone().or_else(|| d.ip6.clone()),
        ip4gw: nic.ip4gw.clone().or_else(|| d.ip4gw.clone()),
        ip6gw: nic.ip6gw.clone().or_else(|| d.ip6gw.clone()),
        macaddress: nic.macaddress.clone().or_else(|| d.macaddress.clone()),
        ssh_port: nic.ssh_port.clone().or_else(|| d.ssh_port.clone()),
    }
}

fn resolve_interface(
    r: &mut Resolver,
    nic: &RawInterface,
    own: &RawInterface,
    index: usize,
    path: &KeyPath,
    environment: &str,
    vm_name: &str,
) -> Option<InterfaceSpec> {
    let name = nic.name.clone().unwrap_or_else(|| format!("eth{index}"));
    let attachment = attachment(r, nic, own, path)?;
    let addressing = addressing(r, nic, path)?;
    if !matches!(attachment, Attachment::Network { .. }) && addressing != Addressing::Dhcp {
        r.report(
            Problem::value(
                path.key(if nic.ip4.is_some() { "ip4" } else { "ip6" }),
                "a static address needs `network_type: network`",
            )
            .label("not allowed on a user-mode NIC")
            .hint("user and passt NICs get their address from QEMU: remove ip4/ip6, or attach the NIC to a libvirt network"),
        );
        return None;
    }
    let mac = match &nic.macaddress {
        Some(text) => r.check(&path.key("macaddress"), names::parse_mac(text))?,
        None => names::derived_mac(environment, vm_name, &name),
    };
    Some(InterfaceSpec {
        name,
        mac,
        attachment,
        addressing,
    })
}

/// `own` is the interface as the machine wrote it: an `ssh_port` inherited
/// from the defaults does not apply to a NIC that is not passt.
fn attachment(
    r: &mut Resolver,
    nic: &RawInterface,
    own: &RawInterface,
    path: &KeyPath,
) -> Option<Attachment> {
    let kind = nic.network_type.as_deref().unwrap_or("network");
    let attachment = match kind {
        "network" => Attachment::Network {
            network: nic
                .network
                .clone()
                .unwrap_or_else(|| DEFAULT_NETWORK.into()),
        },
        "user" => Attachment::User,
        "passt" => Attachment::Passt {
            ssh_port: match &nic.ssh_port {
                None => None,
                Some(port) => Some(r.check(&path.key("ssh_port"), ssh_port(&port.0))?),
            },
        },
        other => {
            r.report(
                Problem::value(
                    path.key("network_type"),
                    format!("`network_type: {other}` is not valid"),
                )
                .label("expected network, user or passt")
                .hint("use network (a libvirt network), user (QEMU user-mode) or passt"),
            );
            return None;
        }
    };
    if own.ssh_port.is_some() && !matches!(attachment, Attachment::Passt { .. }) {
        r.report(
            Problem::key(
                path.key("ssh_port"),
                "`ssh_port` only works with `network_type: passt`",
            )
            .hint("set `network_type: passt`, or remove ssh_port"),
        );
        return None;
    }
    Some(attachment)
}

fn ssh_port(text: &str) -> Result<SshPort, String> {
    if text == "auto" {
        return Ok(SshPort::Auto);
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(SshPort::Fixed(port)),
        _ => Err(format!(
            "`ssh_port: {text}` must be `auto` or a port from 1 to 65535"
        )),
    }
}

/// Static when `ip4` or `ip6` is set, DHCP otherwise. Gateways only count
/// next to an address of their family (a default gateway may be inherited
/// by DHCP interfaces, which ignore it).
fn addressing(r: &mut Resolver, nic: &RawInterface, path: &KeyPath) -> Option<Addressing> {
    if nic.ip4.is_none() && nic.ip6.is_none() {
        return Some(Addressing::Dhcp);
    }
    let ipv4 = match &nic.ip4 {
        Some(ip) => Some(StaticV4 {
            address: r.check(&path.key("ip4"), cidr(ip, "192.168.122.10/24"))?,
            gateway: parse_gateway(r, nic.ip4gw.as_deref(), &path.key("ip4gw"))?,
        }),
        None => None,
    };
    let ipv6 = match &nic.ip6 {
        Some(ip) => Some(StaticV6 {
            address: r.check(&path.key("ip6"), cidr(ip, "fd00::10/64"))?,
            gateway: parse_gateway(r, nic.ip6gw.as_deref(), &path.key("ip6gw"))?,
        }),
        None => None,
    };
    Some(Addressing::Static { ipv4, ipv6 })
}

fn cidr<T: FromStr>(text: &str, example: &str) -> Result<T, String> {
    if !text.contains('/') {
        return Err(format!("`{text}` needs a prefix length, like `{example}`"));
    }
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an address with prefix length like `{example}`"))
}

/// `Some(None)` for no gateway; `None` after reporting a bad one.
fn parse_gateway<T: FromStr>(
    r: &mut Resolver,
    text: Option<&str>,
    path: &KeyPath,
) -> Option<Option<T>> {
    let Some(text) = text else { return Some(None) };
    let parsed = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a gateway address of this family"));
    r.check(path, parsed).map(Some)
}

pub(super) fn resolve_nameservers(r: &mut Resolver, m: &Layered) -> Option<Nameservers> {
    let addresses = m.pick("nameservers", |x| {
        x.nameservers.as_ref().and_then(|n| n.addresses.as_ref())
    });
    let search = m.pick("nameservers", |x| {
        x.nameservers.as_ref().and_then(|n| n.search.as_ref())
    });
    let mut out = Nameservers::default();
    if let Some((list, path)) = addresses {
        for (i, text) in list.clone().into_vec().into_iter().enumerate() {
            let parsed =
                IpAddr::from_str(text.trim()).map_err(|_| format!("`{text}` is not an IP address"));
            out.addresses
                .push(r.check(&path.key("addresses").index(i), parsed)?);
        }
    }
    if let Some((list, _)) = search {
        out.search = list.clone().into_vec();
    }
    Some(out)
}

/// Two NICs with one MAC would confuse libvirt's networks and the guests.
pub(super) fn check_unique_macs(r: &mut Resolver, machines: &[MachineSpec], path: &KeyPath) {
    let mut owners: BTreeMap<MacAddress, String> = BTreeMap::new();
    for machine in machines {
        for nic in &machine.interfaces {
            let owner = format!("{}/{}", machine.vm_name, nic.name);
            if let Some(first) = owners.insert(nic.mac, owner.clone()) {
                r.report(
                    Problem::value(
                        path.clone(),
                        format!("MAC {} is used by both {first} and {owner}", nic.mac),
                    )
                    .hint("give one of them a different `macaddress`"),
                );
            }
        }
    }
}
