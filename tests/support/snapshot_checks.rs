//! The real-guest tier's snapshot checks on one running guest that has a
//! virtiofs share mounted: `lvlab snapshot create` of the running machine
//! (live), a file written in the guest after it, `lvlab snapshot revert`,
//! and then the file is gone, the guest answers again and the virtiofs
//! mount still reads; the plan shows the snapshot as a fact and no
//! change; `lvlab snapshot delete` removes it. The tier calls
//! [`snapshot_create_and_revert`] and records each returned check with its
//! own `Checks`.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::process::Output;
use std::time::{Duration, Instant};

/// The snapshot the checks take and delete.
pub const SNAPSHOT: &str = "lvlab-e2e";
/// Written in the guest after the snapshot; gone after the revert.
const AFTER_FILE: &str = "/var/tmp/lvlab-after-snapshot";
/// How long the guest may take to answer SSH again after the revert.
const ANSWER_AGAIN: Duration = Duration::from_secs(180);

/// One check: what was expected and what was found.
#[derive(Debug)]
pub struct SnapshotCheck {
    pub check: &'static str,
    pub ok: bool,
    pub expected: String,
    pub found: String,
}

/// A virtiofs share the guest has mounted: where, and a file in it with
/// its content.
pub struct MountedShare<'a> {
    pub mount_point: &'a str,
    pub file: &'a str,
    pub content: &'a str,
}

/// Runs the checks on machine `vm`. `lvlab(args)` runs lvlab on the lab's
/// manifest; `guest(command)` runs a shell command in the guest over SSH
/// (as the lab's user). Every check runs, whatever the ones before found,
/// except that a failed create or revert ends them.
pub fn snapshot_create_and_revert(
    lvlab: &dyn Fn(&[&str]) -> Output,
    guest: &dyn Fn(&str) -> Output,
    vm: &str,
    share: &MountedShare,
) -> Vec<SnapshotCheck> {
    let mut checks = Vec::new();
    let mut check = |check, ok, expected: String, found: String| {
        checks.push(SnapshotCheck {
            check,
            ok,
            expected,
            found,
        });
        ok
    };
    run_checks(lvlab, guest, vm, share, &mut check);
    checks
}

/// The checks in order; a failed create or revert ends them, as the ones
/// after it would only echo it.
fn run_checks(
    lvlab: &dyn Fn(&[&str]) -> Output,
    guest: &dyn Fn(&str) -> Output,
    vm: &str,
    share: &MountedShare,
    check: &mut dyn FnMut(&'static str, bool, String, String) -> bool,
) {
    let created = lvlab(&["snapshot", "create", SNAPSHOT, vm]);
    if !check(
        "`lvlab snapshot create` of the running machine",
        created.status.success(),
        "exit 0".into(),
        text(&created),
    ) {
        return;
    }
    let listed = lvlab(&["snapshot", "list", "--json", vm]);
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
    let live = rows.as_array().is_some_and(|rows| {
        rows.iter()
            .any(|r| r["name"] == SNAPSHOT && r["state"] == "running")
    });
    check(
        "`lvlab snapshot list --json` shows it, taken running",
        live,
        format!("a row with name {SNAPSHOT} and state running"),
        text(&listed),
    );
    let plan = lvlab(&["plan", "--detailed-exitcode", vm]);
    check(
        "`lvlab plan` shows the snapshot as a fact, not a change",
        plan.status.code() == Some(0) && text(&plan).contains(&format!("1 snapshot: {SNAPSHOT}")),
        format!("exit 0 and `has 1 snapshot: {SNAPSHOT}`"),
        format!("exit {:?}: {}", plan.status.code(), text(&plan)),
    );

    let written = guest(&format!(
        "echo after > {AFTER_FILE} && sync && cat {AFTER_FILE}"
    ));
    check(
        "a file is written in the guest after the snapshot",
        written.status.success() && text(&written).trim() == "after",
        format!("{AFTER_FILE} reads `after`"),
        text(&written),
    );

    let reverted = lvlab(&["snapshot", "revert", SNAPSHOT, vm]);
    if !check(
        "`lvlab snapshot revert`",
        reverted.status.success(),
        "exit 0".into(),
        text(&reverted),
    ) {
        return;
    }
    let (answered, waited) = answer_again(guest);
    check(
        "the guest answers SSH again after the revert",
        answered.status.success(),
        format!("an answer within {} s", ANSWER_AGAIN.as_secs()),
        format!("after {} s: {}", waited.as_secs(), text(&answered)),
    );
    let gone = guest(&format!(
        "test -e {AFTER_FILE} && echo present || echo gone"
    ));
    check(
        "the file written after the snapshot is gone after the revert",
        text(&gone).trim() == "gone",
        format!("{AFTER_FILE} does not exist"),
        text(&gone),
    );
    let mount = share.mount_point;
    let mounted = guest(&format!(
        "mountpoint -q {mount} && cat {mount}/{}",
        share.file
    ));
    check(
        "the virtiofs mount survives the revert",
        mounted.status.success() && text(&mounted).trim() == share.content,
        format!(
            "{mount} still mounted, {} reads `{}`",
            share.file, share.content
        ),
        text(&mounted),
    );

    let deleted = lvlab(&["snapshot", "delete", SNAPSHOT, vm]);
    let listed = lvlab(&["snapshot", "list", "--json", vm]);
    check(
        "`lvlab snapshot delete` removes it",
        deleted.status.success() && !text(&listed).contains(SNAPSHOT),
        format!("exit 0, and {SNAPSHOT} no longer listed"),
        format!("{}\n{}", text(&deleted), text(&listed)),
    );
}

/// Polls the guest until a command succeeds: after a revert, the guest
/// goes on from the saved memory, and its forwarded port may take a
/// moment.
fn answer_again(guest: &dyn Fn(&str) -> Output) -> (Output, Duration) {
    let start = Instant::now();
    loop {
        let out = guest("true");
        if out.status.success() || start.elapsed() > ANSWER_AGAIN {
            return (out, start.elapsed());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
