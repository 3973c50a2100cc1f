//! What a libvirt host offers: the hypervisor and its version, the host CPU
//! and memory, the domain types for the host's architecture (KVM, or only
//! TCG), the default machine type and its firmware, and the osinfo database
//! on the machine running lvlab.
//!
//! This module owns reading libvirt's host and domain capabilities. Parsing
//! is pure (XML text in, data out) and kept apart from the libvirt calls in
//! [`read`], so that it is tested on XML captured from real hosts.

use std::collections::BTreeMap;

use roxmltree::{Document, Node};
use serde::Serialize;

use super::osinfo::{self, OsinfoDb};
use crate::libvirt::{Connection, LibvirtError};

/// Everything `lvlab capabilities` reports about one libvirt URI. `None`
/// means unknown: the driver lacks the call, or the call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCapabilities {
    pub uri: String,
    /// The driver's name as libvirt spells it: `QEMU`, `TEST`, ...
    pub driver: String,
    /// The hypervisor's version, `major.minor.micro`.
    pub hypervisor_version: Option<String>,
    /// The libvirt library's version, `major.minor.micro`.
    pub libvirt_version: String,
    pub arch: Option<String>,
    pub cpu_model: Option<String>,
    pub cpu_vendor: Option<String>,
    pub cpus: Option<u32>,
    pub memory_kib: Option<u64>,
    /// Domain types offered for the host's architecture, sorted.
    pub domain_types: Option<Vec<String>>,
    /// True only when libvirt both lists and describes a usable KVM.
    pub kvm: bool,
    /// The domain type lvlab would define guests with: KVM when usable.
    pub domain_type: Option<String>,
    /// The most vCPUs one guest of [`Self::domain_type`] can have.
    pub max_vcpus: Option<u32>,
    /// The default machine type for [`Self::domain_type`].
    pub machine: Option<String>,
    /// Values of libvirt's firmware enum (`efi`, `bios`); empty when libvirt
    /// found no firmware descriptors.
    pub firmware: Option<Vec<String>>,
    pub uefi: Option<bool>,
    /// On the machine running lvlab, which is not the libvirt host when the
    /// URI is remote.
    pub osinfo: Option<OsinfoDb>,
}

/// What one guest may ask of a host, checked at plan time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostLimits {
    /// The most vCPUs one guest can have, by domain type; a type missing
    /// here has no known limit.
    pub max_vcpus: BTreeMap<String, u32>,
    /// The host's memory, when libvirt reports it.
    pub memory_kib: Option<u64>,
}

/// The parts of `virConnectGetCapabilities` XML that lvlab uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCaps {
    pub arch: Option<String>,
    pub cpu_model: Option<String>,
    pub cpu_vendor: Option<String>,
    /// Domain types of the guests for the host's arch, sorted, no duplicates.
    pub domain_types: Vec<String>,
}

/// The parts of `virConnectGetDomainCapabilities` XML that lvlab uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainCaps {
    pub domain: Option<String>,
    pub machine: Option<String>,
    pub max_vcpus: Option<u32>,
    /// Whether `<cpu><mode name='host-passthrough'>` is supported.
    pub host_passthrough: Option<bool>,
    /// `None` when the XML describes no guest OS support (the test driver).
    pub os: Option<OsCaps>,
}

/// Firmware that libvirt can boot guests with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsCaps {
    /// `<enum name='firmware'>` values.
    pub firmware: Vec<String>,
    /// `<loader><value>` paths: the UEFI images libvirt knows of.
    pub loaders: Vec<String>,
}

impl OsCaps {
    /// libvirt lists loader paths only for UEFI images (OVMF, AAVMF), so
    /// either sign means UEFI guests can boot.
    pub fn uefi(&self) -> bool {
        self.firmware.iter().any(|f| f == "efi") || !self.loaders.is_empty()
    }
}

impl DomainCaps {
    /// Whether this document describes a real KVM. The domain type alone is
    /// not enough: the test driver echoes back any virttype it is asked for.
    /// Only a hardware accelerator can pass the host CPU through, and libvirt
    /// marks `host-passthrough` unsupported otherwise.
    pub fn describes_kvm(&self) -> bool {
        self.domain.as_deref() == Some("kvm") && self.host_passthrough != Some(false)
    }
}

/// Parses host capabilities XML.
pub fn parse_host_capabilities(xml: &str) -> Result<HostCaps, roxmltree::Error> {
    let doc = Document::parse(xml)?;
    let root = doc.root_element();
    let cpu = child(root, "host").and_then(|host| child(host, "cpu"));
    let arch = cpu.and_then(|cpu| child_text(cpu, "arch"));
    Ok(HostCaps {
        domain_types: guest_domain_types(root, arch.as_deref()),
        cpu_model: cpu.and_then(|cpu| child_text(cpu, "model")),
        cpu_vendor: cpu.and_then(|cpu| child_text(cpu, "vendor")),
        arch,
    })
}

/// Domain types of every `<guest>` for `arch` (all guests when the host's
/// arch is unknown). QEMU lists one guest per arch and OS type, so types
/// repeat; the test driver lists `hvm` and `xen` guests for i686.
fn guest_domain_types(root: Node, arch: Option<&str>) -> Vec<String> {
    let mut types: Vec<String> = children(root, "guest")
        .flat_map(|guest| children(guest, "arch"))
        .filter(|node| arch.is_none() || node.attribute("name") == arch)
        .flat_map(|node| children(node, "domain"))
        .filter_map(|domain| domain.attribute("type").map(str::to_string))
        .collect();
    types.sort();
    types.dedup();
    types
}

/// Parses domain capabilities XML.
pub fn parse_domain_capabilities(xml: &str) -> Result<DomainCaps, roxmltree::Error> {
    let doc = Document::parse(xml)?;
    let root = doc.root_element();
    Ok(DomainCaps {
        domain: child_text(root, "domain"),
        machine: child_text(root, "machine"),
        max_vcpus: child(root, "vcpu")
            .and_then(|vcpu| vcpu.attribute("max"))
            .and_then(|max| max.parse().ok()),
        host_passthrough: cpu_mode_supported(root, "host-passthrough"),
        os: child(root, "os")
            .filter(|os| supported(*os) != Some(false))
            .map(parse_os),
    })
}

fn cpu_mode_supported(root: Node, name: &str) -> Option<bool> {
    let cpu = child(root, "cpu")?;
    let mode = children(cpu, "mode").find(|mode| mode.attribute("name") == Some(name))?;
    supported(mode)
}

fn parse_os(os: Node) -> OsCaps {
    let loader = child(os, "loader").filter(|loader| supported(*loader) != Some(false));
    OsCaps {
        firmware: enum_values(os, "firmware"),
        loaders: loader
            .map(|loader| children(loader, "value").filter_map(text).collect())
            .unwrap_or_default(),
    }
}

/// KVM counts as usable only when both documents agree: the host
/// capabilities offer a kvm domain for the host's arch (or are unknown), and
/// the kvm domain capabilities describe a real KVM.
pub fn kvm_usable(domain_types: Option<&[String]>, kvm_caps: Option<&DomainCaps>) -> bool {
    let listed = domain_types.is_none_or(|types| types.iter().any(|t| t == "kvm"));
    listed && kvm_caps.is_some_and(DomainCaps::describes_kvm)
}

/// libvirt encodes versions as `major * 1_000_000 + minor * 1000 + micro`.
pub fn format_version(encoded: u32) -> String {
    let (major, rest) = (encoded / 1_000_000, encoded % 1_000_000);
    format!("{major}.{}.{}", rest / 1000, rest % 1000)
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| c.has_tag_name(name))
}

fn text(node: Node) -> Option<String> {
    node.text()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn child_text(node: Node, name: &str) -> Option<String> {
    child(node, name).and_then(text)
}

/// The `supported='yes|no'` attribute domain capabilities put on features.
fn supported(node: Node) -> Option<bool> {
    match node.attribute("supported")? {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// The `<value>`s of `<enum name='...'>` directly under `node`.
fn enum_values(node: Node, name: &str) -> Vec<String> {
    children(node, "enum")
        .find(|e| e.attribute("name") == Some(name))
        .map(|e| children(e, "value").filter_map(text).collect())
        .unwrap_or_default()
}

/// Asks libvirt at `conn` what its host offers.
///
/// Only a failure of the calls every driver answers (driver type, library
/// version) is an error: it means the connection itself is broken. Anything
/// else a driver lacks or refuses becomes unknown.
pub fn read(conn: &Connection) -> Result<HostCapabilities, LibvirtError> {
    let raw = conn.raw();
    let driver = raw
        .driver_type()
        .map_err(|err| conn.error("report its driver type", err))?;
    let libvirt_version = raw
        .lib_version()
        .map(format_version)
        .map_err(|err| conn.error("report its library version", err))?;

    let host = optional(conn, "capabilities", raw.capabilities())
        .and_then(|xml| parsed(conn, "capabilities", parse_host_capabilities(&xml)));
    // Without the XML the domain types are unknown, which is not "none".
    let domain_types = host.as_ref().map(|h| h.domain_types.clone());
    let host = host.unwrap_or_default();
    let guests = guest_support(conn, host.arch.as_deref(), domain_types.as_deref());
    let node = optional(conn, "node info", raw.node_info());

    Ok(HostCapabilities {
        uri: conn.uri().to_string(),
        driver,
        hypervisor_version: hypervisor_version(conn),
        libvirt_version,
        arch: host.arch,
        cpu_model: host.cpu_model,
        cpu_vendor: host.cpu_vendor,
        cpus: node.as_ref().map(|n| n.cpus),
        memory_kib: node.as_ref().map(|n| n.memory),
        domain_types,
        kvm: guests.kvm,
        max_vcpus: max_vcpus(conn, &guests),
        domain_type: guests.domain_type,
        machine: guests.caps.machine,
        firmware: guests.caps.os.as_ref().map(|os| os.firmware.clone()),
        uefi: guests.caps.os.as_ref().map(OsCaps::uefi),
        osinfo: osinfo::find(),
    })
}

/// The limits of `caps`'s host for each domain type it offers: the type
/// `caps` describes keeps its answer; the others are asked the same way.
pub fn limits(conn: &Connection, caps: &HostCapabilities) -> HostLimits {
    let max_vcpus = caps
        .domain_types
        .iter()
        .flatten()
        .filter_map(|domain_type| {
            let max = if caps.domain_type.as_ref() == Some(domain_type) {
                caps.max_vcpus
            } else {
                let guests = GuestSupport {
                    kvm: caps.kvm,
                    domain_type: Some(domain_type.clone()),
                    caps: domain_caps(conn, caps.arch.as_deref(), domain_type).unwrap_or_default(),
                };
                max_vcpus(conn, &guests)
            };
            Some((domain_type.clone(), max?))
        })
        .collect();
    HostLimits {
        max_vcpus,
        memory_kib: caps.memory_kib,
    }
}

/// Whether KVM works, the domain type lvlab would use, and that type's
/// domain capabilities (default when unknown).
struct GuestSupport {
    kvm: bool,
    domain_type: Option<String>,
    caps: DomainCaps,
}

fn guest_support(
    conn: &Connection,
    arch: Option<&str>,
    domain_types: Option<&[String]>,
) -> GuestSupport {
    let kvm_caps = match domain_types {
        Some(types) if !types.iter().any(|t| t == "kvm") => None,
        _ => domain_caps(conn, arch, "kvm"),
    };
    let kvm = kvm_usable(domain_types, kvm_caps.as_ref());
    let domain_type = crate::domain::best_domain_type(domain_types.unwrap_or_default(), kvm);
    let caps = match domain_type.as_deref() {
        Some("kvm") => kvm_caps,
        Some(other) => domain_caps(conn, arch, other),
        None => None,
    };
    GuestSupport {
        kvm,
        domain_type,
        caps: caps.unwrap_or_default(),
    }
}

fn hypervisor_version(conn: &Connection) -> Option<String> {
    optional(conn, "hypervisor version", conn.raw().hyp_version())
        // 0 is how libvirt says the hypervisor's version is unknown.
        .filter(|v| *v != 0)
        .map(format_version)
}

/// Domain capabilities give the default machine type's limit (255 for
/// QEMU's i440fx), as `virsh maxvcpus` does; virConnectGetMaxVcpus gives
/// KVM's kernel limit (1024), which no i440fx guest can reach.
fn max_vcpus(conn: &Connection, guests: &GuestSupport) -> Option<u32> {
    guests.caps.max_vcpus.or_else(|| {
        let domain_type = guests.domain_type.as_deref();
        optional(conn, "max vcpus", conn.raw().max_vcpus(domain_type))
    })
}

/// Domain capabilities for `virttype`. Without KVM, libvirt 11 answers a
/// kvm request with an error ("the accel 'kvm' is not supported"), so an
/// error here is an answer, not a failure.
fn domain_caps(conn: &Connection, arch: Option<&str>, virttype: &str) -> Option<DomainCaps> {
    let xml = optional(
        conn,
        "domain capabilities",
        conn.raw()
            .domain_capabilities(None, arch, None, Some(virttype), 0),
    )?;
    parsed(conn, "domain capabilities", parse_domain_capabilities(&xml))
}

/// A call whose failure only makes its answer unknown.
fn optional<T>(conn: &Connection, what: &str, result: Result<T, virt::error::Error>) -> Option<T> {
    result
        .inspect_err(|err| {
            tracing::debug!(uri = conn.uri(), "{what} unknown: {}", err.message());
        })
        .ok()
}

fn parsed<T>(conn: &Connection, what: &str, result: Result<T, roxmltree::Error>) -> Option<T> {
    result
        .inspect_err(|err| {
            tracing::warn!(
                uri = conn.uri(),
                "libvirt's {what} XML does not parse: {err}"
            );
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/",
                $name
            ))
        };
    }

    fn host(xml: &str) -> HostCaps {
        parse_host_capabilities(xml).unwrap()
    }

    fn domain(xml: &str) -> DomainCaps {
        parse_domain_capabilities(xml).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn qemu_host_with_kvm() {
        let caps = host(fixture!("qemu-session-capabilities.xml"));
        assert_eq!(caps.arch.as_deref(), Some("x86_64"));
        assert_eq!(caps.cpu_model.as_deref(), Some("kvm64-v1"));
        assert_eq!(caps.cpu_vendor.as_deref(), Some("AMD"));
        assert_eq!(caps.domain_types, strings(&["kvm", "qemu"]));
    }

    #[test]
    fn qemu_host_without_kvm_offers_only_qemu() {
        let caps = host(fixture!("qemu-session-tcg-only-capabilities.xml"));
        assert_eq!(caps.arch.as_deref(), Some("x86_64"));
        assert_eq!(caps.domain_types, strings(&["qemu"]));
    }

    #[test]
    fn test_driver_host_has_no_cpu_model() {
        let caps = host(fixture!("test-default-capabilities.xml"));
        assert_eq!(caps.arch.as_deref(), Some("i686"));
        assert_eq!(caps.cpu_model, None);
        assert_eq!(caps.cpu_vendor, None);
        assert_eq!(caps.domain_types, strings(&["test"]));
    }

    #[test]
    fn domain_types_only_for_the_host_arch() {
        let xml = "<capabilities><host><cpu><arch>x86_64</arch></cpu></host>\
            <guest><arch name='aarch64'><domain type='qemu'/></arch></guest>\
            <guest><arch name='x86_64'><domain type='kvm'/></arch></guest>\
            </capabilities>";
        assert_eq!(host(xml).domain_types, strings(&["kvm"]));
    }

    #[test]
    fn unknown_arch_takes_every_guest() {
        let xml = "<capabilities><host/>\
            <guest><arch name='aarch64'><domain type='qemu'/></arch></guest>\
            <guest><arch name='x86_64'><domain type='kvm'/></arch></guest>\
            </capabilities>";
        let caps = host(xml);
        assert_eq!(caps.arch, None);
        assert_eq!(caps.domain_types, strings(&["kvm", "qemu"]));
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(parse_host_capabilities("<capabilities>").is_err());
        assert!(parse_domain_capabilities("").is_err());
    }

    #[test]
    fn kvm_domain_caps_without_ovmf() {
        let caps = domain(fixture!("qemu-domcaps-kvm.xml"));
        assert_eq!(caps.domain.as_deref(), Some("kvm"));
        assert_eq!(caps.machine.as_deref(), Some("pc-i440fx-10.0"));
        assert_eq!(caps.max_vcpus, Some(255));
        assert_eq!(caps.host_passthrough, Some(true));
        assert!(caps.describes_kvm());
        let os = caps.os.unwrap();
        assert_eq!(os, OsCaps::default());
        assert!(!os.uefi());
    }

    #[test]
    fn kvm_domain_caps_with_ovmf() {
        let caps = domain(fixture!("qemu-domcaps-kvm-q35-ovmf.xml"));
        assert_eq!(caps.machine.as_deref(), Some("pc-q35-10.0"));
        let os = caps.os.unwrap();
        assert_eq!(os.firmware, strings(&["efi"]));
        assert_eq!(os.loaders.len(), 3);
        assert!(os
            .loaders
            .contains(&"/usr/share/OVMF/OVMF_CODE_4M.fd".to_string()));
        assert!(os.uefi());
    }

    #[test]
    fn tcg_domain_caps_cannot_pass_the_host_cpu_through() {
        let caps = domain(fixture!("qemu-domcaps-qemu.xml"));
        assert_eq!(caps.domain.as_deref(), Some("qemu"));
        assert_eq!(caps.host_passthrough, Some(false));
        assert!(!caps.describes_kvm());
    }

    #[test]
    fn test_driver_echoes_kvm_but_describes_none() {
        let caps = domain(fixture!("test-domcaps-kvm.xml"));
        assert_eq!(caps.domain.as_deref(), Some("kvm"));
        assert_eq!(caps.host_passthrough, Some(false));
        assert!(!caps.describes_kvm());
        assert_eq!(caps.machine, None);
        assert_eq!(caps.max_vcpus, None);
        assert_eq!(caps.os, None);
    }

    #[test]
    fn uefi_from_loader_paths_alone() {
        let xml = "<domainCapabilities><os supported='yes'><enum name='firmware'/>\
            <loader supported='yes'><value>/usr/share/AAVMF/AAVMF_CODE.fd</value></loader>\
            </os></domainCapabilities>";
        assert_eq!(domain(xml).os.map(|os| os.uefi()), Some(true));
    }

    #[test]
    fn unsupported_os_is_unknown_firmware() {
        let xml = "<domainCapabilities><os supported='no'/></domainCapabilities>";
        assert_eq!(domain(xml).os, None);
    }

    #[test]
    fn kvm_needs_both_documents() {
        let kvm = domain(fixture!("qemu-domcaps-kvm.xml"));
        let echoed = domain(fixture!("test-domcaps-kvm.xml"));
        let with_kvm = strings(&["kvm", "qemu"]);
        let tcg_only = strings(&["qemu"]);
        assert!(kvm_usable(Some(&with_kvm), Some(&kvm)));
        assert!(kvm_usable(None, Some(&kvm)));
        assert!(!kvm_usable(Some(&tcg_only), Some(&kvm)));
        assert!(!kvm_usable(Some(&with_kvm), None));
        assert!(!kvm_usable(None, Some(&echoed)));
    }

    /// A host without a usable `/dev/kvm`, as its capabilities read, gets
    /// TCG for `auto` and the hint to use it for `kvm`.
    #[test]
    fn kvm_on_a_host_without_kvm_says_to_use_tcg() {
        use crate::desired::DomainType;
        use crate::domain::{resolve_domain_type, OfferedTypes};
        let caps = host(fixture!("qemu-session-tcg-only-capabilities.xml"));
        let offered = OfferedTypes {
            uri: "qemu:///session",
            domain_types: &caps.domain_types,
            kvm: false,
            auto_kvm: false,
        };
        let err = resolve_domain_type(DomainType::Kvm, &offered).unwrap_err();
        assert_eq!(
            err.to_string(),
            "domain_type kvm is not offered by qemu:///session (it offers: qemu)\n  \
             hint: this host offers no KVM: set `domain_type: qemu` to run the machine \
             under software emulation (TCG), or `auto` to use KVM only where it exists"
        );
        assert_eq!(
            resolve_domain_type(DomainType::Auto, &offered).unwrap(),
            "qemu"
        );
    }

    #[test]
    fn versions_decode() {
        assert_eq!(format_version(10_000_002), "10.0.2");
        assert_eq!(format_version(11_003_000), "11.3.0");
        assert_eq!(format_version(2), "0.0.2");
        assert_eq!(format_version(9_010_011), "9.10.11");
    }
}
