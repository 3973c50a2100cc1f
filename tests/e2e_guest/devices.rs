//! The device model: the shared directory by its virtiofs tag, and the
//! guest agent's channel (ping, and the address `status` shows from it).

use crate::checks::Checks;
use crate::guest::GuestShell;
use crate::lab::{text, virsh, SHARED_FILE, SHARE_TAG};

/// Where the check mounts the shared directory in the guest.
pub fn share_mount_point() -> String {
    format!("/mnt/{SHARE_TAG}")
}

pub fn check(checks: &mut Checks, shell: &GuestShell) {
    let (vm, lab) = (shell.guest.vm, shell.lab);
    let run = |command: &str| shell.run(command);

    let (shared_name, shared_text) = SHARED_FILE;
    let mount = share_mount_point();
    let found = run(&format!(
        "sudo -n mkdir -p {mount} && sudo -n mount -t virtiofs {SHARE_TAG} {mount} \
         && cat {mount}/{shared_name}"
    ));
    checks.check(
        vm,
        "shared directory",
        found == shared_text,
        &format!("`mount -t virtiofs {SHARE_TAG}` works and shows {shared_name}: `{shared_text}`"),
        &found,
    );
    let agent = virsh(&[
        "qemu-agent-command",
        &lab.domain(vm),
        r#"{"execute":"guest-ping"}"#,
    ]);
    checks.check(
        vm,
        "guest agent",
        agent.status.success() && String::from_utf8_lossy(&agent.stdout).contains("return"),
        "`virsh qemu-agent-command DOMAIN guest-ping` answers `{\"return\":{}}`",
        &text(&agent),
    );
    let guest_addresses = run("ip -4 -o addr show scope global");
    let row = lab
        .status()
        .into_iter()
        .find(|r| r["machine"] == vm)
        .unwrap_or_default();
    let shown: Vec<String> = row["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    checks.check(
        vm,
        "status shows the agent's address",
        shown
            .iter()
            .any(|a| a.contains('.') && guest_addresses.contains(&format!("inet {a}"))),
        "an IPv4 address of the guest in `lvlab status --json` (from the agent)",
        &format!("status: {shown:?}\nin the guest: {guest_addresses}"),
    );
}
