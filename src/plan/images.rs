//! The plan `lvlab init` runs: image steps only, one per cache file of the
//! images asked for, through the same checks and [`super::build`] as every
//! plan (so keys sharing a file are fetched once, as `apply` does).

use super::{build, check, CheckInput, Plan, PlanError, PlanInput, Selection, Target};
use crate::desired::{Desired, ImageAddress};
use crate::observe::Observed;

/// The plan that makes the caches hold `images`; `observed` holds their
/// cache states ([`crate::observe::images`]). `desired` may have no
/// environments (the catalog's).
pub fn images_plan(
    desired: &Desired,
    observed: &Observed,
    images: Vec<ImageAddress>,
) -> Result<Plan, PlanError> {
    let selection = Selection {
        images_only: true,
        images,
        ..Selection::default()
    };
    let check_input = CheckInput {
        desired,
        environments: &[],
        observed,
        target: Target::Running,
        selection: &selection,
    };
    let feasible = check(&check_input)?;
    build(&PlanInput {
        desired,
        environments: &[],
        observed,
        rendered: &Default::default(),
        target: Target::Running,
        selection: &selection,
        feasible: &feasible,
    })
}
