//! The real-guest tier: two Debian 12 guests built here
//! (`scripts/e2e/build-image.sh`) booted by lvlab on `qemu:///session`
//! under TCG with passt NICs, then checked from the inside over SSH on
//! 127.0.0.1: hostname and FQDN, the user with the test's key and
//! passwordless sudo, each `runcmd` effect, the environment's `/etc/hosts`
//! snippet, cloud-init done from the NoCloud seed without errors, the extra
//! disk as a block device; then an ACPI `down` (no `--force`) and a
//! `destroy --force` that leaves nothing behind.
//!
//! Ignored by the fast `cargo test`; `scripts/e2e.sh` builds (or finds) the
//! image and runs it:
//!
//! ```sh
//! LVLAB_E2E_IMAGE=/var/cache/lvlab-e2e/<digest>/lvlab-e2e-debian12.qcow2 \
//!     cargo test --test e2e_guest -- --ignored --nocapture
//! ```
//!
//! Knobs: `LVLAB_E2E_SSH_TIMEOUT` (seconds to wait for each guest's SSH,
//! default 600); `LVLAB_E2E_BREAK=mac|userdata` breaks guest `beta`'s seed
//! on purpose (a network-config matching a MAC the guest does not have, or
//! a user-data that is not `#cloud-config`) to show the failure messages;
//! `LVLAB_E2E_PENDING=1` also runs the checks that wait for the lead's work
//! (shared directory over virtiofs, guest agent channel).
//!
//! Every check says what it expected and what it found; all checks run and
//! fail together at the end. Each guest's serial console is kept in
//! `target/tmp/e2e-guest/<guest>.console.log`. A guard destroys the lab
//! even when a check fails.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "labuser";
const DOMAIN: &str = "lab.test";
const EXTRA_DISK_BYTES: u64 = 64 * 1024 * 1024;

/// One guest of the lab, as the manifest names it.
struct Guest {
    vm: &'static str,
    /// What this guest's own `runcmd` leaves behind: (file, content).
    marker: (&'static str, &'static str),
}

const GUESTS: [Guest; 2] = [
    Guest {
        vm: "alpha",
        marker: ("/var/tmp/lvlab-alpha", "alpha was here"),
    },
    Guest {
        vm: "beta",
        marker: ("/var/tmp/lvlab-beta", "beta was here"),
    },
];

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

/// The lab on disk: manifest, key, image cache, VM directories.
struct Lab {
    dir: tempfile::TempDir,
    env: String,
    logs: PathBuf,
}

impl Lab {
    fn new(image: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lvlab-e2e-guest.")
            .tempdir_in("/var/tmp")
            .unwrap();
        let env = format!("e2e{}", std::process::id());
        let file_name = image.file_name().unwrap().to_str().unwrap().to_string();

        // The image pipeline is not wired into apply yet: an image whose file
        // is already in the cache is used as it is.
        let cache = dir.path().join("cache/cloud-images");
        std::fs::create_dir_all(&cache).unwrap();
        let cached = cache.join(&file_name);
        if std::fs::hard_link(image, &cached).is_err() {
            std::fs::copy(image, &cached).unwrap();
        }

        let key = dir.path().join("id_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "lvlab-e2e", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client) is installed by scripts/setup.sh");
        assert!(keygen.success(), "ssh-keygen failed");

        let pending = pending_enabled();
        if pending {
            let share = dir.path().join("share");
            std::fs::create_dir_all(&share).unwrap();
            std::fs::write(share.join("hello.txt"), "shared from the host\n").unwrap();
        }
        let shared = if pending {
            "      shared_directories: [{source: ./share, mount_tag: labshare}]\n"
        } else {
            ""
        };
        let image_dir = image.parent().unwrap().display();
        let (file_a, text_a) = GUESTS[0].marker;
        let (file_b, text_b) = GUESTS[1].marker;
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
{shared}      interfaces:
        network_type: passt
        ssh_port: auto
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
        cloud_init:
          runcmd:
            - [sh, -c, 'echo \"$1\" > \"$2\"', marker, {text_a}, {file_a}]
      - vm_name: beta
        cloud_init:
          runcmd:
            - [sh, -c, 'echo \"$1\" > \"$2\"', marker, {text_b}, {file_b}]
images:
  e2e:
    image_url: {image_dir}/{file_name}
    os_variant: debian12
    username: debian
"
        );
        std::fs::write(dir.path().join("Lvlab.yml"), manifest).unwrap();

        let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-guest");
        std::fs::create_dir_all(&logs).unwrap();
        Self { dir, env, logs }
    }

    fn lvlab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lvlab"))
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
    fn record_consoles(&self) {
        for guest in &GUESTS {
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
                while let Ok(n) = input.read(&mut buf) {
                    if n == 0 || output.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
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

fn pending_enabled() -> bool {
    std::env::var("LVLAB_E2E_PENDING").is_ok_and(|v| v == "1")
}

fn ssh_timeout() -> Duration {
    let secs = std::env::var("LVLAB_E2E_SSH_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// One probe of an SSH server behind passt: send our identification first
/// (bookworm's passt forwards nothing to a client that only waits for the
/// banner), then read the server's. Returns the banner, or what went wrong.
fn ssh_banner(port: u16) -> Result<String, String> {
    let timeout = Duration::from_secs(5);
    let addr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream
        .write_all(b"SSH-2.0-lvlab_e2e_probe\r\n")
        .map_err(|e| e.to_string())?;
    let mut banner = Vec::new();
    let mut byte = [0u8; 1];
    while banner.len() < 255 {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => banner.push(byte[0]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("connected, but no banner within 5 s".into())
            }
            Err(e) => return Err(format!("no banner: {e}")),
        }
    }
    let banner = String::from_utf8_lossy(&banner).trim().to_string();
    if banner.starts_with("SSH-") {
        Ok(banner)
    } else if banner.is_empty() {
        Err("connection closed before any banner".into())
    } else {
        Err(format!("not an SSH banner: {banner:?}"))
    }
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
    /// Seconds from the start of `up` to the first SSH banner.
    ssh_ready: Result<f64, String>,
    /// Seconds from the start of `up` to a working login with the key.
    login: Result<f64, String>,
    /// Seconds from the start of `up` to `cloud-init status --wait`
    /// returning, and what it printed.
    cloud_init: Result<(f64, String), String>,
}

/// How long the probes wait for the console to show sshd started before
/// they start anyway (a console that could not be read, say).
const CONSOLE_GRACE: Duration = Duration::from_secs(240);

/// Whether the guest's console shows systemd starting sshd.
fn console_shows_sshd(console: &Path) -> bool {
    std::fs::read(console).is_ok_and(|bytes| {
        String::from_utf8_lossy(&bytes)
            .lines()
            .any(|l| l.contains("Started") && l.contains("ssh.service"))
    })
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

fn wait_for_guest(
    vm: &'static str,
    port: u16,
    key: PathBuf,
    console: PathBuf,
    started: Instant,
) -> Readiness {
    let deadline = started + ssh_timeout();
    let mut ready = Readiness {
        vm,
        port,
        ssh_ready: Err("never probed".into()),
        login: Err("SSH was never reachable".into()),
        cloud_init: Err("SSH was never reachable".into()),
    };
    // A connection through bookworm's passt to a guest whose network is not
    // up yet makes passt spin at up to a full core until the guest answers
    // (measured: 38 s of CPU during a 50 s boot), which slows TCG guests on
    // a 2-core host. So probe only once the console shows sshd starting.
    while !console_shows_sshd(&console)
        && started.elapsed() < CONSOLE_GRACE
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_secs(1));
    }
    loop {
        match ssh_banner(port) {
            Ok(banner) => {
                let at = started.elapsed().as_secs_f64();
                eprintln!("{vm}: SSH banner after {at:.0} s: {banner}");
                ready.ssh_ready = Ok(at);
                break;
            }
            Err(last) if Instant::now() > deadline => {
                ready.ssh_ready = Err(format!(
                    "no SSH banner on 127.0.0.1:{port} within {} s; last probe: {last}; {}",
                    ssh_timeout().as_secs(),
                    console_net_info(&console)
                ));
                return ready;
            }
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
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
        ready.cloud_init = Err("could not log in".into());
        return ready;
    }
    let out = ssh(&key, port, "cloud-init status --wait --long");
    let at = started.elapsed().as_secs_f64();
    eprintln!("{vm}: cloud-init finished after {at:.0} s");
    ready.cloud_init = Ok((at, text(&out)));
    ready
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

    let snippet = format!(
        "# Libvirt Labs /etc/hosts snippet\n# Environment: {}",
        lab.env
    );
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
        &format!("a writable {EXTRA_DISK_BYTES}-byte disk in `lsblk`"),
        &disks,
    );

    if pending_enabled() {
        // PENDING (the lead's device model): virtiofs shares and the guest
        // agent channel. Enabled with LVLAB_E2E_PENDING=1.
        let found = run(
            "sudo -n mkdir -p /mnt/labshare && sudo -n mount -t virtiofs labshare /mnt/labshare \
             && cat /mnt/labshare/hello.txt",
        );
        checks.check(
            vm,
            "shared directory (pending)",
            found == "shared from the host",
            "virtiofs tag `labshare` mounts and shows hello.txt",
            &found,
        );
        let agent = virsh(&[
            "qemu-agent-command",
            &lab.domain(vm),
            r#"{"execute":"guest-ping"}"#,
        ]);
        checks.check(
            vm,
            "guest agent (pending)",
            agent.status.success(),
            "`virsh qemu-agent-command DOMAIN guest-ping` answers",
            &text(&agent),
        );
    }
}

#[test]
#[ignore = "real-guest tier: run by scripts/e2e.sh (needs LVLAB_E2E_IMAGE)"]
fn two_real_guests_come_up_with_their_seed_applied() {
    let image = PathBuf::from(std::env::var("LVLAB_E2E_IMAGE").expect(
        "LVLAB_E2E_IMAGE must name the guest image: run scripts/e2e.sh, \
         or scripts/e2e/build-image.sh and pass the path it prints",
    ));
    assert!(image.is_file(), "no guest image at {}", image.display());
    let lab = Lab::new(&image);
    let mut checks = Checks::default();

    let started = Instant::now();
    let up = lab.lvlab(&["up", "--all"]);
    let up_secs = started.elapsed().as_secs_f64();
    assert!(up.status.success(), "lvlab up --all failed:\n{}", text(&up));
    eprintln!("lvlab up --all returned after {up_secs:.1} s");
    if let Ok(how) = std::env::var("LVLAB_E2E_BREAK") {
        lab.break_seed(&how);
    }
    lab.record_consoles();

    let status = lab.status();
    let mut waits = Vec::new();
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
        let key = lab.key();
        let vm = guest.vm;
        let console = lab.logs.join(format!("{vm}.console.log"));
        waits.push(std::thread::spawn(move || {
            wait_for_guest(vm, port, key, console, started)
        }));
    }
    let readiness: Vec<Readiness> = waits.into_iter().map(|w| w.join().unwrap()).collect();

    eprintln!("in-guest checks:");
    for (guest, ready) in GUESTS.iter().zip(&readiness) {
        let reachable = checks.check(
            guest.vm,
            "SSH reachable",
            ready.ssh_ready.is_ok(),
            &format!("an SSH banner on 127.0.0.1:{}", ready.port),
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

    eprintln!("\nfigures (TCG, seconds from the start of `lvlab up --all`):");
    eprintln!("  up --all returned        {up_secs:6.1}");
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
    eprintln!("  down (ACPI, both guests)  {down_secs:6.1}");
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
}
