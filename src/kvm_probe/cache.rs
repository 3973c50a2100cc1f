//! The probe answers lvlab keeps: `kvm-probe.json` in lvlab's state
//! directory (beside the locks), one [`ProbeRecord`] per libvirt URI as
//! libvirt spells it. An answer holds only for the kernel and QEMU it was
//! found with: after an upgrade of either it is a miss, and `auto` trusts
//! libvirt again until the next probe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ProbeRecord, REMOTE_KERNEL};
use crate::libvirt::Connection;

const FILE_NAME: &str = "kvm-probe.json";

/// What a cached answer must match: the host, its kernel and its QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKey {
    /// The canonical URI (`virConnectGetURI`).
    pub uri: String,
    pub kernel: String,
    pub qemu: String,
}

impl ProbeKey {
    /// The key of the host behind `conn`, whose hypervisor version
    /// (`major.minor.micro`) the caller has read; `None` when libvirt
    /// cannot say which URI it is.
    pub fn of(conn: &Connection, hypervisor_version: Option<&str>) -> Option<Self> {
        let uri = conn
            .canonical_uri()
            .inspect_err(|err| tracing::debug!("no KVM probe key: {err}"))
            .ok()?;
        Some(Self {
            kernel: kernel_of(&uri),
            qemu: hypervisor_version.unwrap_or("unknown").to_string(),
            uri,
        })
    }

    fn matches(&self, record: &ProbeRecord) -> bool {
        record.kernel == self.kernel && record.qemu == self.qemu
    }
}

/// The kernel release of a local URI's host, which is this machine.
fn kernel_of(uri: &str) -> String {
    if crate::host::is_remote_uri(uri) {
        return REMOTE_KERNEL.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Where the answers live; `None` when lvlab has no state directory.
pub fn path() -> Option<PathBuf> {
    crate::apply::state_dir()
        .ok()
        .map(|dir| dir.join(FILE_NAME))
}

/// The answer cached for `key`, when its kernel and QEMU still match.
pub fn lookup(file: &Path, key: &ProbeKey) -> Option<ProbeRecord> {
    let record = read_all(file).remove(&key.uri)?;
    if key.matches(&record) {
        Some(record)
    } else {
        tracing::debug!(
            uri = key.uri,
            "KVM probe of kernel {} and QEMU {} is stale: now kernel {} and QEMU {}",
            record.kernel,
            record.qemu,
            key.kernel,
            key.qemu
        );
        None
    }
}

/// The answer for `conn`'s host from lvlab's state directory, if any.
pub fn cached(conn: &Connection, hypervisor_version: Option<&str>) -> Option<ProbeRecord> {
    let key = ProbeKey::of(conn, hypervisor_version)?;
    lookup(&path()?, &key)
}

/// Keeps `record` as the answer for `uri`, beside the other hosts'.
pub fn store(file: &Path, uri: &str, record: &ProbeRecord) -> Result<(), String> {
    if let Some(dir) = file.parent() {
        crate::apply::lock::prepare_state_dir(dir).map_err(|err| err.to_string())?;
    }
    let mut all = read_all(file);
    all.insert(uri.to_string(), record.clone());
    let json = serde_json::to_vec_pretty(&all).expect("probe records serialize");
    crate::storage::write_atomically(file, &json, 0o600)
        .map_err(|err| crate::storage::describe_io(file, &err))
}

/// Every cached answer; nothing for a missing or unreadable file (the
/// next probe writes it anew).
fn read_all(file: &Path) -> BTreeMap<String, ProbeRecord> {
    let Some(text) = crate::storage::read_text(file) else {
        return BTreeMap::new();
    };
    serde_json::from_str(&text)
        .inspect_err(|err| tracing::warn!("ignoring {}: {err}", file.display()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kernel: &str, qemu: &str, runs: bool) -> ProbeRecord {
        ProbeRecord {
            kernel: kernel.into(),
            qemu: qemu.into(),
            probed_at: "2026-11-29T13:00:00Z".into(),
            kvm_runs: runs,
            detail: "seen".into(),
        }
    }

    fn key(uri: &str, kernel: &str, qemu: &str) -> ProbeKey {
        ProbeKey {
            uri: uri.into(),
            kernel: kernel.into(),
            qemu: qemu.into(),
        }
    }

    #[test]
    fn a_changed_kernel_or_qemu_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state").join(FILE_NAME);
        let uri = "qemu:///session";
        store(&file, uri, &record("6.1", "10.0.2", false)).unwrap();
        store(&file, "qemu:///system", &record("6.1", "10.0.2", true)).unwrap();
        let hit = lookup(&file, &key(uri, "6.1", "10.0.2")).unwrap();
        assert!(!hit.kvm_runs);
        assert!(lookup(&file, &key(uri, "6.2", "10.0.2")).is_none());
        assert!(lookup(&file, &key(uri, "6.1", "10.1.0")).is_none());
        assert!(
            lookup(&file, &key("qemu:///system", "6.1", "10.0.2"))
                .unwrap()
                .kvm_runs
        );
        assert!(lookup(&file, &key("test:///default", "6.1", "10.0.2")).is_none());
    }

    #[test]
    fn a_broken_file_is_no_answer_and_is_written_anew() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, "{not json").unwrap();
        assert!(lookup(&file, &key("qemu:///session", "6.1", "10.0.2")).is_none());
        store(&file, "qemu:///session", &record("6.1", "10.0.2", true)).unwrap();
        assert!(lookup(&file, &key("qemu:///session", "6.1", "10.0.2")).is_some());
    }

    #[test]
    fn only_local_uris_have_a_kernel() {
        assert_eq!(kernel_of("qemu+ssh://lab1/system"), REMOTE_KERNEL);
        let local = kernel_of("qemu:///system");
        assert_ne!(local, REMOTE_KERNEL);
        assert_eq!(
            local,
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap()
                .trim()
        );
    }
}
