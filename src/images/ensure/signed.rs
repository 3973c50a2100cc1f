//! The signature step: check that the checksum file was signed by one of
//! the configured keys, clearsigned or with a detached signature.

use std::path::{Path, PathBuf};

use super::{fetch_required, keep_copy, EnsureOptions, SMALL_LIMIT};
use crate::desired::{ImageSpec, SignatureSpec, Source};
use crate::images::error::ImageError;
use crate::images::fetch::{Fetcher, Small};
use crate::images::record::SignatureRecord;
use crate::images::signature::{Keyring, SignatureError};
use crate::images::{cache, checksums};

/// Suffixes tried for a detached signature, in order.
pub const SIGNATURE_SUFFIXES: [&str; 4] = [".gpg", ".sig", ".sign", ".asc"];

/// A checksum file whose signature verified.
pub struct SignedListing {
    /// The text the signature covers (for a clearsigned file, only that).
    pub listing: String,
    pub record: SignatureRecord,
}

/// Checks the checksum file's signature: clearsigned, or detached (the
/// configured `checksum_sig_url`, else `<checksum_url>` + `.gpg`, `.sig`,
/// `.sign`, `.asc`). A cached key file that lacks the signer is fetched
/// again once before the signature counts as made by an unknown key: a
/// publisher's key file gains each release's key (Fedora's does).
pub fn verify_signature(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    sig: &SignatureSpec,
    checksum_bytes: &[u8],
    dir: &Path,
    options: &EnsureOptions,
) -> Result<SignedListing, ImageError> {
    let key = &spec.key;
    let checksum = spec
        .checksum
        .as_ref()
        .expect("a signature is only configured with a checksum");
    let checksum_url = checksum.source.to_string();
    let text = String::from_utf8_lossy(checksum_bytes);
    let detached = if sig.detached.is_none() && checksums::is_clearsigned(&text) {
        None
    } else {
        Some(find_detached(
            fetcher,
            spec,
            sig,
            &checksum.source,
            options,
        )?)
    };
    let check = |keys: &Keys| {
        let keyring = Keyring::parse(&keys.bytes, &sig.keys.to_string())?;
        match &detached {
            None => keyring.verify_clearsigned(&text, &checksum_url),
            Some((source, bytes)) => keyring
                .verify_detached(checksum_bytes, bytes, &source.to_string())
                .map(|good| (text.to_string(), good)),
        }
    };
    let mut keys = fetch_keys(fetcher, spec, sig, dir, options, false)?;
    let mut checked = check(&keys);
    let refetched = matches!(checked, Err(SignatureError::UnknownKey { .. })) && !keys.fetched_now;
    if refetched {
        tracing::info!(
            "{key}: the cached {} lacks the signer; fetching it again",
            sig.keys
        );
        keys = fetch_keys(fetcher, spec, sig, dir, options, true)?;
        checked = check(&keys);
    }
    let keys_origin = sig.keys.to_string();
    let (listing, good) = checked.map_err(|source| ImageError::Signature {
        key: key.clone(),
        checksum_url: checksum_url.clone(),
        signature: detached.as_ref().map(|(source, _)| source.to_string()),
        keys: if refetched {
            format!(
                "{keys_origin} (fetched again: the cached copy lacked the signer, \
                 and so does the publisher's)"
            )
        } else {
            keys_origin.clone()
        },
        source: Box::new(source),
    })?;
    let (signature, signature_file) = match detached {
        None => ("clearsigned".to_string(), None),
        Some((source, bytes)) => {
            let layout = crate::manifest::companion_file_name(&spec.file_name, &source.to_string());
            let name = options.shared.file_name(dir, &layout, &source);
            keep_copy(spec, &dir.join(&name), &bytes)?;
            (source.to_string(), Some(name))
        }
    };
    if let (Some(name), true) = (&keys.file, keys.fetched_now) {
        keep_copy(spec, &dir.join(name), &keys.bytes)?;
    }
    Ok(SignedListing {
        listing,
        record: SignatureRecord {
            signature,
            signature_file,
            keys: keys_origin,
            keys_file: keys.file,
            key_fingerprint: good.key_fingerprint,
        },
    })
}

/// The detached signature: the configured one, else the first of the
/// conventional suffixes the publisher has.
fn find_detached(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    sig: &SignatureSpec,
    checksum: &Source,
    options: &EnsureOptions,
) -> Result<(Source, Vec<u8>), ImageError> {
    let candidates: Vec<Source> = match &sig.detached {
        Some(source) => vec![source.clone()],
        None => SIGNATURE_SUFFIXES
            .iter()
            .map(|suffix| with_suffix(checksum, suffix))
            .collect(),
    };
    for candidate in &candidates {
        let fetched = options
            .shared
            .fetch_small(fetcher, candidate, SMALL_LIMIT)
            .map_err(|source| ImageError::Fetch {
                key: spec.key.clone(),
                what: "signature",
                source,
            })?;
        if let Small::Found(bytes) = fetched {
            return Ok((candidate.clone(), bytes));
        }
    }
    Err(ImageError::NotSigned {
        key: spec.key.clone(),
        checksum_url: checksum.to_string(),
        tried: candidates.iter().map(ToString::to_string).collect(),
    })
}

/// Signing keys and where they came from.
struct Keys {
    bytes: Vec<u8>,
    /// The cache's copy, for keys fetched over HTTP.
    file: Option<String>,
    /// Read from the source in this run (not the cache's copy).
    fetched_now: bool,
}

/// The signing keys: a local file is read each time; keys fetched over
/// HTTP are cached, and the cached copy is used (without a request) when a
/// record says it came from the same URL, unless `again`, `--refresh`, or
/// this run fetched them already.
fn fetch_keys(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    sig: &SignatureSpec,
    dir: &Path,
    options: &EnsureOptions,
    again: bool,
) -> Result<Keys, ImageError> {
    let shared = &options.shared;
    if !matches!(sig.keys, Source::Http(_)) {
        return Ok(Keys {
            bytes: fetch_required(fetcher, shared, spec, "signing keys", &sig.keys)?,
            file: None,
            fetched_now: true,
        });
    }
    let name = shared.file_name(dir, &sig.keys_file_name, &sig.keys);
    let cached_is_ours = || cache::recorded_source(dir, &name) == Some(sig.keys.to_string());
    if !(again || options.refresh || shared.fetched(&sig.keys)) && cached_is_ours() {
        if let Ok(bytes) = std::fs::read(dir.join(&name)) {
            return Ok(Keys {
                bytes,
                file: Some(name),
                fetched_now: false,
            });
        }
    }
    Ok(Keys {
        bytes: fetch_required(fetcher, shared, spec, "signing keys", &sig.keys)?,
        file: Some(name),
        fetched_now: true,
    })
}

fn with_suffix(source: &Source, suffix: &str) -> Source {
    match source {
        Source::Http(url) => Source::Http(format!("{url}{suffix}")),
        Source::File(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            Source::File(PathBuf::from(name))
        }
    }
}
