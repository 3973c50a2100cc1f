//! Which domain type (`<domain type=...>`) a machine is defined with: the
//! manifest's request against what the host offers. Pure: the offer comes in
//! as data, read by `observe` (which calls down into this module, never the
//! reverse).

use crate::desired::DomainType;

use super::DomainError;

/// What a host offers to choose a domain type from.
#[derive(Debug, Clone, Copy)]
pub struct OfferedTypes<'a> {
    /// The host's libvirt URI, for the error that names it.
    pub uri: &'a str,
    /// Domain types the host offers for its arch (`kvm`, `qemu`, `test`...).
    pub domain_types: &'a [String],
    /// KVM is offered and usable.
    pub kvm: bool,
    /// `auto` may pick KVM: it is offered, and no kept probe of this host
    /// found it broken (see `crate::kvm_probe`).
    pub auto_kvm: bool,
}

/// `auto` is KVM when usable (and not probed broken), else QEMU's TCG, else whatever the host offers
/// (libvirt's test driver offers only `test`).
pub fn resolve_domain_type(
    requested: DomainType,
    offered: &OfferedTypes,
) -> Result<String, DomainError> {
    let offers = |t: &str| offered.domain_types.iter().any(|o| o == t);
    let not_offered = |requested| DomainError::TypeNotOffered {
        requested,
        uri: offered.uri.to_string(),
        offered: offered.domain_types.join(", "),
    };
    match requested {
        DomainType::Kvm if offered.kvm => Ok("kvm".into()),
        DomainType::Kvm => Err(not_offered("kvm")),
        DomainType::Qemu if offers("qemu") || offers("test") => Ok("qemu".into()),
        DomainType::Qemu => Err(not_offered("qemu")),
        // The same choice `lvlab capabilities` reports.
        DomainType::Auto => best_domain_type(offered.domain_types, offered.auto_kvm)
            .ok_or_else(|| not_offered("auto")),
    }
}

/// The domain type lvlab would define guests with: KVM when usable, else
/// QEMU's TCG, else whatever the driver offers first (`test`, ...).
pub fn best_domain_type(domain_types: &[String], kvm: bool) -> Option<String> {
    if kvm {
        return Some("kvm".to_string());
    }
    let without_kvm = || domain_types.iter().filter(|t| *t != "kvm");
    without_kvm()
        .find(|t| *t == "qemu")
        .or_else(|| without_kvm().next())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn best_domain_type_prefers_kvm_then_qemu() {
        let qemu = strings(&["kvm", "qemu"]);
        assert_eq!(best_domain_type(&qemu, true).as_deref(), Some("kvm"));
        assert_eq!(best_domain_type(&qemu, false).as_deref(), Some("qemu"));
        assert_eq!(
            best_domain_type(&strings(&["test"]), false).as_deref(),
            Some("test")
        );
        assert_eq!(best_domain_type(&strings(&["kvm"]), false), None);
        assert_eq!(best_domain_type(&[], false), None);
    }
}
