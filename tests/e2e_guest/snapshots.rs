//! `lvlab snapshot` on a running guest with the shared directory mounted
//! (by `devices.rs`): create with its memory, revert, delete (the checks
//! in `tests/support/snapshot_checks.rs`).

use crate::checks::Checks;
use crate::devices::share_mount_point;
use crate::guest::GuestShell;
use crate::lab::{ssh, SHARED_FILE};
use crate::snapshot_checks::{self, MountedShare};

pub fn check(checks: &mut Checks, shell: &GuestShell) {
    let (vm, lab, port) = (shell.guest.vm, shell.lab, shell.port);
    let key = lab.key();
    let mount_point = share_mount_point();
    let (file, content) = SHARED_FILE;
    let share = MountedShare {
        mount_point: &mount_point,
        file,
        content,
    };
    let found = snapshot_checks::snapshot_create_and_revert(
        &|args| lab.lvlab(args),
        &|command| ssh(&key, port, command),
        vm,
        &share,
    );
    for check in found {
        checks.check(vm, check.check, check.ok, &check.expected, &check.found);
    }
}
