//! Inside one guest that could be logged into: commands over SSH, and
//! every in-guest check, group by group (each its own module).

use crate::checks::Checks;
use crate::lab::{ssh, text, Guest, Lab};
use crate::{access, cloud_init, devices, disks, identity, network, snapshots};

/// One guest of the lab, reached over SSH on `port`.
pub struct GuestShell<'a> {
    pub lab: &'a Lab,
    pub guest: &'a Guest,
    pub port: u16,
}

impl GuestShell<'_> {
    /// Runs `command` as the lab's user: its trimmed stdout, or what went
    /// wrong (which then fails the check that reads it).
    pub fn run(&self, command: &str) -> String {
        let out = ssh(&self.lab.key(), self.port, command);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        } else {
            format!(
                "(`{command}` failed, exit {:?}: {})",
                out.status.code(),
                text(&out).trim()
            )
        }
    }
}

/// Every in-guest check for one guest that could be logged into;
/// `cloud_init` is what `cloud-init status --wait --long` printed.
pub fn check_guest(checks: &mut Checks, lab: &Lab, guest: &Guest, port: u16, cloud_init: &str) {
    let shell = GuestShell { lab, guest, port };
    cloud_init::check(checks, &shell, cloud_init);
    identity::check(checks, &shell);
    cloud_init::check_runcmd(checks, &shell);
    network::check(checks, &shell);
    disks::check(checks, &shell);
    devices::check(checks, &shell);
    access::check_ssh(checks, &shell);
    if guest.password {
        access::check_passwd(checks, &shell);
    }
    if guest.provision {
        access::check_provision(checks, &shell);
    }
    // After `devices`, which mounts the shared directory.
    if guest.snapshots {
        snapshots::check(checks, &shell);
    }
}
