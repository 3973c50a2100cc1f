//! Opening a libvirt connection is bounded: a socket that accepts and never
//! answers makes lvlab fail within `--libvirt-timeout` (or
//! `LVLAB_LIBVIRT_TIMEOUT`), with an error that names the URI, instead of
//! hanging.

#[path = "support/lvlab_run.rs"]
mod run;

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use run::{lvlab, texts};

/// A UNIX socket that accepts every connection and never says a word.
struct SilentSocket {
    _dir: tempfile::TempDir,
    uri: String,
    _held: Arc<Mutex<Vec<UnixStream>>>,
}

impl SilentSocket {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libvirt-sock");
        let listener = UnixListener::bind(&path).unwrap();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        Self {
            uri: format!("qemu+unix:///session?socket={}", path.display()),
            _dir: dir,
            _held: held,
        }
    }
}

fn write_manifest(dir: &Path, uri: &str) {
    let base = dir.display();
    std::fs::write(
        dir.join("Lvlab.yml"),
        format!(
            "environment:
  - name: lab
    libvirt_uri: {uri}
    config_defaults:
      os: tiny
      cloud_image_basedir: {base}/cache
      disk_image_basedir: {base}/vms
      cloud_init: {{pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab}}
    machines:
      - vm_name: web
images:
  tiny:
    image_url: {base}/source/tiny.qcow2
"
        ),
    )
    .unwrap();
}

fn assert_timed_out(out: &std::process::Output, uri: &str, secs: &str, took: Duration) {
    let (stdout, stderr) = texts(out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("libvirt at {uri} did not answer within {secs} s")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("`virsh -c {uri} list`")),
        "{stderr}"
    );
    // Generous: the point is that it ends at all (it used to hang for good).
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn plan_gives_up_on_a_silent_socket_within_the_timeout() {
    let socket = SilentSocket::start();
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path(), &socket.uri);
    let start = Instant::now();
    let out = lvlab(dir.path())
        .args(["plan", "--libvirt-timeout", "1"])
        .output()
        .unwrap();
    assert_timed_out(&out, &socket.uri, "1", start.elapsed());
}

#[test]
fn the_environment_variable_sets_the_timeout_too() {
    let socket = SilentSocket::start();
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = lvlab(dir.path())
        .args(["capabilities", "--connect", &socket.uri])
        .env("LVLAB_LIBVIRT_TIMEOUT", "0.5")
        .output()
        .unwrap();
    assert_timed_out(&out, &socket.uri, "0.5", start.elapsed());
}

#[test]
fn a_timeout_that_is_no_positive_number_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0", "-1", "soon"] {
        let out = lvlab(dir.path())
            .args(["capabilities", "--connect", "test:///default"])
            .arg(format!("--libvirt-timeout={bad}"))
            .output()
            .unwrap();
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        assert!(stderr.contains("--libvirt-timeout"), "{bad}: {stderr}");
    }
}

#[test]
fn a_host_that_answers_is_unaffected_by_a_short_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let out = lvlab(dir.path())
        .args(["capabilities", "--connect", "test:///default"])
        .args(["--libvirt-timeout", "5"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("test:///default"), "{stdout}");
}
