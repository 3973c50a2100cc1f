//! The tally of the tier's checks: each says what it expected and what it
//! found; all run, and fail together at the end.

use std::fmt;

use crate::lab::{Lab, GUESTS};

/// A failed check: which guest, which check, what was expected and found.
struct Failure {
    guest: String,
    check: String,
    expected: String,
    found: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: check `{}` failed\n      expected: {}\n      found:    {}",
            self.guest,
            self.check,
            self.expected,
            self.found.trim_end()
        )
    }
}

/// How many checks a complete run of the tier makes (both guests): 57 of
/// its own (the plan after `up` among them), `ssh_checks` on each guest,
/// `lvlab passwd` on one and the 9 snapshot checks on another; then those
/// of the guests booted one at a time (smoke, one-off, remote).
const EXPECTED_CHECKS: usize = 57
    + GUESTS.len() * crate::ssh_checks::SSH_CHECKS_PER_GUEST
    + 1 // passwd
    + 9 // snapshots
    + 1 // provision
    + crate::smoke::CHECKS
    + crate::oneoff::CHECKS
    + crate::remote::CHECKS;

#[derive(Default)]
pub struct Checks {
    passed: usize,
    failed: Vec<Failure>,
}

impl Checks {
    pub fn check(
        &mut self,
        guest: &str,
        check: &str,
        ok: bool,
        expected: &str,
        found: &str,
    ) -> bool {
        if ok {
            self.passed += 1;
            eprintln!("  ok    {guest}: {check}");
        } else {
            let failure = Failure {
                guest: guest.into(),
                check: check.into(),
                expected: expected.into(),
                found: if found.trim().is_empty() {
                    "(nothing)".into()
                } else {
                    found.into()
                },
            };
            eprintln!("  FAIL  {failure}");
            self.failed.push(failure);
        }
        ok
    }

    /// Says how many checks passed; fails with every failed check, or when
    /// fewer than [`EXPECTED_CHECKS`] ran.
    pub fn finish(self, lab: &Lab) {
        self.finish_expecting(lab, EXPECTED_CHECKS);
    }

    /// [`Checks::finish`] for a run of some modules only: `expected` checks.
    pub fn finish_expecting(self, lab: &Lab, expected: usize) {
        eprintln!(
            "\n{} checks passed, {} failed",
            self.passed,
            self.failed.len()
        );

        if !self.failed.is_empty() {
            for guest in &GUESTS {
                eprintln!(
                    "{}'s serial console: {}",
                    guest.vm,
                    lab.logs.join(format!("{}.console.log", guest.vm)).display()
                );
            }
            let report: Vec<String> = self.failed.iter().map(|f| format!("  {f}")).collect();
            panic!(
                "{} of {} real-guest checks failed:\n{}",
                self.failed.len(),
                self.passed + self.failed.len(),
                report.join("\n")
            );
        }
        // A check dropped by a refactor (or a guest whose checks never ran)
        // must not leave a green tier behind.
        let ran = self.passed + self.failed.len();
        assert!(
            ran >= expected,
            "the real-guest tier ran {ran} checks, expected at least {expected}"
        );
    }
}
