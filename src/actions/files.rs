//! File actions, all through the host's [`Storage`]: disks, the seed, the
//! recorded definition, and removing what lvlab made.

use std::path::{Path, PathBuf};

use crate::apply::ActionError;
use crate::desired::{DiskRole, DiskSize, DiskStrategy, MachineSpec};
use crate::host::Storage;
use crate::observe::RECORDED_FILES;
use crate::rendering::RenderedMachine;
use crate::storage::{self, FromImage};

const PUBLIC: u32 = 0o644;

pub fn create_disk(
    storage: &dyn Storage,
    machine: &MachineSpec,
    image: &Path,
    index: usize,
) -> Result<(), ActionError> {
    let disk = machine
        .disks
        .get(index)
        .ok_or_else(|| ActionError::Precondition {
            address: machine.vm_name.clone(),
            message: format!("{} has no disk {index}", machine.vm_name),
        })?;
    let size = match disk.size {
        DiskSize::ImageSize => None,
        DiskSize::Bytes(bytes) => Some(bytes),
    };
    let result = match (disk.role, size) {
        (DiskRole::Boot { strategy }, size) => {
            let how = match strategy {
                DiskStrategy::Copy => FromImage::Copy,
                DiskStrategy::Backing => FromImage::Overlay,
            };
            storage.create_from_image(image, &disk.path, how, size)
        }
        (DiskRole::Blank, Some(size)) => storage.create_blank(&disk.path, size),
        (DiskRole::Blank, None) => {
            return Err(ActionError::Precondition {
                address: machine.vm_name.clone(),
                message: format!("{}: a blank disk needs a size", disk.name),
            })
        }
    };
    result.map_err(ActionError::storage(&disk.path))
}

/// The seed documents beside the disks, and the ISO the guest reads.
pub fn write_seed(
    storage: &dyn Storage,
    rendered: &RenderedMachine,
) -> Result<(), crate::cloudinit::CloudInitError> {
    crate::cloudinit::write_seed(storage, &rendered.machine.vm_dir, &rendered.seed).map(drop)
}

/// What lvlab defined, kept so the next plan can show a diff against it.
pub fn record_definition(
    storage: &dyn Storage,
    rendered: &RenderedMachine,
) -> Result<(), ActionError> {
    let path = rendered.machine.vm_dir.join("domain.xml");
    storage
        .write_file(&path, rendered.definition.as_bytes(), PUBLIC)
        .map_err(ActionError::storage(path))
}

/// The machine's recorded definition with its forwards moved as `moved`
/// says (old port to new): `status`, `ssh` and the SSH wait read the
/// forward from it.
pub fn move_recorded_ports(
    storage: &dyn Storage,
    machine: &MachineSpec,
    moved: &std::collections::BTreeMap<u16, u16>,
) -> Result<(), ActionError> {
    let path = machine.vm_dir.join("domain.xml");
    let Some(recorded) = storage.read_text(&path) else {
        return Ok(());
    };
    let text = crate::domain::with_forwarded_ports(&recorded, moved);
    storage
        .write_file(&path, text.as_bytes(), PUBLIC)
        .map_err(ActionError::storage(path))
}

/// Removes the files lvlab makes in a machine's directory: its disks (the
/// manifest's, or any `diskN.qcow2` for a machine no longer in it), the
/// seed, the recorded files, and the temporary files an interrupted run
/// left of any of them (`<name>.partial`, `<name>.<16 hex>.tmp`). Anything
/// else stays, with a warning.
pub fn remove_machine_files(
    storage: &dyn Storage,
    dir: &Path,
    disks: Option<&[PathBuf]>,
) -> Result<(), ActionError> {
    let mut names: Vec<String> = RECORDED_FILES.iter().map(|s| s.to_string()).collect();
    names.push(crate::cloudinit::files::ISO_FILE.into());
    names.push(crate::cloudinit::host_key::KEY_FILE.into());
    names.push(crate::cloudinit::host_key::KNOWN_HOSTS_FILE.into());
    match disks {
        Some(disks) => names.extend(
            disks
                .iter()
                .filter_map(|path| path.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        ),
        None => names.extend(
            storage
                .file_names(dir)
                .into_iter()
                .filter(|name| is_lvlab_disk(name)),
        ),
    }
    let ours = |of: &str| names.iter().any(|n| n == of) || (disks.is_none() && is_lvlab_disk(of));
    let leftovers: Vec<String> = storage
        .file_names(dir)
        .into_iter()
        .filter(|name| temporary_of(name).is_some_and(ours))
        .collect();
    names.extend(leftovers);
    let left = storage
        .remove_files(dir, &names)
        .map_err(ActionError::storage(dir))?;
    if !left.is_empty() {
        tracing::warn!(
            "kept {} in {}: lvlab did not make it",
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            dir.display()
        );
    }
    Ok(())
}

/// The file a temporary file of lvlab's stands for: `disk0.qcow2` for
/// `disk0.qcow2.partial` (a disk being built) and for
/// `disk0.qcow2.0123456789abcdef.tmp` (a file being written).
fn temporary_of(name: &str) -> Option<&str> {
    if let Some(of) = name.strip_suffix(storage::PARTIAL) {
        return Some(of);
    }
    storage::is_temporary(name)
        .then(|| name.strip_suffix(storage::TEMPORARY)?.rsplit_once('.'))
        .flatten()
        .map(|(of, _)| of)
}

/// `disk0.qcow2`, `disk1.qcow2`, ...
fn is_lvlab_disk(name: &str) -> bool {
    name.strip_prefix("disk")
        .and_then(|rest| rest.strip_suffix(".qcow2"))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_runs_temporaries_go_and_nothing_else_does() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("env/vm");
        std::fs::create_dir_all(&dir).unwrap();
        let outside = root.path().join("precious");
        std::fs::write(&outside, "keep").unwrap();
        for name in [
            "disk0.qcow2",
            "disk1.qcow2.partial",
            "user-data.0123456789abcdef.tmp",
            "cidata.iso.fedcba9876543210.tmp",
            "notes.partial",
            "notes.0123456789abcdef.tmp",
        ] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        std::os::unix::fs::symlink(&outside, dir.join("disk2.qcow2.partial")).unwrap();
        remove_machine_files(&crate::host::LocalFiles, &dir, None).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "disk2.qcow2.partial",
                "notes.0123456789abcdef.tmp",
                "notes.partial"
            ]
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    }
}
