//! Getting bytes from a [`Source`]: HTTP(S) with connect and read timeouts,
//! retries with exponential backoff, and resume of a `.partial` file with a
//! Range request; `file://` and plain paths by copying. Bytes go to the
//! `.partial` file through a `Sink` (in `sink`), hashed right behind the
//! writes (see [`super::hash::TrailingHasher`]); `error` words failures.
//!
//! Blocking I/O on the calling thread: callers run jobs on worker threads
//! (`init --jobs`, later the apply executor's pool). Never call these from
//! inside an async runtime.
//!
//! This module knows nothing of images, records or checksums: it fetches
//! to the path it is given and reports through a [`Reporter`].

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};

mod error;
mod sink;

pub use error::FetchError;
use error::{describe, transport, transport_io};
use sink::{finish_existing, open_partial, PumpError, Sink};

use super::hash::HexDigest;
use super::progress::Reporter;
use crate::desired::{ChecksumAlgorithm, Source};

/// The mode of a downloaded file: readable by all (libvirt's QEMU user
/// reads images), writable by lvlab's user.
const DOWNLOAD_MODE: u32 = 0o644;

/// Timeouts and retries. Tests shorten them through the environment.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// Further attempts after the first fails for a reason worth retrying.
    pub retries: u32,
    /// Delay before the first retry; doubled for each next one (at most 30 s).
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            retries: 4,
            backoff: Duration::from_secs(1),
        }
    }
}

impl FetchOptions {
    /// The defaults, overridden by `LVLAB_HTTP_CONNECT_TIMEOUT` and
    /// `LVLAB_HTTP_TIMEOUT` (seconds, fractions allowed),
    /// `LVLAB_HTTP_RETRIES` and `LVLAB_HTTP_BACKOFF_MS`.
    pub fn from_env() -> Self {
        let mut options = Self::default();
        if let Some(secs) = env_number::<f64>("LVLAB_HTTP_CONNECT_TIMEOUT") {
            options.connect_timeout = Duration::from_secs_f64(secs.max(0.001));
        }
        if let Some(secs) = env_number::<f64>("LVLAB_HTTP_TIMEOUT") {
            options.read_timeout = Duration::from_secs_f64(secs.max(0.001));
        }
        if let Some(n) = env_number::<u32>("LVLAB_HTTP_RETRIES") {
            options.retries = n;
        }
        if let Some(ms) = env_number::<u64>("LVLAB_HTTP_BACKOFF_MS") {
            options.backoff = Duration::from_millis(ms);
        }
        options
    }
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let text = std::env::var(name).ok()?;
    match text.trim().parse::<T>() {
        Ok(value) => Some(value),
        Err(_) => {
            tracing::warn!("ignoring {name}={text:?}: not a number");
            None
        }
    }
}

/// A complete download in the `.partial` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub size: u64,
    /// The digest, when one was asked for.
    pub digest: Option<HexDigest>,
    /// Bytes that were already in the `.partial` file and not fetched again.
    pub resumed_from: u64,
}

/// A small file fetched whole into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Small {
    Found(Vec<u8>),
    /// HTTP 404 or 410, or no such local file.
    NotFound,
}

/// Why one attempt ended.
enum Failure {
    /// Worth another attempt after a delay (and resumes the `.partial`).
    Retry(FetchError),
    /// The same, and the server said how long to wait (`Retry-After`).
    RetryAfter(FetchError, Duration),
    /// The `.partial` cannot be resumed: start over at once.
    Restart(String),
    Fatal(FetchError),
}

/// An HTTP client with lvlab's timeouts and retry policy. Cheap to share
/// between threads.
#[derive(Clone)]
pub struct Fetcher {
    client: Client,
    options: FetchOptions,
}

impl Fetcher {
    pub fn new(options: FetchOptions) -> Result<Self, FetchError> {
        let client = Client::builder()
            .connect_timeout(options.connect_timeout)
            // reqwest's blocking timeout bounds each wait (for the response
            // head, for each read of the body): a read timeout, not a limit
            // on the whole download.
            .timeout(options.read_timeout)
            .user_agent(concat!("lvlab/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| FetchError::Client(describe(&err)))?;
        Ok(Self { client, options })
    }

    /// Fetches a small file (checksums, keys, signatures) into memory,
    /// refusing more than `limit` bytes.
    pub fn fetch_small(&self, source: &Source, limit: u64) -> Result<Small, FetchError> {
        match source {
            Source::File(path) => read_small_file(path, limit),
            Source::Http(url) => {
                self.with_retries(url, None, None, |_| self.small_once(url, limit))
            }
        }
    }

    /// Fetches `source` into `partial`, resuming what is there when the
    /// server allows, and hashes it with `algorithm` on the way. The caller
    /// decides what to do with the complete `.partial`.
    pub fn download(
        &self,
        source: &Source,
        partial: &Path,
        algorithm: Option<ChecksumAlgorithm>,
        image: &str,
        reporter: &dyn Reporter,
    ) -> Result<Downloaded, FetchError> {
        match source {
            Source::File(path) => copy_local(path, partial, algorithm, image, reporter),
            Source::Http(url) => {
                self.with_retries(url, Some(partial), Some((image, reporter)), |_| {
                    self.download_once(url, partial, algorithm, image, reporter)
                })
            }
        }
    }

    fn with_retries<T>(
        &self,
        url: &str,
        restart_removes: Option<&Path>,
        report: Option<(&str, &dyn Reporter)>,
        mut once: impl FnMut(u32) -> Result<T, Failure>,
    ) -> Result<T, FetchError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (err, asked) = match once(attempt) {
                Ok(value) => return Ok(value),
                Err(Failure::Fatal(err)) => return Err(err.with_attempts(attempt)),
                Err(Failure::Restart(why)) => {
                    tracing::debug!("{url}: starting over: {why}");
                    if let Some(partial) = restart_removes {
                        if let Err(err) = std::fs::remove_file(partial) {
                            if err.kind() != io::ErrorKind::NotFound {
                                return Err(FetchError::Write {
                                    path: partial.to_path_buf(),
                                    source: err,
                                });
                            }
                        }
                    }
                    if attempt > self.options.retries {
                        return Err(FetchError::Transport {
                            url: url.to_string(),
                            message: why,
                            attempts: attempt,
                        });
                    }
                    continue;
                }
                Err(Failure::Retry(err)) => (err, None),
                Err(Failure::RetryAfter(err, asked)) => (err, Some(asked)),
            };
            if attempt > self.options.retries {
                return Err(err.with_attempts(attempt));
            }
            let factor = 1u32 << (attempt - 1).min(16);
            let backoff = (self.options.backoff * factor).min(Duration::from_secs(30));
            let delay = match asked {
                Some(asked) if asked > MAX_RETRY_AFTER => {
                    return Err(FetchError::RetryLater {
                        url: url.to_string(),
                        seconds: asked.as_secs(),
                    })
                }
                // The server knows its own load better than our backoff.
                Some(asked) => backoff.max(asked),
                None => backoff,
            };
            tracing::debug!("{err}; retrying in {delay:?}");
            if let Some((image, reporter)) = report {
                reporter.on_retry(image, attempt, delay, &err.to_string());
            }
            std::thread::sleep(delay);
        }
    }

    fn send(&self, url: &str, range_from: u64) -> Result<Response, Failure> {
        let mut request = self.client.get(url);
        if range_from > 0 {
            request = request.header(RANGE, format!("bytes={range_from}-"));
        }
        request
            .send()
            .map_err(|err| Failure::Retry(transport(url, &err)))
    }

    fn small_once(&self, url: &str, limit: u64) -> Result<Small, Failure> {
        let response = self.send(url, 0)?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            404 | 410 => return Ok(Small::NotFound),
            _ => return Err(status_failure(url, &response)),
        }
        match read_limited(response, limit) {
            Ok(Some(bytes)) => Ok(Small::Found(bytes)),
            Ok(None) => Err(Failure::Fatal(FetchError::TooLarge {
                url: url.to_string(),
                limit,
            })),
            Err(err) => Err(Failure::Retry(transport_io(url, &err))),
        }
    }

    fn download_once(
        &self,
        url: &str,
        partial: &Path,
        algorithm: Option<ChecksumAlgorithm>,
        image: &str,
        reporter: &dyn Reporter,
    ) -> Result<Downloaded, Failure> {
        let have = crate::storage::partial_length(partial);
        let response = self.send(url, have)?;
        let status = response.status().as_u16();
        let (start, total) = match status {
            206 if have > 0 => match content_range(&response) {
                Some((first, total)) if first == have => (have, total),
                other => {
                    return Err(Failure::Restart(format!(
                        "asked for bytes from {have}, the server sent {other:?}"
                    )))
                }
            },
            // A full answer: to a plain request, or the server ignored Range.
            200 => (0, response.content_length()),
            416 if have > 0 => {
                return match unsatisfied_length(&response) {
                    // The .partial already holds the whole file.
                    Some(total) if total == have => {
                        reporter.on_transfer(image, url, have, Some(have));
                        finish_existing(partial, algorithm, have).map_err(Failure::Fatal)
                    }
                    _ => Err(Failure::Restart(format!(
                        "the server cannot resume at byte {have} (HTTP 416)"
                    ))),
                };
            }
            _ => return Err(status_failure(url, &response)),
        };
        if start == 0 && have > 0 {
            tracing::debug!("{url}: the server sent the whole file; restarting {have} bytes in");
        }
        reporter.on_transfer(image, url, start, total);
        let file = open_partial(partial, start, DOWNLOAD_MODE).map_err(Failure::Fatal)?;
        let mut sink = Sink::new(file, partial, start, algorithm).map_err(Failure::Fatal)?;
        let received = sink
            .pump(response, image, reporter)
            .map_err(|err| match err {
                PumpError::Read(err) => Failure::Retry(transport_io(url, &err)),
                PumpError::Write(err) => Failure::Fatal(err),
            })?;
        let size = start + received;
        if let Some(total) = total {
            if size != total {
                return Err(Failure::Retry(FetchError::Transport {
                    url: url.to_string(),
                    message: format!("the connection ended after {size} of {total} bytes"),
                    attempts: 1,
                }));
            }
        }
        let digest = sink.finish().map_err(Failure::Fatal)?;
        Ok(Downloaded {
            size,
            digest,
            resumed_from: start,
        })
    }
}

/// The longest `Retry-After` a download waits out; a server that asks
/// for more is told to the user instead of holding the run.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

fn status_failure(url: &str, response: &Response) -> Failure {
    let status = response.status().as_u16();
    let err = FetchError::Status {
        url: url.to_string(),
        status,
        attempts: 1,
    };
    if !(status == 408 || status == 429 || (500..600).contains(&status)) {
        return Failure::Fatal(err);
    }
    match retry_after(response) {
        Some(asked) => Failure::RetryAfter(err, asked),
        None => Failure::Retry(err),
    }
}

/// `Retry-After: SECONDS` (RFC 9110). The HTTP-date form is rare on the
/// mirrors images come from and falls back to the backoff.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// `Content-Range: bytes FIRST-LAST/TOTAL` -> (FIRST, TOTAL when known).
fn content_range(response: &Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (first, _) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, total.trim().parse().ok()))
}

/// `Content-Range: bytes */TOTAL` of a 416 answer.
fn unsatisfied_length(response: &Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    value.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

fn read_small_file(path: &Path, limit: u64) -> Result<Small, FetchError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Small::NotFound),
        Err(source) => {
            return Err(FetchError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match read_limited(file, limit) {
        Ok(Some(bytes)) => Ok(Small::Found(bytes)),
        Ok(None) => Err(FetchError::TooLarge {
            url: path.display().to_string(),
            limit,
        }),
        Err(source) => Err(FetchError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// All of `reader`, or `None` when it holds more than `limit` bytes.
fn read_limited(reader: impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

fn copy_local(
    path: &Path,
    partial: &Path,
    algorithm: Option<ChecksumAlgorithm>,
    image: &str,
    reporter: &dyn Reporter,
) -> Result<Downloaded, FetchError> {
    let read_error = |source| FetchError::Read {
        path: path.to_path_buf(),
        source,
    };
    let source = File::open(path).map_err(read_error)?;
    let meta = source.metadata().ok();
    let total = meta.as_ref().map(|m| m.len());
    // The copy keeps the source's restrictive mode bits: a 0600 image stays
    // 0600 in the cache.
    let mode = meta.map_or(DOWNLOAD_MODE, |m| {
        std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & DOWNLOAD_MODE
    });
    reporter.on_transfer(image, &path.display().to_string(), 0, total);
    let mut sink = Sink::new(open_partial(partial, 0, mode)?, partial, 0, algorithm)?;
    let size = sink
        .pump(source, image, reporter)
        .map_err(|err| match err {
            PumpError::Read(source) => read_error(source),
            PumpError::Write(err) => err,
        })?;
    let digest = sink.finish()?;
    Ok(Downloaded {
        size,
        digest,
        resumed_from: 0,
    })
}
