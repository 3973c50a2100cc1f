//! The real-guest check of `provision:`: the list ran once when the
//! machine was made, a second apply runs it not again, and
//! `--reprovision VM` runs it once more, its output on lvlab's stdout
//! behind `VM | `. For the real-guest tier (tests/e2e_guest/) to call.
//!
//! Self-contained: the caller gives `vm` the list [`PROVISION`] in the
//! lab's manifest (`provision: <PROVISION>` on the machine) before the
//! apply that makes it, then passes the lab's lvlab command (`-C` the
//! lab's directory, its state directory and environment set) and a way to
//! run a command in the guest over SSH.

// The real-guest tier uses all of this; other files may not.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

/// The `provision:` value the machine must have (YAML flow text): one
/// command that says so and counts its runs in the user's home.
pub const PROVISION: &str = "[\"echo provisioned; echo run >> $HOME/lvlab-provisioned\"]";

/// How many runs of [`PROVISION`] the guest has counted.
fn runs(ssh: &impl Fn(&str) -> Output) -> Result<usize, String> {
    let out = ssh("cat $HOME/lvlab-provisioned 2>/dev/null || true");
    if !out.status.success() {
        return Err(format!(
            "cannot read the run count: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().count())
}

/// `lvlab apply --auto-approve ARGS`: its stdout, or why it failed.
fn apply(lvlab: &mut Command, args: &[&str]) -> Result<String, String> {
    let out = lvlab
        .args(["apply", "--auto-approve"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run lvlab: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "lvlab apply {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// Runs once, then not on a second apply, then again with
/// `--reprovision vm`. `lvlab()` makes the lab's lvlab command afresh;
/// `ssh(command)` runs `command` in the guest. One check (three applies'
/// worth of assertions).
pub fn check_provision_runs_once_and_again_only_when_asked(
    lvlab: impl Fn() -> Command,
    vm: &str,
    ssh: impl Fn(&str) -> Output,
) -> Result<(), String> {
    let first = runs(&ssh)?;
    if first != 1 {
        return Err(format!(
            "the provision list ran {first} times when {vm} was made, not once"
        ));
    }
    let again = apply(&mut lvlab(), &[])?;
    if again.contains(&format!("{vm} | ")) || runs(&ssh)? != 1 {
        return Err(format!("a second apply provisioned {vm} again:\n{again}"));
    }
    let asked = apply(&mut lvlab(), &["--reprovision", vm])?;
    if !asked.lines().any(|l| l == format!("{vm} | provisioned")) {
        return Err(format!(
            "--reprovision {vm} did not show `{vm} | provisioned`:\n{asked}"
        ));
    }
    match runs(&ssh)? {
        2 => Ok(()),
        n => Err(format!(
            "after --reprovision the list has run {n} times, not twice"
        )),
    }
}
