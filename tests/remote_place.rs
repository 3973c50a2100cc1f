//! A hypervisor on another machine, as lvlab reaches it: this machine's
//! system libvirtd through `qemu+ssh://` to the test sshd
//! (`support/remote_host.rs`), whose log proves each login went through
//! it. A guest's SSH forward is on that host's loopback, so `ssh-config`,
//! `status` and the SSH wait reach it through `ssh -W` to the host; an
//! automatic SSH port is picked unprobed there, and moved when passt finds
//! it taken at the start; `capabilities` answers per host.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/remote_host.rs"]
mod remote_host;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use lab_manifest::LabManifest;
use lvlab::host::{Host, Route};
use lvlab::observe::ssh::probe_route;
use remote_host::RemoteHost;

/// A lab on the remote URI, its files under
/// [`remote_host::SYSTEM_READABLE`]; on drop
/// (a failed test too) its domains are destroyed and its directory
/// removed, before the sshd stops.
struct RemoteLab {
    dir: PathBuf,
    env: String,
    remote: RemoteHost,
}

impl RemoteLab {
    fn new(name: &str) -> Self {
        let env = format!("{name}{}", std::process::id());
        let dir = remote_host::system_readable_dir(&env);
        Self {
            dir,
            env,
            remote: RemoteHost::start(),
        }
    }

    /// The tiny lab on the remote system URI: TCG, 128 MiB, no console
    /// password.
    fn manifest(&self) -> LabManifest {
        LabManifest::tiny(&self.env, &self.remote.uri("system"), &self.dir).defaults(|d| {
            d.tcg(128)
                .no_password()
                .set("pool_basedir", self.dir.join("pools").display())
        })
    }

    fn run(&self, args: &[&str]) -> Output {
        run::lvlab(&self.dir).args(args).output().unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = run::texts(&out);
        assert!(out.status.success(), "lvlab {args:?}:\n{stdout}\n{stderr}");
        (stdout, stderr)
    }

    fn recorded_port(&self, vm: &str) -> u16 {
        let xml = self
            .dir
            .join("vms")
            .join(&self.env)
            .join(vm)
            .join("domain.xml");
        lvlab::domain::forwarded_ssh_ports(&std::fs::read_to_string(xml).unwrap())[0]
    }
}

impl Drop for RemoteLab {
    fn drop(&mut self) {
        let _ = self.run(&["destroy", "--force"]);
        remote_host::remove_system_leftovers(&self.env, &self.dir);
    }
}

/// The `ProxyCommand` that reaches `remote`'s loopback.
fn proxy_command(remote: &RemoteHost) -> String {
    format!(
        "ssh -W %h:%p -p {} -i {} -o StrictHostKeyChecking=no -l root 127.0.0.1",
        remote.port,
        remote.keyfile().display()
    )
}

#[test]
fn a_taken_automatic_port_is_moved_at_the_start_and_the_guest_is_reached_through_the_host() {
    let lab = RemoteLab::new("rplace");
    support::tiny_image(&lab.dir.join("cache/cloud-images/tiny.qcow2"), "16M");
    lab.manifest()
        .machine("web", |m| {
            m.set("interfaces", "[{network_type: passt, ssh_port: auto}]")
        })
        .write(&lab.dir);

    lab.ok(&["up", "--all"]);
    let first = lab.recorded_port("web");
    assert!(
        lvlab::host::REMOTE_PORTS.contains(&first),
        "an unprobed port of the remote range: {first}"
    );
    lab.ok(&["down", "--timeout", "1", "--force"]);

    // Something else takes the port on the host before the next start.
    let planted = TcpListener::bind(("127.0.0.1", first)).unwrap();
    let (_, stderr) = lab.ok(&["up", "--all"]);
    drop(planted);
    let moved = lab.recorded_port("web");
    assert_ne!(moved, first);
    assert!(
        stderr.contains(&format!(
            "web: SSH port {first} is taken on {}; starting it again with port {moved}",
            lab.remote.uri("system")
        )),
        "{stderr}"
    );

    // libvirt's definition forwards the new port too: the next plan is
    // empty.
    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{:?}", run::texts(&plan));

    let (config, _) = lab.ok(&["ssh-config"]);
    assert!(config.contains(&format!("  Port {moved}\n")), "{config}");
    assert!(
        config.contains(&format!("  ProxyCommand {}\n", proxy_command(&lab.remote))),
        "{config}"
    );

    let (line, _) = lab.ok(&["ssh", "web", "--print"]);
    assert!(
        line.contains(&format!("'ProxyCommand={}'", proxy_command(&lab.remote))),
        "{line}"
    );

    // The host's QEMU log comes over the same hop.
    let host = Host::open(&lab.remote.uri("system")).unwrap();
    let domain = format!("web_{}", lab.env);
    let tail = host.qemu_log_tail(&domain, 2).expect("the QEMU log");
    assert_eq!(tail.len(), 2, "{tail:?}");

    let (status, _) = lab.ok(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(rows[0]["state"], "running", "{status}");
    assert_eq!(rows[0]["ssh"], format!("127.0.0.1:{moved} via 127.0.0.1"));
    assert_eq!(rows[0]["ssh_proxy_command"], proxy_command(&lab.remote));
    assert!(lab.remote.logins() > 0, "{}", lab.remote.log());
}

/// A server on 127.0.0.1 that, like a guest's sshd behind passt, says its
/// banner once the client has spoken.
fn banner_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut first = [0u8; 8];
            if stream.read_exact(&mut first).is_ok() {
                let _ = stream.write_all(b"SSH-2.0-test\r\n");
            }
        }
    });
    address
}

#[test]
fn the_ssh_wait_probes_a_remote_hosts_loopback_through_the_host() {
    let remote = RemoteHost::start();
    let host = Host::open(&remote.uri("system")).unwrap();
    let route = host.route();
    assert!(matches!(route, Route::ProxyCommand(_)), "{route:?}");
    let before = remote.logins();

    // Generous: an SSH login on a loaded 2-core machine can take seconds.
    let banner = probe_route(banner_server(), &route, Duration::from_secs(30)).unwrap();
    assert_eq!(banner, "SSH-2.0-test");
    assert!(remote.logins() > before, "{}", remote.log());

    // Nothing listens: the hop says so, in time.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let nothing = closed.local_addr().unwrap();
    drop(closed);
    let err = probe_route(nothing, &route, Duration::from_secs(10)).unwrap_err();
    assert!(!err.is_empty());
}

#[test]
fn real_ssh_runs_the_proxy_command_with_a_key_whose_path_needs_quoting() {
    let remote = RemoteHost::start();
    // The key under a name the shell and ssh's `%` tokens would misread.
    let odd = tempfile::tempdir().unwrap();
    let key = odd.path().join("my key's 100%");
    std::fs::copy(remote.keyfile(), &key).unwrap();
    let uri = format!(
        "qemu+ssh://root@127.0.0.1:{}/system?keyfile={}&no_verify=1",
        remote.port,
        url_escape(key.to_str().unwrap())
    );
    let route = lvlab::host::Place::of(&uri);
    let lvlab::host::Place::Remote(host) = route else {
        panic!("{uri} is remote");
    };
    let proxy = host.hop().unwrap().proxy_command();
    // The guest here is the test sshd itself, reached through the hop.
    let out = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .arg("-o")
        .arg(format!(
            "IdentityFile=\"{}\"",
            key.display().to_string().replace('%', "%%")
        ))
        .arg("-o")
        .arg(format!("ProxyCommand={proxy}"))
        .args([
            "-p",
            &remote.port.to_string(),
            "root@127.0.0.1",
            "echo",
            "through",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = run::texts(&out);
    assert!(out.status.success(), "{proxy}\n{stderr}");
    assert_eq!(stdout.trim(), "through");
    assert_eq!(remote.logins(), 2, "the hop and the login through it");
}

/// `text` percent-encoded for a URI's query.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn capabilities_answer_per_host_and_an_unreachable_one_fails_alone() {
    let remote = RemoteHost::start();
    let dir = tempfile::tempdir().unwrap();
    let unreachable = "qemu+ssh://root@127.0.0.1:1/system?no_verify=1";
    LabManifest::new("local", "test:///default")
        .environment("far", &remote.uri("system"))
        .environment("gone", unreachable)
        .write(dir.path());
    let out = run::lvlab(dir.path())
        .args(["capabilities", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = run::texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let hosts: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let uris: Vec<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["test:///default", remote.uri("system").as_str()]);
    assert!(
        stderr.starts_with(&format!(
            "error: cannot connect to libvirt at {unreachable}"
        )),
        "{stderr}"
    );
    assert!(remote.logins() > 0, "{}", remote.log());
}
