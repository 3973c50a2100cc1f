//! A host's images pool: where the cached images lvlab boots machines
//! from live on a host whose files lvlab cannot reach (the pool
//! `<pool_basedir>/images`, labelled `images`, shared by every lab on the
//! host). Images are downloaded and verified once on the lvlab host, then
//! uploaded here once per host through a libvirt stream, and checked on
//! arrival: no libvirt call computes a digest remotely, so the check is
//! the volume's physical size and its first and last MiB read back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use virt::storage_pool::StoragePool;

use super::pools::{self, PoolError, PoolMark, IMAGES_LABEL};
use super::volume_stream;
use crate::desired::MachineSpec;
use crate::libvirt::{Connection, LibvirtError};

/// How much of each end of an uploaded image is read back and compared.
const CHECKED_END: u64 = 1 << 20;

/// `virStorageVolGetInfoFlags`: the physical size, in `allocation`.
const VOL_GET_PHYSICAL: u32 = 1;

/// The images pool's directory on the host `machine` runs on:
/// `<pool_basedir>/images` on a remote host; on this machine the image
/// cache itself, so that nothing is uploaded here.
pub fn images_pool_dir(machine: &MachineSpec) -> PathBuf {
    if super::is_remote_uri(&machine.libvirt_uri) {
        machine.pool_basedir.join(IMAGES_LABEL)
    } else {
        let cache = machine.image_path.parent().unwrap_or(Path::new("/"));
        cache.to_path_buf()
    }
}

/// Where the cached `image` (a file in `machine`'s image cache) lives on
/// `machine`'s host once uploaded (on this machine: the file itself): the
/// backing file of the overlays made from it there.
pub fn image_volume_path(machine: &MachineSpec, image: &Path) -> PathBuf {
    images_pool_dir(machine).join(pools::volume_name(image))
}

/// lvlab's images pool at `dir`, when there is one and it is active.
fn find(conn: &Connection, dir: &Path) -> Option<StoragePool> {
    pools::find_dir_pool(conn, dir).filter(|pool| {
        pool.is_active().unwrap_or(false) && pools::carries_mark(conn, pool, &PoolMark::Images)
    })
}

/// The volumes of the images pool at `dir` by name, each with its
/// physical size in bytes; none when there is no pool of lvlab's there
/// (an upload then makes one, or says whose pool is in the way). lvlab's
/// mark is not an image.
pub fn list(conn: &Connection, dir: &Path) -> Result<BTreeMap<String, u64>, LibvirtError> {
    let Some(pool) = find(conn, dir) else {
        return Ok(BTreeMap::new());
    };
    let volumes = pool
        .list_all_volumes(0)
        .map_err(|e| conn.error("list the images pool's volumes", e))?;
    let mut sizes = BTreeMap::new();
    for volume in volumes {
        let name = volume.name().map_err(|e| conn.error("name a volume", e))?;
        if name == pools::MARK_VOLUME {
            continue;
        }
        let info = volume
            .info_flags(VOL_GET_PHYSICAL)
            .map_err(|e| conn.error("read a volume's size", e))?;
        sizes.insert(name, info.allocation);
    }
    Ok(sizes)
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read {}: {source}", .path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    /// What arrived is not the file sent.
    #[error(
        "the upload of {} to {uri} did not arrive intact: {what}; the volume was \
         deleted\n  hint: run the apply again to upload it again",
        .path.display()
    )]
    Mismatch {
        path: PathBuf,
        uri: String,
        what: String,
    },
}

/// Uploads the cached `image` into the images pool at `dir` (made when
/// missing), replacing a volume of its name, telling `progress` of each
/// chunk sent; then checks what arrived. A failed or mismatching upload
/// leaves no volume behind.
pub fn upload(
    conn: &Connection,
    dir: &Path,
    image: &Path,
    progress: &dyn Fn(u64),
) -> Result<(), UploadError> {
    let local = |source| UploadError::Local {
        path: image.to_path_buf(),
        source,
    };
    let mut file = File::open(image).map_err(local)?;
    let size = file.metadata().map_err(local)?.len();
    // Two images' uploads to one host would both define a missing pool.
    static ENSURING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let pool = {
        let _one = ENSURING.lock().unwrap_or_else(|e| e.into_inner());
        pools::ensure_dir_pool(conn, dir, IMAGES_LABEL, &PoolMark::Images)?
    };
    let name = pools::volume_name(image);
    if let Ok(old) = pool.lookup_storage_vol_by_name(&name) {
        old.delete(0)
            .map_err(|e| conn.error("delete an incomplete image volume", e))?;
    }
    // Raw, of the file's exact size: the bytes sent are the whole file (libvirt
    // refreshes the pool once an upload ends, and then sees the qcow2 inside).
    let volume = pools::create_raw_volume(conn, &pool, &name, size)?;
    let read = |chunk: &mut [u8]| file.read(chunk).map_err(local);
    let sent = volume_stream::upload(conn, &volume, size, read, progress)
        .and_then(|()| check_arrival(conn, &pool, &name, &mut file, size, image));
    if let Err(err) = sent {
        // Whatever is there is not the image; the next plan sees it missing.
        let _ = volume.delete(0);
        return Err(err);
    }
    Ok(())
}

/// The volume's physical size is the file's, and its first and last MiB
/// are the file's.
fn check_arrival(
    conn: &Connection,
    pool: &StoragePool,
    name: &str,
    file: &mut File,
    size: u64,
    image: &Path,
) -> Result<(), UploadError> {
    // No pool refresh: libvirt refuses one while another volume is being
    // made, and reading a volume's info reads its file again anyway.
    let volume = pool
        .lookup_storage_vol_by_name(name)
        .map_err(|e| conn.error("find the uploaded volume", e))?;
    let mismatch = |what: String| UploadError::Mismatch {
        path: image.to_path_buf(),
        uri: conn.uri().to_string(),
        what,
    };
    let physical = volume
        .info_flags(VOL_GET_PHYSICAL)
        .map_err(|e| conn.error("read a volume's size", e))?
        .allocation;
    if physical != size {
        return Err(mismatch(format!("{physical} of {size} bytes")));
    }
    let last = size.saturating_sub(CHECKED_END);
    for (offset, which) in [(0, "first"), (last, "last")] {
        let length = CHECKED_END.min(size - offset);
        let remote = volume_stream::download(conn, &volume, offset, length)?;
        let local = read_at(file, offset, length).map_err(|source| UploadError::Local {
            path: image.to_path_buf(),
            source,
        })?;
        if remote != local {
            return Err(mismatch(format!("its {which} MiB differs from the file's")));
        }
    }
    Ok(())
}

fn read_at(file: &mut File, offset: u64, length: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(length).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Deletes the image volume `name` from lvlab's images pool at `dir`
/// (none there: nothing to delete); never from another pool, never the
/// mark.
pub fn remove(conn: &Connection, dir: &Path, name: &str) -> Result<(), LibvirtError> {
    let Some(pool) = find(conn, dir).filter(|_| name != pools::MARK_VOLUME) else {
        return Ok(());
    };
    let volume = pool
        .lookup_storage_vol_by_name(name)
        .map_err(|e| conn.error("find an image volume", e))?;
    volume
        .delete(0)
        .map_err(|e| conn.error("delete an image volume", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(uri: &str, pool_basedir: &str) -> MachineSpec {
        let yaml = format!(
            "environment:\n  - name: lab\n    libvirt_uri: {uri}\n    config_defaults:\n      \
             os: debian12\n      cloud_image_basedir: /cache\n      disk_image_basedir: /vms\n      \
             {pool_basedir}\n      cloud_init: {{pubkey: ssh-ed25519 \
             AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab}}\n    \
             machines:\n      - vm_name: web\nimages:\n  debian12:\n    \
             image_url: https://example.org/debian-12.qcow2\n"
        );
        let desired = crate::manifest::load_str(&yaml, Path::new("/srv/lab/Lvlab.yml"))
            .unwrap_or_else(|e| panic!("{}", e.render(false)));
        desired.environments[0].machines[0].clone()
    }

    #[test]
    fn a_remote_hosts_images_pool_is_under_pool_basedir_and_a_local_ones_is_the_cache() {
        let image = Path::new("/cache/cloud-images/debian-12.qcow2");
        let remote = machine("qemu+ssh://root@hv2/system", "");
        assert_eq!(
            image_volume_path(&remote, image),
            Path::new("/var/lib/libvirt/lvlab/images/debian-12.qcow2")
        );
        let elsewhere = machine("qemu+ssh://root@hv2/system", "pool_basedir: /srv/pools");
        assert_eq!(images_pool_dir(&elsewhere), Path::new("/srv/pools/images"));
        let local = machine("qemu:///system", "pool_basedir: /srv/pools");
        assert_eq!(image_volume_path(&local, image), image);
    }
}
