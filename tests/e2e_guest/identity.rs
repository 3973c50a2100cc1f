//! Who the guest is: its hostname and FQDN, the lab's user with the test's
//! key, and passwordless sudo.

use crate::checks::Checks;
use crate::guest::GuestShell;
use crate::lab::{DOMAIN, USER};

pub fn check(checks: &mut Checks, shell: &GuestShell) {
    let (vm, lab) = (shell.guest.vm, shell.lab);
    let run = |command: &str| shell.run(command);

    let hostname = run("hostname");
    checks.check(vm, "hostname", hostname == vm, vm, &hostname);
    let fqdn = format!("{vm}.{DOMAIN}");
    let found = run("hostname -f");
    checks.check(vm, "FQDN", found == fqdn, &fqdn, &found);

    let who = run("id -un");
    checks.check(vm, "user", who == USER, USER, &who);
    let keys = run("cat ~/.ssh/authorized_keys");
    checks.check(
        vm,
        "user's SSH key",
        keys.lines().any(|l| l.trim() == lab.pubkey()),
        &format!("~/.ssh/authorized_keys holds `{}`", lab.pubkey()),
        &keys,
    );
    let root = run("sudo -n id -u");
    checks.check(
        vm,
        "passwordless sudo",
        root == "0",
        "`sudo -n id -u` prints 0",
        &root,
    );
}
