//! lvlab's libvirt `dir` pools: one per directory on the host, named
//! `lvlab-<label>-<8 hex of sha256(dir)>`, carrying lvlab's mark (a small
//! `.lvlab-pool` volume). A pool under lvlab's name or directory without
//! the mark asked for is never changed: a clear error.
//!
//! A minimal version for the images pool; the pool-volumes work owns this
//! module (per-VM pools, the lab identity in the mark).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::volume_stream;
use crate::libvirt::{Connection, LibvirtError};

/// The volume that marks a pool as lvlab's.
pub const MARK_VOLUME: &str = ".lvlab-pool";

/// What a pool is for, as its mark volume records it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolMark {
    /// `images` for a host's images pool, else the machine's name.
    pub machine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

impl PoolMark {
    /// The mark of a host's images pool, shared by every lab there.
    pub fn images() -> Self {
        Self {
            machine: "images".into(),
            environment: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error(
        "storage pool {name} ({dir}) on {uri} is not lvlab's {what} pool: it has no \
         matching {MARK_VOLUME} mark\n  hint: lvlab changes no pool it did not make; \
         remove the pool (`virsh pool-destroy {name}; virsh pool-undefine {name}`) or \
         set another `pool_basedir`",
        dir = .dir.display()
    )]
    Foreign {
        uri: String,
        name: String,
        dir: PathBuf,
        what: String,
    },
}

/// `lvlab-<label>-<8 hex of sha256(dir)>`, the label cut to stay readable.
pub fn pool_name(label: &str, dir: &Path) -> String {
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let label: String = label.chars().take(40).collect();
    format!("lvlab-{label}-{hex}")
}

/// The pool whose target is `dir`, if libvirt has one (active or not).
pub fn find_dir_pool(conn: &Connection, dir: &Path) -> Option<StoragePool> {
    conn.raw()
        .lookup_storage_pool_by_target_path(&dir.to_string_lossy())
        .ok()
}

/// The `dir` pool at `dir`, made (directory included) and marked when
/// missing, started when stopped, refreshed; refused when it exists
/// without `mark`.
pub fn ensure_dir_pool(
    conn: &Connection,
    dir: &Path,
    label: &str,
    mark: &PoolMark,
) -> Result<StoragePool, PoolError> {
    let name = pool_name(label, dir);
    let existing =
        find_dir_pool(conn, dir).or_else(|| conn.raw().lookup_storage_pool_by_name(&name).ok());
    let Some(pool) = existing else {
        return define_pool(conn, dir, &name, mark);
    };
    if !pool.is_active().unwrap_or(false) {
        pool.create(0)
            .map_err(|e| conn.error("start a storage pool", e))?;
    }
    // Refused while a volume is being made in it; the volumes read next
    // are read again from their files anyway.
    if let Err(err) = pool.refresh(0) {
        tracing::debug!("storage pool {name} not refreshed: {}", err.message());
    }
    if !carries_mark(conn, &pool, mark) {
        return Err(PoolError::Foreign {
            uri: conn.uri().to_string(),
            name: pool.name().unwrap_or(name),
            dir: dir.to_path_buf(),
            what: mark.machine.clone(),
        });
    }
    Ok(pool)
}

fn define_pool(
    conn: &Connection,
    dir: &Path,
    name: &str,
    mark: &PoolMark,
) -> Result<StoragePool, PoolError> {
    let xml = format!(
        "<pool type='dir'><name>{}</name><target><path>{}</path>\
         <permissions><mode>0755</mode></permissions></target></pool>",
        crate::escape::xml_text(name),
        crate::escape::xml_text(&dir.to_string_lossy()),
    );
    let pool = conn
        .raw()
        .define_storage_pool_xml(&xml, 0)
        .map_err(|e| conn.error("define a storage pool", e))?;
    let made = pool
        .build(0)
        .and_then(|_| pool.create(0))
        .and_then(|_| pool.set_autostart(true))
        .map_err(|e| conn.error("build and start a storage pool", e))
        .and_then(|_| write_mark(conn, &pool, mark));
    if let Err(err) = made {
        let _ = pool.destroy();
        let _ = pool.undefine();
        return Err(err.into());
    }
    Ok(pool)
}

fn write_mark(conn: &Connection, pool: &StoragePool, mark: &PoolMark) -> Result<(), LibvirtError> {
    let json = serde_json::to_vec(mark).expect("a mark serializes");
    let volume = create_raw_volume(conn, pool, MARK_VOLUME, json.len() as u64)?;
    let mut rest = json.as_slice();
    let read = |chunk: &mut [u8]| -> Result<usize, LibvirtError> {
        let n = chunk.len().min(rest.len());
        chunk[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        Ok(n)
    };
    volume_stream::upload(conn, &volume, json.len() as u64, read, &|_| {})
}

/// Whether `pool` carries lvlab's `mark`.
pub fn carries_mark(conn: &Connection, pool: &StoragePool, mark: &PoolMark) -> bool {
    read_mark(conn, pool).as_ref() == Some(mark)
}

fn read_mark(conn: &Connection, pool: &StoragePool) -> Option<PoolMark> {
    let volume = pool.lookup_storage_vol_by_name(MARK_VOLUME).ok()?;
    let size = volume.info().ok()?.capacity;
    let bytes = volume_stream::download(conn, &volume, 0, size).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A raw volume of exactly `size` bytes named `name` in `pool`.
pub fn create_raw_volume(
    conn: &Connection,
    pool: &StoragePool,
    name: &str,
    size: u64,
) -> Result<StorageVol, LibvirtError> {
    let xml = format!(
        "<volume><name>{}</name><capacity unit='bytes'>{size}</capacity>\
         <allocation unit='bytes'>0</allocation><target><format type='raw'/>\
         <permissions><mode>0644</mode></permissions></target></volume>",
        crate::escape::xml_text(name)
    );
    StorageVol::create_xml(pool, &xml, 0).map_err(|e| conn.error("create a volume", e))
}
