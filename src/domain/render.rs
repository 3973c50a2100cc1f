//! Renders the libvirt domain XML for a machine from `templates/domain.xml`.
//! minijinja escapes every value for XML (the template's `.xml` name turns
//! escaping on), so no manifest value can change the document's structure.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

use super::mark::{OwnershipMark, MARK_NAMESPACE};
use std::path::Path;

use crate::desired::{Attachment, MachineSpec, SshPort};

const TEMPLATE_NAME: &str = "domain.xml";
const TEMPLATE: &str = include_str!("../../templates/domain.xml");

/// Guest device names for disks in list order; the seed comes after them.
const DISK_TARGETS: &str = "abcdefghijklmnopqrstuvwxyz";

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error(
        "domain_type {requested} is not offered by {uri} (it offers: {offered}){}",
        type_hint(requested)
    )]
    TypeNotOffered {
        requested: &'static str,
        uri: String,
        offered: String,
    },
    #[error("machine {vm_name} has {count} disks; at most {max} can be attached")]
    TooManyDisks {
        vm_name: String,
        count: usize,
        max: usize,
    },
    #[error(
        "machine {vm_name} shares directories, but no virtiofsd was found (PATH, \
         /usr/libexec/virtiofsd, /usr/lib/qemu/virtiofsd, ~/.cargo/bin)\n  hint: \
         install it with `cargo install virtiofsd` (needs libseccomp-dev and libcap-ng-dev; \
         scripts/setup.sh does this), or remove shared_directories"
    )]
    NoVirtiofsd { vm_name: String },
    #[error("cannot render the domain definition: {0}")]
    Template(#[from] minijinja::Error),
}

/// A host without KVM still runs the machine under TCG.
fn type_hint(requested: &str) -> &'static str {
    if requested == "kvm" {
        "\n  hint: this host offers no KVM: set `domain_type: qemu` to run the machine \
         under software emulation (TCG), or `auto` to use KVM only where it exists"
    } else {
        ""
    }
}

/// Moved to [`crate::host`]; re-exported while rendering still names it here.
pub use crate::host::HostFacts;

#[derive(Serialize)]
struct DomainContext<'a> {
    domain_type: &'a str,
    name: &'a str,
    title: String,
    mark_namespace: &'static str,
    mark: MarkContext<'a>,
    os_id: Option<&'a str>,
    memory_mib: u64,
    vcpus: u32,
    arch: &'a str,
    disks: Vec<DiskContext>,
    filesystems: Vec<FilesystemContext>,
    virtiofsd: Option<String>,
    nics: Vec<NicContext>,
    graphics: Option<&'static str>,
}

#[derive(Serialize)]
struct MarkContext<'a> {
    #[serde(flatten)]
    mark: &'a OwnershipMark,
    spec_json: String,
}

#[derive(Serialize)]
struct DiskContext {
    path: String,
    format: &'static str,
    target: String,
    readonly: bool,
}

#[derive(Serialize)]
struct FilesystemContext {
    source: String,
    tag: String,
}

#[derive(Serialize)]
struct NicContext {
    kind: &'static str,
    network: Option<String>,
    mac: String,
    ssh_port: Option<u16>,
}

/// What a definition is made from besides the machine itself.
pub struct DefinitionInput<'a> {
    pub machine: &'a MachineSpec,
    /// `kvm`, `qemu` or what else the host offers (see [`super::resolve_domain_type`]).
    pub domain_type: &'a str,
    pub arch: &'a str,
    pub mark: &'a OwnershipMark,
    /// Host ports for `ssh_port: auto` passt interfaces, in interface order.
    pub auto_ssh_ports: &'a [u16],
    /// The virtiofsd binary for shared directories; `None` leaves it to
    /// the host's libvirt (a remote host's own). Whether a local host
    /// lacks one is the caller's check ([`HostFacts::lacks_virtiofsd`]).
    pub virtiofsd: Option<&'a Path>,
    /// The libosinfo id of the machine's OS, recorded as virt-install does.
    pub os_id: Option<&'a str>,
}

/// The domain XML for a machine.
pub fn render_definition(input: &DefinitionInput) -> Result<String, DomainError> {
    let machine = input.machine;
    let context = DomainContext {
        domain_type: input.domain_type,
        name: &machine.domain_name,
        title: format!(
            "{} ({} lab, made by lvlab)",
            machine.vm_name, machine.environment
        ),
        mark_namespace: MARK_NAMESPACE,
        mark: MarkContext {
            mark: input.mark,
            spec_json: serde_json::to_string(&input.mark.spec)
                .expect("a map of strings serializes"),
        },
        os_id: input.os_id,
        memory_mib: machine.memory_mib,
        vcpus: machine.cpu,
        arch: input.arch,
        disks: disks(machine)?,
        filesystems: machine
            .shared_directories
            .iter()
            .map(|d| FilesystemContext {
                source: d.source.display().to_string(),
                tag: d.mount_tag.clone(),
            })
            .collect(),
        virtiofsd: input.virtiofsd.map(|p| p.display().to_string()),
        nics: nics(machine, input.auto_ssh_ports),
        graphics: machine.graphics.name(),
    };
    Ok(template().render(minijinja::value::Serde(context))?)
}

fn template() -> minijinja::Template<'static, 'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template(TEMPLATE_NAME, TEMPLATE)
            .expect("templates/domain.xml is valid");
        env
    })
    .get_template(TEMPLATE_NAME)
    .expect("the template was added")
}

/// The machine's disks as vda, vdb, ..., then the seed ISO, read-only: a
/// virtio disk, because Debian's cloud kernel has no AHCI driver for a
/// SATA cdrom while cloud-init finds the `cidata` label on any disk.
fn disks(machine: &MachineSpec) -> Result<Vec<DiskContext>, DomainError> {
    let count = machine.disks.len() + 1;
    if count > DISK_TARGETS.len() {
        return Err(DomainError::TooManyDisks {
            vm_name: machine.vm_name.clone(),
            count,
            max: DISK_TARGETS.len() - 1,
        });
    }
    let mut targets = DISK_TARGETS.chars().map(|c| format!("vd{c}"));
    let mut out: Vec<DiskContext> = machine
        .disks
        .iter()
        .zip(targets.by_ref())
        .map(|(disk, target)| DiskContext {
            path: disk.path.display().to_string(),
            format: "qcow2",
            target,
            readonly: false,
        })
        .collect();
    out.push(DiskContext {
        path: seed_path(machine).display().to_string(),
        format: "raw",
        target: targets.next().expect("counted above"),
        readonly: true,
    });
    Ok(out)
}

/// Where a machine's seed ISO lives.
pub fn seed_path(machine: &MachineSpec) -> std::path::PathBuf {
    machine.volume_dir.join(crate::cloudinit::files::ISO_FILE)
}

fn nics(machine: &MachineSpec, auto_ssh_ports: &[u16]) -> Vec<NicContext> {
    let mut auto_ports = auto_ssh_ports.iter().copied();
    machine
        .interfaces
        .iter()
        .map(|nic| {
            let (kind, network, ssh_port) = match &nic.attachment {
                Attachment::Network { network } => ("network", Some(network.clone()), None),
                Attachment::User => ("user", None, None),
                Attachment::Passt { ssh_port } => {
                    let port = match ssh_port {
                        Some(SshPort::Fixed(port)) => Some(*port),
                        Some(SshPort::Auto) => auto_ports.next(),
                        None => None,
                    };
                    ("passt", None, port)
                }
            };
            NicContext {
                kind,
                network,
                mac: nic.mac.to_string(),
                ssh_port,
            }
        })
        .collect()
}

/// The host ports a definition forwards to guests' SSH (passt
/// `portForward`), in interface order.
pub fn forwarded_ssh_ports(definition: &str) -> Vec<u16> {
    let Ok(doc) = roxmltree::Document::parse(definition) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("range") && n.parent().is_some_and(|p| p.has_tag_name("portForward"))
        })
        .filter_map(|n| n.attribute("start")?.parse().ok())
        .collect()
}

/// `definition` with each passt forward's host port that `moved` names
/// replaced by the port it maps to; every other byte as it was (the
/// definition may be libvirt's own, with its UUID and metadata).
pub fn with_forwarded_ports(
    definition: &str,
    moved: &std::collections::BTreeMap<u16, u16>,
) -> String {
    let Ok(doc) = roxmltree::Document::parse(definition) else {
        return definition.to_string();
    };
    let mut edits: Vec<(std::ops::Range<usize>, u16)> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("range") && n.parent().is_some_and(|p| p.has_tag_name("portForward"))
        })
        .filter_map(|n| {
            let start = n.attributes().find(|a| a.name() == "start")?;
            let new = moved.get(&start.value().parse().ok()?)?;
            Some((start.range_value(), *new))
        })
        .collect();
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut text = definition.to_string();
    for (range, port) in edits {
        text.replace_range(range, &port.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_forwards_get_their_new_ports_and_the_rest_stays() {
        let xml = "<domain><uuid>u</uuid><devices>\
            <interface type='user'><portForward proto='tcp' address='127.0.0.1'>\
            <range start=\"2222\" to='22'/></portForward></interface>\
            <interface type='user'><portForward proto='tcp'>\
            <range start='24567' to='22'/></portForward></interface>\
            <range start='24567'/></devices></domain>";
        let moved = std::collections::BTreeMap::from([(24567, 31001)]);
        let out = with_forwarded_ports(xml, &moved);
        assert_eq!(forwarded_ssh_ports(&out), [2222, 31001]);
        assert_eq!(out, xml.replacen("'24567' to", "'31001' to", 1));
    }
}
