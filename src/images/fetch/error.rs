//! How a fetch fails, in words that name the URL once and the most specific
//! cause (a timeout, a refused connection, a TLS problem).

use std::io;
use std::path::PathBuf;

use crate::escape::escape_controls;

/// A fetch that failed for good.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: HTTP {}{}", status_text(*.status), attempts_text(*.attempts))]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error(
        "{url}: {}{}",
        escape_controls(.message),
        attempts_text(*.attempts)
    )]
    Transport {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("{url}: more than {limit} bytes; that is no checksum, signature or key file")]
    TooLarge { url: String, limit: u64 },
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}", write_text(.path, .source))]
    Write { path: PathBuf, source: io::Error },
    #[error("{url}: the server asks to try again in {seconds} s (HTTP Retry-After), longer than lvlab waits\n  hint: run it again later, or use another mirror")]
    RetryLater { url: String, seconds: u64 },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

impl FetchError {
    pub(super) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            FetchError::Status { attempts, .. } | FetchError::Transport { attempts, .. } => {
                *attempts = n
            }
            _ => {}
        }
        self
    }
}

/// "no space left on <path>" when the filesystem is full.
fn write_text(path: &std::path::Path, source: &io::Error) -> String {
    if crate::storage::is_no_space(source) {
        crate::storage::describe_io(path, source)
    } else {
        format!("cannot write {}: {source}", path.display())
    }
}

fn status_text(status: u16) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

fn attempts_text(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

pub(super) fn transport(url: &str, err: &reqwest::Error) -> FetchError {
    FetchError::Transport {
        url: url.to_string(),
        message: describe(err),
        attempts: 1,
    }
}

pub(super) fn transport_io(url: &str, err: &io::Error) -> FetchError {
    let message = match err.get_ref() {
        Some(inner) => describe(inner),
        None => err.to_string(),
    };
    FetchError::Transport {
        url: url.to_string(),
        message,
        attempts: 1,
    }
}

/// An error's most specific causes, without reqwest's `for url (...)`
/// wrapper (the URL is printed once, by [`FetchError`]).
pub(super) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = Vec::new();
    let mut timed_out = false;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<reqwest::Error>() {
            timed_out |= r.is_timeout();
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            timed_out |= io.kind() == io::ErrorKind::TimedOut;
        }
        let text = e.to_string();
        if !text.contains(" for url (") && !chain.contains(&text) {
            chain.push(text);
        }
        current = e.source();
    }
    if timed_out {
        return "timed out waiting for the server".into();
    }
    if chain.is_empty() {
        return err.to_string();
    }
    chain.join(": ")
}
