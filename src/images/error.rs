//! What can go wrong with an image, with the URL, path and hint a user
//! needs to act on it.

use std::io;
use std::path::PathBuf;

use super::checksums::LookupError;
use super::fetch::FetchError;
use super::signature::SignatureError;

fn signature_line(signature: &Option<String>) -> String {
    signature
        .as_ref()
        .map(|url| format!("\n  signature: {url}"))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image `{key}`: cannot fetch the {what}: {source}")]
    Fetch {
        key: String,
        what: &'static str,
        #[source]
        source: FetchError,
    },
    #[error(
        "image `{key}`: cannot download {source}\n  \
         hint: download it by hand to {} and run `lvlab init` again: \
         it is then verified like a download",
        .manual_path.display()
    )]
    Download {
        key: String,
        #[source]
        source: FetchError,
        manual_path: PathBuf,
    },
    #[error(
        "image `{key}`: checksum file is not signed: {checksum_url} is not clearsigned \
         and there is no {}\n  hint: name the signature with `checksum_sig_url`, or remove \
         `checksum_url_gpg` to trust the checksum file unsigned",
        .tried.join(", ")
    )]
    NotSigned {
        key: String,
        checksum_url: String,
        tried: Vec<String>,
    },
    #[error(
        "image `{key}`: {source}\n  checksum file: {checksum_url}{}\n  keys: {keys}",
        signature_line(.signature)
    )]
    Signature {
        key: String,
        checksum_url: String,
        /// The detached signature that was checked, if it came to that.
        signature: Option<String>,
        keys: String,
        #[source]
        source: Box<SignatureError>,
    },
    #[error("image `{key}`: {source}\n  checksum file: {checksum_url}")]
    Listing {
        key: String,
        checksum_url: String,
        #[source]
        source: LookupError,
    },
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    #[error("image `{key}`: {}", crate::storage::describe_io(.path, .source))]
    Io {
        key: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image `{key}`: {source}")]
    Storage {
        key: String,
        #[source]
        source: crate::storage::StorageError,
    },
}

/// A downloaded (or placed) file whose digest is not the published one.
#[derive(Debug, thiserror::Error)]
#[error(
    "image `{key}`: {algorithm} mismatch for {url}\n  expected {expected}\n  got      \
     {actual}\n  the file was kept as {} for inspection; nothing was put in the cache",
    .kept.display()
)]
pub struct Mismatch {
    pub key: String,
    pub url: String,
    pub algorithm: &'static str,
    pub expected: String,
    pub actual: String,
    pub kept: PathBuf,
}
