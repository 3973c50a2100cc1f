//! The lab of the tier: its two guests, the manifest that makes them, the
//! published image, the isolated network of their second NIC, and the
//! tools the checks reach them with (`lvlab`, `virsh`, `ssh`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::{gpg, http, run};

pub const USER: &str = "labuser";
pub const DOMAIN: &str = "lab.test";
pub const EXTRA_DISK_BYTES: u64 = 64 * 1024 * 1024;

/// One guest of the lab, as the manifest names it.
pub struct Guest {
    pub vm: &'static str,
    /// What this guest's own `runcmd` leaves behind: (file, content).
    pub marker: (&'static str, &'static str),
    /// Its static IPv4 address on the lab's isolated network.
    pub ip4: &'static str,
    /// A console password in its seed: the guest `lvlab passwd` is
    /// checked on (the others have `password: false`).
    pub password: bool,
    /// The guest `lvlab snapshot` create and revert are checked on.
    pub snapshots: bool,
    /// The guest with a `provision:` list, checked to run once and again
    /// only with `--reprovision`.
    pub provision: bool,
}

pub const GUESTS: [Guest; 2] = [
    Guest {
        vm: "alpha",
        marker: ("/var/tmp/lvlab-alpha", "alpha was here"),
        ip4: "198.18.0.11",
        password: false,
        snapshots: true,
        provision: false,
    },
    Guest {
        vm: "beta",
        marker: ("/var/tmp/lvlab-beta", "beta was here"),
        ip4: "198.18.0.12",
        password: true,
        snapshots: false,
        provision: true,
    },
];

/// The host's address on the isolated network (198.18.0.0/15 is RFC 2544's
/// benchmarking range: no private LAN uses it, nothing routes it).
const NETWORK_HOST: &str = "198.18.0.1";

/// What the defaults' `runcmd` (a shell string) writes on every guest.
pub const DEFAULT_RUNCMD_FILE: &str = "/var/tmp/lvlab-runcmd";

/// Who signs the checksum file (a GnuPG user id the test makes).
const SIGNER: &str = "lvlab-e2e-signer";
/// The shared directory's virtiofs tag and the file the test puts in it.
pub const SHARE_TAG: &str = "labshare";
pub const SHARED_FILE: (&str, &str) = ("hello.txt", "shared from the host");

/// The lab on disk: manifest, key, image cache, VM directories; and the
/// HTTP server the image is published on.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub env: String,
    /// Where each guest's serial console is kept.
    pub logs: PathBuf,
    pub server: http::Server,
    /// The image's file name, as published and as cached.
    pub image_file: String,
    /// The published SHA-512 of the image (from its `SHA512SUMS`).
    pub digest: String,
    /// The fingerprint of the key that signed `SHA512SUMS`.
    pub fingerprint: String,
}

impl Lab {
    pub fn new(image: &Path, network: &IsolatedNetwork) -> Self {
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

        // Each guest: SSH forwarded by passt, its static address on the
        // isolated network, a `runcmd` of its own leaving its marker, and
        // a console password or none (the defaults' `password: false`).
        let network = &network.name;
        let machines: String = GUESTS
            .iter()
            .map(|guest| {
                let (vm, ip4, (file, text)) = (guest.vm, guest.ip4, guest.marker);
                let password = guest.password;
                let provision = if guest.provision {
                    format!(
                        "        provision: {}\n",
                        crate::provision_checks::PROVISION
                    )
                } else {
                    String::new()
                };
                format!(
                    "      - vm_name: {vm}
{provision}        interfaces:
          - {{ssh_port: auto}}
          - {{network_type: network, network: {network}, ip4: {ip4}/24}}
        cloud_init:
          password: {password}
          runcmd:
            - [sh, -c, 'echo \"$1\" > \"$2\"', marker, {text}, {file}]
"
                )
            })
            .collect();
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
{machines}images:
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
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/cloud-images")
    }

    /// How many times the image itself was requested from the server.
    pub fn image_downloads(&self) -> usize {
        self.server
            .requests_for(&format!("images/{}", self.image_file))
            .len()
    }

    pub fn lvlab(&self, args: &[&str]) -> Output {
        run::lvlab(self.dir.path()).args(args).output().unwrap()
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    pub fn pubkey(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("id_ed25519.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn domain(&self, vm: &str) -> String {
        format!("{vm}_{}", self.env)
    }

    pub fn vm_dir(&self, vm: &str) -> PathBuf {
        self.dir.path().join("vms").join(&self.env).join(vm)
    }

    /// The libvirt domains of this lab's environment, whatever their state.
    pub fn domains(&self) -> Vec<String> {
        let out = virsh(&["list", "--all", "--name"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(&format!("_{}", self.env)))
            .map(str::to_string)
            .collect()
    }

    /// `lvlab status --json`: each machine's state and SSH address.
    pub fn status(&self) -> Vec<serde_json::Value> {
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
    pub fn record_consoles(&self, started: Instant) -> Vec<(&'static str, Arc<OnceLock<f64>>)> {
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
    pub fn break_seed(&self, how: &str) {
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
pub struct IsolatedNetwork {
    pub name: String,
}

impl IsolatedNetwork {
    pub fn start(dir: &Path) -> Self {
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

pub fn virsh(args: &[&str]) -> Output {
    Command::new("virsh")
        .args(["-c", "qemu:///session"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("virsh (libvirt-clients) is installed by scripts/setup.sh")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `command` in the guest as the lab's user with the test's key.
pub fn ssh(key: &Path, port: u16, command: &str) -> Output {
    ssh_as(key, &format!("{USER}@127.0.0.1"), port, command)
}

/// Runs `command` at `target` (`user@address`) on `port` with `key` only,
/// no host key check (a test guest's key is new every run).
pub fn ssh_as(key: &Path, target: &str, port: u16, command: &str) -> Output {
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
        .arg(target)
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .expect("ssh (openssh-client) is installed by scripts/setup.sh")
}
