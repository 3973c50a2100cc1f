//! The spec of a machine as lvlab records it on its domain: a flat map of
//! named fields, so a plan can say what changed ("memory 2048 MiB -> 4096
//! MiB") and whether the change can be made in place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::desired::{Attachment, DiskRole, DiskSize, DiskStrategy, MachineSpec, SshPort};

/// The field that holds the seed's digest.
pub const SEED_FIELD: &str = "seed";

/// The field that holds the domain type the machine was defined with.
const DOMAIN_TYPE_FIELD: &str = "domain_type";

/// Field name -> value as shown to a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecFields(pub BTreeMap<String, String>);

/// Whether a changed field can be applied to the existing domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Redefine the domain; takes effect at the next start.
    InPlace,
    /// Needs a new disk or a new seed: destroy and create.
    Replace,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub kind: ChangeKind,
}

impl SpecFields {
    /// The fields of `machine` as it would be defined with `domain_type` and
    /// a seed of `seed_digest`.
    pub fn of(machine: &MachineSpec, domain_type: &str, seed_digest: &str) -> Self {
        let mut fields = BTreeMap::new();
        fields.insert("cpu".into(), machine.cpu.to_string());
        fields.insert("memory".into(), format!("{} MiB", machine.memory_mib));
        fields.insert(DOMAIN_TYPE_FIELD.into(), domain_type.to_string());
        if machine.autostart {
            fields.insert("autostart".into(), "yes".into());
        }
        if let Some(graphics) = machine.graphics.name() {
            fields.insert("graphics".into(), graphics.to_string());
        }
        fields.insert("image".into(), machine.os.clone());
        fields.insert(SEED_FIELD.into(), seed_digest.to_string());
        for (index, disk) in machine.disks.iter().enumerate() {
            fields.insert(
                format!("disk.{}", disk.name),
                disk_field(index, disk.size, disk.role),
            );
        }
        for nic in &machine.interfaces {
            fields.insert(
                format!("nic.{}", nic.name),
                format!("{} {}", nic.mac, attachment_field(&nic.attachment)),
            );
        }
        for dir in &machine.shared_directories {
            fields.insert(
                format!("shared.{}", dir.mount_tag),
                dir.source.display().to_string(),
            );
        }
        Self(fields)
    }

    /// The domain type recorded (`kvm`, `qemu`...), for what reads a
    /// deployed machine's mark rather than a plan.
    pub fn domain_type(&self) -> Option<&str> {
        self.0.get(DOMAIN_TYPE_FIELD).map(String::as_str)
    }

    /// Every field that differs, in field order.
    pub fn changes(&self, new: &SpecFields) -> Vec<FieldChange> {
        field_changes(&self.0, &new.0, kind_of)
    }
}

/// Every field whose value differs between `before` and `after`, in field
/// order, each of the `kind` the field name gives.
pub(super) fn field_changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    kind: impl Fn(&str) -> ChangeKind,
) -> Vec<FieldChange> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (old, new) = (before.get(name), after.get(name));
            (old != new).then(|| FieldChange {
                field: name.clone(),
                before: old.cloned(),
                after: new.cloned(),
                kind: kind(name),
            })
        })
        .collect()
}

/// Disks, the image and the seed are made once; the rest is in the
/// definition and changes with a redefine.
fn kind_of(field: &str) -> ChangeKind {
    if field == "image" || field == SEED_FIELD || field.starts_with("disk.") {
        ChangeKind::Replace
    } else {
        ChangeKind::InPlace
    }
}

fn disk_field(index: usize, size: DiskSize, role: DiskRole) -> String {
    let size = match size {
        DiskSize::ImageSize => "image size".to_string(),
        DiskSize::Bytes(bytes) => human_size(bytes),
    };
    let how = match role {
        DiskRole::Boot {
            strategy: DiskStrategy::Copy,
        } => "copy of the image",
        DiskRole::Boot {
            strategy: DiskStrategy::Backing,
        } => "overlay on the image",
        DiskRole::Blank => "blank",
    };
    format!("disk{index}.qcow2, {size}, {how}")
}

fn attachment_field(attachment: &Attachment) -> String {
    match attachment {
        Attachment::Network { network } => format!("network {network}"),
        Attachment::User => "user-mode".into(),
        Attachment::Passt { ssh_port: None } => "passt".into(),
        Attachment::Passt {
            ssh_port: Some(SshPort::Auto),
        } => "passt, ssh on an automatic port".into(),
        Attachment::Passt {
            ssh_port: Some(SshPort::Fixed(port)),
        } => format!("passt, ssh on 127.0.0.1:{port}"),
    }
}

/// Sizes as a person writes them: whole GiB or MiB when exact.
pub fn human_size(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The digest recorded on the domain: changes exactly when a field does.
pub fn spec_digest(fields: &SpecFields) -> String {
    let json = serde_json::to_vec(fields).expect("a map of strings serializes");
    format!("sha256:{:x}", Sha256::digest(json))
}
