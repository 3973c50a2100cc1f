//! The smoke test's view of its operations: nothing is printed as the
//! plan runs; what the steps did is kept for the report ([`Recorded`]),
//! and only the wait for SSH and image downloads are passed on to the
//! [`SmokeReporter`] as progress.

use std::sync::Mutex;
use std::time::Duration;

use super::SmokeReporter;
use crate::apply::{ActionError, Outcome};
use crate::cloudinit::password::{OneTimePassword, PasswordReporter};
use crate::images::Reporter;
use crate::plan::{Action, Plan, Step};
use crate::reconcile::{Confirm, OperationError, Ui};

/// What one operation showed.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The plan had no step.
    pub nothing_to_do: bool,
    /// Image steps in the plan.
    pub image_steps: usize,
    /// The domain type the plan defines the machine with.
    pub domain_type: Option<String>,
    /// Each failed step: `address: action failed: error`.
    pub failures: Vec<String>,
    /// `--wait`: the command that reaches the machine, once it answered.
    pub ssh_ready: Option<String>,
}

pub struct Recorder<'r> {
    reporter: &'r dyn SmokeReporter,
    recorded: Mutex<Recorded>,
}

impl<'r> Recorder<'r> {
    pub fn new(reporter: &'r dyn SmokeReporter) -> Self {
        Self {
            reporter,
            recorded: Mutex::new(Recorded::default()),
        }
    }

    pub fn into_recorded(self) -> Recorded {
        self.recorded
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with(&self, change: impl FnOnce(&mut Recorded)) {
        change(&mut self.recorded.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl PasswordReporter for Recorder<'_> {
    /// The smoke lab has `password: false`: no password is ever made.
    fn seed_written(&self, _: &str, _: &str, _: &OneTimePassword) {}
}

/// The smoke lab has no `provision:` list: nothing to hear.
impl crate::provision::ProvisionReporter for Recorder<'_> {
    fn provision_output(&self, _: &Step, _: &str) {}
}

impl Ui for Recorder<'_> {
    fn show_plan(&self, plan: &Plan) {
        let steps: Vec<&Step> = plan.steps().map(|(_, step)| step).collect();
        self.with(|r| {
            r.nothing_to_do = steps.is_empty();
            r.image_steps = steps
                .iter()
                .filter(|s| matches!(s.action, Action::DownloadImage { .. }))
                .count();
            r.domain_type = steps.iter().find_map(|s| match &s.action {
                Action::DefineDomain { domain_type, .. } => Some(domain_type.clone()),
                _ => None,
            });
        });
    }

    /// Never asked: the smoke test's operations have no confirmation.
    fn confirm(&self, _: &Confirm) -> Result<bool, OperationError> {
        Ok(true)
    }

    fn cancelled(&self) {}

    fn apply_starting(&self, _: &Plan) {}

    fn download_reporter(&self) -> Box<dyn Reporter> {
        self.reporter.download_reporter()
    }

    fn step_started(&self, _: &Step) {}

    fn step_still_running(&self, _: &Step, _: Duration) {}

    fn step_finished(&self, step: &Step, _: Duration, result: &Result<(), ActionError>) {
        if let Err(error) = result {
            let line = format!(
                "{}: {} failed: {error}",
                step.address,
                step.action.describe()
            );
            self.with(|r| r.failures.push(line));
        }
    }

    fn applied(&self, _: &Plan, outcome: &Outcome) {
        if outcome.interrupted {
            self.with(|r| r.failures.push("interrupted".into()));
        }
    }

    fn ssh_no_endpoint(&self, vm_name: &str) {
        self.with(|r| {
            r.failures
                .push(format!("{vm_name}: no SSH endpoint lvlab can reach"))
        });
    }

    fn ssh_waiting(&self, _: &[&str], elapsed: Duration) {
        self.reporter.waiting_for_ssh(elapsed);
    }

    fn ssh_ready(&self, _: &str, _: Duration, connect: &str) {
        self.with(|r| r.ssh_ready = Some(connect.to_string()));
    }
}
