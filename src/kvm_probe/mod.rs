//! Whether KVM really runs guests on a host that offers it. libvirt lists
//! KVM wherever `/dev/kvm` opens, yet under some nested hypervisors QEMU
//! aborts on the first MSR write of a host-passthrough vCPU. `lvlab
//! capabilities --probe` starts a throwaway guest to find out ([`run`]);
//! the answer is cached per host ([`cache`]) and `domain_type: auto` reads
//! it through [`auto_uses_kvm`]; `lvlab capabilities` shows it beside the
//! host's capabilities ([`report`]). Plans never probe: without a cached
//! answer, `auto` trusts libvirt.

pub mod cache;
pub mod report;
pub mod run;

use serde::{Deserialize, Serialize};

use crate::desired::DomainType;
use crate::domain::HostFacts;
use crate::plan::Target;

/// What one probe of one host found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The host's kernel release when lvlab runs on it (`uname -r`);
    /// [`REMOTE_KERNEL`] for a remote URI, whose kernel libvirt does not
    /// report.
    pub kernel: String,
    /// The hypervisor's version as libvirt reports it.
    pub qemu: String,
    /// When, in RFC 3339 (UTC).
    pub probed_at: String,
    /// The throwaway guest was still running at the end of the watch and
    /// QEMU logged no KVM error.
    pub kvm_runs: bool,
    /// What was seen: QEMU's error when KVM failed.
    pub detail: String,
}

/// The kernel of a remote host: unknown, so the cache entry outlives its
/// kernel upgrades (probe again after one).
pub const REMOTE_KERNEL: &str = "remote";

impl ProbeRecord {
    /// One line for `lvlab capabilities`.
    pub fn summary(&self) -> String {
        if self.kvm_runs {
            format!("KVM runs guests (probed {})", self.probed_at)
        } else {
            format!(
                "KVM is offered but does not run guests (probed {}): {}",
                self.probed_at, self.detail
            )
        }
    }
}

/// Whether `domain_type: auto` picks KVM on `host`: libvirt offers a
/// usable KVM, and no cached probe of this host says it fails.
pub fn auto_uses_kvm(host: &HostFacts) -> bool {
    host.kvm && host.kvm_probe.as_ref().is_none_or(|probe| probe.kvm_runs)
}

/// A plan note for each host where `auto` falls back to TCG because a
/// probe found KVM broken, when a selected machine there asks for `auto`.
pub fn plan_notes(input: &crate::plan::CheckInput) -> Vec<String> {
    if input.target == Target::Absent {
        return Vec::new();
    }
    let mut notes: Vec<String> = Vec::new();
    for env in input.environments {
        for observed in input.observed.placements(&env.name) {
            let host = &observed.host;
            let Some(probe) = host.kvm_probe.as_ref().filter(|_| !auto_uses_kvm(host)) else {
                continue;
            };
            let wants_auto = env.machines.iter().any(|m| {
                observed.uris.contains(&m.libvirt_uri)
                    && m.domain_type == DomainType::Auto
                    && crate::plan::is_selected(input.selection, m)
            });
            let note = format!(
                "KVM is offered on {} but does not run guests here (probed {}): using TCG for \
             domain_type auto; `lvlab capabilities --probe` probes again",
                host.uri, probe.probed_at
            );
            if host.kvm && wants_auto && !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resolve_domain_type;

    fn kvm_host(probe: Option<bool>) -> HostFacts {
        HostFacts {
            uri: "qemu:///session".into(),
            arch: "x86_64".into(),
            domain_types: vec!["kvm".into(), "qemu".into()],
            kvm: true,
            virtiofsd: None,
            kvm_probe: probe.map(|runs| ProbeRecord {
                kernel: "6.1".into(),
                qemu: "10.0.2".into(),
                probed_at: "2026-11-29T13:00:00Z".into(),
                kvm_runs: runs,
                detail: "failed to set MSR 0x10a".into(),
            }),
        }
    }

    #[test]
    fn auto_is_tcg_only_where_a_probe_found_kvm_broken() {
        let auto = |probe| {
            resolve_domain_type(DomainType::Auto, &kvm_host(probe).offered_types()).unwrap()
        };
        assert_eq!(auto(None), "kvm");
        assert_eq!(auto(Some(true)), "kvm");
        assert_eq!(auto(Some(false)), "qemu");
        // Asking for KVM by name still gets it: the start then says why not.
        let kvm =
            resolve_domain_type(DomainType::Kvm, &kvm_host(Some(false)).offered_types()).unwrap();
        assert_eq!(kvm, "kvm");
    }

    #[test]
    fn summaries_say_when_and_what() {
        let host = kvm_host(Some(false));
        assert_eq!(
            host.kvm_probe.unwrap().summary(),
            "KVM is offered but does not run guests (probed 2026-11-29T13:00:00Z): \
             failed to set MSR 0x10a"
        );
        assert_eq!(
            kvm_host(Some(true)).kvm_probe.unwrap().summary(),
            "KVM runs guests (probed 2026-11-29T13:00:00Z)"
        );
    }
}
