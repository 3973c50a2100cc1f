//! The seed ISO, built in-process: ISO 9660 with Joliet and Rock Ridge,
//! volume id `cidata` (the label cloud-init's NoCloud looks for on every
//! block device), holding `meta-data`, `user-data` and `network-config`.
//!
//! hadris-iso's writer reads no clock: every date in the image is its fixed
//! default (1980-01-01), so the same seed always gives the same bytes.

use hadris_fs::{Content, Node, Tree};
use hadris_iso::{IsoId, IsoLevel, IsoOptions};
use hadris_storage::{BlockSize, MemDevice};

use super::{CloudInitError, Seed};

/// The volume id NoCloud finds the seed by.
pub const VOLUME_ID: &str = "cidata";

const SECTOR: usize = 2048;

/// The ISO image of `seed`.
pub fn build(seed: &Seed) -> Result<Vec<u8>, CloudInitError> {
    let fail =
        |what: &str, err: &dyn std::fmt::Display| CloudInitError::Iso(format!("{what}: {err}"));
    let mut tree = Tree::new();
    for (name, text) in seed.documents() {
        tree.insert(name, Node::file(Content::bytes(text.as_bytes().to_vec())))
            .map_err(|e| fail(name, &e))?;
    }
    let options = IsoOptions::default()
        .with_id(IsoId::Volume, VOLUME_ID)
        .with_id(IsoId::Application, "LVLAB")
        // Level 3 keeps the names whole (level 1 would cut them to 8.3).
        .with_level(IsoLevel::L3)
        .with_joliet()
        .with_rock_ridge();
    let size = hadris_iso::plan(&tree, &options)
        .map_err(|e| fail("laying out the image", &e))?
        .size();
    let size = usize::try_from(size).map_err(|e| fail("image size", &e))?;
    let block = BlockSize::new(SECTOR as u32)
        .ok_or_else(|| CloudInitError::Iso("invalid block size".into()))?;
    let mut device = MemDevice::new(vec![0u8; size], block);
    hadris_iso::sync::write(&mut device, &tree, &options)
        .map_err(|e| fail("writing the image", &e))?;
    Ok(device.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_id_and_names_are_in_the_image() {
        let seed = Seed {
            meta_data: "instance-id: iid-a\n".into(),
            user_data: "#cloud-config\n".into(),
            network_config: "version: 2\n".into(),
            host_key: None,
        };
        let image = build(&seed).unwrap();
        assert_eq!(image.len() % SECTOR, 0);
        // The primary volume descriptor: sector 16, "CD001", id at byte 40.
        let pvd = &image[16 * SECTOR..17 * SECTOR];
        assert_eq!(&pvd[1..6], b"CD001");
        assert_eq!(&pvd[40..46], b"cidata");
        assert_eq!(image, build(&seed).unwrap());
    }
}
