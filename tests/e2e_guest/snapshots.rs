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
    let started = std::time::Instant::now();
    let found = snapshot_checks::snapshot_create_and_revert(
        &|args| lab.lvlab(args),
        &|command| ssh(&key, port, command),
        vm,
        &share,
    );
    // A figure for the reader: saving and loading the memory under TCG.
    eprintln!(
        "{vm}: snapshot create, revert and delete took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for check in found {
        checks.check(vm, check.check, check.ok, &check.expected, &check.found);
    }
}
