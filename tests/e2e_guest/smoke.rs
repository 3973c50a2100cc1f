//! `lvlab smoke` on the tier's real image, after the lab is gone: every
//! step passes on a real guest and nothing is left behind (the checks of
//! `tests/support/smoke_checks.rs`).

use std::path::Path;

use crate::checks::Checks;
use crate::lab::Lab;
use crate::smoke_checks;

/// How many checks [`check`] makes.
pub const CHECKS: usize = smoke_checks::STEPS.len() + 3;

pub fn check(checks: &mut Checks, lab: &Lab) {
    let binary = Path::new(env!("CARGO_BIN_EXE_lvlab"));
    for check in smoke_checks::smoke_passes(binary, lab.dir.path(), "e2e") {
        checks.check(
            "smoke",
            &check.check,
            check.ok,
            &check.expected,
            &check.found,
        );
    }
}
