//! What must hold on the host before a machine is defined: its networks
//! exist and run, its static addresses fit them, its shared directories
//! exist. Checked at plan time, so a plan that cannot work says so.

use std::net::Ipv4Addr;

use super::PlanError;
use crate::desired::{Addressing, Attachment, MachineSpec};
use crate::observe::networks::NetworkIpv4;
use crate::observe::{MachineFiles, ObservedEnvironment};

/// What must hold on the host before a machine can be defined: its
/// networks exist and run, its static addresses fit them, its shared
/// directories exist.
pub(super) fn check_attachments(
    env: &ObservedEnvironment,
    machine: &MachineSpec,
    files: &MachineFiles,
) -> Result<(), PlanError> {
    if let Some(path) = files.missing_shares.first() {
        return Err(PlanError::ShareMissing {
            vm_name: machine.vm_name.clone(),
            path: path.clone(),
        });
    }
    for nic in &machine.interfaces {
        let Attachment::Network { network } = &nic.attachment else {
            continue;
        };
        let observed = env
            .networks
            .get(network)
            .ok_or_else(|| PlanError::NetworkMissing {
                vm_name: machine.vm_name.clone(),
                network: network.clone(),
                uri: env.uri.clone(),
            })?;
        if !observed.active {
            return Err(PlanError::NetworkInactive {
                vm_name: machine.vm_name.clone(),
                network: network.clone(),
                uri: env.uri.clone(),
            });
        }
        if let (Addressing::Static { ipv4: Some(v4), .. }, Some(net)) =
            (&nic.addressing, &observed.ipv4)
        {
            check_static_v4(v4.address.addr(), network, net).map_err(|problem| {
                PlanError::StaticAddress {
                    vm_name: machine.vm_name.clone(),
                    interface: nic.name.clone(),
                    problem,
                }
            })?;
        }
    }
    Ok(())
}

fn check_static_v4(address: Ipv4Addr, network: &str, net: &NetworkIpv4) -> Result<(), String> {
    if !net.subnet.contains(&address) {
        return Err(format!(
            "{address} is outside network {network}'s subnet {}",
            net.subnet
        ));
    }
    match net.dhcp_ranges.iter().find(|(start, end)| (*start..=*end).contains(&address)) {
        Some((start, end)) => Err(format!(
            "{address} is inside network {network}'s DHCP range {start}-{end}; pick an address outside it"
        )),
        None => Ok(()),
    }
}
