//! Provisioning: a machine's `provision:` list, run over SSH once the
//! machine first answers. This module owns what is pure: the list's digest
//! (recorded on the domain once the list ran to its end, and compared by
//! the plan) and the ssh command line of each entry, built by the same
//! argv builder `lvlab ssh` uses ([`crate::access::ssh::argv`]). [`run`]
//! carries a list out; the plan decides when ([`crate::plan`]).

pub mod run;

use std::ffi::OsString;
use std::net::SocketAddr;

use sha2::{Digest, Sha256};

use crate::access::{ssh, MachineReach};
use crate::desired::ProvisionStep;
use crate::plan::Step;

/// Hears each line a provisioning command prints, with the step that runs
/// it (the views prefix it with the machine's name). Jobs run in parallel,
/// hence `Sync`.
pub trait ProvisionReporter: Sync {
    fn provision_output(&self, step: &Step, line: &str);
}

/// Output nobody asked to see: a library caller's default.
pub struct Unheard;

impl ProvisionReporter for Unheard {
    fn provision_output(&self, _: &Step, _: &str) {}
}

/// Bumped if the digest's framing ever changes.
const FRAMING: &[u8] = b"lvlab-provision-v1";

/// `sha256:<hex>` over the entries in order, each framed by its kind and
/// length; a script counts by its text (not its path), so editing the file
/// changes the digest. `None` for an empty list: nothing to run.
pub fn digest(steps: &[ProvisionStep]) -> Option<String> {
    if steps.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(FRAMING);
    for step in steps {
        let (kind, text) = match step {
            ProvisionStep::Command(command) => ("command", command.as_str()),
            ProvisionStep::Script { text, .. } => ("script", text.as_str()),
        };
        hasher.update([0]);
        hasher.update(kind.as_bytes());
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    Some(format!("sha256:{:x}", hasher.finalize()))
}

/// One entry as the process to run: the ssh argv, what goes to its
/// standard input, and how messages name the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionCommand {
    pub argv: Vec<OsString>,
    /// A script's text (for `sh -s`); `None`: standard input is empty.
    pub stdin: Option<String>,
    /// The command's first line, or the script's path.
    pub label: String,
}

/// The ssh command that runs `step` on the machine at `endpoint`: a command
/// line is ssh's remote command (the remote user's shell runs it); a
/// script's text goes to `sh -s` on standard input, so no file is copied.
pub fn command(
    reach: &MachineReach,
    endpoint: SocketAddr,
    step: &ProvisionStep,
) -> Result<ProvisionCommand, String> {
    Ok(match step {
        ProvisionStep::Command(line) => ProvisionCommand {
            argv: ssh::argv(reach, endpoint, std::slice::from_ref(line))?,
            stdin: None,
            label: line.lines().next().unwrap_or_default().to_string(),
        },
        ProvisionStep::Script { path, text } => ProvisionCommand {
            argv: ssh::argv(reach, endpoint, &["sh".to_string(), "-s".to_string()])?,
            stdin: Some(text.clone()),
            label: path.display().to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn reach() -> MachineReach {
        MachineReach {
            known_hosts: Some(PathBuf::from("/vms/lab/web/known_hosts")),
            ..crate::access::ssh::tests::reach()
        }
    }

    fn words(argv: &[OsString]) -> Vec<String> {
        argv.iter().map(|w| w.to_string_lossy().into()).collect()
    }

    #[test]
    fn a_command_is_the_remote_command_and_a_script_goes_to_sh_on_stdin() {
        let at = "192.0.2.7:22".parse().unwrap();
        let line = ProvisionStep::Command("apt-get install -y nginx\necho done".into());
        let cmd = command(&reach(), at, &line).unwrap();
        let argv = words(&cmd.argv);
        assert_eq!(argv[0], "ssh");
        assert!(argv.contains(&"HostKeyAlias=web_lab".to_string()));
        assert_eq!(
            argv[argv.len() - 3..],
            ["--", "192.0.2.7", "apt-get install -y nginx\necho done"]
        );
        assert_eq!(
            (cmd.stdin, cmd.label.as_str()),
            (None, "apt-get install -y nginx")
        );

        let script = ProvisionStep::Script {
            path: PathBuf::from("/lab/setup.sh"),
            text: "set -e\nhostname\n".into(),
        };
        let cmd = command(&reach(), at, &script).unwrap();
        let argv = words(&cmd.argv);
        assert_eq!(argv[argv.len() - 4..], ["--", "192.0.2.7", "sh", "-s"]);
        assert_eq!(cmd.stdin.as_deref(), Some("set -e\nhostname\n"));
        assert_eq!(cmd.label, "/lab/setup.sh");
    }

    #[test]
    fn the_digest_follows_the_entries_and_a_scripts_text_not_its_path() {
        let script = |path: &str, text: &str| ProvisionStep::Script {
            path: PathBuf::from(path),
            text: text.into(),
        };
        let cmd = |c: &str| ProvisionStep::Command(c.into());
        assert_eq!(digest(&[]), None);
        let one = digest(&[cmd("a"), script("/x.sh", "b")]).unwrap();
        assert!(one.starts_with("sha256:"));
        assert_eq!(
            Some(&one),
            digest(&[cmd("a"), script("/y.sh", "b")]).as_ref()
        );
        assert_ne!(
            Some(&one),
            digest(&[cmd("a"), script("/x.sh", "c")]).as_ref()
        );
        assert_ne!(
            Some(&one),
            digest(&[script("/x.sh", "b"), cmd("a")]).as_ref()
        );
        // A command is not the script with the same text.
        assert_ne!(digest(&[cmd("b")]), digest(&[script("/x.sh", "b")]));
    }
}
