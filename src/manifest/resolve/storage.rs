//! Disks and shared directories: their merge rules and file names.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Layered, Resolver};
use crate::desired::{DiskRole, DiskSize, DiskSpec, DiskStrategy, SharedDirectory};
use crate::manifest::error::Problem;
use crate::manifest::raw::{RawDisk, RawSharedDirectory};
use crate::manifest::source::KeyPath;
use crate::manifest::values;

/// virtiofs limits a mount tag to 36 bytes.
const MAX_MOUNT_TAG: usize = 36;

/// A machine's disks: each of its disks is merged over the default disk of
/// the same name; a machine without `disks` gets the default list.
pub(super) fn resolve_disks(r: &mut Resolver, m: &Layered, vm_dir: &Path) -> Option<Vec<DiskSpec>> {
    let defaults = m.defaults.disks.as_deref().unwrap_or_default();
    let defaults_path = m.defaults_path.key("disks");
    let (list, list_path) = match &m.machine.disks {
        Some(disks) => (disks.as_slice(), m.machine_path.key("disks")),
        None => (defaults, defaults_path.clone()),
    };
    if list.is_empty() {
        // Neither says anything: one boot disk of the image's own size.
        let disk0 = RawDisk::default();
        return resolve_disk(r, m, &disk0, "disk0".into(), 0, &list_path, vm_dir).map(|d| vec![d]);
    }
    let mut names = BTreeSet::new();
    let mut disks = Vec::new();
    let mut ok = true;
    for (i, disk) in list.iter().enumerate() {
        let path = list_path.index(i);
        let name = disk_name(disk, i);
        let base = defaults
            .iter()
            .enumerate()
            .find(|(j, d)| disk_name(d, *j) == name);
        let merged = merge_disk(disk, base.map(|(_, d)| d));
        if !names.insert(name.clone()) {
            r.report(Problem::value(
                path.key("name"),
                format!("disk `{name}` is listed twice"),
            ));
            ok = false;
            continue;
        }
        match resolve_disk(r, m, &merged, name, i, &path, vm_dir) {
            Some(spec) => disks.push(spec),
            None => ok = false,
        }
    }
    ok.then_some(disks)
}

fn disk_name(disk: &RawDisk, index: usize) -> String {
    disk.name.clone().unwrap_or_else(|| format!("disk{index}"))
}

fn merge_disk(disk: &RawDisk, base: Option<&RawDisk>) -> RawDisk {
    let Some(base) = base else {
        return disk.clone();
    };
    RawDisk {
        name: disk.name.clone().or_else(|| base.name.clone()),
        size: disk.size.clone().or_else(|| base.size.clone()),
        strategy: disk.strategy.clone().or_else(|| base.strategy.clone()),
    }
}

fn resolve_disk(
    r: &mut Resolver,
    m: &Layered,
    disk: &RawDisk,
    name: String,
    index: usize,
    path: &KeyPath,
    vm_dir: &Path,
) -> Option<DiskSpec> {
    let size = match &disk.size {
        Some(text) => DiskSize::Bytes(r.check(&path.key("size"), values::parse_size(&text.0))?),
        None if index == 0 => DiskSize::ImageSize,
        None => {
            r.report(
                Problem::key(path.clone(), format!("extra disk `{name}` has no `size`"))
                    .hint("add `size: 10G`: a blank disk needs one"),
            );
            return None;
        }
    };
    let role = if index == 0 {
        let strategy = disk.strategy.as_ref().map(|s| (s, path.key("strategy")));
        DiskRole::Boot {
            strategy: boot_strategy(r, m, strategy)?,
        }
    } else {
        if disk.strategy.is_some() {
            tracing::warn!("{path}: `strategy` only applies to the boot disk; ignored");
        }
        DiskRole::Blank
    };
    Some(DiskSpec {
        name,
        path: vm_dir.join(format!("disk{index}.qcow2")),
        size,
        role,
    })
}

/// The boot disk's strategy: the disk's own, else `disk_strategy`, else copy.
fn boot_strategy(
    r: &mut Resolver,
    m: &Layered,
    on_disk: Option<(&String, KeyPath)>,
) -> Option<DiskStrategy> {
    let picked = on_disk.or_else(|| m.pick("disk_strategy", |x| x.disk_strategy.as_ref()));
    let Some((value, path)) = picked else {
        return Some(DiskStrategy::Copy);
    };
    let parsed = match value.as_str() {
        "copy" => Ok(DiskStrategy::Copy),
        "backing" => Ok(DiskStrategy::Backing),
        other => Err(format!(
            "`{other}` is not a disk strategy; use copy (a standalone copy of the image) \
             or backing (a qcow2 overlay on the cached image)"
        )),
    };
    r.check(&path, parsed)
}

/// Defaults first; a machine entry with the same `mount_tag` replaces the
/// default one, new tags are appended.
pub(super) fn resolve_shared_directories(
    r: &mut Resolver,
    m: &Layered,
) -> Option<Vec<SharedDirectory>> {
    let defaults = shared_list(r, m.defaults.shared_directories.as_deref(), m.defaults_path)?;
    let own = shared_list(r, m.machine.shared_directories.as_deref(), m.machine_path)?;
    let mut merged = defaults;
    for dir in own {
        match merged.iter_mut().find(|d| d.mount_tag == dir.mount_tag) {
            Some(existing) => *existing = dir,
            None => merged.push(dir),
        }
    }
    Some(merged)
}

fn shared_list(
    r: &mut Resolver,
    raw: Option<&[RawSharedDirectory]>,
    owner: &KeyPath,
) -> Option<Vec<SharedDirectory>> {
    let list_path = owner.key("shared_directories");
    let mut out: Vec<SharedDirectory> = Vec::new();
    let mut ok = true;
    for (i, dir) in raw.unwrap_or_default().iter().enumerate() {
        let path = list_path.index(i);
        match shared_directory(r, dir, &path) {
            Some(spec) if out.iter().any(|d| d.mount_tag == spec.mount_tag) => {
                r.report(Problem::value(
                    path.key("mount_tag"),
                    format!("mount_tag `{}` is used twice in this list", spec.mount_tag),
                ));
                ok = false;
            }
            Some(spec) => out.push(spec),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn shared_directory(
    r: &mut Resolver,
    dir: &RawSharedDirectory,
    path: &KeyPath,
) -> Option<SharedDirectory> {
    let (Some(source), Some(tag)) = (&dir.source, &dir.mount_tag) else {
        r.report(
            Problem::key(
                path.clone(),
                "a shared directory needs `source` and `mount_tag`",
            )
            .hint("e.g. `- {source: ~/salt, mount_tag: salt}`"),
        );
        return None;
    };
    if tag.is_empty() || tag.len() > MAX_MOUNT_TAG {
        r.report(Problem::value(
            path.key("mount_tag"),
            format!("mount_tag `{tag}` must be 1 to {MAX_MOUNT_TAG} bytes long (virtiofs)"),
        ));
        return None;
    }
    let source = values::expand_path(source, r.base());
    let source = r.check(&path.key("source"), source)?;
    Some(SharedDirectory {
        source,
        mount_tag: tag.clone(),
    })
}
