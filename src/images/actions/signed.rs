//! The signature step: check that the checksum file was signed by one of
//! the configured keys, clearsigned or with a detached signature.

use std::path::{Path, PathBuf};

use super::{fetch_required, SMALL_LIMIT};
use crate::desired::{ImageSpec, SignatureSpec, Source};
use crate::images::checksums;
use crate::images::error::ImageError;
use crate::images::fetch::{Fetcher, Small};
use crate::images::record::{self, SignatureRecord};
use crate::images::signature::Keyring;

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
/// `.sign`, `.asc`).
pub fn verify_signature(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    sig: &SignatureSpec,
    checksum_bytes: &[u8],
    dir: &Path,
    refresh: bool,
) -> Result<SignedListing, ImageError> {
    let key = &spec.key;
    let checksum = spec
        .checksum
        .as_ref()
        .expect("a signature is only configured with a checksum");
    let checksum_url = checksum.source.to_string();
    let (keys_bytes, keys_file) = fetch_keys(fetcher, spec, sig, dir, refresh)?;
    let keys_origin = sig.keys.to_string();
    let sig_err = |signature: Option<String>, source| ImageError::Signature {
        key: key.clone(),
        checksum_url: checksum_url.clone(),
        signature,
        keys: keys_origin.clone(),
        source: Box::new(source),
    };
    let keyring = Keyring::parse(&keys_bytes, &keys_origin).map_err(|e| sig_err(None, e))?;
    let text = String::from_utf8_lossy(checksum_bytes);
    if sig.detached.is_none() && checksums::is_clearsigned(&text) {
        let (listing, good) = keyring
            .verify_clearsigned(&text, &checksum_url)
            .map_err(|e| sig_err(None, e))?;
        return Ok(SignedListing {
            listing,
            record: SignatureRecord {
                signature: "clearsigned".into(),
                signature_file: None,
                keys: keys_origin.clone(),
                keys_file,
                key_fingerprint: good.key_fingerprint,
            },
        });
    }
    let candidates: Vec<Source> = match &sig.detached {
        Some(source) => vec![source.clone()],
        None => SIGNATURE_SUFFIXES
            .iter()
            .map(|suffix| with_suffix(&checksum.source, suffix))
            .collect(),
    };
    let mut found = None;
    for candidate in &candidates {
        let fetched = fetcher
            .fetch_small(candidate, SMALL_LIMIT)
            .map_err(|source| ImageError::Fetch {
                key: key.clone(),
                what: "signature",
                source,
            })?;
        if let Small::Found(bytes) = fetched {
            found = Some((candidate, bytes));
            break;
        }
    }
    let Some((sig_source, sig_bytes)) = found else {
        return Err(ImageError::NotSigned {
            key: key.clone(),
            checksum_url,
            tried: candidates.iter().map(ToString::to_string).collect(),
        });
    };
    let good = keyring
        .verify_detached(checksum_bytes, &sig_bytes, &sig_source.to_string())
        .map_err(|e| sig_err(Some(sig_source.to_string()), e))?;
    let sig_name = crate::manifest::companion_file_name(&spec.file_name, &sig_source.to_string());
    let sig_path = dir.join(&sig_name);
    record::write_atomically(&sig_path, &sig_bytes).map_err(|source| ImageError::Io {
        key: key.clone(),
        path: sig_path,
        source,
    })?;
    Ok(SignedListing {
        listing: text.into_owned(),
        record: SignatureRecord {
            signature: sig_source.to_string(),
            signature_file: Some(sig_name),
            keys: keys_origin,
            keys_file,
            key_fingerprint: good.key_fingerprint,
        },
    })
}

/// The signing keys: read from a local file each time; fetched over HTTP
/// once and cached (again with `--refresh`).
fn fetch_keys(
    fetcher: &Fetcher,
    spec: &ImageSpec,
    sig: &SignatureSpec,
    dir: &Path,
    refresh: bool,
) -> Result<(Vec<u8>, Option<String>), ImageError> {
    let cached = dir.join(&sig.keys_file_name);
    let http = matches!(sig.keys, Source::Http(_));
    if http && !refresh {
        if let Ok(bytes) = std::fs::read(&cached) {
            return Ok((bytes, Some(sig.keys_file_name.clone())));
        }
    }
    let bytes = fetch_required(fetcher, spec, "signing keys", &sig.keys)?;
    if !http {
        return Ok((bytes, None));
    }
    record::write_atomically(&cached, &bytes).map_err(|source| ImageError::Io {
        key: spec.key.clone(),
        path: cached.clone(),
        source,
    })?;
    Ok((bytes, Some(sig.keys_file_name.clone())))
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
