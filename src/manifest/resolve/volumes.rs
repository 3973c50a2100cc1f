//! Where a machine's volumes live: `storage` (the machine's, its
//! `config_defaults`', its environment's, else by host) and, for a pool on
//! a remote host, `pool_basedir`. The VM directory stays on the machine
//! lvlab runs on whatever these say.

use std::path::{Path, PathBuf};

use super::{Layered, Resolver};
use crate::desired::StorageKind;
use crate::manifest::error::Problem;
use crate::manifest::names;

/// Where a remote host keeps pool volume directories unless told.
pub const DEFAULT_POOL_BASEDIR: &str = "/var/lib/libvirt/lvlab";

/// The machine's storage kind, its volume directory and its
/// `pool_basedir`.
pub(super) fn resolve_volumes(
    r: &mut Resolver,
    m: &Layered,
    libvirt_uri: &str,
    (environment, vm_name): (&str, &str),
    vm_dir: &Path,
) -> Option<(StorageKind, PathBuf, PathBuf)> {
    let remote = crate::host::is_remote_uri(libvirt_uri);
    let picked = m
        .pick("storage", |x| x.storage.as_ref())
        .or_else(|| m.environment_storage.clone());
    let storage = match picked {
        None if remote => StorageKind::Pool,
        None => StorageKind::Files,
        Some((text, path)) => {
            let kind = r.check(&path, parse_storage_kind(text))?;
            if kind == StorageKind::Files && remote {
                r.report(
                    Problem::value(
                        path,
                        format!("`storage: files` cannot reach {libvirt_uri}, a remote host"),
                    )
                    .label("files are written on the machine lvlab runs on")
                    .hint("use `storage: pool` (the default on a remote host): libvirt makes the volumes there"),
                );
                return None;
            }
            kind
        }
    };
    let pool_basedir = resolve_pool_basedir(r, m)?;
    let volume_dir = match storage {
        StorageKind::Pool if remote => names::vm_dir(&pool_basedir, environment, vm_name),
        _ => vm_dir.to_path_buf(),
    };
    Some((storage, volume_dir, pool_basedir))
}

fn parse_storage_kind(text: &str) -> Result<StorageKind, String> {
    match text {
        "files" => Ok(StorageKind::Files),
        "pool" => Ok(StorageKind::Pool),
        other => Err(format!(
            "`storage: {other}` is not valid; use files (in the VM directory) or pool \
             (libvirt storage pools)"
        )),
    }
}

/// `pool_basedir`: a path on the hypervisor host, so it is taken as
/// written (no `~`, nothing relative to the manifest, which is here).
fn resolve_pool_basedir(r: &mut Resolver, m: &Layered) -> Option<PathBuf> {
    let Some((text, path)) = m.pick("pool_basedir", |x| x.pool_basedir.as_ref()) else {
        return Some(PathBuf::from(DEFAULT_POOL_BASEDIR));
    };
    let dir = PathBuf::from(text);
    if !dir.is_absolute() {
        r.report(
            Problem::value(
                path,
                format!("`pool_basedir: {text}` is not an absolute path"),
            )
            .label("a directory on the hypervisor host")
            .hint(format!(
                "write it in full, e.g. `pool_basedir: {DEFAULT_POOL_BASEDIR}`"
            )),
        );
        return None;
    }
    Some(dir)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::desired::{Desired, StorageKind};
    use crate::manifest::load_str;

    const REMOTE: &str = "qemu+ssh://root@hv2.example/system";

    /// One environment on `uri` with `env_keys` (YAML lines at its level),
    /// `defaults` (flow mapping entries) and machines `web` and `db` with
    /// their own flow mapping entries.
    fn manifest(uri: &str, env_keys: &str, defaults: &str, web: &str, db: &str) -> String {
        format!(
            "environment:\n  - name: lab\n    libvirt_uri: {uri}\n{env_keys}    config_defaults: \
             {{disk_image_basedir: /vms, os: debian12, cloud_init: {{pubkey: ssh-ed25519 \
             AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab}}{defaults}}}\n    \
             machines:\n      - {{vm_name: web{web}}}\n      - {{vm_name: db{db}}}\n\
             images:\n  debian12:\n    image_url: https://h.invalid/debian-12.qcow2\n"
        )
    }

    fn load(text: &str) -> Result<Desired, String> {
        load_str(text, Path::new("/srv/lab/Lvlab.yml")).map_err(|e| e.render(false))
    }

    fn kinds(d: &Desired) -> Vec<(StorageKind, String, String)> {
        d.environments[0]
            .machines
            .iter()
            .map(|m| {
                let disk = m.disks[0].path.display().to_string();
                let seed = crate::domain::seed_path(m).display().to_string();
                (
                    m.storage,
                    m.volume_dir.display().to_string(),
                    format!("{disk} {seed}"),
                )
            })
            .collect()
    }

    #[test]
    fn a_local_host_keeps_files_and_a_remote_one_pools_by_default() {
        let local = load(&manifest("qemu:///system", "", "", "", "")).unwrap();
        let machine = &local.environments[0].machines[0];
        assert_eq!(machine.storage, StorageKind::Files);
        assert_eq!(machine.volume_dir, machine.vm_dir);
        let remote = load(&manifest(REMOTE, "", "", "", "")).unwrap();
        let [web, _] = &kinds(&remote)[..] else {
            panic!()
        };
        assert_eq!(web.0, StorageKind::Pool);
        assert_eq!(web.1, "/var/lib/libvirt/lvlab/lab/web");
        assert_eq!(
            web.2,
            "/var/lib/libvirt/lvlab/lab/web/disk0.qcow2 /var/lib/libvirt/lvlab/lab/web/cidata.iso",
            "disks and seed are in the volume directory"
        );
        let machine = &remote.environments[0].machines[0];
        assert_eq!(
            machine.vm_dir,
            Path::new("/vms/lab/web"),
            "records stay here"
        );
    }

    #[test]
    fn the_machines_storage_wins_over_the_defaults_and_the_environments() {
        let text = manifest(
            "qemu:///system",
            "    storage: pool\n",
            ", storage: files",
            ", storage: pool",
            "",
        );
        let d = load(&text).unwrap();
        let found = kinds(&d);
        assert_eq!(found[0].0, StorageKind::Pool, "the machine's");
        assert_eq!(found[1].0, StorageKind::Files, "the defaults'");
        // A local pool keeps its volumes in the VM directory.
        assert_eq!(found[0].1, "/vms/lab/web");
        let env_only = load(&manifest(
            "qemu:///system",
            "    storage: pool\n",
            "",
            "",
            "",
        ))
        .unwrap();
        assert!(kinds(&env_only).iter().all(|k| k.0 == StorageKind::Pool));
    }

    #[test]
    fn pool_basedir_places_a_remote_machines_volumes() {
        let d = load(&manifest(
            REMOTE,
            "",
            ", pool_basedir: /srv/pools",
            ", pool_basedir: /data",
            "",
        ))
        .unwrap();
        let found = kinds(&d);
        assert_eq!(found[0].1, "/data/lab/web");
        assert_eq!(found[1].1, "/srv/pools/lab/db");
    }

    #[test]
    fn files_on_a_remote_host_and_bad_values_are_errors_at_their_place() {
        let err = load(&manifest(REMOTE, "", "", ", storage: files", "")).unwrap_err();
        assert!(
            err.contains("`storage: files` cannot reach qemu+ssh://root@hv2.example/system"),
            "{err}"
        );
        assert!(err.contains("Lvlab.yml:6:33"), "file:line:col: {err}");
        assert!(err.contains("storage: pool"), "the hint: {err}");
        let err = load(&manifest("qemu:///system", "", ", storage: lvm", "", "")).unwrap_err();
        assert!(err.contains("`storage: lvm` is not valid"), "{err}");
        let err = load(&manifest(REMOTE, "", ", pool_basedir: pools", "", "")).unwrap_err();
        assert!(
            err.contains("`pool_basedir: pools` is not an absolute path"),
            "{err}"
        );
    }
}
