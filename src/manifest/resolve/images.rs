//! `images:`: sources, checksum and signature settings, and what each image
//! key implies (OS variant, family, default user).

use std::collections::BTreeMap;

use super::Resolver;
use crate::desired::{
    ChecksumAlgorithm, ChecksumSpec, ImageSpec, NetworkVersion, SignatureSpec, Source,
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
    raw.iter()
        .filter_map(|(key, image)| {
            let spec = resolve_image(r, key, image, &path.key(key))?;
            Some((key.clone(), spec))
        })
        .collect()
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
