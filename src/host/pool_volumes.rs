//! [`PoolVolumes`]: the [`Storage`] of `storage: pool` machines, volumes
//! of one libvirt `dir` pool per volume directory ([`super::pools`]),
//! made and removed through libvirt, so the host may be another machine.
//! Disks stay attached by path (the volume's path), never as
//! `type='volume'`: AppArmor's profile for a domain only learns paths.

use std::path::{Path, PathBuf};

use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::pools::{self, volume_name, PoolError, PoolMark, VolumeXml, MARK_VOLUME};
use super::{Host, Storage};
use crate::libvirt::Connection;
use crate::storage::{self, FromImage, StorageError};

/// Disks are readable by all, as local ones are; libvirt re-owns them to
/// its QEMU user at start.
const DISK_MODE: &str = "0644";
/// The seed carries the console password hash.
const SEED_MODE: &str = "0600";

/// One machine's volumes in its pool on `host`; `mark` says whose the pool
/// is (checked before anything in it is made or removed).
pub struct PoolVolumes<'h> {
    host: &'h Host,
    mark: PoolMark,
    /// The host's images pool directory, for volumes made from an image.
    images_dir: Option<PathBuf>,
}

impl<'h> PoolVolumes<'h> {
    pub fn new(host: &'h Host, mark: PoolMark) -> Self {
        Self {
            host,
            mark,
            images_dir: None,
        }
    }

    /// The same, making volumes from images in the images pool at `dir`
    /// (see [`super::images_pool::images_pool_dir`]).
    pub fn with_images(mut self, dir: PathBuf) -> Self {
        self.images_dir = Some(dir);
        self
    }

    /// The pool of `path`'s directory, made or adopted.
    fn pool_of(&self, conn: &Connection, path: &Path) -> Result<StoragePool, PoolError> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        pools::ensure_dir_pool(conn, dir, &self.mark.label(), &self.mark)
    }

    /// A new volume `path` from `xml`, replacing one of that name.
    fn create(
        &self,
        conn: &Connection,
        path: &Path,
        xml: &str,
        from: Option<&StorageVol>,
    ) -> Result<StorageVol, PoolError> {
        let pool = self.pool_of(conn, path)?;
        let name = volume_name(path);
        if let Ok(old) = pool.lookup_storage_vol_by_name(&name) {
            old.delete(0).map_err(PoolError::call(
                conn,
                format!("delete volume {}", path.display()),
            ))?;
        }
        let made = match from {
            Some(source) => StorageVol::create_xml_from(&pool, xml, source, 0),
            None => StorageVol::create_xml(&pool, xml, 0),
        };
        made.map_err(PoolError::call(
            conn,
            format!("create volume {}", path.display()),
        ))
    }
}

impl Storage for PoolVolumes<'_> {
    fn create_from_image(
        &self,
        image: &Path,
        path: &Path,
        how: FromImage,
        size: Option<u64>,
    ) -> Result<(), StorageError> {
        let conn = self.host.connection();
        let images_dir = self.images_dir.as_deref().ok_or_else(|| PoolError::Call {
            uri: self.host.uri().to_string(),
            what: format!("make {} from an image", path.display()),
            message: "no images pool is known for this machine (an lvlab bug)".into(),
        })?;
        let source = image_on_host(&conn, images_dir, image)?;
        let format = storage::image_format(image)?;
        let capacity = size.unwrap_or(0).max(storage::virtual_size(image)?);
        let name = volume_name(path);
        match how {
            FromImage::Overlay => {
                let backing = source.path().map_err(PoolError::call(
                    &conn,
                    format!("read the path of {}", image.display()),
                ))?;
                let xml = disk_xml(&name, capacity, Some((&backing, format)));
                self.create(&conn, path, &xml, None)?;
            }
            FromImage::Copy => {
                let xml = disk_xml(&name, capacity, None);
                let volume = self.create(&conn, path, &xml, Some(&source))?;
                grow(&conn, &volume, path, capacity)?;
            }
        }
        Ok(())
    }

    fn create_blank(&self, path: &Path, size: u64) -> Result<(), StorageError> {
        let conn = self.host.connection();
        let xml = disk_xml(&volume_name(path), size, None);
        self.create(&conn, path, &xml, None)?;
        Ok(())
    }

    fn write_volume(&self, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        let conn = self.host.connection();
        let xml = VolumeXml {
            name: &volume_name(path),
            capacity: bytes.len() as u64,
            allocation: None,
            format: "raw",
            mode: SEED_MODE,
            backing: None,
        }
        .render();
        let volume = self.create(&conn, path, &xml, None)?;
        if let Err(err) = pools::upload(&conn, &volume, bytes) {
            // Half a seed is no seed: the next plan makes it again.
            let _ = volume.delete(0);
            return Err(err.into());
        }
        Ok(())
    }

    fn volume_exists(&self, path: &Path) -> bool {
        let conn = self.host.connection();
        let dir = path.parent().unwrap_or(Path::new("/"));
        pools::pool_of_dir(&conn, dir)
            .is_some_and(|pool| pool.lookup_storage_vol_by_name(&volume_name(path)).is_ok())
    }

    fn volume_names(&self, dir: &Path) -> Vec<String> {
        let conn = self.host.connection();
        let Some(pool) = pools::pool_of_dir(&conn, dir) else {
            return Vec::new();
        };
        let mut names = pool.list_volumes().unwrap_or_default();
        names.retain(|n| n != MARK_VOLUME);
        names
    }

    fn remove_volumes(&self, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, StorageError> {
        let conn = self.host.connection();
        let Some(pool) = pools::pool_of_dir(&conn, dir) else {
            return Ok(Vec::new());
        };
        pools::activate(&conn, &pool)?;
        pools::check_mark(&conn, &pool, dir, &self.mark)?;
        pools::refresh(&conn, &pool)?;
        for name in names {
            if let Ok(volume) = pool.lookup_storage_vol_by_name(name) {
                volume.delete(0).map_err(PoolError::call(
                    &conn,
                    format!("delete volume {}", dir.join(name).display()),
                ))?;
            }
        }
        let left = pools::remove_if_empty(&conn, pool, dir, &self.mark)?;
        if left.is_empty() {
            // `<pool_basedir>/<environment>`, emptied by its last machine.
            if let Some(parent) = dir.parent() {
                pools::remove_dir_if_empty(&conn, parent);
            }
        }
        Ok(left.into_iter().map(|name| dir.join(name)).collect())
    }
}

/// The cached `image` as a volume in the host's images pool at
/// `images_dir`, the one an overlay is backed by and a copy is cloned
/// from. On this machine that pool is the image cache directory itself, so
/// nothing is copied; on a remote host the plan's upload step put it there.
pub fn image_on_host(
    conn: &Connection,
    images_dir: &Path,
    image: &Path,
) -> Result<StorageVol, PoolError> {
    let pool = pools::ensure_dir_pool(conn, images_dir, pools::IMAGES_LABEL, &PoolMark::Images)?;
    pool.lookup_storage_vol_by_name(&volume_name(image))
        .map_err(PoolError::call(
            conn,
            format!("find image volume {}", image.display()),
        ))
}

/// A copy cloned at the image's size grows to `capacity`.
fn grow(
    conn: &Connection,
    volume: &StorageVol,
    path: &Path,
    capacity: u64,
) -> Result<(), PoolError> {
    let now = volume
        .info()
        .map_err(PoolError::call(
            conn,
            format!("read volume {}", path.display()),
        ))?
        .capacity;
    if capacity > now {
        volume.resize(capacity, 0).map_err(PoolError::call(
            conn,
            format!("resize volume {}", path.display()),
        ))?;
    }
    Ok(())
}

/// A qcow2 disk volume, an overlay of `backing` (path, format) when given.
fn disk_xml(name: &str, capacity: u64, backing: Option<(&str, &str)>) -> String {
    VolumeXml {
        name,
        capacity,
        allocation: None,
        format: "qcow2",
        mode: DISK_MODE,
        backing,
    }
    .render()
}
