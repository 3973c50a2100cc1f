//! The built-in catalog: well-known cloud images `lvlab init` can fetch
//! without a manifest. Each entry carries the publisher's checksum file and,
//! where the publisher signs it, the signing keys' URL.
//!
//! The URLs follow each distribution's published layout; `latest`/`current`
//! links are used where one exists, so `init --refresh` picks up rebuilds.

use crate::desired::{
    ChecksumAlgorithm, ChecksumSpec, Desired, ImageSpec, NetworkVersion, SignatureSpec, Source,
};
use crate::manifest::{cache_file_name, companion_file_name};

/// One catalog image.
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    pub key: &'static str,
    pub description: &'static str,
    pub image_url: &'static str,
    pub checksum_url: &'static str,
    pub algorithm: ChecksumAlgorithm,
    /// Keys that sign the checksum file, when the publisher signs it.
    pub keys_url: Option<&'static str>,
    /// A detached signature, when not `<checksum_url>.gpg` and friends.
    pub signature_url: Option<&'static str>,
    pub os_variant: &'static str,
    pub family: &'static str,
    pub username: &'static str,
}

pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        key: "debian13",
        description: "Debian 13 (trixie), generic cloud image",
        image_url: "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-generic-amd64.qcow2",
        checksum_url: "https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS",
        algorithm: ChecksumAlgorithm::Sha512,
        // Debian publishes its cloud images' checksums over HTTPS unsigned.
        keys_url: None,
        signature_url: None,
        os_variant: "debian13",
        family: "debian",
        username: "debian",
    },
    CatalogEntry {
        key: "debian12",
        description: "Debian 12 (bookworm), generic cloud image",
        image_url: "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2",
        checksum_url: "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS",
        algorithm: ChecksumAlgorithm::Sha512,
        keys_url: None,
        signature_url: None,
        os_variant: "debian12",
        family: "debian",
        username: "debian",
    },
    CatalogEntry {
        key: "ubuntu24.04",
        description: "Ubuntu 24.04 LTS (noble), server cloud image",
        image_url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
        checksum_url: "https://cloud-images.ubuntu.com/noble/current/SHA256SUMS",
        algorithm: ChecksumAlgorithm::Sha256,
        // The Ubuntu Cloud Image Builder key (D2EB 4462 6FDD C30B 513D 5BB7 1A5D 6C4C 7DB8 7C81).
        keys_url: Some("https://keyserver.ubuntu.com/pks/lookup?op=get&search=0xd2eb44626fddc30b513d5bb71a5d6c4c7db87c81"),
        signature_url: Some("https://cloud-images.ubuntu.com/noble/current/SHA256SUMS.gpg"),
        os_variant: "ubuntu24.04",
        family: "ubuntu",
        username: "ubuntu",
    },
    CatalogEntry {
        key: "fedora44",
        description: "Fedora 44 Cloud Base (Generic)",
        image_url: "https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2",
        checksum_url: "https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-44-1.7-x86_64-CHECKSUM",
        algorithm: ChecksumAlgorithm::Sha256,
        keys_url: Some("https://fedoraproject.org/fedora.gpg"),
        signature_url: None,
        os_variant: "fedora44",
        family: "fedora",
        username: "fedora",
    },
    CatalogEntry {
        key: "almalinux10",
        description: "AlmaLinux 10, generic cloud image",
        image_url: "https://repo.almalinux.org/almalinux/10/cloud/x86_64/images/AlmaLinux-10-GenericCloud-latest.x86_64.qcow2",
        checksum_url: "https://repo.almalinux.org/almalinux/10/cloud/x86_64/images/CHECKSUM",
        algorithm: ChecksumAlgorithm::Sha256,
        keys_url: Some("https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-10"),
        signature_url: None,
        os_variant: "almalinux10",
        family: "almalinux",
        username: "almalinux",
    },
    CatalogEntry {
        key: "almalinux9",
        description: "AlmaLinux 9, generic cloud image",
        image_url: "https://repo.almalinux.org/almalinux/9/cloud/x86_64/images/AlmaLinux-9-GenericCloud-latest.x86_64.qcow2",
        checksum_url: "https://repo.almalinux.org/almalinux/9/cloud/x86_64/images/CHECKSUM",
        algorithm: ChecksumAlgorithm::Sha256,
        keys_url: Some("https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-9"),
        signature_url: None,
        os_variant: "almalinux9",
        family: "almalinux",
        username: "almalinux",
    },
];

impl CatalogEntry {
    /// The entry as a manifest image would resolve.
    pub fn to_spec(&self) -> ImageSpec {
        let file_name = cache_file_name(self.image_url);
        ImageSpec {
            key: self.key.to_string(),
            source: Source::Http(self.image_url.to_string()),
            checksum: Some(ChecksumSpec {
                source: Source::Http(self.checksum_url.to_string()),
                algorithm: self.algorithm,
                file_name: companion_file_name(&file_name, self.checksum_url),
            }),
            signature: self.keys_url.map(|keys| SignatureSpec {
                keys: Source::Http(keys.to_string()),
                keys_file_name: cache_file_name(keys),
                detached: self.signature_url.map(|s| Source::Http(s.to_string())),
            }),
            published_name: file_name.clone(),
            file_name,
            network_version: NetworkVersion::V2,
            os_variant: self.os_variant.to_string(),
            family: crate::manifest::family_of(self.family),
            username: self.username.to_string(),
        }
    }
}

impl CatalogEntry {
    /// The entry as a manifest's `images:` would hold it (what `createvm`
    /// puts under the settings files' images). No `username`: the family's
    /// default is the same, and `default_vm_username` may replace it.
    pub fn manifest_image(&self) -> serde_yaml::Mapping {
        let algorithm = match self.algorithm {
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Sha512 => "sha512",
        };
        let mut image = serde_yaml::Mapping::new();
        let mut put = |key: &str, value: &str| {
            image.insert(key.into(), value.into());
        };
        put("image_url", self.image_url);
        put("checksum_url", self.checksum_url);
        put("checksum_type", algorithm);
        if let Some(keys) = self.keys_url {
            put("checksum_url_gpg", keys);
        }
        if let Some(signature) = self.signature_url {
            put("checksum_sig_url", signature);
        }
        put("os_variant", self.os_variant);
        image
    }
}

/// The entry called `key`.
pub fn find(key: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.key == key)
}

/// The catalog as a manifest with images and no environments: what
/// `lvlab init` plans from where there is no Lvlab.yml. Its path is empty.
pub fn desired() -> Desired {
    Desired {
        manifest_path: std::path::PathBuf::new(),
        environments: Vec::new(),
        images: CATALOG
            .iter()
            .map(|e| (e.key.to_string(), e.to_spec()))
            .collect(),
        settings_files: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_resolves_like_a_manifest_image() {
        let dir = std::path::Path::new("/");
        for entry in CATALOG {
            let spec = entry.to_spec();
            assert!(!spec.file_name.is_empty() && !spec.file_name.contains('/'));
            let text = format!("{}\n", entry.image_url);
            assert!(crate::manifest::cache_file_name(text.trim()) == spec.file_name);
            assert_eq!(spec.key, entry.key);
            assert_ne!(spec.family.to_string(), "", "{}", entry.key);
            let _ = dir;
        }
        assert!(find("debian13").is_some() && find("nope").is_none());
        let keys: std::collections::BTreeSet<_> = CATALOG.iter().map(|e| e.key).collect();
        assert_eq!(keys.len(), CATALOG.len(), "keys are unique");
    }

    #[test]
    fn every_entry_written_into_a_manifest_resolves_to_its_spec() {
        let images: serde_yaml::Mapping = CATALOG
            .iter()
            .map(|e| (e.key.into(), serde_yaml::Value::Mapping(e.manifest_image())))
            .collect();
        let text = format!(
            "environment:\n  - name: lab\n    machines: []\nimages: {}",
            serde_json::to_string(&images).unwrap()
        );
        let desired =
            crate::manifest::load_str(&text, std::path::Path::new("/x/Lvlab.yml")).unwrap();
        for entry in CATALOG {
            assert_eq!(desired.images[entry.key], entry.to_spec(), "{}", entry.key);
        }
    }
}
