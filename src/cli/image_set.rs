//! Which images a command works on: the manifest's when there is one here
//! (or one was named), else the built-in catalog ([`crate::images::set`]).

use super::{CliError, GlobalArgs};
use crate::desired::Desired;
use crate::images::catalog;
use crate::images::set::ImageSet;

/// The manifest's model (the catalog's without a manifest) and its images.
pub struct LoadedImages {
    pub desired: Desired,
    pub set: ImageSet,
}

pub fn load(global: &GlobalArgs) -> Result<LoadedImages, CliError> {
    let Some(path) = super::manifest_here(global) else {
        return Ok(LoadedImages {
            desired: catalog::desired(),
            set: ImageSet::catalog(),
        });
    };
    let desired = super::load_manifest(&path, global.config.as_deref(), global.connect.as_deref())?;
    let set = ImageSet::from_desired(&desired);
    Ok(LoadedImages { desired, set })
}
