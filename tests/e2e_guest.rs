//! The real-guest tier: two Debian 12 guests built here
//! (`scripts/e2e/build-image.sh`) booted by lvlab on `qemu:///session`
//! under TCG with passt NICs, then checked from the inside over SSH on
//! 127.0.0.1. Each has a second NIC with a static IPv4 address on an
//! isolated network the test defines (no forward, no DHCP, 198.18.0.0/24).
//!
//! The image goes through the real pipeline: the test serves it and its
//! `SHA512SUMS` over HTTP on 127.0.0.1, signs the checksum file with a key
//! it makes (GnuPG in a temporary home, detached `SHA512SUMS.gpg`) and
//! serves the public key too; `lvlab init` downloads and verifies it, and
//! the record beside the cached image and the domains' lvlab metadata must
//! name the key and the digest. Then `lvlab up --all --wait` boots both
//! guests and waits for their SSH; as each guest answers, the test logs in
//! and checks: hostname and FQDN, the user with the test's key and
//! passwordless sudo, each `runcmd` effect, the environment's `/etc/hosts`
//! snippet with both static addresses, the static address on its NIC and
//! the other guest reached by its `/etc/hosts` name, cloud-init done from
//! the NoCloud seed without errors, the extra disk written and read back, the shared directory mounted by its virtiofs
//! tag, the guest agent answering (and `lvlab status` showing the address
//! it reports); then an ACPI `down` (no `--force`) and a `destroy --force`
//! that leaves nothing behind.
//!
//! Ignored by the fast `cargo test`; `scripts/e2e.sh` builds (or finds) the
//! image and runs it:
//!
//! ```sh
//! LVLAB_E2E_IMAGE=/var/cache/lvlab-e2e/<digest>/lvlab-e2e-debian12.qcow2 \
//!     cargo test --test e2e_guest -- --ignored --nocapture
//! ```
//!
//! Knobs: `LVLAB_E2E_SSH_TIMEOUT` (seconds `up --wait` waits for the
//! guests' SSH, default 600); `LVLAB_E2E_BREAK=mac|userdata` breaks guest
//! `beta`'s seed on purpose (a network-config matching a MAC the guest does
//! not have, or a user-data that is not `#cloud-config`) to show the
//! failure messages.
//!
//! Every check says what it expected and what it found; all checks run and
//! fail together at the end. Each guest's serial console is kept in
//! `target/tmp/e2e-guest/<guest>.console.log`. A guard destroys the lab
//! even when a check fails.

#[allow(dead_code)]
#[path = "support/gpg.rs"]
mod gpg;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const USER: &str = "labuser";
const DOMAIN: &str = "lab.test";
const EXTRA_DISK_BYTES: u64 = 64 * 1024 * 1024;

/// One guest of the lab, as the manifest names it.
struct Guest {
    vm: &'static str,
    /// What this guest's own `runcmd` leaves behind: (file, content).
    marker: (&'static str, &'static str),
    /// Its static IPv4 address on the lab's isolated network.
    ip4: &'static str,
}

const GUESTS: [Guest; 2] = [
    Guest {
        vm: "alpha",
        marker: ("/var/tmp/lvlab-alpha", "alpha was here"),
        ip4: "198.18.0.11",
    },
    Guest {
        vm: "beta",
        marker: ("/var/tmp/lvlab-beta", "beta was here"),
        ip4: "198.18.0.12",
    },
];

/// The host's address on the isolated network (198.18.0.0/15 is RFC 2544's
/// benchmarking range: no private LAN uses it, nothing routes it).
const NETWORK_HOST: &str = "198.18.0.1";

/// What the defaults' `runcmd` (a shell string) writes on every guest.
const DEFAULT_RUNCMD_FILE: &str = "/var/tmp/lvlab-runcmd";

/// A failed check: which guest, which check, what was expected and found.
struct Failure {
    guest: String,
    check: String,
    expected: String,
    found: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: check `{}` failed\n      expected: {}\n      found:    {}",
            self.guest,
            self.check,
            self.expected,
            self.found.trim_end()
        )
    }
}

/// How many checks a complete run of the tier makes (both guests).
const EXPECTED_CHECKS: usize = 56;

#[derive(Default)]
struct Checks {
    passed: usize,
    failed: Vec<Failure>,
}

impl Checks {
    fn check(&mut self, guest: &str, check: &str, ok: bool, expected: &str, found: &str) -> bool {
        if ok {
            self.passed += 1;
            eprintln!("  ok    {guest}: {check}");
        } else {
            let failure = Failure {
                guest: guest.into(),
                check: check.into(),
                expected: expected.into(),
                found: if found.trim().is_empty() {
                    "(nothing)".into()
                } else {
                    found.into()
                },
            };
            eprintln!("  FAIL  {failure}");
            self.failed.push(failure);
        }
        ok
    }
}

/// Who signs the checksum file (a GnuPG user id the test makes).
const SIGNER: &str = "lvlab-e2e-signer";
/// The shared directory's virtiofs tag and the file the test puts in it.
const SHARE_TAG: &str = "labshare";
const SHARED_FILE: (&str, &str) = ("hello.txt", "shared from the host");

/// The lab on disk: manifest, key, image cache, VM directories; and the
/// HTTP server the image is published on.
struct Lab {
    dir: tempfile::TempDir,
    env: String,
    logs: PathBuf,
    server: http::Server,
    /// The image's file name, as published and as cached.
    image_file: String,
    /// The published SHA-512 of the image (from its `SHA512SUMS`).
    digest: String,
    /// The fingerprint of the key that signed `SHA512SUMS`.
    fingerprint: String,
}

impl Lab {
    fn new(image: &Path, network: &IsolatedNetwork) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lvlab-e2e-guest.")
            .tempdir_in("/var/tmp")
            .unwrap();
        let env = format!("e2e{}", std::process::id());
        let image_file = image.file_name().unwrap().to_str().unwrap().to_string();

        // Publish the image as a vendor does: the image, its checksum file,
        // a detached signature of that file, and the signing key.
        let sums = std::fs::read_to_string(image.with_file_name("SHA512SUMS"))
            .expect("SHA512SUMS beside the image (scripts/e2e/build-image.sh writes it)");
        let digest = sums
            .lines()
            .find_map(|l| {
                let (hex, name) = l.split_once(char::is_whitespace)?;
                (name.trim_start().trim_start_matches('*') == image_file).then(|| hex.to_string())
            })
            .unwrap_or_else(|| panic!("no line for {image_file} in SHA512SUMS:\n{sums}"));
        let gpg = gpg::Gpg::new(&[SIGNER]);
        let fingerprint = gpg.fingerprint(SIGNER);
        let server = http::Server::start();
        server.put(
            &format!("images/{image_file}"),
            std::fs::read(image).unwrap(),
        );
        server.put("images/SHA512SUMS", sums.as_bytes());
        server.put(
            "images/SHA512SUMS.gpg",
            gpg.detach_sign(SIGNER, sums.as_bytes(), false),
        );
        server.put("keys/signer.asc", gpg.export(SIGNER, true));
        drop(gpg);

        let key = dir.path().join("id_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "lvlab-e2e", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client) is installed by scripts/setup.sh");
        assert!(keygen.success(), "ssh-keygen failed");

        let share = dir.path().join("share");
        std::fs::create_dir_all(&share).unwrap();
        let (shared_name, shared_text) = SHARED_FILE;
        std::fs::write(share.join(shared_name), format!("{shared_text}\n")).unwrap();

        let (file_a, text_a) = GUESTS[0].marker;
        let (file_b, text_b) = GUESTS[1].marker;
        let (ip_a, ip_b) = (GUESTS[0].ip4, GUESTS[1].ip4);
        let network = &network.name;
        let image_url = server.url(&format!("images/{image_file}"));
        let checksum_url = server.url("images/SHA512SUMS");
        let keys_url = server.url("keys/signer.asc");
        let manifest = format!(
            "environment:
  - name: {env}
    libvirt_uri: qemu:///session
    config_defaults:
      os: e2e
      cpu: 1
      memory: 768
      domain_type: qemu
      domain: {DOMAIN}
      cloud_image_basedir: ./cache
      disk_image_basedir: ./vms
      shared_directories: [{{source: ./share, mount_tag: {SHARE_TAG}}}]
      interfaces: {{network_type: passt}}
      disks:
        - {{name: root}}
        - {{name: data, size: 64M}}
      cloud_init:
        user: {USER}
        pubkey: ./id_ed25519.pub
        password: false
        runcmd:
          - echo \"runcmd ran on $(hostname)\" > {DEFAULT_RUNCMD_FILE}
    machines:
      - vm_name: alpha
        interfaces:
          - {{ssh_port: auto}}
          - {{network_type: network, network: {network}, ip4: {ip_a}/24}}
        cloud_init:
          runcmd:
            - [sh, -c, 'echo \"$1\" > \"$2\"', marker, {text_a}, {file_a}]
      - vm_name: beta
        interfaces:
          - {{ssh_port: auto}}
          - {{network_type: network, network: {network}, ip4: {ip_b}/24}}
        cloud_init:
          runcmd:
            - [sh, -c, 'echo \"$1\" > \"$2\"', marker, {text_b}, {file_b}]
images:
  e2e:
    image_url: {image_url}
    checksum_url: {checksum_url}
    checksum_type: sha512
    checksum_url_gpg: {keys_url}
    os_variant: debian12
    username: debian
"
        );
        std::fs::write(dir.path().join("Lvlab.yml"), manifest).unwrap();

        let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-guest");
        std::fs::create_dir_all(&logs).unwrap();
        Self {
            dir,
            env,
            logs,
            server,
            image_file,
            digest,
            fingerprint,
        }
    }

    /// The image cache the machines use.
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/cloud-images")
    }

    /// How many times the image itself was requested from the server.
    fn image_downloads(&self) -> usize {
        self.server
            .requests_for(&format!("images/{}", self.image_file))
            .len()
    }

    fn lvlab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lvlab"))
            .env("LVLAB_NO_HOST_CONFIG", "1")
            .env(
                "LVLAB_STATE_DIR",
                std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
            )
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    fn pubkey(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("id_ed25519.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn domain(&self, vm: &str) -> String {
        format!("{vm}_{}", self.env)
    }

    fn vm_dir(&self, vm: &str) -> PathBuf {
        self.dir.path().join("vms").join(&self.env).join(vm)
    }

    /// The libvirt domains of this lab's environment, whatever their state.
    fn domains(&self) -> Vec<String> {
        let out = virsh(&["list", "--all", "--name"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(&format!("_{}", self.env)))
            .map(str::to_string)
            .collect()
    }

    /// `lvlab status --json`: each machine's state and SSH address.
    fn status(&self) -> Vec<serde_json::Value> {
        let out = self.lvlab(&["status", "--json"]);
        assert!(out.status.success(), "lvlab status: {}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Copies each guest's serial console into `logs/<vm>.console.log`
    /// until the guest's pty closes.
    ///
    /// Also notes when each console first shows systemd starting sshd
    /// (seconds from `started`): not used to decide anything, only to show
    /// how soon after it `up --wait` saw SSH answer.
    fn record_consoles(&self, started: Instant) -> Vec<(&'static str, Arc<OnceLock<f64>>)> {
        let mut sshd_seen = Vec::new();
        for guest in &GUESTS {
            let seen = Arc::new(OnceLock::new());
            sshd_seen.push((guest.vm, seen.clone()));
            let xml = String::from_utf8_lossy(&virsh(&["dumpxml", &self.domain(guest.vm)]).stdout)
                .into_owned();
            let log = self.logs.join(format!("{}.console.log", guest.vm));
            // Created here, not in the thread: no reader sees an old log.
            let mut output = std::fs::File::create(&log).unwrap();
            let Some(mut input) = xml
                .split("<source path='")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .and_then(|pty| std::fs::File::open(pty).ok())
            else {
                eprintln!("{}: no serial pty to read, no console log", guest.vm);
                continue;
            };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut line = Vec::new();
                while let Ok(n) = input.read(&mut buf) {
                    if n == 0 || output.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    for &byte in &buf[..n] {
                        if byte != b'\n' {
                            line.push(byte);
                            continue;
                        }
                        let text = String::from_utf8_lossy(&line);
                        if text.contains("Started") && text.contains("ssh.service") {
                            let _ = seen.set(started.elapsed().as_secs_f64());
                        }
                        line.clear();
                    }
                }
            });
        }
        sshd_seen
    }

    /// Breaks `beta`'s seed the way `LVLAB_E2E_BREAK` says: power it off
    /// before its cloud-init ran (the kernel alone takes ~10 s under TCG),
    /// rewrite the seed ISO and start it again.
    fn break_seed(&self, how: &str) {
        let vm = GUESTS[1].vm;
        let dir = self.vm_dir(vm);
        assert!(virsh(&["destroy", &self.domain(vm)]).status.success());
        match how {
            "mac" => {
                let path = dir.join("network-config");
                let config = std::fs::read_to_string(&path).unwrap();
                let mac = config
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("macaddress: "))
                    .expect("a MAC in network-config")
                    .to_string();
                let broken = config.replace(&mac, "\"52:54:00:de:ad:00\"");
                std::fs::write(&path, broken).unwrap();
            }
            "userdata" => {
                let path = dir.join("user-data");
                let data = std::fs::read_to_string(&path).unwrap();
                let broken = data.replacen("#cloud-config", "#not-cloud-config", 1);
                std::fs::write(&path, broken).unwrap();
            }
            other => panic!("LVLAB_E2E_BREAK={other}: expected `mac` or `userdata`"),
        }
        let iso = Command::new("xorriso")
            .current_dir(&dir)
            .args(["-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-r"])
            .args([
                "-o",
                "cidata.iso",
                "meta-data",
                "user-data",
                "network-config",
            ])
            .output()
            .expect("xorriso is installed by scripts/setup.sh");
        assert!(iso.status.success(), "xorriso: {}", text(&iso));
        assert!(virsh(&["start", &self.domain(vm)]).status.success());
        eprintln!("broke {vm}'s seed on purpose: {how}");
    }
}

/// An isolated libvirt network on `qemu:///session` for the guests' second
/// NIC, defined by the test: no forward, no DHCP, no DNS, so that static
/// IPv4 addresses (and the `/etc/hosts` lines lvlab makes of them) are real
/// without anything leaving the host. Removed on drop.
struct IsolatedNetwork {
    name: String,
}

impl IsolatedNetwork {
    fn start(dir: &Path) -> Self {
        // Also the bridge's name: at most 15 bytes.
        let name = format!("lvle2e{}", std::process::id());
        let xml = dir.join(format!("{name}.xml"));
        std::fs::write(
            &xml,
            format!(
                "<network>\n  <name>{name}</name>\n  <bridge name='{name}' stp='off'/>\n  \
                 <dns enable='no'/>\n  <ip address='{NETWORK_HOST}' prefix='24'/>\n</network>\n"
            ),
        )
        .unwrap();
        let network = Self { name };
        for args in [
            vec!["net-define", xml.to_str().unwrap()],
            vec!["net-start", &network.name],
        ] {
            let out = virsh(&args);
            assert!(out.status.success(), "virsh {args:?}: {}", text(&out));
        }
        network
    }
}

impl Drop for IsolatedNetwork {
    fn drop(&mut self) {
        let _ = virsh(&["net-destroy", &self.name]);
        let _ = virsh(&["net-undefine", &self.name]);
    }
}

impl Drop for Lab {
    /// Leaves no domain and no file behind, even when a check failed.
    fn drop(&mut self) {
        let _ = self.lvlab(&["destroy", "--force"]);
    }
}

fn virsh(args: &[&str]) -> Output {
    Command::new("virsh")
        .args(["-c", "qemu:///session"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("virsh (libvirt-clients) is installed by scripts/setup.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ssh_timeout() -> Duration {
    let secs = std::env::var("LVLAB_E2E_SSH_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// Runs `command` in the guest as the lab's user with the test's key.
fn ssh(key: &Path, port: u16, command: &str) -> Output {
    Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(key)
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=30",
        ])
        .arg(format!("{USER}@127.0.0.1"))
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .expect("ssh (openssh-client) is installed by scripts/setup.sh")
}

/// What one guest's readiness thread measured.
struct Readiness {
    vm: &'static str,
    port: u16,
    /// Seconds from the start of `up` to `up --wait` saying the guest
    /// answers on SSH (as the test read the line).
    ssh_ready: Result<f64, String>,
    /// Seconds from the start of `up` to a working login with the key.
    login: Result<f64, String>,
    /// Seconds from the start of `up` to `cloud-init status --wait`
    /// returning, and what it printed.
    cloud_init: Result<(f64, String), String>,
}

/// Cloud-init's table of network devices from the guest's console, the
/// first place to look when SSH never answered.
fn console_net_info(console: &Path) -> String {
    let Ok(bytes) = std::fs::read(console) else {
        return format!("(no console log at {})", console.display());
    };
    let log = String::from_utf8_lossy(&bytes);
    let rows: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("Net device info"))
        .take_while(|l| !l.contains("Route"))
        .filter(|l| l.contains("ci-info: |"))
        .filter_map(|l| l.split("ci-info: ").nth(1))
        .collect();
    if rows.is_empty() {
        "(the console shows no cloud-init network table)".into()
    } else {
        format!("network devices per cloud-init:\n{}", rows.join("\n"))
    }
}

/// `up --wait`'s line for a guest that answers:
/// `<vm> answers on SSH after <N>s: ssh -p <port> <user>@127.0.0.1`.
fn parse_answer(line: &str) -> Option<(String, u16, String)> {
    let (vm, rest) = line.split_once(" answers on SSH after ")?;
    let hint = rest.split_once(": ")?.1;
    let words: Vec<&str> = hint.split_whitespace().collect();
    match words.as_slice() {
        ["ssh", "-p", port, target] => {
            let user = target.strip_suffix("@127.0.0.1")?;
            Some((vm.to_string(), port.parse().ok()?, user.to_string()))
        }
        _ => None,
    }
}

/// After `up --wait` said the guest answers: log in with the test's key,
/// then wait for cloud-init to finish.
fn after_answer(
    vm: &'static str,
    port: u16,
    key: PathBuf,
    started: Instant,
    answered: f64,
) -> Readiness {
    let mut ready = Readiness {
        vm,
        port,
        ssh_ready: Ok(answered),
        login: Err("never tried".into()),
        cloud_init: Err("could not log in".into()),
    };
    // sshd starts after cloud-init's init stage made the user: a login
    // should work at once; a few tries absorb a slow first handshake.
    for attempt in 1..=3 {
        let out = ssh(&key, port, "true");
        if out.status.success() {
            ready.login = Ok(started.elapsed().as_secs_f64());
            break;
        }
        ready.login = Err(format!(
            "ssh exit {:?}: {}",
            out.status.code(),
            text(&out).trim()
        ));
        if attempt < 3 {
            std::thread::sleep(Duration::from_secs(5));
        }
    }
    if ready.login.is_err() {
        return ready;
    }
    let out = ssh(&key, port, "cloud-init status --wait --long");
    let at = started.elapsed().as_secs_f64();
    eprintln!("{vm}: cloud-init finished after {at:.0} s");
    ready.cloud_init = Ok((at, text(&out)));
    ready
}

/// What `lvlab up --all --wait` did, read line by line as it ran.
struct Up {
    /// Seconds from the start of `up` until both domains ran.
    running: Option<f64>,
    /// Seconds from the start of `up` until it exited.
    exited: f64,
    output: Output,
    /// The readiness of each guest that answered, by name.
    answered: Vec<Readiness>,
    /// When each guest's console showed sshd started.
    sshd_started: Vec<(&'static str, Arc<OnceLock<f64>>)>,
}

/// Runs `lvlab up --all --wait`; while it waits, records the consoles (and
/// breaks a seed when asked), and as each guest's answer line comes, logs
/// into that guest on the port the line names.
fn up_and_wait(lab: &Lab, started: Instant) -> Up {
    let timeout = ssh_timeout().as_secs().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        )
        .arg("-C")
        .arg(lab.dir.path())
        .args(["up", "--all", "--wait", "--wait-timeout", &timeout])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        all
    });
    let key = lab.key();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut checks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            eprintln!("  | {line}");
            if let Some((vm, port, user)) = parse_answer(&line) {
                let at = started.elapsed().as_secs_f64();
                let guest = GUESTS.iter().find(|g| g.vm == vm);
                match guest {
                    Some(guest) if user == USER => {
                        let key = key.clone();
                        let vm = guest.vm;
                        checks.push(std::thread::spawn(move || {
                            after_answer(vm, port, key, started, at)
                        }));
                    }
                    _ => eprintln!("  (unexpected guest or user in `{line}`)"),
                }
            }
            lines.push(line);
        }
        let answered: Vec<Readiness> = checks.into_iter().map(|c| c.join().unwrap()).collect();
        (lines, answered)
    });

    // Both domains running: record their consoles, break a seed if asked.
    let mut running = None;
    let mut sshd_started = Vec::new();
    while running.is_none() {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let out = virsh(&["list", "--state-running", "--name"]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        if GUESTS
            .iter()
            .all(|g| listed.lines().any(|l| l.trim() == lab.domain(g.vm)))
        {
            running = Some(started.elapsed().as_secs_f64());
            if let Ok(how) = std::env::var("LVLAB_E2E_BREAK") {
                lab.break_seed(&how);
            }
            sshd_started = lab.record_consoles(started);
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let status = child.wait().unwrap();
    let exited = started.elapsed().as_secs_f64();
    let (lines, answered) = reader.join().unwrap();
    let mut stdout = lines.join("\n").into_bytes();
    stdout.push(b'\n');
    Up {
        running,
        exited,
        output: Output {
            status,
            stdout,
            stderr: errors.join().unwrap(),
        },
        answered,
        sshd_started,
    }
}

/// Every in-guest check for one guest that could be logged into.
fn check_guest(checks: &mut Checks, lab: &Lab, guest: &Guest, port: u16, cloud_init: &str) {
    let vm = guest.vm;
    let run = |command: &str| -> String {
        let out = ssh(&lab.key(), port, command);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        } else {
            format!(
                "(`{command}` failed, exit {:?}: {})",
                out.status.code(),
                text(&out).trim()
            )
        }
    };

    checks.check(
        vm,
        "cloud-init status",
        cloud_init.lines().any(|l| l.trim() == "status: done"),
        "`cloud-init status --wait --long` says `status: done`",
        cloud_init,
    );
    let result = run("cat /run/cloud-init/result.json");
    let parsed: Option<serde_json::Value> = serde_json::from_str(&result).ok();
    let errors = parsed.as_ref().map(|v| v["v1"]["errors"].clone());
    checks.check(
        vm,
        "cloud-init errors",
        errors
            .as_ref()
            .is_some_and(|e| e.as_array().is_some_and(Vec::is_empty)),
        "no errors in /run/cloud-init/result.json",
        &result,
    );
    let datasource = parsed
        .as_ref()
        .and_then(|v| v["v1"]["datasource"].as_str())
        .unwrap_or("")
        .to_string();
    checks.check(
        vm,
        "seed found",
        datasource.starts_with("DataSourceNoCloud"),
        "datasource NoCloud (the cidata seed disk)",
        &result,
    );
    let warnings = run("grep -c WARNING /var/log/cloud-init.log || true");
    let warning_lines = run("grep WARNING /var/log/cloud-init.log | cut -c1-300 | head -n 5");
    checks.check(
        vm,
        "cloud-init warnings",
        warnings == "0",
        "no WARNING in /var/log/cloud-init.log",
        &format!("{warnings} warnings, first ones:\n{warning_lines}"),
    );

    let hostname = run("hostname");
    checks.check(vm, "hostname", hostname == vm, vm, &hostname);
    let fqdn = format!("{vm}.{DOMAIN}");
    let found = run("hostname -f");
    checks.check(vm, "FQDN", found == fqdn, &fqdn, &found);

    let who = run("id -un");
    checks.check(vm, "user", who == USER, USER, &who);
    let keys = run("cat ~/.ssh/authorized_keys");
    checks.check(
        vm,
        "user's SSH key",
        keys.lines().any(|l| l.trim() == lab.pubkey()),
        &format!("~/.ssh/authorized_keys holds `{}`", lab.pubkey()),
        &keys,
    );
    let root = run("sudo -n id -u");
    checks.check(
        vm,
        "passwordless sudo",
        root == "0",
        "`sudo -n id -u` prints 0",
        &root,
    );

    let expected = format!("runcmd ran on {vm}");
    let found = run(&format!("cat {DEFAULT_RUNCMD_FILE}"));
    checks.check(
        vm,
        "runcmd from the defaults",
        found == expected,
        &format!("{DEFAULT_RUNCMD_FILE} holds `{expected}`"),
        &found,
    );
    let (file, content) = guest.marker;
    let found = run(&format!("cat {file}"));
    checks.check(
        vm,
        "runcmd of the machine",
        found == content,
        &format!("{file} holds `{content}`"),
        &found,
    );

    // One line per static IPv4 address of the environment, both guests'.
    let mut snippet = format!(
        "# Libvirt Labs /etc/hosts snippet\n# Environment: {}",
        lab.env
    );
    for other in &GUESTS {
        snippet.push_str(&format!(
            "\n{} {}.{DOMAIN} {}",
            other.ip4, other.vm, other.vm
        ));
    }
    let hosts = run("cat /etc/hosts");
    checks.check(
        vm,
        "/etc/hosts snippet",
        hosts.contains(&snippet),
        &format!("/etc/hosts contains\n{snippet}"),
        &hosts,
    );
    let template = run("cat /etc/cloud/templates/hosts.debian.tmpl");
    checks.check(
        vm,
        "hosts template snippet",
        template.contains(&snippet),
        "cloud-init's hosts.debian.tmpl holds the snippet too",
        &template,
    );

    let addresses = run("ip -4 -o addr show");
    checks.check(
        vm,
        "static IPv4",
        addresses.contains(&format!("inet {}/24 ", guest.ip4)),
        &format!("{}/24 on the NIC of the isolated network", guest.ip4),
        &addresses,
    );
    // The other guest by the name its /etc/hosts line gives, on SSH's port:
    // the line resolves and the address is live.
    let other = GUESTS.iter().find(|g| g.vm != vm).unwrap();
    let reached = run(&format!(
        "getent hosts {name} && timeout 10 bash -c '</dev/tcp/{name}/22' && echo open",
        name = other.vm
    ));
    checks.check(
        vm,
        "the other guest by its /etc/hosts name",
        reached.starts_with(other.ip4) && reached.ends_with("open"),
        &format!(
            "{} resolves to {} and its port 22 answers",
            other.vm, other.ip4
        ),
        &reached,
    );

    // The workplace allows traffic only on loopback: a resolver from
    // passt's DHCP would send the guest's lookups to the host's resolver.
    let resolvers = run("grep '^nameserver' /etc/resolv.conf");
    checks.check(
        vm,
        "no DNS leaves the guest",
        resolvers
            .lines()
            .all(|l| l.trim() == "nameserver 127.0.0.1"),
        "only nameserver 127.0.0.1 in /etc/resolv.conf",
        &resolvers,
    );

    let disks = run("lsblk -b -d -n -o NAME,SIZE,TYPE,RO");
    let extra = disks.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() == 4
            && cols[1] == EXTRA_DISK_BYTES.to_string()
            && cols[2] == "disk"
            && cols[3] == "0"
    });
    checks.check(
        vm,
        "extra disk",
        extra,
        &format!("a {EXTRA_DISK_BYTES}-byte disk, not read-only, in `lsblk`"),
        &disks,
    );
    // Written and read back past the guest's page cache.
    let device = disks
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() == 4 && cols[1] == EXTRA_DISK_BYTES.to_string())
        .map_or("missing".to_string(), |cols| cols[0].to_string());
    let written = run(&format!(
        "sudo -n sh -c 'head -c 1048576 /dev/urandom > /tmp/lvlab-block \
         && dd if=/tmp/lvlab-block of=/dev/{device} bs=1M count=1 oflag=direct conv=fsync status=none \
         && dd if=/dev/{device} bs=1M count=1 iflag=direct status=none | cmp - /tmp/lvlab-block \
         && echo same'"
    ));
    checks.check(
        vm,
        "extra disk written",
        written == "same",
        &format!("1 MiB written to /dev/{device} reads back the same"),
        &written,
    );

    // The device model: the shared directory by its virtiofs tag, and the
    // guest agent's channel (ping, and the address `status` shows from it).
    let (shared_name, shared_text) = SHARED_FILE;
    let found = run(&format!(
        "sudo -n mkdir -p /mnt/{SHARE_TAG} && sudo -n mount -t virtiofs {SHARE_TAG} /mnt/{SHARE_TAG} \
         && cat /mnt/{SHARE_TAG}/{shared_name}"
    ));
    checks.check(
        vm,
        "shared directory",
        found == shared_text,
        &format!("`mount -t virtiofs {SHARE_TAG}` works and shows {shared_name}: `{shared_text}`"),
        &found,
    );
    let agent = virsh(&[
        "qemu-agent-command",
        &lab.domain(vm),
        r#"{"execute":"guest-ping"}"#,
    ]);
    checks.check(
        vm,
        "guest agent",
        agent.status.success() && String::from_utf8_lossy(&agent.stdout).contains("return"),
        "`virsh qemu-agent-command DOMAIN guest-ping` answers `{\"return\":{}}`",
        &text(&agent),
    );
    let guest_addresses = run("ip -4 -o addr show scope global");
    let row = lab
        .status()
        .into_iter()
        .find(|r| r["machine"] == vm)
        .unwrap_or_default();
    let shown: Vec<String> = row["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    checks.check(
        vm,
        "status shows the agent's address",
        shown
            .iter()
            .any(|a| a.contains('.') && guest_addresses.contains(&format!("inet {a}"))),
        "an IPv4 address of the guest in `lvlab status --json` (from the agent)",
        &format!("status: {shown:?}\nin the guest: {guest_addresses}"),
    );
}

#[test]
#[ignore = "real-guest tier: run by scripts/e2e.sh (needs LVLAB_E2E_IMAGE)"]
fn two_real_guests_come_up_with_their_seed_applied() {
    let image = PathBuf::from(std::env::var("LVLAB_E2E_IMAGE").expect(
        "LVLAB_E2E_IMAGE must name the guest image: run scripts/e2e.sh, \
         or scripts/e2e/build-image.sh and pass the path it prints",
    ));
    assert!(image.is_file(), "no guest image at {}", image.display());
    let load_before = load_average();
    // Declared before the lab: dropped after it has destroyed the guests.
    let network = IsolatedNetwork::start(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let lab = Lab::new(&image, &network);
    let mut checks = Checks::default();

    // The image through the real pipeline: download, checksum, signature.
    let init_started = Instant::now();
    let init = lab.lvlab(&["init"]);
    let init_secs = init_started.elapsed().as_secs_f64();
    assert!(init.status.success(), "lvlab init failed:\n{}", text(&init));
    eprintln!(
        "lvlab init after {init_secs:.1} s: {}",
        String::from_utf8_lossy(&init.stdout).trim()
    );
    check_image_record(&mut checks, &lab);

    let started = Instant::now();
    let up = up_and_wait(&lab, started);
    if !up.output.status.success()
        && !String::from_utf8_lossy(&up.output.stderr).contains("not reachable on SSH")
    {
        panic!("lvlab up --all --wait failed:\n{}", text(&up.output));
    }
    eprintln!(
        "lvlab up --all --wait returned after {:.1} s (domains running after {})",
        up.exited,
        up.running.map_or("-".into(), |s| format!("{s:.1} s"))
    );
    checks.check(
        "lab",
        "up reuses the verified image",
        lab.image_downloads() == 1,
        "one download of the image in all (by init)",
        &format!("{} requests for the image", lab.image_downloads()),
    );
    let status = lab.status();
    let ports: Vec<(&str, u16)> = GUESTS
        .iter()
        .filter_map(|g| {
            let row = status.iter().find(|r| r["machine"] == g.vm)?;
            let port = row["ssh"]
                .as_str()?
                .strip_prefix("127.0.0.1:")?
                .parse()
                .ok()?;
            Some((g.vm, port))
        })
        .collect();
    let passt_cpu = passt_cpu_seconds(&ports);
    let mut readiness = Vec::new();
    let mut answered = up.answered;
    for guest in &GUESTS {
        let row = status
            .iter()
            .find(|r| r["machine"] == guest.vm)
            .unwrap_or_else(|| panic!("{} missing from lvlab status", guest.vm));
        assert_eq!(row["state"], "running", "{row}");
        let port: u16 = row["ssh"]
            .as_str()
            .and_then(|s| s.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no SSH port for {} in status: {row}", guest.vm));
        check_image_mark(&mut checks, &lab, guest.vm);
        match answered.iter().position(|r| r.vm == guest.vm) {
            Some(i) => {
                let ready = answered.remove(i);
                checks.check(
                    guest.vm,
                    "`up --wait` names the SSH port",
                    ready.port == port,
                    &format!("port {port}, as `lvlab status` shows"),
                    &format!("port {}", ready.port),
                );
                readiness.push(ready);
            }
            None => {
                let console = lab.logs.join(format!("{}.console.log", guest.vm));
                let why = format!(
                    "`lvlab up --all --wait` did not say it answers; it said: {}\n{}",
                    String::from_utf8_lossy(&up.output.stderr).trim(),
                    console_net_info(&console)
                );
                readiness.push(Readiness {
                    vm: guest.vm,
                    port,
                    ssh_ready: Err(why),
                    login: Err("SSH was never reachable".into()),
                    cloud_init: Err("SSH was never reachable".into()),
                });
            }
        }
    }

    eprintln!("in-guest checks:");
    for (guest, ready) in GUESTS.iter().zip(&readiness) {
        let reachable = checks.check(
            guest.vm,
            "SSH reachable",
            ready.ssh_ready.is_ok(),
            &format!(
                "`lvlab up --all --wait` says it answers on 127.0.0.1:{}",
                ready.port
            ),
            ready.ssh_ready.as_ref().err().map_or("", String::as_str),
        );
        if !reachable {
            continue;
        }
        let login = checks.check(
            guest.vm,
            "SSH login with the test's key",
            ready.login.is_ok(),
            &format!(
                "`ssh -p {} {USER}@127.0.0.1` logs in with the key",
                ready.port
            ),
            ready.login.as_ref().err().map_or("", String::as_str),
        );
        if !login {
            continue;
        }
        let cloud_init = ready
            .cloud_init
            .as_ref()
            .map(|(_, out)| out.clone())
            .unwrap_or_else(|e| e.clone());
        check_guest(&mut checks, &lab, guest, ready.port, &cloud_init);
    }

    // Shut down by ACPI, no force: a real guest must stop in time.
    let down_started = Instant::now();
    let down = lab.lvlab(&["down", "--timeout", "180"]);
    let down_secs = down_started.elapsed().as_secs_f64();
    let states: Vec<String> = lab
        .status()
        .iter()
        .map(|r| format!("{}={}", r["machine"], r["state"]))
        .collect();
    checks.check(
        "lab",
        "ACPI shutdown (lvlab down, no --force)",
        down.status.success() && states.iter().all(|s| s.ends_with("\"shut off\"")),
        "every guest shut off within 180 s",
        &format!("{}\n{}", states.join(" "), text(&down)),
    );

    let destroy = lab.lvlab(&["destroy", "--force"]);
    let left = lab.domains();
    checks.check(
        "lab",
        "destroy leaves no domain",
        destroy.status.success() && left.is_empty(),
        "no domain of the environment in `virsh list --all`",
        &format!("{left:?}\n{}", text(&destroy)),
    );
    let env_dir = lab.dir.path().join("vms").join(&lab.env);
    checks.check(
        "lab",
        "destroy leaves no file",
        !env_dir.exists(),
        &format!("{} removed", env_dir.display()),
        &format!("{} still exists", env_dir.display()),
    );

    eprintln!("\nfigures (TCG, seconds from the start of `lvlab up --all --wait`):");
    eprintln!("  init (download, verify)   {init_secs:6.1}");
    eprintln!(
        "  domains running           {:>6}",
        up.running.map_or("-".into(), |s| format!("{s:.1}"))
    );
    eprintln!("  up --all --wait returned  {:6.1}", up.exited);
    for ready in &readiness {
        let show = |r: Result<f64, &String>| r.map_or("-".to_string(), |s| format!("{s:.1}"));
        eprintln!(
            "  {:<6} SSH ready {:>6}   login {:>6}   cloud-init done {:>6}",
            ready.vm,
            show(ready.ssh_ready.as_ref().copied()),
            show(ready.login.as_ref().copied()),
            show(ready.cloud_init.as_ref().map(|(s, _)| *s)),
        );
    }
    let sshd: Vec<String> = up
        .sshd_started
        .iter()
        .map(|(vm, at)| {
            format!(
                "{vm} {}",
                at.get().map_or("-".into(), |s| format!("{s:.1}"))
            )
        })
        .collect();
    eprintln!("  console shows sshd started: {}", sshd.join(", "));
    eprintln!("  down (ACPI, both guests)  {down_secs:6.1}");
    eprintln!("  passt CPU seconds when up returned: {passt_cpu}");
    eprintln!(
        "  host load average before / after: {load_before} / {}",
        load_average()
    );
    eprintln!(
        "\n{} checks passed, {} failed",
        checks.passed,
        checks.failed.len()
    );

    if !checks.failed.is_empty() {
        for guest in &GUESTS {
            eprintln!(
                "{}'s serial console: {}",
                guest.vm,
                lab.logs.join(format!("{}.console.log", guest.vm)).display()
            );
        }
        let report: Vec<String> = checks.failed.iter().map(|f| format!("  {f}")).collect();
        panic!(
            "{} of {} real-guest checks failed:\n{}",
            checks.failed.len(),
            checks.passed + checks.failed.len(),
            report.join("\n")
        );
    }
    // A check dropped by a refactor (or a guest whose checks never ran)
    // must not leave a green tier behind.
    let ran = checks.passed + checks.failed.len();
    assert!(
        ran >= EXPECTED_CHECKS,
        "the real-guest tier ran {ran} checks, expected at least {EXPECTED_CHECKS}"
    );
}

/// The verification record `init` left beside the cached image names the
/// digest the publisher signed and the key that signed it.
fn check_image_record(checks: &mut Checks, lab: &Lab) {
    let path = lab.cache().join(format!("{}.lvlab.json", lab.image_file));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let current = record["current"].as_str().unwrap_or("");
    let file = &record["files"][current];
    let shown = if text.is_empty() {
        format!("no record at {}", path.display())
    } else {
        text.clone()
    };
    checks.check(
        "image",
        "cached and verified",
        current == lab.image_file
            && lab.cache().join(current).is_file()
            && file["verified"] == true
            && file["digest"]["algorithm"] == "sha512"
            && file["digest"]["hex"] == lab.digest.as_str(),
        &format!(
            "{} verified, with the published sha512 {}...",
            lab.image_file,
            &lab.digest[..16]
        ),
        &shown,
    );
    let signature = &file["signature"];
    checks.check(
        "image",
        "signature recorded",
        signature["key_fingerprint"]
            .as_str()
            .is_some_and(|f| f.eq_ignore_ascii_case(&lab.fingerprint))
            && signature["signature"] == lab.server.url("images/SHA512SUMS.gpg").as_str()
            && signature["keys"] == lab.server.url("keys/signer.asc").as_str(),
        &format!(
            "SHA512SUMS.gpg checked against the served key {}",
            lab.fingerprint
        ),
        &signature.to_string(),
    );
}

/// The domain's lvlab metadata carries the image key and its verified digest.
fn check_image_mark(checks: &mut Checks, lab: &Lab, vm: &str) {
    let out = virsh(&["dumpxml", &lab.domain(vm)]);
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    let found = roxmltree::Document::parse(&xml).ok().and_then(|doc| {
        doc.descendants()
            .find(|n| {
                n.tag_name().namespace() == Some("urn:lvlab:machine:1")
                    && n.tag_name().name() == "image"
            })
            .map(|n| {
                (
                    n.attribute("key").unwrap_or("").to_string(),
                    n.attribute("digest").unwrap_or("").to_string(),
                )
            })
    });
    let expected = format!("sha512:{}", lab.digest);
    checks.check(
        vm,
        "domain metadata names the verified image",
        found
            .as_ref()
            .is_some_and(|(key, digest)| key == "e2e" && *digest == expected),
        &format!(
            "<lvlab:image key='e2e' digest='sha512:{}...'/>",
            &lab.digest[..16]
        ),
        &found.map_or_else(
            || format!("no lvlab:image element in `virsh dumpxml`:\n{}", text(&out)),
            |(key, digest)| format!("key='{key}' digest='{digest}'"),
        ),
    );
}

/// The host's 1, 5 and 15 minute load averages (other work on the host
/// slows TCG guests: read the figures with them).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// CPU seconds each guest's passt process has used so far, found by the
/// guest's forwarded SSH port in its command line.
fn passt_cpu_seconds(ports: &[(&str, u16)]) -> String {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = entry.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head
            .split_once(" (")
            .is_some_and(|(_, comm)| comm.starts_with("passt"))
        {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let Some((vm, _)) = ports
            .iter()
            .find(|(_, port)| cmdline.contains(&format!("{port}:22")))
        else {
            continue;
        };
        // After the command name: state is field 3; utime, stime 14 and 15.
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks = fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0);
        found.push(format!("{vm} {:.1}", ticks as f64 / 100.0));
    }
    if found.is_empty() {
        "(no passt process found)".into()
    } else {
        found.sort();
        found.join(", ")
    }
}
