//! A "remote" libvirt host for tests: this machine's libvirtd, reached
//! through an sshd the test starts on 127.0.0.1 with its own host key and
//! a client key made for it, so `qemu+ssh://root@127.0.0.1:PORT/system`
//! really crosses libvirt's remote protocol over SSH. The sshd's log
//! proves each connection went through it, not to the local socket.
//!
//! Needs root (the sshd logs in as root, as `qemu:///system` needs) and
//! `/usr/sbin/sshd` (openssh-server, installed by `scripts/setup.sh`).

// Each test file uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RemoteHost {
    dir: tempfile::TempDir,
    pub port: u16,
    sshd: Child,
}

const SSHD: &str = "/usr/sbin/sshd";

impl RemoteHost {
    /// Starts the sshd and waits until it listens. Panics with the reason
    /// when this machine cannot serve one (not root, no sshd).
    pub fn start() -> Self {
        assert!(
            is_root(),
            "the remote-host tests log in as root through their own sshd: run them as root"
        );
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} is missing: run scripts/setup.sh (it installs openssh-server)"
        );
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("client_key"));
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // sshd refuses to start without its privilege separation directory,
        // which only its init script makes.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(&config, sshd_config(dir.path(), port)).unwrap();
        let sshd = Command::new(SSHD)
            .args(["-D", "-f"])
            .arg(&config)
            .arg("-E")
            .arg(dir.path().join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let host = Self { dir, port, sshd };
        host.wait_listening();
        host
    }

    /// The libvirt URI of this host's `path` daemon (`system` or
    /// `session`), with the test's key and no host key check.
    pub fn uri(&self, path: &str) -> String {
        format!(
            "qemu+ssh://root@127.0.0.1:{}/{path}?keyfile={}&no_verify=1",
            self.port,
            self.keyfile().display()
        )
    }

    /// The private key that logs in as root.
    pub fn keyfile(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many logins the sshd accepted so far.
    pub fn logins(&self) -> usize {
        self.log().matches("Accepted publickey for root").count()
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test sshd did not listen on 127.0.0.1:{} within 10 s; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {dir}/host_key\n\
         PidFile none\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         StrictModes no\n\
         UsePAM no\n\
         AllowTcpForwarding yes\n\
         LogLevel VERBOSE\n"
    )
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// A loopback port nothing listens on now (the sshd binds it a moment
/// later; a clash fails the wait with the sshd's log).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Where tests keep files a `qemu:///system` domain or pool uses: QEMU
/// runs there as `libvirt-qemu`, which cannot enter a 0700 tempdir.
pub const SYSTEM_READABLE: &str = "/var/lib/libvirt/lvlab-tests";

/// `SYSTEM_READABLE/<name>`, made (with its parent) mode 0755; the caller
/// removes it.
pub fn system_readable_dir(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(SYSTEM_READABLE).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for open in [Path::new(SYSTEM_READABLE), &dir] {
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// What `virsh -c qemu:///system -q ARGS` prints (the system daemon the
/// remote-host tests reach over SSH), whatever its exit status.
pub fn system_virsh(args: &[&str]) -> String {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system", "-q"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("virsh (libvirt-clients) is installed by scripts/setup.sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes from the system daemon what a failed test may have left: the
/// domains of environment `env`, and the pools whose directory is `dir`
/// or below it; then `dir` itself.
pub fn remove_system_leftovers(env: &str, dir: &Path) {
    for name in system_virsh(&["list", "--all", "--name"]).lines() {
        if name.trim().ends_with(&format!("_{env}")) {
            system_virsh(&["destroy", name.trim()]);
            system_virsh(&["undefine", name.trim()]);
        }
    }
    for pool in system_virsh(&["pool-list", "--all", "--name"]).lines() {
        let pool = pool.trim();
        let xml = system_virsh(&["pool-dumpxml", pool]);
        let target = xml
            .split_once("<path>")
            .and_then(|(_, rest)| rest.split_once("</path>"))
            .map(|(path, _)| PathBuf::from(path));
        if !pool.is_empty() && target.is_some_and(|t| t.starts_with(dir)) {
            system_virsh(&["pool-destroy", pool]);
            system_virsh(&["pool-undefine", pool]);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
