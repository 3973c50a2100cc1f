//! The `ssh` command line that logs into a machine: user, key, address,
//! port, and how the host key is checked. Pure but for [`command_for`],
//! which asks the machine's host where it is now; `lvlab ssh` executes
//! the result.
//!
//! Host keys: a machine lvlab made a host key for has a known_hosts file
//! holding it under the machine's domain name, so ssh checks strictly
//! against that (`HostKeyAlias`: no forwarded port or leased address can
//! make the entry stale, and nothing is trusted on first use). A machine
//! without one (deployed before lvlab made host keys) gets the defaults of
//! an ephemeral lab: no check, nothing written to `~/.ssh/known_hosts`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;

use super::MachineReach;
use crate::desired::{Desired, MachineSpec};
use crate::libvirt::LibvirtError;
use crate::reconcile::Lab;

/// Why there is no command line that reaches a machine.
#[derive(Debug, thiserror::Error)]
pub enum SshCommandError {
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    /// No endpoint, or a user or key path ssh would misread: what to do.
    #[error("{0}")]
    Cannot(String),
}

/// The ssh command line that reaches `machine` now and runs `command`
/// there (a login shell when empty). Only the machine's own environment's
/// host is asked: another's may be down.
pub fn command_for(
    desired: &Desired,
    machine: &MachineSpec,
    command: &[String],
) -> Result<Vec<OsString>, SshCommandError> {
    let env = desired
        .environments
        .iter()
        .filter(|e| e.name == machine.environment)
        .collect();
    let lab = Lab::open(desired, env)?;
    let reach = super::gather(&lab, std::slice::from_ref(&machine.vm_name))?
        .into_iter()
        .next()
        .ok_or_else(|| SshCommandError::Cannot(format!("no machine `{}`", machine.vm_name)))?;
    let endpoint = reach
        .endpoint
        .ok_or_else(|| SshCommandError::Cannot(super::unreachable_reason(&reach)))?;
    argv(&reach, endpoint, command)
        .map_err(|e| SshCommandError::Cannot(format!("{}: {e}", reach.machine)))
}

/// The client lvlab runs.
pub const SSH: &str = "ssh";

/// How the host key is checked, as `-o` options (or ssh_config lines).
pub fn host_key_options(reach: &MachineReach) -> Result<Vec<(&'static str, String)>, String> {
    Ok(match &reach.known_hosts {
        Some(file) => vec![
            ("HostKeyAlias", checked_name(&reach.domain, "domain name")?),
            ("UserKnownHostsFile", config_path(file)?),
            ("StrictHostKeyChecking", "yes".into()),
        ],
        None => ephemeral_options(),
    })
}

/// No host key check and no known_hosts written: what suits a lab whose
/// machines come and go under the same addresses.
pub fn ephemeral_options() -> Vec<(&'static str, String)> {
    vec![
        ("StrictHostKeyChecking", "no".into()),
        ("UserKnownHostsFile", "/dev/null".into()),
        ("LogLevel", "ERROR".into()),
    ]
}

/// `ssh [-o ...] -p PORT -l USER -- ADDRESS [COMMAND...]`: the argument
/// vector, program first. After the address ssh parses no option (`--`
/// came before it), so a command that starts with `-` stays the command.
/// A machine on a remote host is reached through that host
/// (`-o ProxyCommand=ssh -W ...`); one lvlab has no hop to is an error.
pub fn argv(
    reach: &MachineReach,
    endpoint: SocketAddr,
    command: &[String],
) -> Result<Vec<OsString>, String> {
    let mut argv: Vec<OsString> = vec![SSH.into()];
    let mut options = Vec::new();
    if let Some(identity) = &reach.identity_file {
        options.push(("IdentityFile", config_path(identity)?));
    }
    options.extend(host_key_options(reach)?);
    if let Some(proxy) = reach.route.proxy_command()? {
        options.push(("ProxyCommand", proxy));
    }
    for (key, value) in options {
        argv.push("-o".into());
        argv.push(format!("{key}={value}").into());
    }
    argv.extend(
        [
            "-p".to_string(),
            endpoint.port().to_string(),
            "-l".to_string(),
            checked_name(&reach.user, "user")?,
            "--".to_string(),
            endpoint.ip().to_string(),
        ]
        .map(OsString::from),
    );
    argv.extend(command.iter().map(OsString::from));
    Ok(argv)
}

/// `name` when it can stand in an ssh_config line or a known_hosts
/// pattern as it is: letters, digits, `.`, `-` and `_` (and no leading
/// `-`, which ssh would read as an option).
pub fn checked_name(name: &str, what: &str) -> Result<String, String> {
    let fine = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if fine {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{what} `{}` cannot be given to ssh: use only letters, digits, `.`, `-` and `_`",
            name.escape_debug()
        ))
    }
}

/// A path as an ssh_config value (also what `-o` takes): `%` doubled (ssh
/// expands `%` tokens in these paths), in double quotes when it holds a
/// space. A path with a quote or a control character is refused: ssh has
/// no way to escape them.
pub fn config_path(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8; ssh cannot be given it", path.display()))?;
    if text.chars().any(|c| c == '"' || c.is_control()) {
        return Err(format!(
            "{} holds a quote or a control character; ssh cannot be given it",
            text.escape_debug()
        ));
    }
    let text = text.replace('%', "%%");
    Ok(if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::access::ReachState;
    use crate::host::Route;

    /// Machine `web` of `lab`, user `debian`, at 127.0.0.1:40022, no key
    /// files (also for the provisioning's tests).
    pub(crate) fn reach() -> MachineReach {
        MachineReach {
            environment: "lab".into(),
            machine: "web".into(),
            domain: "web_lab".into(),
            hostname: "web".into(),
            fqdn: "web.example".into(),
            user: "debian".into(),
            state: ReachState::Running,
            route: Route::Direct,
            endpoint: Some("127.0.0.1:40022".parse().unwrap()),
            identity_file: None,
            known_hosts: None,
            addresses: vec![],
        }
    }

    fn strings(argv: Vec<OsString>) -> Vec<String> {
        argv.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn without_a_known_hosts_file_ssh_gets_the_ephemeral_defaults() {
        let r = reach();
        let argv = strings(argv(&r, r.endpoint.unwrap(), &[]).unwrap());
        assert_eq!(
            argv,
            [
                "ssh",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-p",
                "40022",
                "-l",
                "debian",
                "--",
                "127.0.0.1"
            ]
        );
    }

    #[test]
    fn with_a_known_hosts_file_the_key_and_the_check_are_strict() {
        let mut r = reach();
        r.known_hosts = Some(PathBuf::from("/srv/my lab/vms/lab/web/known_hosts"));
        r.identity_file = Some(PathBuf::from("/home/u/.ssh/id_100%"));
        let endpoint = "192.0.2.7:22".parse().unwrap();
        let command = ["-v".to_string(), "echo".into(), "a b".into()];
        let argv = strings(argv(&r, endpoint, &command).unwrap());
        assert_eq!(
            argv,
            [
                "ssh",
                "-o",
                "IdentityFile=/home/u/.ssh/id_100%%",
                "-o",
                "HostKeyAlias=web_lab",
                "-o",
                "UserKnownHostsFile=\"/srv/my lab/vms/lab/web/known_hosts\"",
                "-o",
                "StrictHostKeyChecking=yes",
                "-p",
                "22",
                "-l",
                "debian",
                "--",
                "192.0.2.7",
                "-v",
                "echo",
                "a b"
            ]
        );
    }

    #[test]
    fn a_machine_on_a_remote_host_is_reached_through_the_hosts_hop() {
        let mut r = reach();
        let remote = crate::host::RemoteHost::parse(
            "qemu+ssh://root@hv2:2222/system?keyfile=/k/id%20lab&no_verify=1",
        );
        r.route = Route::ProxyCommand(remote.hop().unwrap().clone());
        let words = strings(argv(&r, r.endpoint.unwrap(), &[]).unwrap());
        let at = words
            .iter()
            .position(|a| a.starts_with("ProxyCommand="))
            .unwrap();
        assert_eq!(words[at - 1], "-o");
        assert_eq!(
            words[at],
            "ProxyCommand=ssh -W %h:%p -p 2222 -i '/k/id lab' -o StrictHostKeyChecking=no -l root hv2"
        );
        assert_eq!(words[words.len() - 2..], ["--", "127.0.0.1"]);
        r.route = Route::Unreachable(crate::host::no_hop_message(
            "qemu+tls://hv2/system",
            "its transport is `tls`, not SSH",
        ));
        let err = argv(&r, r.endpoint.unwrap(), &[]).unwrap_err();
        assert!(err.starts_with("qemu+tls://hv2/system: "), "{err}");
    }

    #[test]
    fn names_and_paths_that_would_change_the_command_are_refused() {
        let mut r = reach();
        r.user = "-oProxyCommand=x".into();
        assert!(argv(&r, r.endpoint.unwrap(), &[]).is_err());
        r.user = "a b".into();
        assert!(argv(&r, r.endpoint.unwrap(), &[]).is_err());
        assert!(config_path(Path::new("/a\"b")).is_err());
        assert!(config_path(Path::new("/a\nb")).is_err());
        assert_eq!(
            checked_name("salt.local_lvlab-dev", "x").unwrap(),
            "salt.local_lvlab-dev"
        );
    }
}
