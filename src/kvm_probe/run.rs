//! The probe itself: a transient KVM guest with no disk and no NIC, the
//! CPU lvlab gives KVM guests (`host-passthrough`) and SeaBIOS with
//! nothing to boot, watched for [`KVM_WATCH`] and then destroyed.
//!
//! On the nested hosts lvlab is built on, QEMU aborts while it sets the
//! vCPU's MSRs ("failed to set MSR 0x10a", an assertion in kvm.c), so the
//! start itself fails within some 2 s; elsewhere KVM fails later with
//! "KVM internal error" and a paused guest. A guest without
//! host-passthrough ran fine there: the probe must use lvlab's CPU.
//!
//! The guest is started with `VIR_DOMAIN_START_AUTODESTROY`: libvirt
//! destroys it when lvlab's connection closes, so a Ctrl-C or a crash
//! between start and destroy leaves nothing running.

use std::env::consts::ARCH;
use std::time::{Duration, Instant};

use virt::domain::Domain;
use virt::enumutil::Enum;

use super::cache::{self, ProbeKey};
use super::ProbeRecord;
use crate::actions::KVM_WATCH;
use crate::host::Host;
use crate::libvirt::{Connection, LibvirtError};
use crate::observe::capabilities::HostCapabilities;
use crate::observe::domains::power_state;
use crate::observe::PowerState;

/// The throwaway guest's name: one probe per host at a time.
pub const PROBE_DOMAIN: &str = "lvlab-kvm-probe";

const POLL: Duration = Duration::from_millis(200);

/// Lines of QEMU's log that mean KVM failed under a guest that still
/// exists (QEMU pauses it).
const KVM_ERRORS: &[&str] = &[
    "KVM internal error",
    "emulation failure",
    "failed to set MSR",
];

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot probe KVM on {uri}: libvirt's test driver runs no guests")]
    TestDriver { uri: String },
    #[error("nothing to probe on {uri}: libvirt offers no KVM there (guests run under TCG)")]
    NoKvm { uri: String },
    #[error(
        "another KVM probe is running on {uri} (domain {PROBE_DOMAIN} exists)\n  hint: try \
         again in a moment; if it stays, remove it with `virsh -c {uri} destroy {PROBE_DOMAIN}`"
    )]
    Busy { uri: String },
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error("cannot keep the KVM probe's answer: {0}")]
    Cache(String),
}

/// Probes `host` (whose capabilities are `caps`) and keeps the answer in
/// lvlab's state directory.
pub fn probe_and_store(host: &Host, caps: &HostCapabilities) -> Result<ProbeRecord, ProbeError> {
    let conn: &Connection = &host.connection();
    if caps.driver.eq_ignore_ascii_case("test") {
        return Err(ProbeError::TestDriver {
            uri: conn.uri().to_string(),
        });
    }
    if !caps.kvm {
        return Err(ProbeError::NoKvm {
            uri: conn.uri().to_string(),
        });
    }
    let key = ProbeKey::of(conn, caps.hypervisor_version.as_deref()).ok_or_else(|| {
        ProbeError::Cache(format!("libvirt at {} cannot say its URI", conn.uri()))
    })?;
    let (kvm_runs, detail) = match probe(host, conn, caps.arch.as_deref().unwrap_or(ARCH))? {
        Outcome::Runs => (
            true,
            format!("a KVM guest ran for {} s", KVM_WATCH.as_secs()),
        ),
        Outcome::Fails(error) => (false, error),
    };
    let record = ProbeRecord {
        kernel: key.kernel,
        qemu: key.qemu,
        probed_at: crate::images::record::now_rfc3339(),
        kvm_runs,
        detail,
    };
    let file = cache::path()
        .ok_or_else(|| ProbeError::Cache("lvlab has no state directory".to_string()))?;
    cache::store(&file, &key.uri, &record).map_err(ProbeError::Cache)?;
    Ok(record)
}

/// What the throwaway guest showed.
enum Outcome {
    Runs,
    /// QEMU's complaint, or the guest's state and the KVM error logged.
    Fails(String),
}

/// Starts the throwaway guest and watches it.
fn probe(host: &Host, conn: &Connection, arch: &str) -> Result<Outcome, ProbeError> {
    let started = conn
        .raw()
        .create_domain_xml(&probe_xml(arch), virt::sys::VIR_DOMAIN_START_AUTODESTROY);
    let domain = match started {
        Ok(domain) => Throwaway(domain),
        Err(err) if already_exists(&err) => {
            return Err(ProbeError::Busy {
                uri: conn.uri().to_string(),
            })
        }
        // The start is where QEMU aborts on the MSR write.
        Err(err) => return Ok(Outcome::Fails(first_lines(err.message()))),
    };
    let deadline = Instant::now() + KVM_WATCH;
    while Instant::now() < deadline {
        let state = power_state(&domain.0).map_err(|err| conn.error("watch the probe", err))?;
        if state != PowerState::Running {
            return Ok(Outcome::Fails(format!(
                "the guest is {} right after its start{}",
                state.label(),
                log_error(host)
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )));
        }
        std::thread::sleep(POLL);
    }
    Ok(log_error(host).map_or(Outcome::Runs, Outcome::Fails))
}

/// Destroys the guest when dropped, however the probe ends.
struct Throwaway(Domain);

impl Drop for Throwaway {
    fn drop(&mut self) {
        if let Err(err) = self.0.destroy() {
            tracing::debug!("destroying {PROBE_DOMAIN}: {}", err.message());
        }
    }
}

/// The smallest guest QEMU starts under KVM: no disk, no NIC, no USB, no
/// balloon; SeaBIOS finds nothing to boot and keeps the vCPU busy.
fn probe_xml(arch: &str) -> String {
    format!(
        "<domain type='kvm'>
  <name>{PROBE_DOMAIN}</name>
  <title>KVM probe of lvlab capabilities --probe (destroyed after {} s)</title>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='{}'>hvm</type></os>
  <cpu mode='host-passthrough'/>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>",
        KVM_WATCH.as_secs(),
        plain_arch(arch)
    )
}

/// libvirt's arch names are plain words; anything else is not put in XML.
fn plain_arch(arch: &str) -> &str {
    if !arch.is_empty() && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        arch
    } else {
        ARCH
    }
}

fn already_exists(err: &virt::error::Error) -> bool {
    err.code() == Enum::Known(virt::error::ErrorNumber::OperationFailed)
        && err.message().contains("already exists")
}

/// A KVM error in QEMU's log of this start (the log keeps earlier ones).
fn log_error(host: &Host) -> Option<String> {
    let log = host.qemu_log(PROBE_DOMAIN)?;
    let this_start = log
        .rfind("starting up")
        .map_or(log.as_str(), |at| &log[at..]);
    this_start
        .lines()
        .find(|line| KVM_ERRORS.iter().any(|e| line.contains(e)))
        .map(|line| line.trim().to_string())
}

/// libvirt's message for a failed start quotes QEMU's stderr on several
/// lines; two say what happened.
fn first_lines(message: &str) -> String {
    message
        .lines()
        .filter(|line| !line.trim().is_empty())
        .take(2)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_guest_has_no_disk_and_lvlabs_kvm_cpu() {
        let xml = probe_xml("x86_64");
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("type"), Some("kvm"));
        let count = |tag: &str| doc.descendants().filter(|n| n.has_tag_name(tag)).count();
        assert_eq!(count("disk") + count("interface") + count("graphics"), 0);
        let cpu = doc.descendants().find(|n| n.has_tag_name("cpu")).unwrap();
        assert_eq!(cpu.attribute("mode"), Some("host-passthrough"));
    }

    #[test]
    fn a_failed_start_keeps_qemus_first_lines() {
        let message = "internal error: process exited while connecting to monitor: \
            qemu-system-x86_64: error: failed to set MSR 0x10a to 0xc000069\n\
            qemu-system-x86_64: kvm.c:3849: kvm_buf_set_msrs: Assertion failed.\nmore\n";
        assert_eq!(
            first_lines(message),
            "internal error: process exited while connecting to monitor: qemu-system-x86_64: \
             error: failed to set MSR 0x10a to 0xc000069 | qemu-system-x86_64: kvm.c:3849: \
             kvm_buf_set_msrs: Assertion failed."
        );
    }
}
