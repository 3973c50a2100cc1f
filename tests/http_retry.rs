//! The download retry policy with lvlab's production settings: no test here
//! sets `LVLAB_HTTP_TIMEOUT`, `_CONNECT_TIMEOUT` or `_RETRIES`, so what runs
//! is what a user gets (15 s connect and 30 s read timeouts, 4 retries,
//! backoff from 1 s doubling to at most 30 s, or the server's
//! `Retry-After` when longer, up to 2 minutes). The slowest tests wait out
//! those timeouts (about 31 s), beside the others. Only the cap test raises the first backoff,
//! since 4 retries from 1 s never reach 30 s.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use http::{Behaviour, Server};
use lab_manifest::LabManifest;
use run::{lvlab, sha256_hex, texts};

const IMAGE: &str = "p/img.qcow2";

struct Download {
    dir: tempfile::TempDir,
    server: Server,
    bytes: Vec<u8>,
}

impl Download {
    /// An image of 256 KiB behind an unsigned SHA-256 checksum file, and a
    /// manifest whose one machine uses it.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start();
        let bytes: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        server.put(IMAGE, bytes.clone());
        server.put("p/SUMS", format!("{}  img.qcow2\n", sha256_hex(&bytes)));
        LabManifest::lab("lab", "test:///default", dir.path())
            .machine("m", |m| m.os("img"))
            .image("img", |i| {
                i.url(server.url(IMAGE))
                    .checksum(server.url("p/SUMS"), "sha256")
            })
            .write(dir.path());
        Self { dir, server, bytes }
    }

    fn cached(&self) -> std::path::PathBuf {
        self.dir.path().join("cache/cloud-images/img.qcow2")
    }

    /// `lvlab init` and how long it took.
    fn init(&self) -> (Output, Duration) {
        let start = Instant::now();
        let out = lvlab(self.dir.path()).arg("init").output().unwrap();
        (out, start.elapsed())
    }

    #[track_caller]
    fn assert_verified(&self, out: &Output) {
        let (stdout, stderr) = texts(out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert_eq!(std::fs::read(self.cached()).unwrap(), self.bytes);
    }
}

#[test]
fn a_503_is_retried_after_one_second() {
    let lab = Download::new();
    lab.server.behave(IMAGE, Behaviour::Status(503));
    let (out, took) = lab.init();
    lab.assert_verified(&out);
    let (_, stderr) = texts(&out);
    assert!(
        stderr.contains("img: attempt 1 failed (")
            && stderr.contains("HTTP 503 Service Unavailable); retrying in 1s"),
        "{stderr}"
    );
    assert_eq!(lab.server.requests_for(IMAGE).len(), 2);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "one backoff of 1 s: {took:?}"
    );
}

#[test]
fn a_408_and_a_429_with_retry_after_are_retried_with_a_doubling_backoff() {
    let lab = Download::new();
    lab.server.behave(IMAGE, Behaviour::Status(408));
    lab.server.behave(IMAGE, Behaviour::RetryAfter(429, 1));
    let (out, took) = lab.init();
    lab.assert_verified(&out);
    let (_, stderr) = texts(&out);
    assert!(
        stderr.contains("HTTP 408 Request Timeout); retrying in 1s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("attempt 2 failed (")
            && stderr.contains("HTTP 429 Too Many Requests); retrying in 2s"),
        "{stderr}"
    );
    assert_eq!(lab.server.requests_for(IMAGE).len(), 3);
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "backoffs of 1 s and 2 s: {took:?}"
    );
}

#[test]
fn a_retry_after_longer_than_the_backoff_is_waited_out() {
    let lab = Download::new();
    lab.server.behave(IMAGE, Behaviour::RetryAfter(503, 3));
    let (out, took) = lab.init();
    lab.assert_verified(&out);
    let (_, stderr) = texts(&out);
    assert!(
        stderr.contains("HTTP 503 Service Unavailable); retrying in 3s"),
        "the server's 3 s, not the 1 s backoff: {stderr}"
    );
    assert_eq!(lab.server.requests_for(IMAGE).len(), 2);
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "one wait of 3 s: {took:?}"
    );
}

#[test]
fn a_retry_after_beyond_two_minutes_fails_at_once_and_says_so() {
    let lab = Download::new();
    lab.server.behave(IMAGE, Behaviour::RetryAfter(429, 3600));
    let (out, took) = lab.init();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the server asks to try again in 3600 s (HTTP Retry-After)")
            && stderr.contains("hint: run it again later"),
        "{stderr}"
    );
    assert_eq!(lab.server.requests_for(IMAGE).len(), 1);
    assert!(took < Duration::from_secs(3), "no wait: {took:?}");
    assert!(!lab.cached().exists());
}

#[test]
fn a_server_error_on_every_attempt_gives_up_after_four_retries() {
    let lab = Download::new();
    for _ in 0..6 {
        lab.server.behave(IMAGE, Behaviour::Status(502));
    }
    let (out, took) = lab.init();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for (attempt, delay) in [(1, "1s"), (2, "2s"), (3, "4s"), (4, "8s")] {
        assert!(
            stderr.contains(&format!("attempt {attempt} failed (")),
            "{stderr}"
        );
        assert!(stderr.contains(&format!("retrying in {delay}")), "{stderr}");
    }
    assert!(!stderr.contains("attempt 5 failed"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: HTTP 502 Bad Gateway (after 5 attempts)",
            lab.server.url(IMAGE)
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&lab.cached().display().to_string()),
        "names where a file placed by hand is picked up: {stderr}"
    );
    assert_eq!(lab.server.requests_for(IMAGE).len(), 5);
    assert!(
        took >= Duration::from_secs(15) && took < Duration::from_secs(20),
        "backoffs of 1 + 2 + 4 + 8 s: {took:?}"
    );
    assert!(!lab.cached().exists());
}

#[test]
fn a_download_that_stalls_times_out_after_30_seconds_and_resumes() {
    let lab = Download::new();
    // Headers and 1 KiB, then nothing for longer than the read timeout.
    lab.server
        .behave(IMAGE, Behaviour::Stall(Duration::from_secs(40)));
    let (out, took) = lab.init();
    lab.assert_verified(&out);
    let (_, stderr) = texts(&out);
    assert!(
        stderr.contains("timed out waiting for the server); retrying in 1s"),
        "{stderr}"
    );
    let requests = lab.server.requests_for(IMAGE);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].range.as_deref(), Some("bytes=1024-"));
    assert!(
        took >= Duration::from_secs(31) && took < Duration::from_secs(38),
        "a read timeout of 30 s, then a backoff of 1 s: {took:?}"
    );
}

#[test]
fn the_backoff_is_capped_at_30_seconds() {
    let lab = Download::new();
    lab.server.behave(IMAGE, Behaviour::Status(500));
    // A first backoff of 40 s: the cap makes it 30 s. Seeing the announced
    // delay is enough; the child is stopped instead of waited for.
    let mut child = lvlab(lab.dir.path())
        .arg("init")
        .env("LVLAB_HTTP_BACKOFF_MS", "40000")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let announced = line.contains("retrying in");
        seen.push(line);
        if announced {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let last = seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("HTTP 500 Internal Server Error); retrying in 30s"),
        "{}",
        seen.join("\n")
    );
}

#[test]
fn a_server_that_never_accepts_hits_the_15_second_connect_timeout() {
    // A listener that never accepts, its queue filled: the kernel drops the
    // next handshake, so lvlab's connection attempt hangs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut queued = Vec::new();
    for _ in 0..4096 {
        match std::net::TcpStream::connect_timeout(
            &listener.local_addr().unwrap(),
            Duration::from_millis(200),
        ) {
            Ok(stream) => queued.push(stream),
            Err(_) => break,
        }
    }
    let lab = Download::new();
    let manifest = lab.dir.path().join("Lvlab.yml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replace(
            &lab.server.url(IMAGE),
            &format!("http://127.0.0.1:{port}/img.qcow2"),
        )
        .replace(
            &format!("    checksum_url: {}\n", lab.server.url("p/SUMS")),
            "",
        )
        .replace("    checksum_type: sha256\n", "");
    std::fs::write(&manifest, text).unwrap();
    let start = Instant::now();
    let mut child = lvlab(lab.dir.path())
        .arg("init")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let announced = line.contains("retrying in");
        seen.push(line);
        if announced {
            break;
        }
    }
    let took = start.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    let last = seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("timed out waiting for the server); retrying in 1s"),
        "{}",
        seen.join("\n")
    );
    assert!(
        took >= Duration::from_secs(15) && took < Duration::from_secs(20),
        "a connect timeout of 15 s: {took:?} ({} connections queued)",
        queued.len()
    );
}
