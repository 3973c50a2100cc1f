//! What `lvlab capabilities` shows of one host: libvirt's capabilities
//! ([`crate::observe::capabilities`]) and what is known of KVM there, a
//! probe made now (`--probe`) or the one kept for this kernel and QEMU.

use serde::Serialize;

use super::run::{self, ProbeError};
use super::{cache, ProbeRecord};
use crate::host::Host;
use crate::observe::capabilities::{self, HostCapabilities};

/// One URI's answer: its capabilities and what is known of KVM probes.
#[derive(Debug, Serialize)]
pub struct HostReport {
    #[serde(flatten)]
    pub caps: HostCapabilities,
    /// A probe's answer: made now with `--probe`, else the cached one.
    pub kvm_probe: Option<ProbeRecord>,
    /// Why `--probe` could not probe (the test driver, no KVM offered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kvm_probe_skipped: Option<String>,
}

/// Asks the host at `uri` for its capabilities and, with `probe`, starts
/// the KVM probe there (a host that cannot be probed says why instead).
pub fn report(uri: &str, probe: bool) -> Result<HostReport, ProbeError> {
    let host = Host::open(uri)?;
    let conn = host.connection();
    let caps = capabilities::read(&conn)?;
    let (kvm_probe, kvm_probe_skipped) = if probe {
        match run::probe_and_store(&host, &caps) {
            Ok(record) => (Some(record), None),
            Err(skip @ (ProbeError::TestDriver { .. } | ProbeError::NoKvm { .. })) => {
                (None, Some(skip.to_string()))
            }
            Err(err) => return Err(err),
        }
    } else {
        let cached = caps
            .kvm
            .then(|| cache::cached(&conn, caps.hypervisor_version.as_deref()));
        (cached.flatten(), None)
    };
    Ok(HostReport {
        caps,
        kvm_probe,
        kvm_probe_skipped,
    })
}
