//! A plan saved with `--out`: what was asked, and fingerprints of the
//! desired and observed state it was made from, and of the host-wide
//! settings files merged with the manifest. Applying it re-plans and
//! refuses when a fingerprint moved.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Selection, Target};
use crate::desired::{Desired, SettingsLayer};
use crate::observe::Observed;

const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedPlan {
    pub lvlab_saved_plan: u32,
    pub manifest: PathBuf,
    pub environment: Option<String>,
    /// The `--connect` URI the plan was made for, if any: applying it talks
    /// to the same libvirt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    pub target: Target,
    pub selection: Selection,
    /// The `--config` file the plan was made with; applying reads it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    pub desired_fingerprint: String,
    /// The settings files' paths and contents; absent without any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_fingerprint: Option<String>,
    pub observed_fingerprint: String,
    /// The plan as `--json` prints it, for people and scripts.
    pub plan: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read the saved plan {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a saved lvlab plan: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{} was made for {made_for}, not --connect {connect}\n  hint: apply it without \
         --connect, or make a new plan with this --connect",
        path.display()
    )]
    OtherConnect {
        path: PathBuf,
        made_for: String,
        connect: String,
    },
    #[error("cannot write the plan: {0}")]
    Write(String),
    #[error("Saved plan is stale: {what} changed since the plan was made\n  hint: run `lvlab plan --out FILE` again and review it")]
    Stale { what: &'static str },
}

fn desired_fingerprint(desired: &Desired) -> String {
    let json = serde_json::to_vec(desired).expect("desired state serializes");
    format!("sha256:{:x}", Sha256::digest(json))
}

/// Covers each settings file's path and text, so an edit to one that
/// changes no resolved value still makes the plan stale.
fn settings_fingerprint(desired: &Desired) -> Option<String> {
    if desired.settings_files.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    for file in &desired.settings_files {
        hasher.update(file.path.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(file.sha256.as_bytes());
        hasher.update([0]);
    }
    Some(format!("sha256:{:x}", hasher.finalize()))
}

impl SavedPlan {
    pub fn read(path: &Path) -> Result<Self, SavedPlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let saved: SavedPlan =
            serde_json::from_str(&text).map_err(|e| SavedPlanError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if saved.lvlab_saved_plan != FORMAT {
            return Err(SavedPlanError::Invalid {
                path: path.to_path_buf(),
                reason: format!(
                    "format {} (this lvlab reads {FORMAT})",
                    saved.lvlab_saved_plan
                ),
            });
        }
        Ok(saved)
    }

    /// A `--connect` given when applying the plan read from `path` must be
    /// the one it was made with.
    pub fn check_connect(&self, path: &Path, connect: Option<&str>) -> Result<(), SavedPlanError> {
        let Some(connect) = connect else {
            return Ok(());
        };
        if self.connect.as_deref() == Some(connect) {
            return Ok(());
        }
        Err(SavedPlanError::OtherConnect {
            path: path.to_path_buf(),
            made_for: self
                .connect
                .as_deref()
                .map_or("the manifest's libvirt_uri".to_string(), |uri| {
                    format!("--connect {uri}")
                }),
            connect: connect.to_string(),
        })
    }

    /// Writes the plan to `path`, through the storage door: a symlink at
    /// `path` is replaced, not written through.
    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let text = serde_json::to_string_pretty(self).expect("a saved plan serializes");
        crate::storage::write_atomically(path, text.as_bytes(), 0o644)
            .map_err(|e| SavedPlanError::Write(crate::storage::describe_io(path, &e)))
    }

    pub fn new(
        desired: &Desired,
        environment: Option<String>,
        connect: Option<String>,
        target: Target,
        selection: Selection,
        observed: &Observed,
        plan: serde_json::Value,
    ) -> Self {
        Self {
            lvlab_saved_plan: FORMAT,
            manifest: desired.manifest_path.clone(),
            environment,
            connect,
            target,
            selection,
            config: desired
                .settings_files
                .iter()
                .find(|f| f.layer == SettingsLayer::Config)
                .map(|f| f.path.clone()),
            desired_fingerprint: desired_fingerprint(desired),
            settings_fingerprint: settings_fingerprint(desired),
            observed_fingerprint: observed.fingerprint(),
            plan,
        }
    }

    /// Fresh when the manifest, its settings files and the world are as
    /// they were.
    pub fn check(&self, desired: &Desired, observed: &Observed) -> Result<(), SavedPlanError> {
        if settings_fingerprint(desired) != self.settings_fingerprint {
            return Err(SavedPlanError::Stale {
                what: "a host-wide settings file (/etc/Lvlab.yml, ~/.Lvlab.yml or --config)",
            });
        }
        if desired_fingerprint(desired) != self.desired_fingerprint {
            return Err(SavedPlanError::Stale {
                what: "the manifest",
            });
        }
        if observed.fingerprint() != self.observed_fingerprint {
            return Err(SavedPlanError::Stale {
                what: "the observed state (domains, disks or seeds)",
            });
        }
        Ok(())
    }
}
