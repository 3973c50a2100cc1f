//! What a host offers, as far as rendering and planning need to know:
//! read once per observation from libvirt's capabilities, plus the
//! virtiofsd the host has. Plain data: the planner and the renderer take it
//! as input and never ask the host themselves.

use std::path::PathBuf;

use crate::observe::capabilities::HostCapabilities;

/// What the host offers, as far as rendering a definition needs to know.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub uri: String,
    pub arch: String,
    /// Domain types the host offers for `arch` (`kvm`, `qemu`, `test`...).
    pub domain_types: Vec<String>,
    /// KVM is offered and usable.
    pub kvm: bool,
    /// The virtiofsd binary for shared directories, if one is installed
    /// here; always `None` for a remote host, whose libvirt finds its own.
    pub virtiofsd: Option<PathBuf>,
    /// The kept `lvlab capabilities --probe` answer for this host's kernel
    /// and QEMU, if any (see [`crate::kvm_probe`]).
    pub kvm_probe: Option<crate::kvm_probe::ProbeRecord>,
}

impl HostFacts {
    /// The facts in `caps`, with the host's virtiofsd (see
    /// [`super::Host::virtiofsd`]). An arch libvirt did not report is this
    /// machine's: only a local host leaves it out in practice.
    pub fn from_capabilities(
        caps: HostCapabilities,
        virtiofsd: Option<PathBuf>,
        kvm_probe: Option<crate::kvm_probe::ProbeRecord>,
    ) -> Self {
        Self {
            uri: caps.uri,
            arch: caps
                .arch
                .unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            domain_types: caps.domain_types.unwrap_or_default(),
            kvm: caps.kvm,
            virtiofsd,
            kvm_probe,
        }
    }

    /// Whether the host is another machine (its URI has a host part).
    pub fn is_remote(&self) -> bool {
        super::is_remote_uri(&self.uri)
    }

    /// Shared directories cannot work: this machine is the host and has no
    /// virtiofsd. (A remote host's own is its libvirt's to find; a start
    /// without one fails with libvirt's message.)
    pub fn lacks_virtiofsd(&self) -> bool {
        self.virtiofsd.is_none() && !self.is_remote()
    }

    /// What the host offers to choose a machine's domain type from.
    pub fn offered_types(&self) -> crate::domain::OfferedTypes<'_> {
        crate::domain::OfferedTypes {
            uri: &self.uri,
            domain_types: &self.domain_types,
            kvm: self.kvm,
            auto_kvm: crate::kvm_probe::auto_uses_kvm(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(uri: &str, virtiofsd: Option<&str>) -> HostFacts {
        HostFacts {
            uri: uri.into(),
            arch: "x86_64".into(),
            domain_types: vec!["qemu".into()],
            kvm: false,
            virtiofsd: virtiofsd.map(PathBuf::from),
            kvm_probe: None,
        }
    }

    #[test]
    fn only_this_machine_without_virtiofsd_lacks_it() {
        assert!(facts("qemu:///system", None).lacks_virtiofsd());
        assert!(!facts("qemu:///system", Some("/usr/libexec/virtiofsd")).lacks_virtiofsd());
        assert!(!facts("qemu+ssh://root@hv2/system", None).lacks_virtiofsd());
    }
}
