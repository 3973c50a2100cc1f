//! Starting a machine's domain on its host. On a remote host an automatic
//! SSH port was picked without a probe (see `Host::free_ssh_port`): when
//! passt finds it taken, the start moves the machine's automatic forwards
//! to other ports (its libvirt definition and its recorded one), says so,
//! and starts again, a few times. A local host's ports were probed: its
//! start is tried once, as before.

use std::collections::BTreeMap;

use virt::sys;

use super::{domain, files};
use crate::apply::{ActionError, DomainActionError};
use crate::desired::{Attachment, MachineSpec, SshPort};
use crate::host::{Host, Place};
use crate::libvirt::{Connection, LibvirtError};
use crate::plan::StartWatch;

/// Starts after the first that found a port taken.
pub const PORT_RETRIES: usize = 3;

/// Starts `name` (`machine`'s domain, when the manifest still has it).
pub fn start(
    host: &Host,
    conn: &Connection,
    machine: Option<&MachineSpec>,
    name: &str,
    watch: StartWatch,
) -> Result<(), ActionError> {
    let remote = matches!(host.place(), Place::Remote(_));
    let movable = machine.filter(|m| remote && !auto_forwards(m).is_empty());
    let mut retries = 0;
    loop {
        let source = match domain::start(host, conn, name, watch) {
            Err(DomainActionError::Call(source)) if port_taken(&source) => source,
            other => return other.map_err(ActionError::libvirt(name)),
        };
        let Some(machine) = movable else {
            return Err(ActionError::libvirt(name)(source.into()));
        };
        if retries == PORT_RETRIES {
            let failed = DomainActionError::PortsTaken { source };
            return Err(ActionError::libvirt(name)(failed));
        }
        retries += 1;
        move_auto_forwards(host, conn, machine, name)?;
    }
}

/// Whether libvirt's message is passt's: it could not bind a forward's
/// port (`Failed to bind any port for '-t 127.0.0.1/29876:22'`, measured
/// with passt 2023-2025 under libvirt 9-11).
fn port_taken(err: &LibvirtError) -> bool {
    let message = err.to_string().to_lowercase();
    message.contains("passt") && message.contains("bind")
}

/// The positions, among the machine's forwards (passt NICs with an
/// `ssh_port`, in interface order, as the definition lists them), of the
/// automatic ones.
fn auto_forwards(machine: &MachineSpec) -> Vec<usize> {
    machine
        .interfaces
        .iter()
        .filter_map(|nic| match &nic.attachment {
            Attachment::Passt { ssh_port: Some(p) } => Some(p),
            _ => None,
        })
        .enumerate()
        .filter(|(_, port)| **port == SshPort::Auto)
        .map(|(index, _)| index)
        .collect()
}

/// Gives each automatic forward a new port, in libvirt's definition of
/// the domain and in the recorded one.
fn move_auto_forwards(
    host: &Host,
    conn: &Connection,
    machine: &MachineSpec,
    name: &str,
) -> Result<(), ActionError> {
    let failed = |what| move |e| ActionError::libvirt(name)(conn.error(what, e).into());
    let domain = conn
        .raw()
        .lookup_domain_by_name(name)
        .map_err(failed("find the domain"))?;
    let xml = domain
        .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
        .map_err(failed("read the domain's definition"))?;
    let ports = crate::domain::forwarded_ssh_ports(&xml);
    let moved: BTreeMap<u16, u16> = auto_forwards(machine)
        .into_iter()
        .filter_map(|index| Some((*ports.get(index)?, host.free_ssh_port()?)))
        .collect();
    for (old, new) in &moved {
        tracing::warn!(
            "{}: SSH port {old} is taken on {}; starting it again with port {new}",
            machine.vm_name,
            host.uri()
        );
    }
    conn.raw()
        .define_domain_xml(&crate::domain::with_forwarded_ports(&xml, &moved))
        .map_err(failed("define the domain"))?;
    files::move_recorded_ports(machine, &moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passts_bind_failure_is_a_taken_port_and_other_failures_are_not() {
        let call = |message: &str| LibvirtError::Call {
            uri: "qemu+ssh://hv/system".into(),
            what: "start",
            message: message.into(),
        };
        assert!(port_taken(&call(
            "internal error: Child process (passt --one-off --tcp-ports 127.0.0.1/29876:22) \
             unexpected exit status 1: Failed to bind any port for '-t 127.0.0.1/29876:22', exiting"
        )));
        assert!(!port_taken(&call(
            "internal error: process exited while connecting to monitor"
        )));
    }
}
