//! `images:`: sources, checksum and signature settings, and what each image
//! key implies (OS variant, family, default user).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::Resolver;
use crate::desired::{
    ChecksumAlgorithm, ChecksumSpec, EnvironmentSpec, ImageSpec, NetworkVersion, SignatureSpec,
    Source,
};
use crate::manifest::error::Problem;
use crate::manifest::names;
use crate::manifest::raw::RawImage;
use crate::manifest::source::KeyPath;
use crate::manifest::values;

pub(super) fn resolve_images(
    r: &mut Resolver,
    raw: &BTreeMap<String, RawImage>,
    path: &KeyPath,
) -> BTreeMap<String, ImageSpec> {
    let images = raw
        .iter()
        .filter_map(|(key, image)| {
            let spec = resolve_image(r, key, image, &path.key(key))?;
            Some((key.clone(), spec))
        })
        .collect();
    check_shared_sources(r, &images, path);
    images
}

/// Keys with one `image_url` share one cache file, verified once: they must
/// agree on how.
fn check_shared_sources(r: &mut Resolver, images: &BTreeMap<String, ImageSpec>, path: &KeyPath) {
    let mut first_by_source: BTreeMap<String, &ImageSpec> = BTreeMap::new();
    for image in images.values() {
        let Some(first) = first_by_source.get(&image.source.to_string()) else {
            first_by_source.insert(image.source.to_string(), image);
            continue;
        };
        if first.checksum != image.checksum || first.signature != image.signature {
            r.report(
                Problem::value(
                    path.key(&image.key).key("image_url"),
                    format!(
                        "images `{}` and `{}` have the same image_url but different \
                         verification; lvlab keeps one file for both and checks it once",
                        first.key, image.key
                    ),
                )
                .hint(
                    "same image_url, different verification: give them one \
                     checksum_url/checksum_type/keys, or different image_urls",
                ),
            );
        }
    }
}

/// Gives each image source its own file in each cache directory: an image
/// keeps its URL's last segment unless another source in a directory it is
/// cached in has the same one; then it is named for its source
/// ([`names::name_for_source`]). Machines' `image_path`s follow. Which
/// directories an image is cached in follows `init` (`images::set`):
/// those of the machines using it, or, for an image no machine uses, every
/// environment's default.
pub(super) fn name_cache_files(
    images: &mut BTreeMap<String, ImageSpec>,
    environments: &mut [EnvironmentSpec],
) {
    for key in shared_names(images, &cache_dirs(images, environments)) {
        let Some(image) = images.get_mut(&key) else {
            continue;
        };
        image.file_name = names::name_for_source(&image.published_name, &image.source.to_string());
        if let Some(checksum) = &mut image.checksum {
            checksum.file_name =
                names::companion_file_name(&image.file_name, &checksum.source.to_string());
        }
    }
    for machine in environments.iter_mut().flat_map(|e| e.machines.iter_mut()) {
        if let Some(image) = images.get(&machine.os) {
            let dir = machine.image_path.parent().unwrap_or(Path::new("/"));
            machine.image_path = dir.join(&image.file_name);
        }
    }
}

/// Cache directory -> the image keys cached there.
fn cache_dirs(
    images: &BTreeMap<String, ImageSpec>,
    environments: &[EnvironmentSpec],
) -> BTreeMap<PathBuf, BTreeSet<String>> {
    let mut dirs: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for (key, by_dir) in crate::desired::image_placements(images, environments) {
        for dir in by_dir.into_keys() {
            dirs.entry(dir).or_default().insert(key.to_string());
        }
    }
    dirs
}

/// The keys whose last URL segment another source shares in some directory.
fn shared_names(
    images: &BTreeMap<String, ImageSpec>,
    dirs: &BTreeMap<PathBuf, BTreeSet<String>>,
) -> BTreeSet<String> {
    let mut shared = BTreeSet::new();
    for keys in dirs.values() {
        let mut by_name: BTreeMap<&str, Vec<&ImageSpec>> = BTreeMap::new();
        for image in keys.iter().filter_map(|k| images.get(k)) {
            by_name
                .entry(&image.published_name)
                .or_default()
                .push(image);
        }
        for same_name in by_name.values() {
            let sources: BTreeSet<String> =
                same_name.iter().map(|i| i.source.to_string()).collect();
            if sources.len() > 1 {
                shared.extend(same_name.iter().map(|i| i.key.clone()));
            }
        }
    }
    shared
}

fn resolve_image(r: &mut Resolver, key: &str, raw: &RawImage, path: &KeyPath) -> Option<ImageSpec> {
    let key_ok = r.check(path, values::check_name(key)).is_some();
    let Some(url) = &raw.image_url else {
        r.report(
            Problem::key(path.clone(), format!("image `{key}` has no `image_url`"))
                .hint("add `image_url:` with an https:// URL, a file:// URL or a local path"),
        );
        return None;
    };
    let source = source_at(r, url, &path.key("image_url"))?;
    let file_name = names::cache_file_name(url);
    let checksum = resolve_checksum(r, raw, &file_name, path)?;
    let signature = resolve_signature(r, raw, checksum.is_some(), path)?;
    let network_version = match raw.network_version.map(|n| n.0) {
        None | Some(2) => NetworkVersion::V2,
        Some(1) => NetworkVersion::V1,
        Some(other) => {
            r.report(
                Problem::value(
                    path.key("network_version"),
                    format!("`network_version: {other}` is not valid; use 1 or 2"),
                )
                .hint("2 for current distributions; 1 for Debian 11 and older"),
            );
            return None;
        }
    };
    let os_variant = raw
        .os_variant
        .clone()
        .unwrap_or_else(|| names::os_variant_of_key(key).to_string());
    let family = names::family_of(&os_variant);
    let username = raw
        .username
        .clone()
        .or_else(|| r.settings.default_vm_username.clone())
        .unwrap_or_else(|| names::default_username(&family));
    key_ok.then_some(ImageSpec {
        key: key.to_string(),
        source,
        published_name: file_name.clone(),
        file_name,
        checksum,
        signature,
        network_version,
        os_variant,
        family,
        username,
    })
}

fn source_at(r: &mut Resolver, text: &str, path: &KeyPath) -> Option<Source> {
    let parsed = names::parse_source(text, r.base());
    r.check(path, parsed)
}

/// `Some(None)` when no checksum is configured; `None` after an error.
fn resolve_checksum(
    r: &mut Resolver,
    raw: &RawImage,
    image_file: &str,
    path: &KeyPath,
) -> Option<Option<ChecksumSpec>> {
    let Some(url) = &raw.checksum_url else {
        if raw.checksum_type.is_some() {
            tracing::warn!("{path}: checksum_type has no effect without checksum_url");
        }
        return Some(None);
    };
    let source = source_at(r, url, &path.key("checksum_url"))?;
    let Some(kind) = &raw.checksum_type else {
        r.report(
            Problem::key(
                path.key("checksum_url"),
                "`checksum_url` is set but `checksum_type` is not",
            )
            .label("needs a checksum_type")
            .hint("add `checksum_type: sha256` or `checksum_type: sha512` to this image"),
        );
        return None;
    };
    let algorithm = match kind.to_ascii_lowercase().as_str() {
        "sha256" => ChecksumAlgorithm::Sha256,
        "sha512" => ChecksumAlgorithm::Sha512,
        other => {
            r.report(Problem::value(
                path.key("checksum_type"),
                format!("`checksum_type: {other}` is not supported; use sha256 or sha512"),
            ));
            return None;
        }
    };
    Some(Some(ChecksumSpec {
        source,
        algorithm,
        file_name: names::companion_file_name(image_file, url),
    }))
}

fn resolve_signature(
    r: &mut Resolver,
    raw: &RawImage,
    has_checksum: bool,
    path: &KeyPath,
) -> Option<Option<SignatureSpec>> {
    let Some(keys_url) = &raw.checksum_url_gpg else {
        if raw.checksum_sig_url.is_some() {
            r.report(
                Problem::key(
                    path.key("checksum_sig_url"),
                    "`checksum_sig_url` is set but no key to check it with",
                )
                .hint("add `checksum_url_gpg:` with the signing keys (a URL or a file)"),
            );
            return None;
        }
        return Some(None);
    };
    if !has_checksum {
        r.report(
            Problem::key(
                path.key("checksum_url_gpg"),
                "`checksum_url_gpg` is set but there is no checksum file to verify",
            )
            .hint("add `checksum_url` and `checksum_type`: the keys sign the checksum file"),
        );
        return None;
    }
    let keys = source_at(r, keys_url, &path.key("checksum_url_gpg"))?;
    let detached = match &raw.checksum_sig_url {
        Some(url) => Some(source_at(r, url, &path.key("checksum_sig_url"))?),
        None => None,
    };
    Some(Some(SignatureSpec {
        keys,
        keys_file_name: names::cache_file_name(keys_url),
        detached,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::desired::Desired;
    use crate::manifest::{load_str, name_for_source};

    const LATEST: &str = "https://h.invalid/latest/debian-12-genericcloud-amd64.qcow2";
    const DATED: &str = "https://h.invalid/20240102-1614/debian-12-genericcloud-amd64.qcow2";
    const PLAIN: &str = "debian-12-genericcloud-amd64.qcow2";

    /// Machines `(vm_name, image key, cloud_image_basedir)` and image
    /// entries `(key, image_url)`, each with a checksum file beside it.
    fn manifest(machines: &[(&str, &str, &str)], images: &[(&str, &str)]) -> String {
        let mut text = String::from(
            "environment:\n  - name: lab\n    config_defaults:\n      \
             cloud_image_basedir: /base\n      disk_image_basedir: /vms\n      \
             cloud_init: {pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab}\n    \
             machines:\n",
        );
        for (vm, key, base) in machines {
            text.push_str(&format!(
                "      - {{vm_name: {vm}, os: {key}, cloud_image_basedir: {base}}}\n"
            ));
        }
        text.push_str("images:\n");
        for (key, url) in images {
            let sums = url.rsplit_once('/').unwrap().0;
            text.push_str(&format!(
                "  {key}:\n    image_url: {url}\n    checksum_url: {sums}/SHA512SUMS\n    \
                 checksum_type: sha512\n"
            ));
        }
        text
    }

    fn desired(text: &str) -> Desired {
        load_str(text, Path::new("/srv/lab/Lvlab.yml"))
            .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    fn image_path(desired: &Desired, vm: &str) -> String {
        let machine = desired.machine(vm, None).unwrap();
        machine.image_path.display().to_string()
    }

    #[test]
    fn sources_sharing_a_last_segment_in_one_cache_are_named_for_their_urls() {
        let d = desired(&manifest(
            &[("a", "debian12", "/base"), ("b", "debian12-dated", "/base")],
            &[("debian12", LATEST), ("debian12-dated", DATED)],
        ));
        let latest = name_for_source(PLAIN, LATEST);
        let dated = name_for_source(PLAIN, DATED);
        assert_ne!(latest, dated);
        assert!(latest.starts_with("debian-12-genericcloud-amd64-") && latest.ends_with(".qcow2"));
        assert_eq!(d.images["debian12"].file_name, latest);
        assert_eq!(d.images["debian12-dated"].file_name, dated);
        assert_eq!(image_path(&d, "a"), format!("/base/cloud-images/{latest}"));
        assert_eq!(image_path(&d, "b"), format!("/base/cloud-images/{dated}"));
        // The checksum file still lists the published name; the kept copy of
        // the checksum file follows the cache name.
        assert_eq!(d.images["debian12"].published_name, PLAIN);
        let checksum = d.images["debian12"].checksum.as_ref().unwrap();
        assert_eq!(checksum.file_name, format!("{latest}.SHA512SUMS"));
    }

    #[test]
    fn a_name_one_source_uses_stays_the_plain_last_segment() {
        let other = "https://h.invalid/other/debian-13-genericcloud-amd64.qcow2";
        let d = desired(&manifest(
            &[("a", "debian12", "/base"), ("b", "debian13", "/base")],
            &[("debian12", LATEST), ("debian13", other)],
        ));
        assert_eq!(image_path(&d, "a"), format!("/base/cloud-images/{PLAIN}"));
        assert_eq!(d.images["debian12"].file_name, PLAIN);
        let checksum = d.images["debian12"].checksum.as_ref().unwrap();
        assert_eq!(checksum.file_name, format!("{PLAIN}.SHA512SUMS"));
    }

    #[test]
    fn keys_with_one_url_share_one_plain_file() {
        let d = desired(&manifest(
            &[("a", "debian12", "/base"), ("b", "debian12-salt", "/base")],
            &[("debian12", LATEST), ("debian12-salt", LATEST)],
        ));
        assert_eq!(image_path(&d, "a"), format!("/base/cloud-images/{PLAIN}"));
        assert_eq!(image_path(&d, "b"), image_path(&d, "a"));
    }

    #[test]
    fn caches_in_different_directories_are_named_apart() {
        let d = desired(&manifest(
            &[
                ("a", "debian12", "/base"),
                ("b", "debian12-dated", "/other"),
            ],
            &[("debian12", LATEST), ("debian12-dated", DATED)],
        ));
        assert_eq!(image_path(&d, "a"), format!("/base/cloud-images/{PLAIN}"));
        assert_eq!(image_path(&d, "b"), format!("/other/cloud-images/{PLAIN}"));
    }

    #[test]
    fn an_image_no_machine_uses_counts_in_the_environments_cache() {
        let d = desired(&manifest(
            &[("a", "debian12", "/base")],
            &[("debian12", LATEST), ("debian12-dated", DATED)],
        ));
        assert_eq!(
            image_path(&d, "a"),
            format!("/base/cloud-images/{}", name_for_source(PLAIN, LATEST))
        );
        assert_eq!(
            d.images["debian12-dated"].file_name,
            name_for_source(PLAIN, DATED)
        );
    }

    #[test]
    fn one_url_with_two_verifications_is_an_error_naming_both_keys() {
        let mut text = manifest(
            &[("a", "debian12", "/base"), ("b", "debian12-salt", "/base")],
            &[("debian12", LATEST), ("debian12-salt", LATEST)],
        );
        text = text.replacen("checksum_type: sha512", "checksum_type: sha256", 1);
        let err = load_str(&text, Path::new("/srv/lab/Lvlab.yml")).unwrap_err();
        let shown = err.render(false);
        assert!(shown.contains("`debian12` and `debian12-salt`"), "{shown}");
        assert!(
            shown.contains("same image_url, different verification"),
            "{shown}"
        );
        assert!(
            shown.contains("key: images.debian12-salt.image_url"),
            "{shown}"
        );
        assert!(!shown.contains("key: images.debian12.image_url"), "{shown}");
    }
}
