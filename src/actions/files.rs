//! File actions, all through [`crate::storage`]: disks, the seed, the
//! recorded definition, and removing what lvlab made.

use std::path::Path;

use crate::desired::{DiskRole, DiskSize, DiskStrategy, MachineSpec};
use crate::observe::RECORDED_FILES;
use crate::plan::RenderedMachine;
use crate::storage::{self, FromImage};

const PUBLIC: u32 = 0o644;

pub fn create_disk(machine: &MachineSpec, image: &Path, index: usize) -> Result<(), String> {
    let disk = machine
        .disks
        .get(index)
        .ok_or_else(|| format!("{} has no disk {index}", machine.vm_name))?;
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
            storage::create_from_image(image, &disk.path, how, size)
        }
        (DiskRole::Blank, Some(size)) => storage::create_blank(&disk.path, size),
        (DiskRole::Blank, None) => return Err(format!("{}: a blank disk needs a size", disk.name)),
    };
    result.map_err(|e| e.to_string())
}

/// The seed documents beside the disks, and the ISO the guest reads.
pub fn write_seed(machine: &MachineSpec, rendered: &RenderedMachine) -> Result<(), String> {
    crate::cloudinit::write_seed(&machine.vm_dir, &rendered.seed)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// What lvlab defined, kept so the next plan can show a diff against it.
pub fn record_definition(machine: &MachineSpec, rendered: &RenderedMachine) -> Result<(), String> {
    storage::write_file(
        &machine.vm_dir.join("domain.xml"),
        rendered.definition.as_bytes(),
        PUBLIC,
    )
    .map_err(|e| e.to_string())
}

/// Removes the files lvlab makes in a machine's directory: its disks (the
/// manifest's, or any `diskN.qcow2` for a machine no longer in it), the
/// seed and the recorded files. Anything else stays, with a warning.
pub fn remove_machine_files(dir: &Path, machine: Option<&MachineSpec>) -> Result<(), String> {
    let mut names: Vec<String> = RECORDED_FILES.iter().map(|s| s.to_string()).collect();
    names.push(crate::cloudinit::files::ISO_FILE.into());
    match machine {
        Some(m) => names.extend(
            m.disks
                .iter()
                .filter_map(|d| d.path.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        ),
        None => names.extend(lvlab_disks(dir)),
    }
    let left = storage::remove_files(dir, &names).map_err(|e| e.to_string())?;
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

/// `disk0.qcow2`, `disk1.qcow2`, ... present in `dir`.
fn lvlab_disks(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("disk")
                .and_then(|rest| rest.strip_suffix(".qcow2"))
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .collect()
}
