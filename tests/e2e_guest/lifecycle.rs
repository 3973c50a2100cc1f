//! The end of the lab: an ACPI `down` (no `--force`) that real guests obey
//! in time, and a `destroy --force` that leaves no domain and no file.

use std::time::Instant;

use crate::checks::Checks;
use crate::lab::{text, Lab};

/// Shuts the guests down by ACPI, no force: a real guest must stop in
/// time. How long it took.
pub fn check_down(checks: &mut Checks, lab: &Lab) -> f64 {
    let down_started = Instant::now();
    let down = lab.lvlab(&["down", "--timeout", "180"]);
    let down_secs = down_started.elapsed().as_secs_f64();
    let states: Vec<String> = lab
        .status()
        .iter()
        .map(|r| format!("{}={}", r["machine"], r["state"]))
        .collect();
    checks.check(
        "lab",
        "ACPI shutdown (lvlab down, no --force)",
        down.status.success() && states.iter().all(|s| s.ends_with("\"shut off\"")),
        "every guest shut off within 180 s",
        &format!("{}\n{}", states.join(" "), text(&down)),
    );
    down_secs
}

pub fn check_destroy(checks: &mut Checks, lab: &Lab) {
    let destroy = lab.lvlab(&["destroy", "--force"]);
    let left = lab.domains();
    checks.check(
        "lab",
        "destroy leaves no domain",
        destroy.status.success() && left.is_empty(),
        "no domain of the environment in `virsh list --all`",
        &format!("{left:?}\n{}", text(&destroy)),
    );
    let env_dir = lab.dir.path().join("vms").join(&lab.env);
    checks.check(
        "lab",
        "destroy leaves no file",
        !env_dir.exists(),
        &format!("{} removed", env_dir.display()),
        &format!("{} still exists", env_dir.display()),
    );
}
