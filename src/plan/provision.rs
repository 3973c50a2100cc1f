//! When an existing machine's `provision:` list runs: only when asked
//! (`--reprovision`). A machine made by the apply gets its first run with
//! its start ([`super::build`]); for one that exists, a list that differs
//! from the one recorded on its domain is a note, never a change: running
//! commands on a machine that was left alone is never a surprise, also for
//! machines deployed before the list was written.

use super::Target;
use crate::desired::MachineSpec;
use crate::domain::OwnershipMark;

/// What the plan does about an existing machine's provisioning.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Provisioning {
    /// Run the list with this digest.
    Run(String),
    /// Tell why it does not run, and how to run it.
    Note(String),
    Nothing,
}

/// Kept apart from the spec: the recorded digest (`mark.provisioned`) is
/// compared here only, so a changed list is neither drift nor a change.
pub(super) fn for_existing(
    machine: &MachineSpec,
    mark: &OwnershipMark,
    requested: bool,
    target: Target,
) -> Provisioning {
    let Some(desired) = crate::provision::digest(&machine.provision) else {
        return Provisioning::Nothing;
    };
    if target != Target::Running {
        return Provisioning::Nothing;
    }
    if requested {
        return Provisioning::Run(desired);
    }
    let vm = &machine.vm_name;
    match &mark.provisioned {
        Some(recorded) if *recorded == desired => Provisioning::Nothing,
        Some(_) => Provisioning::Note(format!(
            "{vm}: its provision list changed since it ran; provision again \
             (lvlab apply --reprovision {vm})"
        )),
        None => Provisioning::Note(format!(
            "{vm}: its provision list has not run to its end on it (deployed before the \
             list, or a run failed); provision again (lvlab apply --reprovision {vm})"
        )),
    }
}
