//! Where a host's hypervisor runs ([`Place`]) and, for another machine,
//! the SSH hop to it ([`SshHop`]): read from the libvirt URI as libvirt
//! itself reads it (user, host, port and the `keyfile`, `no_verify` and
//! `known_hosts` parameters), so lvlab's own SSH to that host (a guest's
//! forward on its loopback, its QEMU log) trusts and authenticates exactly
//! as libvirt's connection does. Pure but for [`SshHop::run`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::access::ssh::config_path;
use crate::escape::shell_quote;

/// Where a host's hypervisor runs, as far as lvlab must know: which files,
/// programs and ports are its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// libvirt runs on the machine lvlab runs on.
    ThisMachine,
    /// libvirt runs on another machine (`crate::host::is_remote_uri`).
    Remote(RemoteHost),
}

impl Place {
    /// The place of `uri`'s hypervisor.
    pub fn of(uri: &str) -> Self {
        if super::is_remote_uri(uri) {
            Place::Remote(RemoteHost::parse(uri))
        } else {
            Place::ThisMachine
        }
    }
}

/// A hypervisor on another machine, and how lvlab reaches that machine
/// itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHost {
    /// The libvirt URI, for messages.
    pub uri: String,
    /// The SSH hop to the host, or why there is none (a transport that is
    /// not SSH, a parameter ssh cannot be given).
    pub ssh: Result<SshHop, String>,
}

/// An SSH login to a hypervisor host, as libvirt's `ssh` transport makes
/// it: each part only when the URI gives it (else ssh's own defaults and
/// `~/.ssh/config` decide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshHop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// `?keyfile=`: the private key (`ssh -i`).
    pub keyfile: Option<PathBuf>,
    /// `?no_verify=1`: accept a host key ssh does not know yet
    /// (`StrictHostKeyChecking=no`, as libvirt's transport does).
    pub no_verify: bool,
    /// `?known_hosts=`: the file the host key is checked against.
    pub known_hosts: Option<PathBuf>,
}

/// libvirt's URI schemes whose transport is SSH (`driver+ssh`, and the
/// libssh and libssh2 clients of the same protocol).
const SSH_TRANSPORTS: [&str; 3] = ["ssh", "libssh", "libssh2"];

impl RemoteHost {
    /// Reads `uri` (a remote one): an SSH transport gives a hop, any other
    /// (`qemu+tls://`, `qemu+tcp://`, `qemu://host/`) the reason there is
    /// none.
    pub fn parse(uri: &str) -> Self {
        Self {
            uri: uri.to_string(),
            ssh: parse_hop(uri),
        }
    }

    /// The SSH hop, or an error that names the URI and says why a guest's
    /// forward (or QEMU log) on that host is out of lvlab's reach.
    pub fn hop(&self) -> Result<&SshHop, String> {
        self.ssh
            .as_ref()
            .map_err(|why| no_hop_message(&self.uri, why))
    }
}

/// Why lvlab has no way to a remote host's loopback, naming the URI.
pub fn no_hop_message(uri: &str, why: &str) -> String {
    format!(
        "{uri}: {why}, and lvlab reaches a guest on another host only through SSH to that \
         host (use a qemu+ssh:// URI for it)"
    )
}

fn parse_hop(uri: &str) -> Result<SshHop, String> {
    let url = url::Url::parse(uri).map_err(|e| format!("not a URI ({e})"))?;
    let transport = url.scheme().split_once('+').map(|(_, t)| t).unwrap_or("");
    if !SSH_TRANSPORTS.contains(&transport) {
        let named = if transport.is_empty() {
            "TLS (libvirt's default transport)".to_string()
        } else {
            format!("`{transport}`")
        };
        return Err(format!("its transport is {named}, not SSH"));
    }
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let user = (!url.username().is_empty()).then(|| decoded(url.username()));
    let mut hop = SshHop {
        user,
        host: host.to_string(),
        port: url.port(),
        keyfile: None,
        no_verify: false,
        known_hosts: None,
    };
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "keyfile" => hop.keyfile = Some(PathBuf::from(value.as_ref())),
            "known_hosts" => hop.known_hosts = Some(PathBuf::from(value.as_ref())),
            // libvirt: any value but 0 turns the check off.
            "no_verify" => hop.no_verify = value.as_ref() != "0",
            _ => {}
        }
    }
    hop.check()?;
    Ok(hop)
}

fn decoded(text: &str) -> String {
    url::form_urlencoded::parse(format!("u={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A word ssh reads as a host or user name: no leading `-` (an option),
/// no space or control character (a second word, a broken config line).
fn plain_word(word: &str) -> bool {
    !word.is_empty()
        && !word.starts_with('-')
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\'' || c == '"')
}

impl SshHop {
    /// Refuses what ssh would misread: an option for a name, a quote or a
    /// control character in a path (no ssh_config value can hold it).
    fn check(&self) -> Result<(), String> {
        if !plain_word(&self.host) {
            return Err(format!(
                "host `{}` cannot be given to ssh",
                self.host.escape_debug()
            ));
        }
        if let Some(user) = self.user.as_deref().filter(|u| !plain_word(u)) {
            return Err(format!(
                "user `{}` cannot be given to ssh",
                user.escape_debug()
            ));
        }
        for path in [&self.keyfile, &self.known_hosts].into_iter().flatten() {
            config_path(path)?;
        }
        Ok(())
    }

    /// The options that log into the host, after `ssh` and before the
    /// host name: port, key and host key check, each as the URI says.
    pub fn options(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        if let Some(keyfile) = &self.keyfile {
            args.extend(key_option(keyfile));
        }
        if self.no_verify {
            args.extend(["-o".to_string(), "StrictHostKeyChecking=no".to_string()]);
        }
        if let Some(known_hosts) = &self.known_hosts {
            let file = config_path(known_hosts).unwrap_or_default();
            args.extend(["-o".to_string(), format!("UserKnownHostsFile={file}")]);
        }
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        args
    }

    /// `ssh -W %h:%p OPTIONS HOST`: the value of ssh's `ProxyCommand`
    /// (in a config file or after `-o ProxyCommand=`), which ssh runs
    /// through the shell after expanding `%` tokens. So each word is
    /// shell-quoted and its own `%` doubled (again, for a path: the inner
    /// ssh expands it too); `%h:%p` stay tokens. (`-J` cannot carry a
    /// key file or the host key options.)
    pub fn proxy_command(&self) -> String {
        let mut words = vec!["ssh".to_string(), "-W".to_string(), "%h:%p".to_string()];
        let own = self.options().into_iter().chain([self.host.clone()]);
        words.extend(own.map(|w| shell_quote(&w.replace('%', "%%"))));
        words.join(" ")
    }

    /// `ssh` to the host with lvlab's own bounds (no question asked, a
    /// connect timeout), `extra` options, the remote command being
    /// `remote`.
    pub fn command(&self, timeout: Duration, extra: &[&str], remote: &[&str]) -> Command {
        let mut command = Command::new(crate::access::ssh::SSH);
        command
            .args(["-o", "BatchMode=yes", "-o"])
            .arg(format!("ConnectTimeout={}", timeout.as_secs().max(1)))
            .args(self.options())
            .args(extra)
            .args(["--", &self.host])
            .args(remote)
            .stdin(Stdio::null());
        command
    }

    /// Runs `remote` (a shell line the host's login shell reads) on the
    /// host; its output when it exits 0.
    pub fn run(&self, timeout: Duration, remote: &str) -> Result<String, String> {
        let out = self
            .command(timeout, &[], &[remote])
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

/// `-i KEYFILE`; for a name with `%`, `-o IdentityFile=` (ssh checks a
/// `-i` file exists before it expands `%` tokens in the name, so no
/// spelling of such a name passes `-i`).
fn key_option(keyfile: &Path) -> [String; 2] {
    let text = keyfile.to_string_lossy();
    if text.contains('%') {
        let file = config_path(keyfile).unwrap_or_default();
        ["-o".to_string(), format!("IdentityFile={file}")]
    } else {
        ["-i".to_string(), text.into_owned()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh_hop(uri: &str) -> SshHop {
        RemoteHost::parse(uri).ssh.unwrap()
    }

    #[test]
    fn an_ssh_uri_gives_its_user_host_port_and_parameters() {
        let hop = ssh_hop("qemu+ssh://root@127.0.0.1:2222/system?keyfile=/k/id%20lab&no_verify=1&known_hosts=/k/kh");
        assert_eq!(
            hop,
            SshHop {
                user: Some("root".into()),
                host: "127.0.0.1".into(),
                port: Some(2222),
                keyfile: Some("/k/id lab".into()),
                no_verify: true,
                known_hosts: Some("/k/kh".into()),
            }
        );
        let plain = ssh_hop("qemu+ssh://hv2.example/session?no_verify=0");
        assert_eq!(plain.user, None);
        assert_eq!(plain.port, None);
        assert!(!plain.no_verify);
        assert_eq!(plain.options(), Vec::<String>::new());
        assert_eq!(
            ssh_hop("qemu+libssh2://u@hv/system").user.as_deref(),
            Some("u")
        );
        assert_eq!(ssh_hop("qemu+ssh://u@[::1]:22/system").host, "::1");
    }

    #[test]
    fn the_proxy_command_carries_the_key_and_check_quoted_for_the_shell() {
        let hop =
            ssh_hop("qemu+ssh://root@hv2:2222/system?keyfile=/my%20keys/id_100%25&no_verify=1");
        assert_eq!(
            hop.proxy_command(),
            "ssh -W %h:%p -p 2222 -o 'IdentityFile=\"/my keys/id_100%%%%\"' \
             -o StrictHostKeyChecking=no -l root hv2"
        );
        let hop = ssh_hop("qemu+ssh://hv2/system?known_hosts=/etc/lab's%20hosts");
        assert_eq!(
            hop.proxy_command(),
            "ssh -W %h:%p -o 'UserKnownHostsFile=\"/etc/lab'\\''s hosts\"' hv2"
        );
    }

    #[test]
    fn other_transports_have_no_hop_and_say_so_with_the_uri() {
        for (uri, transport) in [
            ("qemu+tls://hv2/system", "`tls`"),
            ("qemu+tcp://hv2/system", "`tcp`"),
            ("qemu://hv2/system", "TLS"),
        ] {
            let remote = RemoteHost::parse(uri);
            let err = remote.hop().unwrap_err();
            assert!(
                err.starts_with(&format!("{uri}: its transport is {transport}")),
                "{err}"
            );
            assert!(err.contains("qemu+ssh://"), "{err}");
        }
        assert!(matches!(Place::of("qemu:///system"), Place::ThisMachine));
        assert!(matches!(
            Place::of("qemu+ssh://hv/system"),
            Place::Remote(_)
        ));
    }

    #[test]
    fn names_ssh_would_read_as_options_are_refused() {
        let err = RemoteHost::parse("qemu+ssh://-oProxyCommand=x@hv/system")
            .hop()
            .unwrap_err();
        assert!(err.contains("cannot be given to ssh"), "{err}");
        let err = RemoteHost::parse("qemu+ssh://hv/system?keyfile=/a%0Ab")
            .hop()
            .unwrap_err();
        assert!(err.contains("control character"), "{err}");
    }
}
