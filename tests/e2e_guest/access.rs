//! Reaching a guest the way a user does: `lvlab ssh` and `lvlab
//! ssh-config` with lvlab's host key checked strictly (the checks in
//! `tests/support/ssh_checks.rs`), and a new console password set by
//! `lvlab passwd` through the guest agent
//! (`tests/support/passwd_checks.rs`), and `provision:` run once and
//! again on request (`tests/support/provision_checks.rs`).

use std::path::Path;

use crate::checks::Checks;
use crate::guest::GuestShell;
use crate::lab::{ssh, USER};
use crate::{passwd_checks, provision_checks, run, ssh_checks};

/// `lvlab ssh`, `ssh -- exit 3`, the strict host key options, the guest's
/// host key, the `ssh-config` block and `ssh -F` with it.
pub fn check_ssh(checks: &mut Checks, shell: &GuestShell) {
    let vm = shell.guest.vm;
    let binary = Path::new(env!("CARGO_BIN_EXE_lvlab"));
    for check in ssh_checks::ssh_checks(binary, shell.lab.dir.path(), vm, vm) {
        checks.check(vm, check.check, check.ok, &check.expected, &check.found);
    }
}

/// `lvlab passwd --show-passwords`: the user's `/etc/shadow` entry becomes
/// the hash of the password it showed.
pub fn check_passwd(checks: &mut Checks, shell: &GuestShell) {
    let (vm, lab, port) = (shell.guest.vm, shell.lab, shell.port);
    let key = lab.key();
    let result = passwd_checks::check_passwd(run::lvlab(lab.dir.path()), vm, USER, |command| {
        ssh(&key, port, command)
    });
    checks.check(
        vm,
        "`lvlab passwd` sets the password it shows",
        result.is_ok(),
        &format!("{USER}'s /etc/shadow entry changes to the hash of the password shown"),
        result.err().as_deref().unwrap_or(""),
    );
}

/// `provision:` ran once when `up` made the guest, a second `apply` runs
/// it not again, `apply --reprovision VM` runs it once more.
pub fn check_provision(checks: &mut Checks, shell: &GuestShell) {
    let (vm, lab, port) = (shell.guest.vm, shell.lab, shell.port);
    let key = lab.key();
    let result = provision_checks::check_provision_runs_once_and_again_only_when_asked(
        || run::lvlab(lab.dir.path()),
        vm,
        |command| ssh(&key, port, command),
    );
    checks.check(
        vm,
        "`provision:` runs once, and again only with `--reprovision`",
        result.is_ok(),
        "one run after `up`, none after a second apply, one more with --reprovision",
        result.err().as_deref().unwrap_or(""),
    );
}
