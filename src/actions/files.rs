//! File actions: disks and the seed ISO through the machine's [`Storage`]
//! on its host, the recorded definition and seed documents as local files
//! in its VM directory, and removing what lvlab made of both.

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

/// The seed documents in the VM directory, and the ISO the guest reads
/// beside its disks.
pub fn write_seed(
    volumes: &dyn Storage,
    rendered: &RenderedMachine,
) -> Result<(), crate::cloudinit::CloudInitError> {
    let machine = &rendered.machine;
    let iso = crate::domain::seed_path(machine);
    crate::cloudinit::write_seed_at(volumes, &machine.vm_dir, &iso, &rendered.seed).map(drop)
}

/// What lvlab defined, kept so the next plan can show a diff against it.
pub fn record_definition(rendered: &RenderedMachine) -> Result<(), ActionError> {
    let path = rendered.machine.vm_dir.join("domain.xml");
    storage::write_file(&path, rendered.definition.as_bytes(), PUBLIC)
        .map_err(ActionError::storage(path))
}

/// The machine's recorded definition with its forwards moved as `moved`
/// says (old port to new): `status`, `ssh` and the SSH wait read the
/// forward from it.
pub fn move_recorded_ports(
    machine: &MachineSpec,
    moved: &std::collections::BTreeMap<u16, u16>,
) -> Result<(), ActionError> {
    let path = machine.vm_dir.join("domain.xml");
    let Some(recorded) = storage::read_text(&path) else {
        return Ok(());
    };
    let text = crate::domain::with_forwarded_ports(&recorded, moved);
    storage::write_file(&path, text.as_bytes(), PUBLIC).map_err(ActionError::storage(path))
}

/// Removes what lvlab makes for a machine: the recorded files in its VM
/// directory `vm_dir`, then its volumes in `volume_dir` on `volumes` (its
/// disks, the manifest's or any `diskN.qcow2` for a machine no longer in
/// it, and the seed), and the temporary files an interrupted run left of
/// any of them (`<name>.partial`, `<name>.<16 hex>.tmp`); then the
/// emptied directories (a pool's with its pool). Records go first: in a
/// local pool's directory they would keep it. Anything else stays, with a
/// warning.
pub fn remove_machine_files(
    volumes: &dyn Storage,
    vm_dir: &Path,
    volume_dir: &Path,
    disks: Option<&[PathBuf]>,
) -> Result<(), ActionError> {
    let mut records: Vec<String> = RECORDED_FILES.iter().map(|s| s.to_string()).collect();
    records.push(crate::cloudinit::host_key::KEY_FILE.into());
    records.push(crate::cloudinit::host_key::KNOWN_HOSTS_FILE.into());
    let mut names = vec![crate::cloudinit::files::ISO_FILE.to_string()];
    let present = volumes.volume_names(volume_dir);
    match disks {
        Some(disks) => names.extend(
            disks
                .iter()
                .filter_map(|path| path.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        ),
        None => names.extend(present.iter().filter(|n| is_lvlab_disk(n)).cloned()),
    }
    let ours = |list: &[String], of: &str| {
        list.iter().any(|n| n == of) || (disks.is_none() && is_lvlab_disk(of))
    };
    let temporaries = |listed: Vec<String>, of_list: &[String]| -> Vec<String> {
        listed
            .into_iter()
            .filter(|name| temporary_of(name).is_some_and(|of| ours(of_list, of)))
            .collect()
    };
    let record_leftovers = temporaries(storage::file_names(vm_dir), &records);
    records.extend(record_leftovers);
    let volume_leftovers = temporaries(present, &names);
    names.extend(volume_leftovers);
    let left_records =
        storage::remove_files(vm_dir, &records).map_err(ActionError::storage(vm_dir))?;
    let left_volumes = volumes
        .remove_volumes(volume_dir, &names)
        .map_err(ActionError::storage(volume_dir))?;
    // A local pool's directory went with its pool: its parent may be empty.
    storage::remove_parent_if_empty(vm_dir);
    let left = if vm_dir == volume_dir {
        left_volumes
    } else {
        left_records.into_iter().chain(left_volumes).collect()
    };
    if !left.is_empty() {
        tracing::warn!(
            "kept {} in {}: lvlab did not make it",
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            volume_dir.display()
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
        remove_machine_files(&crate::host::LocalFiles, &dir, &dir, None).unwrap();
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
