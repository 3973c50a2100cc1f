//! Why a step failed, typed so that a view can tell kinds apart (the JSON
//! stream's `apply_errored` carries [`ActionError::kind`]) while the text
//! stays the sentence people read.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cloudinit::CloudInitError;
use crate::images::ImageError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// A libvirt call on `domain` failed, or the domain did not do what
    /// was asked (a guest that did not stop in time).
    #[error("{message}")]
    Libvirt { domain: String, message: String },
    /// A file lvlab makes or removes (a disk, the recorded definition).
    #[error("{source}")]
    Storage {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    /// Making the image cache hold `key`, verified.
    #[error("{source}")]
    Image {
        key: String,
        #[source]
        source: Arc<ImageError>,
    },
    /// Writing `machine`'s cloud-init seed.
    #[error("{source}")]
    Seed {
        machine: String,
        #[source]
        source: CloudInitError,
    },
    /// The step cannot run as planned: what it needs is not there (a
    /// machine no longer in the manifest, a disk it does not have).
    /// A `provision:` entry failed, or the machine's SSH never answered.
    #[error("{source}")]
    Provision {
        machine: String,
        #[source]
        source: crate::provision::run::ProvisionError,
    },
    #[error("{message}")]
    Precondition { address: String, message: String },
    /// The step was cut short by an interrupt before it finished. Not made
    /// today: an interrupt lets running steps finish (the executor starts
    /// no new ones); a step that learns to stop early reports this.
    #[error("{address}: interrupted before it finished")]
    Interrupted { address: String },
}

impl ActionError {
    /// The kind as one word, for machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::Libvirt { .. } => "libvirt",
            ActionError::Storage { .. } => "storage",
            ActionError::Image { .. } => "image",
            ActionError::Seed { .. } => "seed",
            ActionError::Provision { .. } => "provision",
            ActionError::Precondition { .. } => "precondition",
            ActionError::Interrupted { .. } => "interrupted",
        }
    }

    /// A storage failure on `path`.
    pub fn storage(path: impl Into<PathBuf>) -> impl FnOnce(StorageError) -> Self {
        let path = path.into();
        move |source| ActionError::Storage { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_failures_own_sentence_and_the_kind_a_word() {
        let full = StorageError::NoSpace {
            path: PathBuf::from("/vms/lab/web/disk0.qcow2"),
        };
        let sentence = full.to_string();
        let error = ActionError::storage("/vms/lab/web/disk0.qcow2")(full);
        assert_eq!(error.to_string(), sentence);
        assert_eq!(error.kind(), "storage");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the cause stays"
        );
        let error = ActionError::Libvirt {
            domain: "web_lab".into(),
            message: "web_lab did not stop within 120s".into(),
        };
        assert_eq!(error.to_string(), "web_lab did not stop within 120s");
        assert_eq!(error.kind(), "libvirt");
    }
}
