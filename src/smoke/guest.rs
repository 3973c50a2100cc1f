//! The smoke test's checks inside the guest, over SSH with the system's
//! `ssh` on the command line `lvlab ssh` runs ([`crate::access::ssh`]):
//! the machine's user, the run's key, its address and port, and its host
//! key checked against the one lvlab made for it. Each check is one
//! command and a pure judgement of what it printed.

use std::ffi::OsString;
use std::process::{Command, Stdio};

use crate::access::{self, MachineReach};

/// How long cloud-init may still run once SSH answers (it finishes some
/// 15 s after sshd starts on a TCG guest).
const CLOUD_INIT_TIMEOUT_SECS: u32 = 300;

/// What one command in the guest gave.
pub struct Answer {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The machine as `ssh` reaches it.
pub struct Guest {
    reach: MachineReach,
    endpoint: std::net::SocketAddr,
}

impl Guest {
    /// The running machine's reach; an error says why there is none.
    pub fn new(reach: MachineReach) -> Result<Self, String> {
        let endpoint = reach
            .endpoint
            .ok_or_else(|| access::unreachable_reason(&reach))?;
        Ok(Self { reach, endpoint })
    }

    /// Runs `command` (a shell line) in the guest.
    pub fn run(&self, command: &str) -> Result<Answer, String> {
        let argv = self.argv(command)?;
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("cannot run {}: {err}", access::ssh::SSH))?;
        Ok(Answer {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// `lvlab ssh`'s command line with what a test needs besides: no
    /// question, no user's ssh_config, only the run's key (not an agent's),
    /// and bounded waits.
    fn argv(&self, command: &str) -> Result<Vec<OsString>, String> {
        let mut argv = access::ssh::argv(&self.reach, self.endpoint, &[command.to_string()])?;
        let extra = [
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=30",
            "-o",
            "ServerAliveInterval=15",
        ];
        argv.splice(1..1, extra.iter().map(OsString::from));
        Ok(argv)
    }
}

/// `login`: the run's key logs in as the manifest's user, the host key
/// being lvlab's.
pub const LOGIN: &str = "true";

pub fn judge_login(answer: &Answer, user: &str) -> Result<String, String> {
    if answer.ok {
        Ok(format!(
            "logged in as {user} with the run's key; host key is the one lvlab made"
        ))
    } else {
        Err(format!("ssh failed: {}", or_nothing(&answer.stderr)))
    }
}

/// `cloud-init`: waits for cloud-init to finish.
pub fn cloud_init_command() -> String {
    format!("timeout {CLOUD_INIT_TIMEOUT_SECS} cloud-init status --wait")
}

/// Done is a pass; cloud-init 23.4 and later exit 2 for "done, with
/// recoverable errors" (a deprecated key, say), still a pass, noted.
pub fn judge_cloud_init(answer: &Answer) -> Result<String, String> {
    let status = answer
        .stdout
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("status:"))
        .map(str::trim);
    match status {
        Some("done") if answer.ok => Ok("status: done".into()),
        Some("done") => Ok("status: done, with recoverable errors (`cloud-init status --long` in the guest says which)".into()),
        Some(other) => Err(format!(
            "status: {other}{}",
            if answer.stderr.is_empty() {
                String::new()
            } else {
                format!(" ({})", answer.stderr)
            }
        )),
        None => Err(format!(
            "`{}` gave no status: {}",
            cloud_init_command(),
            or_nothing(&format!("{}{}", answer.stdout, answer.stderr))
        )),
    }
}

/// `hostname`: the one meta-data and user-data give.
pub const HOSTNAME: &str = "hostname";

pub fn judge_hostname(answer: &Answer, expected: &str) -> Result<String, String> {
    if answer.ok && answer.stdout == expected {
        Ok(format!("hostname is {expected}"))
    } else {
        Err(format!(
            "expected hostname {expected}, found {}",
            or_nothing(&answer.stdout)
        ))
    }
}

/// `user`: cloud-init made the manifest's user, with sudo.
pub const USER: &str = "id -un && sudo -n true && echo sudo-ok";

pub fn judge_user(answer: &Answer, expected: &str) -> Result<String, String> {
    let mut lines = answer.stdout.lines();
    let name = lines.next().unwrap_or_default();
    if name != expected {
        return Err(format!(
            "expected user {expected}, found {}",
            or_nothing(name)
        ));
    }
    if !answer.ok || lines.next() != Some("sudo-ok") {
        return Err(format!(
            "{expected} has no passwordless sudo: {}",
            or_nothing(&answer.stderr)
        ));
    }
    Ok(format!("{expected} exists, with passwordless sudo"))
}

/// `key`: the run's public key is the user's authorized key.
pub const KEY: &str = "cat ~/.ssh/authorized_keys";

pub fn judge_key(answer: &Answer, public_key: &str) -> Result<String, String> {
    // `ssh-ed25519 <base64>`: the comment may be rewritten.
    let key: Vec<&str> = public_key.split_whitespace().take(2).collect();
    let found = answer
        .stdout
        .lines()
        .any(|line| line.split_whitespace().take(2).eq(key.iter().copied()));
    if answer.ok && found {
        Ok("~/.ssh/authorized_keys holds the run's key".into())
    } else {
        Err(format!(
            "the run's key is not in ~/.ssh/authorized_keys: {}",
            or_nothing(&format!("{}{}", answer.stdout, answer.stderr))
        ))
    }
}

fn or_nothing(text: &str) -> &str {
    if text.trim().is_empty() {
        "(nothing)"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(ok: bool, stdout: &str, stderr: &str) -> Answer {
        Answer {
            ok,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn cloud_init_done_passes_and_anything_else_fails() {
        assert!(judge_cloud_init(&answer(true, "....\nstatus: done", "")).is_ok());
        let degraded = judge_cloud_init(&answer(false, "status: done", "")).unwrap();
        assert!(degraded.contains("recoverable"), "{degraded}");
        let err = judge_cloud_init(&answer(false, "status: error", "")).unwrap_err();
        assert_eq!(err, "status: error");
        let err = judge_cloud_init(&answer(false, "", "Connection refused")).unwrap_err();
        assert!(err.contains("gave no status: Connection refused"), "{err}");
    }

    #[test]
    fn the_user_needs_its_name_and_sudo() {
        assert!(judge_user(&answer(true, "smoke\nsudo-ok", ""), "smoke").is_ok());
        let err = judge_user(&answer(true, "debian\nsudo-ok", ""), "smoke").unwrap_err();
        assert_eq!(err, "expected user smoke, found debian");
        let err = judge_user(
            &answer(false, "smoke", "sudo: a password is required"),
            "smoke",
        )
        .unwrap_err();
        assert!(
            err.contains("no passwordless sudo: sudo: a password"),
            "{err}"
        );
    }

    #[test]
    fn the_key_is_matched_by_type_and_blob_whatever_its_comment() {
        let key = "ssh-ed25519 AAAAC3Nz lvlab-smoke-1";
        let file = "ssh-rsa AAAAB3 other\nssh-ed25519 AAAAC3Nz renamed";
        assert!(judge_key(&answer(true, file, ""), key).is_ok());
        assert!(judge_key(&answer(true, "ssh-ed25519 AAAAC3Nzx x", ""), key).is_err());
    }

    #[test]
    fn the_hostname_must_match_exactly() {
        assert!(judge_hostname(&answer(true, "smoke-abc", ""), "smoke-abc").is_ok());
        let err = judge_hostname(&answer(true, "debian", ""), "smoke-abc").unwrap_err();
        assert_eq!(err, "expected hostname smoke-abc, found debian");
    }

    #[test]
    fn ssh_gets_the_test_options_before_its_own() {
        let reach = MachineReach {
            environment: "smoke".into(),
            machine: "smoke-abc".into(),
            domain: "smoke-abc_smoke".into(),
            hostname: "smoke-abc".into(),
            fqdn: "smoke-abc".into(),
            user: "smoke".into(),
            state: access::ReachState::Running,
            route: crate::host::Route::Direct,
            endpoint: Some("127.0.0.1:40022".parse().unwrap()),
            identity_file: Some("/tmp/s/id_ed25519".into()),
            known_hosts: Some("/tmp/s/vms/known_hosts".into()),
            addresses: vec![],
        };
        let guest = Guest::new(reach).unwrap();
        let argv: Vec<String> = guest
            .argv(HOSTNAME)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(argv[..3], ["ssh", "-F", "/dev/null"]);
        assert!(argv.contains(&"IdentityFile=/tmp/s/id_ed25519".to_string()));
        assert!(argv.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert_eq!(argv[argv.len() - 3..], ["--", "127.0.0.1", "hostname"]);
    }
}
