//! The real-guest check of `lvlab passwd`: in a guest whose
//! qemu-guest-agent runs, the new password replaces the user's entry in
//! `/etc/shadow`, and that entry is the crypt hash of the password lvlab
//! showed (checked on the host with `openssl passwd -6`, so no terminal is
//! needed for `su`). For the real-guest tier (tests/e2e_guest.rs) to call.
//!
//! Self-contained: the caller passes the lab's lvlab command (`-C` the
//! lab's directory, its state directory and environment set) and a way to
//! run a command in the guest over SSH as a user with passwordless sudo
//! (lvlab's default `sudo` rule).

// The real-guest tier uses all of this; other files may not.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `lvlab passwd vm --user user --show-passwords` and checks that the
/// guest's `/etc/shadow` then holds the hash of the password it showed.
/// `ssh(command)` runs `command` in the guest.
pub fn check_passwd(
    mut lvlab: Command,
    vm: &str,
    user: &str,
    ssh: impl Fn(&str) -> Output,
) -> Result<(), String> {
    let before = shadow_hash(&ssh, user)?;
    let out = lvlab
        .args(["passwd", vm, "--user", user, "--show-passwords"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run lvlab: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("lvlab passwd {vm} failed: {stderr}"));
    }
    let password = shown_password(&stderr)
        .ok_or_else(|| format!("lvlab passwd showed no password: {stderr}"))?;
    let after = shadow_hash(&ssh, user)?;
    if after == before {
        return Err(format!("{user}'s entry in /etc/shadow did not change"));
    }
    let expected = crypt_like(&after, password)?;
    if expected != after {
        return Err(format!(
            "/etc/shadow holds {after} for {user}, not the hash of the password shown \
             ({expected})"
        ));
    }
    Ok(())
}

/// The password in `New console password for VM (user U): PASSWORD  (...)`.
pub fn shown_password(stderr: &str) -> Option<&str> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("New console password for "))?;
    line.split_once("): ")?.1.split_whitespace().next()
}

/// `user`'s password field in the guest's `/etc/shadow`.
fn shadow_hash(ssh: &impl Fn(&str) -> Output, user: &str) -> Result<String, String> {
    let out = ssh(&format!("sudo -n getent shadow {user}"));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "cannot read {user}'s shadow entry: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    text.trim()
        .split(':')
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| format!("no shadow entry for {user}: {text}"))
}

/// The SHA-512 crypt hash of `password` with the salt (and rounds) of
/// `hash`: `$6$[rounds=N$]SALT$...`.
pub fn crypt_like(hash: &str, password: &str) -> Result<String, String> {
    let salt = hash
        .strip_prefix("$6$")
        .and_then(|rest| rest.rsplit_once('$'))
        .map(|(salt, _digest)| salt)
        .ok_or_else(|| format!("not a SHA-512 crypt hash: {hash}"))?;
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(format!("{password}\n").as_bytes())
        .map_err(|e| format!("cannot write to openssl: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl failed: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
