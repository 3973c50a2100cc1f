//! Runs a machine's `provision:` list: waits for its SSH (the wait of
//! `--wait`, for this one machine), then runs each entry in turn with the
//! system's ssh, each line of its output and error streams handed to the
//! caller as it arrives. The first entry that fails ends the list.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::ProvisionCommand;
use crate::access::{self, ReachState};
use crate::desired::{EnvironmentSpec, MachineSpec};
use crate::host::{Host, SshEndpoint};
use crate::observe::nic_addresses;
use crate::observe::ssh_wait::{self, NotReachable, WaitReporter};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{machine}: no SSH endpoint lvlab knows to provision it through (give it a passt NIC with ssh_port, or a static address)")]
    NoEndpoint { machine: String },
    #[error(transparent)]
    NotReachable(#[from] NotReachable),
    /// The ssh command line could not be built (a name ssh cannot take).
    #[error("{0}")]
    Command(String),
    #[error("cannot run ssh for `{label}`: {source}")]
    Spawn {
        label: String,
        source: std::io::Error,
    },
    #[error("provision `{label}` failed ({status}); the entries after it did not run")]
    Failed { label: String, status: String },
}

/// Waits up to `timeout` for the machine's SSH, then runs its list,
/// handing `output` each line the commands print.
pub fn provision(
    host: &Host,
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    timeout: Duration,
    output: &(dyn Fn(&str) + Sync),
) -> Result<(), ProvisionError> {
    let no_endpoint = AtomicBool::new(false);
    ssh_wait::wait_for_ssh(&[(host, machine)], timeout, &NoEndpoint(&no_endpoint))?;
    if no_endpoint.load(Ordering::Relaxed) {
        return Err(ProvisionError::NoEndpoint {
            machine: machine.vm_name.clone(),
        });
    }
    let leased = access::dhcp_addresses(
        machine,
        &nic_addresses::by_mac(&host.connection(), &machine.domain_name),
    );
    let reach = access::reach(host, env, machine, ReachState::Running, &leased);
    let endpoint = reach.endpoint.ok_or_else(|| ProvisionError::NoEndpoint {
        machine: machine.vm_name.clone(),
    })?;
    for step in &machine.provision {
        let command = super::command(&reach, endpoint, step).map_err(ProvisionError::Command)?;
        execute(&command, output)?;
    }
    Ok(())
}

/// Hears only whether the machine has an endpoint: the step's own
/// progress lines say that it waits.
struct NoEndpoint<'a>(&'a AtomicBool);

impl WaitReporter for NoEndpoint<'_> {
    fn no_endpoint(&self, _: &MachineSpec) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn answered(&self, _: &MachineSpec, _: &SshEndpoint, _: Duration) {}

    fn still_waiting(&self, _: &[&str], _: Duration) {}
}

/// Runs one command to its end, its standard input fed from `stdin` (or
/// empty), each line of its output and error streams passed to `output`
/// as it arrives; an error unless it exits 0.
pub fn execute(
    command: &ProvisionCommand,
    output: &(dyn Fn(&str) + Sync),
) -> Result<(), ProvisionError> {
    let spawn_error = |source| ProvisionError::Spawn {
        label: command.label.clone(),
        source,
    };
    let Some((program, args)) = command.argv.split_first() else {
        return Err(spawn_error(std::io::ErrorKind::InvalidInput.into()));
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if command.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    std::thread::scope(|threads| {
        if let (Some(mut pipe), Some(text)) = (stdin, &command.stdin) {
            // A command that stops reading early closes the pipe: not an
            // error of its own, its exit status says how it went.
            threads.spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        if let Some(pipe) = stdout {
            threads.spawn(move || forward_lines(pipe, output));
        }
        if let Some(pipe) = stderr {
            threads.spawn(move || forward_lines(pipe, output));
        }
    });
    let status = child.wait().map_err(spawn_error)?;
    if status.success() {
        return Ok(());
    }
    Err(ProvisionError::Failed {
        label: command.label.clone(),
        status: match status.code() {
            Some(code) => format!("exit code {code}"),
            None => status.to_string(),
        },
    })
}

/// Each line read from `pipe`, without its line end (invalid UTF-8
/// replaced), to `output`.
fn forward_lines(pipe: impl Read, output: &(dyn Fn(&str) + Sync)) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let text = String::from_utf8_lossy(&line);
        output(text.trim_end_matches(['\n', '\r']));
        line.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn sh(script: &str, stdin: Option<&str>) -> (Result<(), ProvisionError>, Vec<String>) {
        let lines = Mutex::new(Vec::new());
        let command = ProvisionCommand {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            stdin: stdin.map(str::to_string),
            label: "the step".into(),
        };
        let result = execute(&command, &|line: &str| {
            lines.lock().unwrap().push(line.to_string())
        });
        (result, lines.into_inner().unwrap())
    }

    #[test]
    fn both_streams_arrive_line_by_line_and_stdin_is_fed() {
        let (result, mut lines) = sh("cat; echo oops >&2; printf 'no end'", Some("a\nb\n"));
        result.unwrap();
        lines.sort();
        assert_eq!(lines, ["a", "b", "no end", "oops"]);
    }

    #[test]
    fn a_non_zero_exit_is_the_steps_failure_with_its_code() {
        let (result, lines) = sh("echo half; exit 3", None);
        assert_eq!(lines, ["half"]);
        let error = result.unwrap_err().to_string();
        assert_eq!(
            error,
            "provision `the step` failed (exit code 3); the entries after it did not run"
        );
    }
}
