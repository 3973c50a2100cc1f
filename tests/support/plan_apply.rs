//! Plan and apply in one call, as the library tests and benches converge a
//! lab: apply's defaults, no observer, never interrupted.

use std::sync::atomic::AtomicBool;

use lvlab::apply::{NoObserver, Outcome};
use lvlab::plan::{Selection, Target};
use lvlab::reconcile::{ApplyOptions, Lab, Planned};

/// Plans `target` for `selection` on `lab` and carries the plan out.
pub fn plan_apply(lab: &Lab, target: Target, selection: &Selection) -> (Planned, Outcome) {
    let planned = lab.plan(target, selection).unwrap();
    let outcome = lab
        .apply(
            &planned,
            &ApplyOptions::default(),
            &NoObserver,
            &AtomicBool::new(false),
        )
        .unwrap();
    (planned, outcome)
}

/// [`plan_apply`], which must succeed.
#[allow(dead_code)]
#[track_caller]
pub fn converge(lab: &Lab, target: Target, selection: &Selection) -> Planned {
    let (planned, outcome) = plan_apply(lab, target, selection);
    assert!(outcome.succeeded(), "{:?}", outcome.failed);
    planned
}
