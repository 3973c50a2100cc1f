//! Cloud-init ran from the NoCloud seed: done, without errors or warnings,
//! and each `runcmd` (the defaults' and the machine's own) left its mark.

use crate::checks::Checks;
use crate::guest::GuestShell;
use crate::lab::DEFAULT_RUNCMD_FILE;

/// `cloud_init` is what `cloud-init status --wait --long` printed.
pub fn check(checks: &mut Checks, shell: &GuestShell, cloud_init: &str) {
    let vm = shell.guest.vm;
    let run = |command: &str| shell.run(command);

    checks.check(
        vm,
        "cloud-init status",
        cloud_init.lines().any(|l| l.trim() == "status: done"),
        "`cloud-init status --wait --long` says `status: done`",
        cloud_init,
    );
    let result = run("cat /run/cloud-init/result.json");
    let parsed: Option<serde_json::Value> = serde_json::from_str(&result).ok();
    let errors = parsed.as_ref().map(|v| v["v1"]["errors"].clone());
    checks.check(
        vm,
        "cloud-init errors",
        errors
            .as_ref()
            .is_some_and(|e| e.as_array().is_some_and(Vec::is_empty)),
        "no errors in /run/cloud-init/result.json",
        &result,
    );
    let datasource = parsed
        .as_ref()
        .and_then(|v| v["v1"]["datasource"].as_str())
        .unwrap_or("")
        .to_string();
    checks.check(
        vm,
        "seed found",
        datasource.starts_with("DataSourceNoCloud"),
        "datasource NoCloud (the cidata seed disk)",
        &result,
    );
    let warnings = run("grep -c WARNING /var/log/cloud-init.log || true");
    let warning_lines = run("grep WARNING /var/log/cloud-init.log | cut -c1-300 | head -n 5");
    checks.check(
        vm,
        "cloud-init warnings",
        warnings == "0",
        "no WARNING in /var/log/cloud-init.log",
        &format!("{warnings} warnings, first ones:\n{warning_lines}"),
    );
}

pub fn check_runcmd(checks: &mut Checks, shell: &GuestShell) {
    let (vm, guest) = (shell.guest.vm, shell.guest);
    let run = |command: &str| shell.run(command);

    let expected = format!("runcmd ran on {vm}");
    let found = run(&format!("cat {DEFAULT_RUNCMD_FILE}"));
    checks.check(
        vm,
        "runcmd from the defaults",
        found == expected,
        &format!("{DEFAULT_RUNCMD_FILE} holds `{expected}`"),
        &found,
    );
    let (file, content) = guest.marker;
    let found = run(&format!("cat {file}"));
    checks.check(
        vm,
        "runcmd of the machine",
        found == content,
        &format!("{file} holds `{content}`"),
        &found,
    );
}
