//! One run of plan, confirm, apply and report, as terraform's operation:
//! the policy (lock the environments, check a saved plan, ask before
//! changing anything, show console passwords, wait for SSH after a
//! successful apply, through [`ssh_wait`]) lives here, and everything a person or a script sees
//! goes through a [`Ui`]. The command line only picks the Ui and turns
//! the [`Ended`] into an exit code.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use petgraph::graph::NodeIndex;

use super::{ApplyOptions, Lab, ReconcileError};
use crate::apply::{ActionError, EnvironmentLock, ExecutionObserver, JobInfo, LockError, Outcome};
use crate::cloudinit::password::PasswordReporter;
use crate::desired::MachineSpec;
use crate::host::SshEndpoint;
use crate::images::Reporter;
use crate::libvirt::LibvirtError;
use crate::observe::ssh_wait::{self, NotReachable, WaitReporter};
use crate::plan::saved::{SavedPlan, SavedPlanError};
use crate::plan::{Plan, Selection, Step, Target, UnreachableMachine};
use crate::provision::ProvisionReporter;

/// How often a long step is reported as still running (terraform's 10 s).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Everything an operation shows or asks. Console passwords arrive through
/// [`PasswordReporter::seed_written`], from the step that writes the seed;
/// what provisioning commands print through
/// [`ProvisionReporter::provision_output`], from the provisioning step.
pub trait Ui: PasswordReporter + ProvisionReporter {
    /// The plan, before anything changes (also when it is empty).
    fn show_plan(&self, plan: &Plan);
    /// Whether to go ahead; an error when nobody can answer.
    fn confirm(&self, confirm: &Confirm) -> Result<bool, OperationError>;
    /// The answer was no: nothing was changed.
    fn cancelled(&self);
    /// Confirmed (or nothing to ask): the steps start now.
    fn apply_starting(&self, plan: &Plan);
    /// Hears about image downloads (live bars, or nothing).
    fn download_reporter(&self) -> Box<dyn Reporter>;
    fn step_started(&self, step: &Step);
    /// Every [`PROGRESS_EVERY`] while `step` runs.
    fn step_still_running(&self, step: &Step, elapsed: Duration);
    fn step_finished(&self, step: &Step, elapsed: Duration, result: &Result<(), ActionError>);
    /// What became of the steps, once every one that could run has.
    fn applied(&self, plan: &Plan, outcome: &Outcome);
    /// `--wait`: a machine lvlab has no SSH endpoint for; not waited for.
    fn ssh_no_endpoint(&self, vm_name: &str);
    /// `--wait`: machines still not answering after `elapsed`.
    fn ssh_waiting(&self, vm_names: &[&str], elapsed: Duration);
    /// `--wait`: a machine answers; `connect` is the command to reach it.
    fn ssh_ready(&self, vm_name: &str, elapsed: Duration, connect: &str);
}

/// The question asked before changes, and the flag that skips it.
#[derive(Debug, Clone, Copy)]
pub struct Confirm {
    pub question: &'static str,
    pub skip_flag: &'static str,
}

impl Confirm {
    pub const APPLY: Confirm = Confirm {
        question: "Apply these changes?",
        skip_flag: "--auto-approve",
    };
    pub const DESTROY: Confirm = Confirm {
        question: "Destroy these machines and delete their disks?",
        skip_flag: "--force",
    };
}

#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    SavedPlan(#[from] SavedPlanError),
    #[error("not asking \"{}\": standard input is not a terminal; pass {} to go ahead", .0.question, .0.skip_flag)]
    NobodyToAsk(Confirm),
    #[error("cannot read the answer: {0}")]
    Answer(std::io::Error),
    /// `--wait` gave up on some machines.
    #[error(transparent)]
    Wait(#[from] NotReachable),
    /// Machines on hosts that could not be opened were not planned; the
    /// others' plan was carried out.
    #[error("{}", unreachable_text(.0))]
    Unreachable(Vec<UnreachableMachine>),
}

/// "web was not planned: host unreachable: <uri>: <message>", a line each.
fn unreachable_text(machines: &[UnreachableMachine]) -> String {
    machines
        .iter()
        .map(|m| format!("{} was not planned: {}", m.address, m.reason()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl OperationError {
    /// The unreachable machines of `plan` as an error, once the reachable
    /// ones are done; `Ok` when every host answered.
    pub fn unless_reachable(plan: &Plan) -> Result<(), OperationError> {
        if plan.unreachable.is_empty() {
            Ok(())
        } else {
            Err(OperationError::Unreachable(plan.unreachable.clone()))
        }
    }
}

/// How an operation ended, short of an error.
#[derive(Debug)]
pub enum Ended {
    /// The plan was empty.
    NothingToDo,
    /// The confirmation was refused.
    Cancelled,
    Applied(Outcome),
}

/// Plan, show, confirm, apply, report, wait.
pub struct Operation<'a> {
    pub target: Target,
    pub selection: Selection,
    pub parallelism: usize,
    /// How long to wait for another lvlab working on the same environment.
    pub lock_timeout: Duration,
    /// Asked before changes; `None` goes ahead.
    pub confirm: Option<Confirm>,
    pub shutdown_timeout: Duration,
    pub force: bool,
    /// The plan reviewed earlier; the one made now must match it.
    pub saved: Option<&'a SavedPlan>,
    /// Wait up to this long for SSH on the machines after a successful
    /// apply (target running only).
    pub wait: Option<Duration>,
    /// How long a provisioning step waits for its machine's SSH.
    pub provision_timeout: Duration,
}

impl<'a> Operation<'a> {
    /// No confirmation, forcing, saved plan or waiting; apply's defaults
    /// for parallelism, locks and shutdowns.
    pub fn new(target: Target, selection: Selection) -> Self {
        let defaults = ApplyOptions::default();
        Self {
            target,
            selection,
            parallelism: defaults.parallelism,
            lock_timeout: Duration::from_secs(60),
            confirm: None,
            shutdown_timeout: defaults.shutdown_timeout,
            force: false,
            saved: None,
            wait: None,
            provision_timeout: defaults.provision_timeout,
        }
    }

    pub fn run(
        &self,
        lab: &Lab,
        ui: &dyn Ui,
        interrupt: &AtomicBool,
    ) -> Result<Ended, OperationError> {
        let _locks = self.lock(lab)?;
        let planned = lab.plan(self.target, &self.selection)?;
        if let Some(saved) = self.saved {
            saved.check(lab.desired, &planned.observed)?;
        }
        ui.show_plan(&planned.plan);
        if planned.plan.is_empty() {
            self.wait_if_asked(lab, ui)?;
            OperationError::unless_reachable(&planned.plan)?;
            return Ok(Ended::NothingToDo);
        }
        if let Some(confirm) = &self.confirm {
            if !ui.confirm(confirm)? {
                ui.cancelled();
                return Ok(Ended::Cancelled);
            }
        }
        ui.apply_starting(&planned.plan);
        let options = ApplyOptions {
            parallelism: self.parallelism,
            shutdown_timeout: self.shutdown_timeout,
            force: self.force,
            image_reporter: ui.download_reporter(),
            password_reporter: ui,
            provision_timeout: self.provision_timeout,
            provision_reporter: ui,
        };
        let events = StepEvents::new(&planned.plan, ui);
        let outcome = lab.apply(&planned, &options, &events, interrupt)?;
        ui.applied(&planned.plan, &outcome);
        if outcome.succeeded() {
            self.wait_if_asked(lab, ui)?;
            OperationError::unless_reachable(&planned.plan)?;
        }
        Ok(Ended::Applied(outcome))
    }

    /// Waits for the selected machines' SSH (every machine of the lab when
    /// none was named) when asked to; an error lists those not ready.
    fn wait_if_asked(&self, lab: &Lab, ui: &dyn Ui) -> Result<(), OperationError> {
        let Some(timeout) = self.wait.filter(|_| self.target == Target::Running) else {
            return Ok(());
        };
        let named = &self.selection.machines;
        let machines: Vec<_> = lab
            .environments
            .iter()
            .flat_map(|env| &env.machines)
            .filter(|m| named.is_empty() || named.contains(&m.vm_name))
            .filter_map(|machine| Some((lab.hosts.find(&machine.libvirt_uri)?, machine)))
            .collect();
        ssh_wait::wait_for_ssh(&machines, timeout, &WaitToUi(ui)).map_err(OperationError::Wait)
    }

    fn lock(&self, lab: &Lab) -> Result<Vec<EnvironmentLock>, OperationError> {
        Ok(lab.lock(self.lock_timeout)?)
    }
}

/// The wait for SSH's news, told to the operation's view.
struct WaitToUi<'a>(&'a dyn Ui);

impl WaitReporter for WaitToUi<'_> {
    fn no_endpoint(&self, machine: &MachineSpec) {
        self.0.ssh_no_endpoint(&machine.vm_name);
    }

    fn answered(&self, machine: &MachineSpec, endpoint: &SshEndpoint, after: Duration) {
        let connect = endpoint.command(&machine.cloud_init.user);
        self.0.ssh_ready(&machine.vm_name, after, &connect);
    }

    fn still_waiting(&self, machines: &[&str], elapsed: Duration) {
        self.0.ssh_waiting(machines, elapsed);
    }
}

/// The executor's events as the plan's steps, with "still running" every
/// [`PROGRESS_EVERY`] of each step's own time.
struct StepEvents<'p> {
    plan: &'p Plan,
    ui: &'p dyn Ui,
    steps: HashMap<JobInfo, NodeIndex>,
    /// How many progress reports each running step has had.
    reported: Mutex<HashMap<NodeIndex, u64>>,
}

impl<'p> StepEvents<'p> {
    fn new(plan: &'p Plan, ui: &'p dyn Ui) -> Self {
        let steps = plan
            .steps()
            .map(|(node, step)| (crate::actions::info(step), node))
            .collect();
        Self {
            plan,
            ui,
            steps,
            reported: Mutex::new(HashMap::new()),
        }
    }

    fn step(&self, job: &JobInfo) -> Option<(NodeIndex, &'p Step)> {
        let node = *self.steps.get(job)?;
        Some((node, &self.plan.graph[node]))
    }
}

impl ExecutionObserver for StepEvents<'_> {
    fn started(&self, job: &JobInfo) {
        if let Some((_, step)) = self.step(job) {
            self.ui.step_started(step);
        }
    }

    fn finished(&self, job: &JobInfo, elapsed: Duration, result: &Result<(), ActionError>) {
        if let Some((node, step)) = self.step(job) {
            self.reported
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&node);
            self.ui.step_finished(step, elapsed, result);
        }
    }

    fn still_running(&self, running: &[(JobInfo, Duration)]) {
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        for (job, elapsed) in running {
            let Some((node, step)) = self.step(job) else {
                continue;
            };
            let done = reported.entry(node).or_insert(0);
            if let Some(due) = progress_due(*elapsed, *done) {
                *done = due;
                self.ui.step_still_running(step, *elapsed);
            }
        }
    }
}

/// The number of the progress report a step that ran `elapsed` and had
/// `reported` reports is due for now, if any: one per [`PROGRESS_EVERY`]
/// of its own time, none skipped twice when a tick came late.
fn progress_due(elapsed: Duration, reported: u64) -> Option<u64> {
    let due = elapsed.as_secs() / PROGRESS_EVERY.as_secs();
    (due > reported).then_some(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_reported_once_per_ten_seconds_of_its_own_time() {
        let s = Duration::from_secs;
        assert_eq!(progress_due(s(9), 0), None);
        assert_eq!(progress_due(s(10), 0), Some(1));
        assert_eq!(progress_due(s(11), 1), None);
        assert_eq!(progress_due(s(20), 1), Some(2));
        // A tick that came late reports once, not once per missed 10 s.
        assert_eq!(progress_due(s(41), 2), Some(4));
    }
}
