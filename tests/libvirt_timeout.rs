//! Opening a libvirt connection is bounded: a socket that accepts and never
//! answers makes lvlab fail within `--libvirt-timeout` (or
//! `LVLAB_LIBVIRT_TIMEOUT`), with an error that names the URI, instead of
//! hanging. A daemon that stops answering on an open connection is noticed
//! by libvirt's keepalive.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use lab_manifest::LabManifest;
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
    LabManifest::tiny("lab", &socket.uri, dir.path())
        .machine("web", |m| m)
        .write(dir.path());
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
fn without_the_option_the_timeout_is_30_seconds() {
    let socket = SilentSocket::start();
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = lvlab(dir.path())
        .args(["capabilities", "--connect", &socket.uri])
        .env_remove("LVLAB_LIBVIRT_TIMEOUT")
        .output()
        .unwrap();
    let took = start.elapsed();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "libvirt at {} did not answer within 30 s",
            socket.uri
        )),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(60),
        "took {took:?}"
    );
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

/// The system libvirtd's socket, where the machine has one.
const SYSTEM_SOCKET: &str = "/run/libvirt/libvirt-sock";

/// A UNIX socket that passes bytes to and from the system libvirtd until it
/// is frozen, then swallows everything: a daemon (or link) gone silent.
struct FreezableProxy {
    _dir: tempfile::TempDir,
    uri: String,
    frozen: Arc<AtomicBool>,
}

impl FreezableProxy {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy-sock");
        let listener = UnixListener::bind(&path).unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&frozen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let daemon = UnixStream::connect(SYSTEM_SOCKET).unwrap();
                pipe(
                    client.try_clone().unwrap(),
                    daemon.try_clone().unwrap(),
                    &flag,
                );
                pipe(daemon, client, &flag);
            }
        });
        Self {
            uri: format!("qemu+unix:///system?socket={}", path.display()),
            _dir: dir,
            frozen,
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` while not frozen; drops what comes after.
fn pipe(mut from: UnixStream, mut to: UnixStream, frozen: &Arc<AtomicBool>) {
    let frozen = Arc::clone(frozen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if !frozen.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
}

#[test]
fn a_daemon_that_goes_silent_is_noticed_by_keepalive() {
    if !Path::new(SYSTEM_SOCKET).exists() {
        panic!("{SYSTEM_SOCKET} is missing: start libvirtd (scripts/setup.sh does)");
    }
    let proxy = FreezableProxy::start();
    let conn = lvlab::libvirt::Connection::open(&proxy.uri).unwrap();
    conn.raw().hostname().unwrap();
    proxy.freeze();
    let (sender, receiver) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let answer = conn.raw().hostname();
        let _ = sender.send(answer.map_err(|err| err.message().to_string()));
    });
    // Keepalive gives up after some 15-20 s of silence; without it the call
    // waits for good.
    let answer = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the call on a silent connection never returned");
    let err = answer.expect_err("a frozen daemon cannot answer");
    let took = start.elapsed();
    eprintln!("noticed after {took:?}: {err}");
    assert!(err.contains("keepalive"), "{err}");
    // A probe every 5 s, dead after 3 unanswered: 15 to 20 s of silence.
    // libvirt's own client default (5 s x 5) would take 25 to 30 s.
    assert!(
        (Duration::from_secs(14)..Duration::from_secs(24)).contains(&took),
        "noticed after {took:?}"
    );
}

#[test]
fn the_debug_log_names_the_keepalive_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = lvlab(dir.path())
        .args(["capabilities", "--connect", "qemu:///session"])
        .env("LVLAB_LOG", "lvlab=debug")
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("libvirt keepalive: a probe every 5 s, dead after 3 unanswered"),
        "{stderr}"
    );
}
