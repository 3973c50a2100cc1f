//! NICs: the defaults mapping overlaid by each machine interface, addressing,
//! and stable MAC addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use super::{settings, Layered, Resolver};
use crate::desired::{
    Addressing, Attachment, InterfaceSpec, MacAddress, MachineSpec, Nameservers, SshPort, StaticV4,
    StaticV6,
};
use crate::manifest::error::Problem;
use crate::manifest::names;
use crate::manifest::raw::{OneOrMany, RawInterface};
use crate::manifest::source::KeyPath;

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
        if nic.nameservers.is_some() && m.machine.interfaces.is_some() {
            r.report(
                Problem::key(
                    path.key("nameservers"),
                    "`nameservers` is not read on a machine's interface",
                )
                .hint("move it to the machine (beside `interfaces:`) or to `config_defaults.interfaces`"),
            );
            ok = false;
            continue;
        }
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
        // A machine-level block: see `resolve_nameservers`.
        nameservers: None,
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
    let addressing = match &attachment {
        Attachment::Network { network } => network_gateways(r, network, addressing),
        _ => addressing,
    };
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
                .unwrap_or_else(|| r.settings.default_network().to_string()),
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

/// A static address on a network with a `networks:` entry takes the
/// entry's gateway when the interface names none (bridges: libvirt does not
/// know their gateway).
fn network_gateways(r: &Resolver, network: &str, addressing: Addressing) -> Addressing {
    let gateway = r.settings.network(network).and_then(|n| n.gateway);
    match (addressing, gateway) {
        (Addressing::Static { mut ipv4, mut ipv6 }, Some(gateway)) => {
            match (gateway, &mut ipv4, &mut ipv6) {
                (IpAddr::V4(gw), Some(v4), _) if v4.gateway.is_none() => v4.gateway = Some(gw),
                (IpAddr::V6(gw), _, Some(v6)) if v6.gateway.is_none() => v6.gateway = Some(gw),
                _ => {}
            }
            Addressing::Static { ipv4, ipv6 }
        }
        (addressing, _) => addressing,
    }
}

/// One block per machine, read where the original reads it: the machine's
/// own `nameservers`, else `config_defaults.interfaces.nameservers`, else
/// `config_defaults.nameservers`, else the `networks:` entry of the first
/// interface's network.
pub(super) fn resolve_nameservers(
    r: &mut Resolver,
    m: &Layered,
    first: Option<&InterfaceSpec>,
) -> Option<Nameservers> {
    let default_nic = match &m.defaults.interfaces {
        Some(OneOrMany::One(nic)) => nic.nameservers.as_ref(),
        _ => None,
    };
    let written = [
        (
            m.machine.nameservers.as_ref(),
            m.machine_path.key("nameservers"),
        ),
        (
            default_nic,
            m.defaults_path.key("interfaces").key("nameservers"),
        ),
        (
            m.defaults.nameservers.as_ref(),
            m.defaults_path.key("nameservers"),
        ),
    ];
    if let Some((block, path)) = written.into_iter().find_map(|(b, p)| Some((b?, p))) {
        let block = block.clone();
        return settings::nameservers(r, block.addresses, block.search, &path, "addresses");
    }
    let network = match first.map(|nic| &nic.attachment) {
        Some(Attachment::Network { network }) => r.settings.network(network),
        _ => None,
    };
    Some(network.map(|n| n.nameservers.clone()).unwrap_or_default())
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
