//! The smoke test's lab: a directory of its own holding a throwaway SSH
//! key and a generated manifest of one small machine (passt with
//! `ssh_port: auto`, `domain_type: auto`, a copy of the cached image as
//! its disk, as a lab's machines have by default), on the libvirt URI
//! asked for. The directory is removed when the
//! lab is dropped; the image stays in its cache.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cloudinit::host_key::HostKey;
use crate::desired::{Desired, ImageSpec, Source};
use crate::images::set::CachedImage;

/// The environment of every smoke lab (each has a machine of its own name).
pub const ENVIRONMENT: &str = "smoke";
/// The user cloud-init must create: not any image's default user.
pub const USER: &str = "smoke";
/// Enough for the catalog's distributions to boot; untouched memory costs
/// the host nothing.
const MEMORY_MIB: u64 = 1024;
/// The private key; the public one is beside it with `.pub`, where
/// `lvlab ssh` looks for it.
const KEY_FILE: &str = "id_ed25519";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot make the smoke test's directory in {}: {source}\n  hint: set TMPDIR to a writable directory", .parent.display())]
    Directory {
        parent: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the smoke test's {what}: {message}")]
    Write { what: &'static str, message: String },
    #[error("the smoke test's generated manifest does not load (a bug in lvlab): {0}")]
    Manifest(String),
}

/// The lab on disk and as lvlab resolves it.
pub struct SmokeLab {
    dir: PathBuf,
    /// The machine's name: `smoke-` and six random hex digits, so that two
    /// smoke tests on one host never meet.
    pub vm_name: String,
    pub desired: Desired,
    /// The throwaway key's public half, as in `authorized_keys`.
    pub public_key: String,
}

impl SmokeLab {
    /// Makes `lvlab-smoke.<hex>/` in `parent` with the key and the
    /// manifest for `image` on `uri`.
    pub fn create(parent: &Path, image: &CachedImage, uri: &str) -> Result<Self, LabError> {
        let tag = random_tag().map_err(|source| LabError::Directory {
            parent: parent.to_path_buf(),
            source,
        })?;
        let dir = make_dir(parent, &tag)?;
        // From here on the directory goes when `lab` is dropped.
        let mut lab = Self {
            dir,
            vm_name: format!("smoke-{}", &tag[..6]),
            desired: crate::desired::Desired {
                manifest_path: PathBuf::new(),
                environments: Vec::new(),
                images: Default::default(),
                settings_files: Vec::new(),
            },
            public_key: String::new(),
        };
        let key = HostKey::generate(&format!("lvlab-{}", lab.vm_name)).map_err(|err| {
            LabError::Write {
                what: "SSH key",
                message: err.to_string(),
            }
        })?;
        lab.write("SSH key", KEY_FILE, key.private(), 0o600)?;
        lab.public_key = key.public();
        lab.write(
            "SSH key",
            &format!("{KEY_FILE}.pub"),
            &format!("{}\n", lab.public_key),
            0o644,
        )?;
        let text = manifest_text(image, uri, &lab.dir, &lab.vm_name);
        let path = lab.dir.join("Lvlab.yml");
        lab.write("manifest", "Lvlab.yml", &text, 0o644)?;
        // No host-wide settings: a `user_data` or `runcmd` of the host's
        // must not change what the test checks. The image is already
        // resolved with them.
        lab.desired = crate::manifest::load_str(&text, &path)
            .map_err(|err| LabError::Manifest(err.render(false)))?;
        Ok(lab)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, what: &'static str, name: &str, text: &str, mode: u32) -> Result<(), LabError> {
        crate::storage::write_file(&self.dir.join(name), text.as_bytes(), mode).map_err(|err| {
            LabError::Write {
                what,
                message: err.to_string(),
            }
        })
    }
}

impl Drop for SmokeLab {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!("cannot remove {}: {err}", self.dir.display());
        }
    }
}

/// Twelve random hex digits.
fn random_tag() -> std::io::Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `parent/lvlab-smoke.<tag>`, new, 0755: QEMU under `qemu:///system`
/// runs as another user and must reach the disks in it.
fn make_dir(parent: &Path, tag: &str) -> Result<PathBuf, LabError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = parent.join(format!("lvlab-smoke.{tag}"));
    let made = std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)));
    made.map(|()| dir).map_err(|source| LabError::Directory {
        parent: parent.to_path_buf(),
        source,
    })
}

/// The manifest of the smoke lab in `dir`: machine `vm_name` on `uri`
/// from `image`, whose cache it shares (so an image `init` fetched is not
/// fetched again). Written through serde, so no path or URL can change
/// the document's structure.
pub fn manifest_text(image: &CachedImage, uri: &str, dir: &Path, vm_name: &str) -> String {
    let spec = &image.spec;
    let manifest = json!({
        "environment": [{
            "name": ENVIRONMENT,
            "libvirt_uri": uri,
            "config_defaults": {
                "os": spec.key,
                "cpu": 1,
                "memory": MEMORY_MIB,
                "domain_type": "auto",
                "cloud_image_basedir": image.cache_dir,
                "disk_image_basedir": dir.join("vms"),
                "interfaces": {"network_type": "passt", "ssh_port": "auto"},
                "cloud_init": {
                    "user": USER,
                    "pubkey": dir.join(format!("{KEY_FILE}.pub")),
                    "password": false,
                },
            },
            "machines": [{"vm_name": vm_name}],
        }],
        "images": {spec.key.as_str(): image_entry(spec)},
    });
    format!(
        "# lvlab smoke: a generated one-machine lab, removed after the test.\n{}",
        serde_yaml::to_string(&manifest).expect("a JSON value is YAML")
    )
}

/// The manifest entry that resolves to `spec` again.
fn image_entry(spec: &ImageSpec) -> serde_json::Value {
    let mut entry = json!({
        "image_url": source_text(&spec.source),
        "network_version": u8::from(spec.network_version),
        "os_variant": spec.os_variant,
        "username": spec.username,
    });
    if let Some(checksum) = &spec.checksum {
        entry["checksum_url"] = source_text(&checksum.source).into();
        entry["checksum_type"] =
            crate::images::checksums::algorithm_name(checksum.algorithm).into();
    }
    if let Some(signature) = &spec.signature {
        entry["checksum_url_gpg"] = source_text(&signature.keys).into();
        if let Some(detached) = &signature.detached {
            entry["checksum_sig_url"] = source_text(detached).into();
        }
    }
    entry
}

/// A URL as it is; a path absolute, as the generated manifest lives
/// elsewhere than the one it came from.
fn source_text(source: &Source) -> String {
    match source {
        Source::Http(url) => url.clone(),
        Source::File(path) => std::path::absolute(path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::catalog;

    fn cached(spec: ImageSpec, cache_dir: &str) -> CachedImage {
        CachedImage {
            spec,
            cache_dir: PathBuf::from(cache_dir),
            machines: Vec::new(),
        }
    }

    /// The generated manifest resolves to the image it was made from, in
    /// the cache it came from.
    fn assert_round_trip(image: &CachedImage) {
        let dir = Path::new("/tmp/lvlab-smoke.x");
        let text = manifest_text(image, "qemu:///session", dir, "smoke-abc123");
        let desired = crate::manifest::load_str(&text, &dir.join("Lvlab.yml"))
            .unwrap_or_else(|err| panic!("{}\n{text}", err.render(false)));
        let resolved = &desired.images[&image.spec.key];
        assert_eq!(resolved.source, image.spec.source, "{text}");
        assert_eq!(resolved.checksum, image.spec.checksum, "{text}");
        assert_eq!(resolved.signature, image.spec.signature, "{text}");
        assert_eq!(resolved.family, image.spec.family);
        assert_eq!(resolved.username, image.spec.username);
        let machine = &desired.environments[0].machines[0];
        assert_eq!(
            machine.image_path,
            image.cache_dir.join(&image.spec.file_name)
        );
        assert_eq!(machine.domain_name, "smoke-abc123_smoke");
        assert_eq!(machine.cloud_init.user, USER);
        assert_eq!(machine.vm_dir, dir.join("vms/smoke/smoke-abc123"));
    }

    #[test]
    fn every_catalog_image_resolves_to_itself_in_its_cache() {
        for entry in catalog::CATALOG {
            assert_round_trip(&cached(entry.to_spec(), "/var/cache/images/cloud-images"));
        }
    }

    #[test]
    fn a_local_image_with_awkward_paths_keeps_its_source() {
        let text = "environment: [{name: e, machines: []}]\nimages:\n  local:\n    \
                    image_url: 'my images/a: b.qcow2'\n    checksum_url: 'my images/SUMS'\n    \
                    checksum_type: sha512\n";
        let desired = crate::manifest::load_str(text, Path::new("/srv/lab/Lvlab.yml")).unwrap();
        let spec = desired.images["local"].clone();
        assert_eq!(
            spec.source,
            Source::File(PathBuf::from("/srv/lab/my images/a: b.qcow2"))
        );
        assert_round_trip(&cached(spec, "/srv/lab cache/cloud-images"));
    }
}
