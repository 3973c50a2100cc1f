//! libvirt `dir` storage pools that lvlab makes: one per directory of
//! volumes (a machine's volume directory, a host's images). Owns the pool
//! name rule, lvlab's mark on a pool (the small volume [`MARK_VOLUME`]),
//! and the pool's lifecycle: define, build and start one, adopt one that
//! carries this lab's mark, refuse any other, look one up by directory,
//! and remove one once it holds nothing else. Volumes inside a pool are
//! [`super::PoolVolumes`]' business.
//!
//! A pool is named `lvlab-<label>-<8 hex of sha256(dir)>`: the label keeps
//! `virsh pool-list` readable, the digest keeps two directories apart
//! whatever their labels. A pool found by that name or by its directory
//! without this lab's mark is never changed: it may be someone's data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::volume_stream;
use crate::domain::LabIdentity;
use crate::libvirt::{Connection, LibvirtError};

/// The volume in each of lvlab's pools that says whose it is.
pub const MARK_VOLUME: &str = ".lvlab-pool";

/// The label of a host's images pool.
pub const IMAGES_LABEL: &str = "images";

/// Longest label kept in a pool name: `lvlab-` + 40 + `-` + 8 hex stays
/// under 60 characters, one `virsh pool-list` line.
const MAX_LABEL: usize = 40;

/// Held while a pool is found or made.
static ENSURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A mark larger than this is not lvlab's.
const MAX_MARK_BYTES: u64 = 64 << 10;

/// `lvlab-<label>-<8 hex of sha256(dir)>`.
pub fn pool_name(label: &str, dir: &Path) -> String {
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let label: String = label
        .chars()
        .map(|c| if c == '/' { '-' } else { c })
        .take(MAX_LABEL)
        .collect();
    format!("lvlab-{label}-{hex}")
}

/// The label of a machine's pool: `<environment>-<vm_name>`.
pub fn machine_label(environment: &str, vm_name: &str) -> String {
    format!("{environment}-{vm_name}")
}

/// What lvlab writes into [`MARK_VOLUME`]: whose pool it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "holds", rename_all = "lowercase")]
pub enum PoolMark {
    /// A host's images, shared by every lab on it.
    Images,
    /// One machine's volumes.
    Machine {
        environment: String,
        machine: String,
        /// The environment's `lab_id`, when it sets one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lab_id: Option<String>,
        /// The machine's canonical VM directory on the machine lvlab runs
        /// on: the lab, without a `lab_id` (as in a domain's mark).
        vm_dir: PathBuf,
    },
}

impl PoolMark {
    /// The mark of machine `vm_name` of `environment` in `lab`.
    pub fn machine(environment: &str, vm_name: &str, lab: &LabIdentity, vm_dir: &Path) -> Self {
        let (lab_id, vm_dir) = match lab {
            LabIdentity::LabId(id) => (Some(id.clone()), crate::domain::canonical_dir(vm_dir)),
            LabIdentity::VmDir(dir) => (None, dir.clone()),
        };
        PoolMark::Machine {
            environment: environment.to_string(),
            machine: vm_name.to_string(),
            lab_id,
            vm_dir,
        }
    }

    /// The pool name's label.
    pub fn label(&self) -> String {
        match self {
            PoolMark::Images => IMAGES_LABEL.to_string(),
            PoolMark::Machine {
                environment,
                machine,
                ..
            } => machine_label(environment, machine),
        }
    }

    /// Whether `found` (read from a pool) says the pool is this mark's:
    /// the same machine of the same lab (its `lab_id`, else its VM
    /// directory), or both images.
    pub fn accepts(&self, found: &PoolMark) -> bool {
        match (self, found) {
            (PoolMark::Images, PoolMark::Images) => true,
            (
                PoolMark::Machine {
                    environment,
                    machine,
                    lab_id,
                    vm_dir,
                },
                PoolMark::Machine {
                    environment: e,
                    machine: m,
                    lab_id: l,
                    vm_dir: d,
                },
            ) => {
                let lab = |id: &Option<String>, dir: &Path| LabIdentity::of(id.as_deref(), dir);
                environment == e && machine == m && lab(lab_id, vm_dir) == lab(l, d)
            }
            _ => false,
        }
    }

    /// Who the mark says owns the pool, for messages.
    pub fn owner(&self) -> String {
        match self {
            PoolMark::Images => "lvlab's images".to_string(),
            PoolMark::Machine {
                environment,
                machine,
                lab_id,
                vm_dir,
            } => {
                let lab = LabIdentity::of(lab_id.as_deref(), vm_dir);
                format!("machine {machine} of environment {environment}, {lab}")
            }
        }
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a pool mark serializes") + "\n"
    }
}

/// Why a pool could not be made, adopted, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error("libvirt at {uri} failed to {what}: {message}")]
    Call {
        uri: String,
        what: String,
        message: String,
    },
    #[error(
        "storage pool {pool} ({}) is not lvlab's: it has no {MARK_VOLUME} mark\n  \
         hint: lvlab never changes a pool it did not make; remove it (`virsh pool-destroy \
         {pool}; virsh pool-undefine {pool}`) if it is yours and unused, or change \
         `pool_basedir`/`disk_image_basedir`",
        dir.display()
    )]
    Unmarked { pool: String, dir: PathBuf },
    #[error(
        "storage pool {pool} ({}) belongs to {owner}, not to {wanted}\n  \
         hint: lvlab never changes another lab's pool; give this machine another directory \
         (`pool_basedir`, `disk_image_basedir`) or destroy the other lab first",
        dir.display()
    )]
    OtherLab {
        pool: String,
        dir: PathBuf,
        owner: String,
        wanted: String,
    },
    #[error(
        "directory {} is already storage pool {found}, not {pool}\n  \
         hint: lvlab keeps one pool per directory and never takes over another; remove \
         {found} if it is unused, or give this machine another directory",
        dir.display()
    )]
    DirectoryTaken {
        pool: String,
        found: String,
        dir: PathBuf,
    },
    #[error(
        "storage pool {pool} is for directory {}, not {}\n  \
         hint: lvlab never changes a pool it did not make; remove {pool} if it is unused",
        target.display(),
        dir.display()
    )]
    OtherDirectory {
        pool: String,
        dir: PathBuf,
        target: PathBuf,
    },
}

impl PoolError {
    pub(super) fn call(
        conn: &Connection,
        what: impl Into<String>,
    ) -> impl FnOnce(virt::error::Error) -> Self {
        let (uri, what) = (conn.uri().to_string(), what.into());
        move |err| PoolError::Call {
            uri,
            what,
            message: err.message().to_string(),
        }
    }
}

/// The pool of `dir`, made when missing (defined, built when its directory
/// is missing, started, marked) or adopted when it carries `mark`; refused
/// when it is not lvlab's or is another lab's. Started and refreshed.
pub fn ensure_dir_pool(
    conn: &Connection,
    dir: &Path,
    label: &str,
    mark: &PoolMark,
) -> Result<StoragePool, PoolError> {
    let name = pool_name(label, dir);
    // A machine's disk and seed steps may run at once: one of them makes
    // the pool, the other then finds it marked.
    let _one_at_a_time = ENSURING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = find_pool(conn, &name, dir)? {
        return adopt(conn, pool, &name, dir, mark);
    }
    let pool = match conn.raw().define_storage_pool_xml(&pool_xml(&name, dir), 0) {
        Ok(pool) => pool,
        // Another lvlab defined it meanwhile (two jobs wanting one images
        // pool): take it as found.
        Err(err) => match find_pool(conn, &name, dir)? {
            Some(pool) => return adopt(conn, pool, &name, dir, mark),
            None => return Err(PoolError::call(conn, format!("define storage pool {name}"))(err)),
        },
    };
    let made = start(conn, &pool, &name).and_then(|()| write_mark(conn, &pool, &name, mark));
    if let Err(err) = made {
        // Leave nothing half made: a pool without its mark would be
        // refused by the next run.
        let _ = pool.destroy();
        let _ = pool.undefine();
        return Err(err);
    }
    let _ = pool.set_autostart(true);
    tracing::debug!(pool = name, dir = %dir.display(), "storage pool made");
    Ok(pool)
}

/// The pool whose target is `dir`, if libvirt has one; refreshed when
/// active, so its volume list is what the directory holds now. A refresh
/// refused while a volume is being made (another lvlab applying) leaves
/// the list as libvirt knows it: every volume lvlab made is in it. A
/// stopped pool refuses the refresh too: asking first whether it is
/// active would be one more round trip per machine on a remote host.
pub fn pool_of_dir(conn: &Connection, dir: &Path) -> Option<StoragePool> {
    let pool = lookup_by_dir(conn, dir)?;
    if let Err(err) = refresh(conn, &pool) {
        tracing::debug!("{err}");
    }
    Some(pool)
}

/// Starts `pool` when it is stopped (a host rebooted, autostart off):
/// starting a dir pool changes nothing in its directory, and only an
/// active pool's volumes can be read or deleted.
pub fn activate(conn: &Connection, pool: &StoragePool) -> Result<(), PoolError> {
    if pool.is_active().unwrap_or(false) {
        return Ok(());
    }
    pool.create(0).map_err(PoolError::call(
        conn,
        format!("start storage pool {}", name_of(pool)),
    ))
}

/// Re-reads the pool's directory: files changed behind libvirt's back
/// (the records lvlab keeps beside a local pool's volumes) are seen.
pub fn refresh(conn: &Connection, pool: &StoragePool) -> Result<(), PoolError> {
    pool.refresh(0).map_err(PoolError::call(
        conn,
        format!("refresh storage pool {}", name_of(pool)),
    ))
}

/// The mark `pool` carries, if any.
pub fn read_mark(conn: &Connection, pool: &StoragePool) -> Option<PoolMark> {
    let volume = pool.lookup_storage_vol_by_name(MARK_VOLUME).ok()?;
    let size = volume.info().ok()?.capacity;
    if size > MAX_MARK_BYTES {
        return None;
    }
    let bytes = download(conn, &volume, size).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Checks that `pool` carries `mark`, then deletes its mark, stops it,
/// removes its directory and undefines it, when it holds no volume but the
/// mark; returns the names of the volumes that keep it.
pub fn remove_if_empty(
    conn: &Connection,
    pool: StoragePool,
    dir: &Path,
    mark: &PoolMark,
) -> Result<Vec<String>, PoolError> {
    let name = name_of(&pool);
    check_mark(conn, &pool, dir, mark)?;
    refresh(conn, &pool)?;
    let others: Vec<String> = pool
        .list_volumes()
        .map_err(PoolError::call(conn, format!("list the volumes of {name}")))?
        .into_iter()
        .filter(|v| v != MARK_VOLUME)
        .collect();
    if !others.is_empty() {
        return Ok(others);
    }
    let mark_volume = pool
        .lookup_storage_vol_by_name(MARK_VOLUME)
        .map_err(PoolError::call(conn, format!("find the mark of {name}")))?;
    mark_volume
        .delete(0)
        .map_err(PoolError::call(conn, format!("delete the mark of {name}")))?;
    pool.destroy()
        .map_err(PoolError::call(conn, format!("stop storage pool {name}")))?;
    // virStoragePoolDelete on a dir pool removes the (now empty) directory.
    if let Err(err) = pool.delete(0) {
        tracing::warn!(
            "kept directory {} of pool {name}: {}",
            dir.display(),
            err.message()
        );
    }
    pool.undefine().map_err(PoolError::call(
        conn,
        format!("undefine storage pool {name}"),
    ))?;
    tracing::debug!(pool = name, "storage pool removed");
    Ok(Vec::new())
}

/// Removes the host's directory `dir` when it is empty, and nothing else:
/// libvirt has no call for a directory, but deleting a stopped `dir` pool
/// is an `rmdir` of its target, which leaves a directory holding anything.
/// So a pool is defined over `dir` for the moment and undefined again. A
/// directory some pool already has is left alone.
pub fn remove_dir_if_empty(conn: &Connection, dir: &Path) {
    if lookup_by_dir(conn, dir).is_some() {
        return;
    }
    let name = pool_name("rmdir", dir);
    let Ok(pool) = conn.raw().define_storage_pool_xml(&pool_xml(&name, dir), 0) else {
        return;
    };
    if let Err(err) = pool.delete(0) {
        tracing::debug!("kept directory {}: {}", dir.display(), err.message());
    }
    let _ = pool.undefine();
}

/// Writes `bytes` into the volume through an upload stream.
pub fn upload(conn: &Connection, volume: &StorageVol, bytes: &[u8]) -> Result<(), PoolError> {
    let mut rest = bytes;
    let read = |chunk: &mut [u8]| -> Result<usize, LibvirtError> {
        let n = chunk.len().min(rest.len());
        chunk[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        Ok(n)
    };
    volume_stream::upload(conn, volume, bytes.len() as u64, read, &|_| {}).map_err(PoolError::from)
}

/// The first `length` bytes of the volume, through a download stream.
pub fn download(conn: &Connection, volume: &StorageVol, length: u64) -> Result<Vec<u8>, PoolError> {
    volume_stream::download(conn, volume, 0, length).map_err(PoolError::from)
}

/// The pool whose target is `dir`, if libvirt has one (active or not),
/// as it is (no refresh).
pub fn find_dir_pool(conn: &Connection, dir: &Path) -> Option<StoragePool> {
    lookup_by_dir(conn, dir)
}

/// Whether `pool` carries a mark `mark` accepts.
pub fn carries_mark(conn: &Connection, pool: &StoragePool, mark: &PoolMark) -> bool {
    read_mark(conn, pool).is_some_and(|found| mark.accepts(&found))
}

/// A raw volume of exactly `size` bytes named `name` in `pool`, nothing
/// allocated until it is written.
pub fn create_raw_volume(
    conn: &Connection,
    pool: &StoragePool,
    name: &str,
    size: u64,
) -> Result<StorageVol, LibvirtError> {
    let xml = VolumeXml {
        name,
        capacity: size,
        allocation: Some(0),
        format: "raw",
        mode: "0644",
        backing: None,
    }
    .render();
    StorageVol::create_xml(pool, &xml, 0).map_err(|e| conn.error("create a volume", e))
}

/// The name of the volume at `path` in its directory's pool: the file's
/// name (a cached image's too).
pub fn volume_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// A volume's definition, for `virStorageVolCreateXML`.
pub(super) struct VolumeXml<'a> {
    pub name: &'a str,
    pub capacity: u64,
    /// Bytes to allocate up front; `None` leaves it to libvirt (all of it).
    pub allocation: Option<u64>,
    pub format: &'a str,
    pub mode: &'a str,
    /// The backing file's path and format, for an overlay.
    pub backing: Option<(&'a str, &'a str)>,
}

impl VolumeXml<'_> {
    pub fn render(&self) -> String {
        let text = crate::escape::xml_text;
        let allocation = self
            .allocation
            .map(|bytes| format!("<allocation unit='bytes'>{bytes}</allocation>"))
            .unwrap_or_default();
        let backing = self
            .backing
            .map(|(path, format)| {
                format!(
                    "<backingStore><path>{}</path><format type='{format}'/></backingStore>",
                    text(path)
                )
            })
            .unwrap_or_default();
        format!(
            "<volume><name>{}</name><capacity unit='bytes'>{}</capacity>{allocation}\
             <target><format type='{}'/><permissions><mode>{}</mode></permissions>\
             </target>{backing}</volume>",
            text(self.name),
            self.capacity,
            self.format,
            self.mode
        )
    }
}

/// The pool named `name`, or the one whose target is `dir`; a pool of
/// another name on `dir` is refused.
fn find_pool(conn: &Connection, name: &str, dir: &Path) -> Result<Option<StoragePool>, PoolError> {
    if let Ok(pool) = conn.raw().lookup_storage_pool_by_name(name) {
        return Ok(Some(pool));
    }
    match lookup_by_dir(conn, dir) {
        Some(pool) => Err(PoolError::DirectoryTaken {
            pool: name.to_string(),
            found: name_of(&pool),
            dir: dir.to_path_buf(),
        }),
        None => Ok(None),
    }
}

fn lookup_by_dir(conn: &Connection, dir: &Path) -> Option<StoragePool> {
    conn.raw()
        .lookup_storage_pool_by_target_path(&dir.display().to_string())
        .ok()
}

/// Takes a found pool once it proves to be `mark`'s: started (a pool
/// stopped by a host reboot without autostart), refreshed, marked.
fn adopt(
    conn: &Connection,
    pool: StoragePool,
    name: &str,
    dir: &Path,
    mark: &PoolMark,
) -> Result<StoragePool, PoolError> {
    let target = target_of(&pool);
    if target.as_deref() != Some(dir) {
        return Err(PoolError::OtherDirectory {
            pool: name.to_string(),
            dir: dir.to_path_buf(),
            target: target.unwrap_or_default(),
        });
    }
    activate(conn, &pool)?;
    check_mark(conn, &pool, dir, mark)?;
    Ok(pool)
}

/// Refuses `pool` (of `dir`) unless it carries `mark`.
pub fn check_mark(
    conn: &Connection,
    pool: &StoragePool,
    dir: &Path,
    mark: &PoolMark,
) -> Result<(), PoolError> {
    let name = &name_of(pool);
    // No refresh: libvirt knows the mark it made (and a pool's start reads
    // its directory), and a refresh fails while a volume is being made.
    match read_mark(conn, pool) {
        Some(found) if mark.accepts(&found) => Ok(()),
        Some(found) => Err(PoolError::OtherLab {
            pool: name.to_string(),
            dir: dir.to_path_buf(),
            owner: found.owner(),
            wanted: mark.owner(),
        }),
        None => Err(PoolError::Unmarked {
            pool: name.to_string(),
            dir: dir.to_path_buf(),
        }),
    }
}

/// Starts a new pool: at once when its directory exists (so an existing
/// directory, such as the image cache, keeps its mode and owner), else
/// after building it (libvirt makes the directory, 0755).
fn start(conn: &Connection, pool: &StoragePool, name: &str) -> Result<(), PoolError> {
    if pool.create(0).is_ok() {
        return Ok(());
    }
    pool.build(0)
        .map_err(PoolError::call(conn, format!("build storage pool {name}")))?;
    pool.create(0)
        .map_err(PoolError::call(conn, format!("start storage pool {name}")))
}

fn write_mark(
    conn: &Connection,
    pool: &StoragePool,
    name: &str,
    mark: &PoolMark,
) -> Result<(), PoolError> {
    let json = mark.to_json();
    let xml = format!(
        "<volume><name>{MARK_VOLUME}</name><capacity unit='bytes'>{}</capacity>\
         <target><format type='raw'/><permissions><mode>0644</mode></permissions></target>\
         </volume>",
        json.len()
    );
    let volume = StorageVol::create_xml(pool, &xml, 0)
        .map_err(PoolError::call(conn, format!("create the mark of {name}")))?;
    upload(conn, &volume, json.as_bytes())
}

fn pool_xml(name: &str, dir: &Path) -> String {
    format!(
        "<pool type='dir'><name>{}</name><target><path>{}</path>\
         <permissions><mode>0755</mode></permissions></target></pool>",
        crate::escape::xml_text(name),
        crate::escape::xml_text(&dir.display().to_string())
    )
}

fn target_of(pool: &StoragePool) -> Option<PathBuf> {
    let xml = pool.xml_desc(0).ok()?;
    let doc = roxmltree::Document::parse(&xml).ok()?;
    let target = doc.descendants().find(|n| n.has_tag_name("target"))?;
    let path = target.children().find(|n| n.has_tag_name("path"))?;
    path.text().map(PathBuf::from)
}

fn name_of(pool: &StoragePool) -> String {
    pool.name().unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_keep_a_readable_label_and_tell_directories_apart() {
        let a = pool_name("lab-web", Path::new("/var/lib/libvirt/lvlab/lab/web"));
        let b = pool_name("lab-web", Path::new("/srv/lvlab/lab/web"));
        assert!(
            a.starts_with("lvlab-lab-web-") && a.len() == "lvlab-lab-web-".len() + 8,
            "{a}"
        );
        assert_ne!(a, b, "same label, other directory");
        assert_eq!(
            a,
            pool_name("lab-web", Path::new("/var/lib/libvirt/lvlab/lab/web"))
        );
        let long = pool_name(&"x".repeat(100), Path::new("/d"));
        assert_eq!(long.len(), "lvlab-".len() + MAX_LABEL + 1 + 8, "{long}");
        assert!(!pool_name("a/b", Path::new("/d")).contains('/'));
    }

    #[test]
    fn a_mark_accepts_the_same_machine_of_the_same_lab_only() {
        let dir = Path::new("/nonexistent/vms/lab/web");
        let by_dir = LabIdentity::of(None, dir);
        let ours = PoolMark::machine("lab", "web", &by_dir, dir);
        let json = ours.to_json();
        let read: PoolMark = serde_json::from_str(&json).unwrap();
        assert!(ours.accepts(&read), "{json}");
        assert!(json.contains("\"holds\":\"machine\""), "{json}");
        let other_dir = Path::new("/nonexistent/other/lab/web");
        let elsewhere =
            PoolMark::machine("lab", "web", &LabIdentity::of(None, other_dir), other_dir);
        assert!(!ours.accepts(&elsewhere));
        assert!(!ours.accepts(&PoolMark::machine("lab", "db", &by_dir, dir)));
        assert!(!ours.accepts(&PoolMark::Images));
        assert!(PoolMark::Images.accepts(&PoolMark::Images));
        // With a lab_id, the lab is the id wherever the VM directory is.
        let ci = LabIdentity::of(Some("ci"), dir);
        let on_runner = PoolMark::machine("lab", "web", &ci, dir);
        let elsewhere = PoolMark::machine(
            "lab",
            "web",
            &LabIdentity::of(Some("ci"), other_dir),
            other_dir,
        );
        assert!(on_runner.accepts(&elsewhere));
        assert!(!on_runner.accepts(&ours));
        assert_eq!(
            serde_json::to_string(&PoolMark::Images).unwrap(),
            r#"{"holds":"images"}"#
        );
    }
}
