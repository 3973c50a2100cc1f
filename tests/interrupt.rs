//! Ctrl-C during `lvlab up`, with real SIGINTs to the running binary while
//! its slowest action (an image download from a server that trickles the
//! bytes) runs: the first starts nothing new and waits for what runs, then
//! exits 130; the second exits 130 at once.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use http::{Behaviour, Server};
use lab_manifest::LabManifest;
use run::{lvlab, sha256_hex};

const IMAGE: &str = "i/img.qcow2";
/// How an apply line reads when the image action starts.
const DOWNLOAD_STARTS: &str = "download image, verify checksum...";

struct Lab {
    dir: tempfile::TempDir,
    server: Server,
    bytes: Vec<u8>,
}

impl Lab {
    /// One machine on libvirt's test driver whose image (behind a SHA-256
    /// checksum file) is sent over `download_takes`.
    fn new(download_takes: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start();
        let bytes: Vec<u8> = (0..512 * 1024u32).map(|i| (i * 13 % 253) as u8).collect();
        server.put(IMAGE, bytes.clone());
        server.put("i/SUMS", format!("{}  img.qcow2\n", sha256_hex(&bytes)));
        server.behave(IMAGE, Behaviour::Trickle(download_takes));
        LabManifest::lab("int", "test:///default", dir.path())
            .defaults(|d| d.os("img").no_password())
            .machine("m", |m| m.no_interfaces())
            .image("img", |i| {
                i.url(server.url(IMAGE))
                    .checksum(server.url("i/SUMS"), "sha256")
            })
            .write(dir.path());
        Self { dir, server, bytes }
    }

    fn cached(&self) -> PathBuf {
        self.dir.path().join("cache/cloud-images/img.qcow2")
    }

    /// `lvlab up --all` running one action at a time (so the seed, ready
    /// beside the download, waits for it), and its stdout lines with when
    /// they came.
    fn spawn_up(&self) -> (Child, Receiver<(Instant, String)>) {
        let mut child = lvlab(self.dir.path())
            .args(["up", "--all", "--parallelism", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = sender.send((Instant::now(), line));
            }
        });
        (child, lines)
    }

    /// Files of the machine's directory other than its seed: its disks.
    fn disks(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("vms/int/m")) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".qcow2") || name.ends_with(".img"))
            .collect()
    }
}

/// Waits for the line where the download starts, failing the test if the
/// apply ends or says nothing for a minute first.
fn wait_for_download(lines: &Receiver<(Instant, String)>) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok((_, line)) => {
                let found = line.ends_with(DOWNLOAD_STARTS);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("the download never started:\n{}", seen.join("\n")),
        }
    }
}

fn sigint(child: &Child) -> Instant {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -INT {}", child.id());
    Instant::now()
}

/// The exit status, when it came, and all of stderr.
fn finish(mut child: Child) -> (ExitStatus, Instant, String) {
    let status = child.wait().unwrap();
    let exited = Instant::now();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, exited, stderr)
}

#[test]
fn the_first_ctrl_c_starts_nothing_new_and_waits_for_the_running_download() {
    let lab = Lab::new(Duration::from_secs(4));
    let (child, lines) = lab.spawn_up();
    let before = wait_for_download(&lines);
    thread::sleep(Duration::from_millis(300));
    let interrupted = sigint(&child);
    let (status, exited, stderr) = finish(child);
    let after: Vec<(Instant, String)> = lines.try_iter().collect();
    let transcript = format!(
        "{}\n-- SIGINT --\n{}\n{stderr}",
        before.join("\n"),
        after
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    assert_eq!(status.code(), Some(130), "{transcript}");
    assert!(
        stderr.contains(
            "Interrupt: starting no new actions; waiting for running ones (Ctrl-C again exits now)."
        ),
        "{transcript}"
    );
    // The running download was waited for and finished...
    assert!(
        after
            .iter()
            .any(|(_, l)| l.contains("download image, verify checksum: done after")),
        "{transcript}"
    );
    assert!(
        exited - interrupted >= Duration::from_millis(1500),
        "exited {:?} after the SIGINT, before the download could end:\n{transcript}",
        exited - interrupted
    );
    assert_eq!(std::fs::read(lab.cached()).unwrap(), lab.bytes);
    // ...and nothing else started: not the seed that was ready, no disk,
    // no definition.
    let started: Vec<&String> = after
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.ends_with("..."))
        .collect();
    assert!(started.is_empty(), "started after Ctrl-C: {started:?}");
    assert!(
        !before.iter().any(|l| l.contains("build seed ISO")),
        "the seed was meant to wait for the download: {before:?}"
    );
    assert!(lab.disks().is_empty(), "{:?}", lab.disks());
    let not_started = stderr
        .lines()
        .find(|l| l.starts_with("Interrupted: "))
        .unwrap_or_else(|| panic!("no summary:\n{transcript}"));
    assert!(
        not_started.ends_with(" actions not started. Run the same command again to continue.")
            && !not_started.starts_with("Interrupted: 0 "),
        "{not_started}"
    );

    // The next run continues from there without downloading again.
    let out = lvlab(lab.dir.path())
        .args(["up", "--all"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Apply complete!"), "{stdout}");
    assert!(!stdout.contains("download image"), "{stdout}");
    assert_eq!(lab.server.requests_for(IMAGE).len(), 1);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let lab = Lab::new(Duration::from_secs(30));
    let (child, lines) = lab.spawn_up();
    wait_for_download(&lines);
    thread::sleep(Duration::from_millis(300));
    sigint(&child);
    thread::sleep(Duration::from_millis(300));
    let again = sigint(&child);
    let (status, exited, stderr) = finish(child);
    let after: Vec<String> = lines.try_iter().map(|(_, l)| l).collect();

    assert_eq!(status.code(), Some(130), "{after:?}\n{stderr}");
    assert!(
        exited - again < Duration::from_secs(2),
        "took {:?} after the second SIGINT",
        exited - again
    );
    assert!(
        stderr
            .contains("Interrupted again: exiting now. The next apply converges from what exists."),
        "{stderr}"
    );
    assert!(
        !after
            .iter()
            .any(|l| l.contains("done after") && l.contains("download")),
        "{after:?}"
    );
    assert!(!lab.cached().exists(), "the download did not finish");
    assert!(lab.disks().is_empty());
}
