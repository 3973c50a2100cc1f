//! Real-guest checks of `lvlab ssh` and `lvlab ssh-config`, for the
//! real-guest tier (`tests/e2e_guest.rs`) to run on each guest once it
//! answers on SSH and its cloud-init is done: `lvlab ssh VM -- CMD` runs
//! CMD and exits with its code, the guest's host key is the one lvlab made
//! (strict checking, nothing trusted on first use), and `ssh -F` with
//! `lvlab ssh-config --strict-host-keys` logs in.
//!
//! Each check is returned, passed or not, with what was expected and
//! found, for the tier's own reporting.

// The tier uses these; `tests/ssh_access.rs` only compiles them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// One check's outcome.
pub struct SshCheck {
    pub check: &'static str,
    pub ok: bool,
    pub expected: String,
    pub found: String,
}

/// How many checks [`ssh_checks`] makes per guest.
pub const SSH_CHECKS_PER_GUEST: usize = 6;

/// `lvlab -C dir ARGS`, as the tier runs it.
fn lvlab(binary: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env("NO_COLOR", "1")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs the checks on machine `vm` of the manifest in `dir` with the lvlab
/// at `binary`. `hostname` is the guest's expected short hostname.
pub fn ssh_checks(binary: &Path, dir: &Path, vm: &str, hostname: &str) -> Vec<SshCheck> {
    let mut checks = Vec::with_capacity(SSH_CHECKS_PER_GUEST);
    let run = |args: &[&str]| lvlab(binary, dir, args);

    let out = run(&["ssh", vm, "--", "hostname"]);
    checks.push(SshCheck {
        check: "`lvlab ssh VM -- hostname` runs it in the guest",
        ok: out.status.success() && stdout(&out) == hostname,
        expected: format!("exit 0 and `{hostname}`"),
        found: format!("exit {:?}: {}", out.status.code(), text(&out)),
    });

    let out = run(&["ssh", vm, "--", "exit", "3"]);
    checks.push(SshCheck {
        check: "`lvlab ssh VM -- exit 3` exits 3",
        ok: out.status.code() == Some(3),
        expected: "exit 3".into(),
        found: format!("exit {:?}: {}", out.status.code(), text(&out)),
    });

    let out = run(&["ssh", vm, "--print"]);
    let line = stdout(&out);
    checks.push(SshCheck {
        check: "`lvlab ssh` checks the host key strictly against lvlab's known_hosts",
        ok: line.contains("StrictHostKeyChecking=yes") && line.contains("HostKeyAlias="),
        expected: "StrictHostKeyChecking=yes and a HostKeyAlias".into(),
        found: text(&out),
    });

    let vm_dir = lab_vm_dir(binary, dir, vm);
    let known = std::fs::read_to_string(vm_dir.join("known_hosts")).unwrap_or_default();
    let known_key = known
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string();
    // cloud-init writes the public half of `ssh_keys` 0600 too: sudo.
    let out = run(&[
        "ssh",
        vm,
        "--",
        "sudo",
        "-n",
        "cat",
        "/etc/ssh/ssh_host_ed25519_key.pub",
    ]);
    let guest_key = stdout(&out)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    checks.push(SshCheck {
        check: "the guest's host key is the one lvlab made",
        ok: !known_key.is_empty() && guest_key == known_key,
        expected: format!("ssh-ed25519 {known_key}"),
        found: text(&out),
    });

    let config = run(&["ssh-config", "--strict-host-keys", vm]);
    let file = dir.join(format!("ssh_config.{vm}"));
    std::fs::write(&file, &config.stdout).unwrap();
    checks.push(SshCheck {
        check: "`lvlab ssh-config --strict-host-keys VM` prints its block",
        ok: config.status.success() && stdout(&config).contains(&format!("Host {vm} ")),
        expected: format!("exit 0 and `Host {vm} ...`"),
        found: text(&config),
    });

    let out = Command::new("ssh")
        .arg("-F")
        .arg(&file)
        .args(["-o", "BatchMode=yes", vm, "hostname"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ssh: {e}"));
    checks.push(SshCheck {
        check: "`ssh -F <lvlab ssh-config>` logs in with the strict host key check",
        ok: out.status.success() && stdout(&out) == hostname,
        expected: format!("exit 0 and `{hostname}`"),
        found: format!("exit {:?}: {}", out.status.code(), text(&out)),
    });
    checks
}

/// The machine's VM directory: the parent of the known_hosts file
/// `lvlab ssh-config --json` names (empty when it names none).
fn lab_vm_dir(binary: &Path, dir: &Path, vm: &str) -> std::path::PathBuf {
    let out = lvlab(binary, dir, &["ssh-config", "--json", vm]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    json[0]["known_hosts"]
        .as_str()
        .and_then(|p| Path::new(p).parent())
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
