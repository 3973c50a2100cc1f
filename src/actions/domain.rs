//! Domain actions through libvirt: define, start, resume, shut down
//! (waiting for the guest), power off, undefine.

use std::time::{Duration, Instant};

use virt::domain::Domain;
use virt::sys;

use crate::apply::DomainActionError;
use crate::domain::{provision_record, OwnershipMark, PROVISION_NAMESPACE};
use crate::host::{Host, Place};
use crate::libvirt::Connection;
use crate::observe::{domains, PowerState};
use crate::plan::StartWatch;

type Result<T = ()> = std::result::Result<T, DomainActionError>;

/// How often a shutdown checks whether the guest has stopped.
const POLL: Duration = Duration::from_millis(250);

/// Defines `xml`. Over an existing domain of that name the definition
/// keeps the domain's UUID, which libvirt needs to accept it as an update.
/// The provisioning record ([`record_provision`]) survives: the new
/// definition does not carry it, so it is set again.
pub fn define(conn: &Connection, name: &str, xml: &str, autostart: bool) -> Result {
    let (xml, provisioned) = match conn.raw().lookup_domain_by_name(name) {
        Ok(existing) => {
            let uuid = existing
                .uuid_string()
                .map_err(|e| conn.error("read the domain's UUID", e))?;
            let provisioned = existing
                .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
                .ok()
                .and_then(|xml| OwnershipMark::from_domain_xml(&xml))
                .and_then(|mark| mark.provisioned);
            (with_uuid(xml, &uuid), provisioned)
        }
        Err(_) => (xml.to_string(), None),
    };
    let domain = conn
        .raw()
        .define_domain_xml(&xml)
        .map_err(|e| conn.error("define the domain", e))?;
    if let Some(digest) = provisioned {
        set_provision_record(conn, &domain, &digest)?;
    }
    // Autostart is not part of the definition: set it each time.
    domain
        .set_autostart(autostart)
        .map(drop)
        .map_err(|e| conn.error("set autostart", e).into())
}

/// Records on the domain that the `provision:` list with `digest` ran to
/// its end: in its persistent definition and, while it runs, its live one.
pub fn record_provision(conn: &Connection, name: &str, digest: &str) -> Result {
    set_provision_record(conn, &lookup(conn, name)?, digest)
}

fn set_provision_record(conn: &Connection, domain: &Domain, digest: &str) -> Result {
    let live = domain.is_active().unwrap_or(false);
    let mut flags = sys::VIR_DOMAIN_AFFECT_CONFIG;
    if live {
        flags |= sys::VIR_DOMAIN_AFFECT_LIVE;
    }
    domain
        .set_metadata(
            sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some(&provision_record(digest)),
            Some("lvlab-provision"),
            Some(PROVISION_NAMESPACE),
            flags,
        )
        .map_err(|e| conn.error("record the provisioning", e).into())
}

/// The definition with `<uuid>` right after `<name>` (the template writes
/// `</name>` exactly once).
fn with_uuid(xml: &str, uuid: &str) -> String {
    xml.replacen("</name>", &format!("</name>\n  <uuid>{uuid}</uuid>"), 1)
}

/// How long a KVM guest is watched after its start: on hosts where KVM is
/// offered but broken (nested virtualization), the guest dies or pauses
/// within moments.
pub const KVM_WATCH: Duration = Duration::from_secs(2);

/// Starts (or resumes) the domain, watching for what `watch` names; a KVM
/// guest that fails is told with the host's QEMU log.
pub fn start(host: &Host, conn: &Connection, name: &str, watch: StartWatch) -> Result {
    let kvm = watch == StartWatch::KvmFailure;
    let domain = lookup(conn, name)?;
    let started = match state(conn, &domain, name)? {
        PowerState::Running => return Ok(()),
        PowerState::Paused => domain.resume().map(drop),
        _ => domain.create().map(drop),
    };
    if let Err(e) = started {
        let source = conn.error("start", e);
        let message = source.to_string().to_lowercase();
        let remote = matches!(host.place(), Place::Remote(_));
        return Err(if kvm && message.contains("kvm") {
            DomainActionError::KvmStartRefused { source }
        } else if remote && message.contains("virtiofs") {
            DomainActionError::VirtiofsStartFailed { source }
        } else {
            source.into()
        });
    }
    if kvm {
        watch_kvm_start(host, conn, &domain, name)?;
    }
    Ok(())
}

/// Fails when a KVM guest pauses or stops right after its start, quoting
/// QEMU's log.
fn watch_kvm_start(host: &Host, conn: &Connection, domain: &Domain, name: &str) -> Result {
    let deadline = Instant::now() + KVM_WATCH;
    while Instant::now() < deadline {
        match state(conn, domain, name)? {
            PowerState::Running => std::thread::sleep(POLL),
            state => {
                return Err(DomainActionError::KvmFailed {
                    name: name.to_string(),
                    state: state.label(),
                    qemu_log: host.qemu_log_tail(name, 3),
                });
            }
        }
    }
    Ok(())
}

/// Resumes a paused domain (`virDomainResume`); any other state is left
/// as it is.
pub fn resume(conn: &Connection, name: &str) -> Result {
    let domain = lookup(conn, name)?;
    if state(conn, &domain, name)? != PowerState::Paused {
        return Ok(());
    }
    domain
        .resume()
        .map(drop)
        .map_err(|e| conn.error("resume", e).into())
}

/// ACPI shutdown, then wait up to `timeout` for the guest to stop; then
/// power off when `force`, else fail naming the machine.
pub fn shutdown(conn: &Connection, name: &str, timeout: Duration, force: bool) -> Result {
    let domain = lookup(conn, name)?;
    if !state(conn, &domain, name)?.is_active() {
        return Ok(());
    }
    domain.shutdown().map_err(|e| conn.error("shut down", e))?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !state(conn, &domain, name)?.is_active() {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    if force {
        tracing::warn!(
            "{name} did not stop within {}s; powering it off",
            timeout.as_secs()
        );
        return power_off(conn, name);
    }
    Err(DomainActionError::DidNotStop {
        name: name.to_string(),
        timeout,
    })
}

pub fn power_off(conn: &Connection, name: &str) -> Result {
    let domain = lookup(conn, name)?;
    if !state(conn, &domain, name)?.is_active() {
        return Ok(());
    }
    domain
        .destroy()
        .map_err(|e| conn.error("power off", e).into())
}

/// Undefines with everything libvirt keeps beside the definition (managed
/// save, snapshot and checkpoint metadata, NVRAM). Drivers that refuse a
/// flag (the test driver knows only the first two) get the ones they know.
pub fn undefine(conn: &Connection, name: &str) -> Result {
    let domain = match conn.raw().lookup_domain_by_name(name) {
        Ok(domain) => domain,
        Err(e) if domains::is_no_domain(&e) => return Ok(()),
        Err(e) => return Err(conn.error("look up a domain", e).into()),
    };
    let basic = sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
    let full =
        basic | sys::VIR_DOMAIN_UNDEFINE_NVRAM | sys::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
    match domain.undefine_flags(full) {
        Ok(()) => Ok(()),
        Err(e) if e.message().contains("unsupported flags") => domain
            .undefine_flags(basic)
            .map_err(|e| conn.error("undefine", e).into()),
        Err(e) => Err(conn.error("undefine", e).into()),
    }
}

fn lookup(conn: &Connection, name: &str) -> Result<Domain> {
    conn.raw()
        .lookup_domain_by_name(name)
        .map_err(|e| conn.error("find the domain", e).into())
}

fn state(conn: &Connection, domain: &Domain, name: &str) -> Result<PowerState> {
    match domains::power_state(domain) {
        Ok(state) => Ok(state),
        Err(e) if domains::is_no_domain(&e) => Err(DomainActionError::Disappeared {
            name: name.to_string(),
        }),
        Err(e) => Err(conn.error("read a domain", e).into()),
    }
}
