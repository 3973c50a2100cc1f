//! The parts of a domain definition lvlab sets, read back from XML: what a
//! plan compares between the persistent definition libvirt holds and the
//! one lvlab would write, so edits made behind lvlab's back (`virsh
//! setmem --config`, `detach-interface`, a `virsh define` with another
//! disk) are seen even when the recorded spec digest still matches.
//! Everything libvirt adds on its own (addresses, controllers, UUID) is
//! left out, so a definition compares equal to the one it was made from.

use std::collections::BTreeMap;

use roxmltree::{Document, Node};
use serde::Serialize;

use super::spec::{field_changes, human_size, ChangeKind, FieldChange};

/// Field name -> value as shown to a person, for the fields lvlab sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DefinitionFields(pub BTreeMap<String, String>);

impl DefinitionFields {
    /// The fields of a domain definition; `None` when it is not XML.
    pub fn parse(xml: &str) -> Option<Self> {
        let doc = Document::parse(xml).ok()?;
        let domain = doc.root_element();
        let mut fields = BTreeMap::new();
        let mut put = |name: String, value: String| {
            fields.insert(name, value);
        };
        if let Some(kind) = domain.attribute("type") {
            put("domain_type".into(), kind.into());
        }
        let max_memory = child(domain, "memory").and_then(memory_bytes);
        let memory = child(domain, "currentMemory")
            .and_then(memory_bytes)
            .or(max_memory);
        if let (Some(memory), Some(max)) = (memory, max_memory) {
            put("memory".into(), human_size(memory));
            put("max memory".into(), human_size(max));
        }
        if let Some(vcpu) = child(domain, "vcpu") {
            let max = text(vcpu);
            let current = vcpu.attribute("current").unwrap_or(&max).to_string();
            put("vcpus".into(), current);
            put("max vcpus".into(), max);
        }
        if let Some(mode) = child(domain, "cpu").and_then(|c| c.attribute("mode")) {
            put("cpu mode".into(), mode.into());
        }
        let Some(devices) = child(domain, "devices") else {
            return Some(Self(fields));
        };
        let graphics: Vec<&str> = elements(devices, "graphics")
            .filter_map(|g| g.attribute("type"))
            .collect();
        if !graphics.is_empty() {
            put("graphics".into(), graphics.join(", "));
        }
        for disk in elements(devices, "disk") {
            if let Some(target) = child(disk, "target").and_then(|t| t.attribute("dev")) {
                put(format!("disk {target}"), disk_source(disk));
            }
        }
        for nic in elements(devices, "interface") {
            if let Some(mac) = child(nic, "mac").and_then(|m| m.attribute("address")) {
                put(format!("nic {}", mac.to_lowercase()), attachment(nic));
            }
        }
        for fs in elements(devices, "filesystem") {
            if let Some(tag) = child(fs, "target").and_then(|t| t.attribute("dir")) {
                let source = child(fs, "source").and_then(|s| s.attribute("dir"));
                put(format!("filesystem {tag}"), source.unwrap_or("").into());
            }
        }
        Some(Self(fields))
    }

    /// Every field where the live definition (`self`) differs from the
    /// `wanted` one, in field order: `before` is the live value, `after`
    /// the wanted one. A redefine restores each of them.
    pub fn drift(&self, wanted: &DefinitionFields) -> Vec<FieldChange> {
        field_changes(&self.0, &wanted.0, |_| ChangeKind::InPlace)
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

fn elements<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name(name))
}

fn text(node: Node) -> String {
    node.text().unwrap_or("").trim().to_string()
}

/// A `<memory>`-like element in bytes, with libvirt's units (KiB by
/// default).
fn memory_bytes(node: Node) -> Option<u64> {
    let value: u64 = text(node).parse().ok()?;
    let unit: u64 = match node.attribute("unit").unwrap_or("KiB") {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1000 * 1000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1000 * 1000 * 1000,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    value.checked_mul(unit)
}

/// The file (or device, volume, network disk) a disk reads, read-only
/// ones marked.
fn disk_source(disk: Node) -> String {
    let source = child(disk, "source")
        .and_then(|s| {
            ["file", "dev", "volume", "name", "dir"]
                .iter()
                .find_map(|a| s.attribute(*a))
        })
        .unwrap_or("no source");
    if child(disk, "readonly").is_some() {
        format!("{source} (read-only)")
    } else {
        source.to_string()
    }
}

/// How an interface is attached, named as the spec fields name it.
fn attachment(nic: Node) -> String {
    let source = |attr| child(nic, "source").and_then(|s| s.attribute(attr));
    let passt = child(nic, "backend").and_then(|b| b.attribute("type")) == Some("passt");
    match nic.attribute("type").unwrap_or("") {
        "network" => format!("network {}", source("network").unwrap_or("")),
        "bridge" => format!("bridge {}", source("bridge").unwrap_or("")),
        "user" if passt => "passt".into(),
        "user" => "user-mode".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What lvlab renders for a machine with a disk, a NIC and a share.
    const RENDERED: &str = "<domain type='qemu'>
  <name>web_lab</name>
  <memory unit='MiB'>2048</memory>
  <vcpu>2</vcpu>
  <cpu mode='maximum'/>
  <devices>
    <disk type='file' device='disk'>
      <source file='/vms/lab/web/disk0.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/vms/lab/web/cidata.iso'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <filesystem type='mount'>
      <source dir='/srv/share'/>
      <target dir='share'/>
    </filesystem>
    <interface type='network'>
      <source network='default'/>
      <mac address='52:54:00:AA:BB:01'/>
    </interface>
    <interface type='user'>
      <backend type='passt'/>
      <mac address='52:54:00:aa:bb:02'/>
    </interface>
    <graphics type='vnc' autoport='yes'/>
  </devices>
</domain>";

    /// The same definition as libvirt hands it back: KiB, currentMemory,
    /// addresses, controllers and devices of its own.
    fn live(edit: impl Fn(String) -> String) -> DefinitionFields {
        let xml = "<domain type='qemu'>
  <name>web_lab</name>
  <uuid>3f376c3e-7351-4712-b0b3-4dfa8f5507a7</uuid>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <cpu mode='maximum' check='none'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/vms/lab/web/disk0.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/vms/lab/web/cidata.iso'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'/>
    <filesystem type='mount' accessmode='passthrough'>
      <source dir='/srv/share'/>
      <target dir='share'/>
    </filesystem>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:01'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:aa:bb:02'/>
      <backend type='passt'/>
    </interface>
    <input type='mouse' bus='ps2'/>
    <graphics type='vnc' port='-1' autoport='yes'/>
  </devices>
</domain>"
            .to_string();
        DefinitionFields::parse(&edit(xml)).unwrap()
    }

    fn drift(edit: impl Fn(String) -> String) -> Vec<(String, Option<String>, Option<String>)> {
        let wanted = DefinitionFields::parse(RENDERED).unwrap();
        live(edit)
            .drift(&wanted)
            .into_iter()
            .map(|c| (c.field, c.before, c.after))
            .collect()
    }

    fn change(
        field: &str,
        live: Option<&str>,
        wanted: Option<&str>,
    ) -> (String, Option<String>, Option<String>) {
        (field.into(), live.map(Into::into), wanted.map(Into::into))
    }

    #[test]
    fn a_definition_as_libvirt_returns_it_has_not_drifted() {
        assert_eq!(drift(|xml| xml), vec![]);
        let wanted = DefinitionFields::parse(RENDERED).unwrap();
        assert_eq!(wanted.0["memory"], "2 GiB");
        assert_eq!(wanted.0["nic 52:54:00:aa:bb:01"], "network default");
        assert_eq!(wanted.0["nic 52:54:00:aa:bb:02"], "passt");
        assert_eq!(wanted.0["disk vdb"], "/vms/lab/web/cidata.iso (read-only)");
    }

    #[test]
    fn memory_set_with_setmem_and_setmaxmem_config() {
        let setmem = |xml: String| {
            xml.replace(
                "<currentMemory unit='KiB'>2097152",
                "<currentMemory unit='KiB'>1048576",
            )
        };
        assert_eq!(
            drift(setmem),
            vec![change("memory", Some("1 GiB"), Some("2 GiB"))]
        );
        let setmaxmem = |xml: String| xml.replace("'KiB'>2097152", "'KiB'>3145728");
        assert_eq!(
            drift(setmaxmem),
            vec![
                change("max memory", Some("3 GiB"), Some("2 GiB")),
                change("memory", Some("3 GiB"), Some("2 GiB")),
            ]
        );
    }

    #[test]
    fn vcpus_set_with_setvcpus_config_and_maximum() {
        let maximum = |xml: String| xml.replace("'static'>2<", "'static'>4<");
        assert_eq!(
            drift(maximum),
            vec![
                change("max vcpus", Some("4"), Some("2")),
                change("vcpus", Some("4"), Some("2")),
            ]
        );
        let current = |xml: String| xml.replace("'static'>2<", "'static' current='1'>2<");
        assert_eq!(drift(current), vec![change("vcpus", Some("1"), Some("2"))]);
    }

    #[test]
    fn domain_type_and_cpu_mode() {
        let kvm = |xml: String| {
            xml.replace("<domain type='qemu'>", "<domain type='kvm'>")
                .replace("mode='maximum'", "mode='host-model'")
        };
        assert_eq!(
            drift(kvm),
            vec![
                change("cpu mode", Some("host-model"), Some("maximum")),
                change("domain_type", Some("kvm"), Some("qemu")),
            ]
        );
    }

    #[test]
    fn a_swapped_disk_path_and_an_added_disk() {
        let swapped = |xml: String| xml.replace("web/disk0.qcow2", "other.qcow2");
        assert_eq!(
            drift(swapped),
            vec![change(
                "disk vda",
                Some("/vms/lab/other.qcow2"),
                Some("/vms/lab/web/disk0.qcow2")
            )]
        );
        let added = |xml: String| {
            xml.replace(
                "<controller",
                "<disk type='file' device='disk'><source file='/x.img'/>\
                 <target dev='vdc'/></disk><controller",
            )
        };
        assert_eq!(drift(added), vec![change("disk vdc", Some("/x.img"), None)]);
    }

    #[test]
    fn a_detached_nic_a_changed_network_a_changed_mac() {
        let detached = |xml: String| {
            let start = xml.find("<interface type='user'>").unwrap();
            let end = xml[start..].find("</interface>").unwrap() + start + "</interface>".len();
            format!("{}{}", &xml[..start], &xml[end..])
        };
        assert_eq!(
            drift(detached),
            vec![change("nic 52:54:00:aa:bb:02", None, Some("passt"))]
        );
        let network = |xml: String| xml.replace("network='default'", "network='other'");
        assert_eq!(
            drift(network),
            vec![change(
                "nic 52:54:00:aa:bb:01",
                Some("network other"),
                Some("network default")
            )]
        );
        let mac = |xml: String| xml.replace("aa:bb:02", "aa:bb:03");
        assert_eq!(drift(mac).len(), 2);
    }

    #[test]
    fn filesystems_and_graphics() {
        let fs = |xml: String| xml.replace("'/srv/share'", "'/tmp'");
        assert_eq!(
            drift(fs),
            vec![change("filesystem share", Some("/tmp"), Some("/srv/share"))]
        );
        let graphics = |xml: String| xml.replace("type='vnc'", "type='spice'");
        assert_eq!(
            drift(graphics),
            vec![change("graphics", Some("spice"), Some("vnc"))]
        );
    }

    #[test]
    fn not_xml_is_none() {
        assert_eq!(DefinitionFields::parse("<domain"), None);
    }
}
