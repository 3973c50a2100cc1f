//! Why a step failed, typed so that a view can tell kinds apart (the JSON
//! stream's `apply_errored` carries [`ActionError::kind`]) while the text
//! stays the sentence people read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cloudinit::CloudInitError;
use crate::images::ImageError;
use crate::libvirt::LibvirtError;
use crate::storage::StorageError;

/// What to do about a host where KVM is offered but does not run guests.
const KVM_HINT: &str = "KVM does not work on this host (often nested virtualization): \
     set `domain_type: qemu` to run the machine under software emulation (TCG)";

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// A libvirt call on `domain` failed, or the domain did not do what
    /// was asked (a guest that did not stop in time).
    #[error("{source}")]
    Libvirt {
        domain: String,
        #[source]
        source: DomainActionError,
    },
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
    /// Uploading the cached image `key` into a host's images pool.
    #[error("{source}")]
    ImageUpload {
        key: String,
        #[source]
        source: crate::host::images_pool::UploadError,
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

/// How an action on one libvirt domain failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainActionError {
    /// A libvirt call failed.
    #[error(transparent)]
    Call(#[from] LibvirtError),
    /// The domain went away while the action ran.
    #[error("domain {name} disappeared")]
    Disappeared { name: String },
    /// The guest did not stop after the shutdown request.
    #[error(
        "{name} did not stop within {}s of the shutdown request; \
         use --force to power it off, or a longer --timeout",
        .timeout.as_secs()
    )]
    DidNotStop { name: String, timeout: Duration },
    /// Starting a KVM guest failed with an error that names KVM.
    #[error("{source}\n  hint: {KVM_HINT}")]
    KvmStartRefused {
        #[source]
        source: LibvirtError,
    },
    /// Starting a guest with shared directories failed on a remote host,
    /// whose libvirt looks for its own virtiofsd.
    /// (The host's URI is the libvirt error's.)
    #[error(
        "{source}\n  hint: the machine shares directories, so that host needs virtiofsd \
         (Debian: apt install virtiofsd there), and the shared directories must exist there"
    )]
    VirtiofsStartFailed {
        #[source]
        source: LibvirtError,
    },
    /// passt found the automatic SSH ports it was given taken on a remote
    /// host, start after start.
    #[error(
        "{source}\n  hint: each automatic SSH port lvlab picked was taken on that host; \
         set a fixed `ssh_port` that is free there"
    )]
    PortsTaken {
        #[source]
        source: LibvirtError,
    },
    /// A KVM guest paused or stopped right after its start; `qemu_log` is
    /// the end of the host's QEMU log for it.
    #[error(
        "{name} is {state} right after its start{}\n  hint: {KVM_HINT}",
        .qemu_log.as_ref().map(|lines| format!(" (QEMU log: {})", lines.join(" | "))).unwrap_or_default()
    )]
    KvmFailed {
        name: String,
        state: &'static str,
        qemu_log: Option<Vec<String>>,
    },
}

impl ActionError {
    /// The kind as one word, for machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::Libvirt { .. } => "libvirt",
            ActionError::Storage { .. } => "storage",
            ActionError::Image { .. } | ActionError::ImageUpload { .. } => "image",
            ActionError::Seed { .. } => "seed",
            ActionError::Provision { .. } => "provision",
            ActionError::Precondition { .. } => "precondition",
            ActionError::Interrupted { .. } => "interrupted",
        }
    }

    /// A failed action on `domain`.
    pub fn libvirt(domain: &str) -> impl FnOnce(DomainActionError) -> Self + '_ {
        move |source| ActionError::Libvirt {
            domain: domain.to_string(),
            source,
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
        let error = ActionError::libvirt("web_lab")(DomainActionError::DidNotStop {
            name: "web_lab".into(),
            timeout: Duration::from_secs(120),
        });
        assert_eq!(
            error.to_string(),
            "web_lab did not stop within 120s of the shutdown request; \
             use --force to power it off, or a longer --timeout"
        );
        assert_eq!(error.kind(), "libvirt");
    }

    #[test]
    fn a_kvm_failure_quotes_the_qemu_log_and_gives_the_hint() {
        let failed = DomainActionError::KvmFailed {
            name: "web_lab".into(),
            state: "shut off",
            qemu_log: Some(vec!["kvm: error".into(), "exiting".into()]),
        };
        assert_eq!(
            failed.to_string(),
            format!(
                "web_lab is shut off right after its start (QEMU log: kvm: error | exiting)\n  \
                 hint: {KVM_HINT}"
            )
        );
        let no_log = DomainActionError::KvmFailed {
            name: "web_lab".into(),
            state: "shut off",
            qemu_log: None,
        };
        assert_eq!(
            no_log.to_string(),
            format!("web_lab is shut off right after its start\n  hint: {KVM_HINT}")
        );
        let refused = DomainActionError::KvmStartRefused {
            source: LibvirtError::Call {
                uri: "qemu:///session".into(),
                what: "start",
                message: "KVM_SET_MSRS failed".into(),
            },
        };
        let error = ActionError::libvirt("web_lab")(refused);
        assert_eq!(
            error.to_string(),
            format!(
                "libvirt at qemu:///session failed to start: KVM_SET_MSRS failed\n  hint: {KVM_HINT}"
            )
        );
        assert_eq!(error.kind(), "libvirt");
    }
}
