//! The operation for a person: the plan as text, a question on the
//! terminal, a line when a step starts and when it ends with its duration,
//! terraform's "Still creating... [10s elapsed]" for long steps, download
//! bars on a terminal, provisioning output as `VM | line`, and the
//! summary.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use super::passwords::{ConsolePasswords, ShowPasswordsArg};
use super::Printer;
use crate::apply::{ActionError, ExecutionObserver, JobInfo, Outcome};
use crate::cloudinit::password::{OneTimePassword, PasswordReporter};
use crate::images::Reporter;
use crate::plan::{Action, Address, Plan, Step};
use crate::provision::ProvisionReporter;
use crate::reconcile::{Confirm, OperationError, Ui};

pub struct HumanUi<'a> {
    printer: &'a Printer,
    manifest_name: String,
    passwords: ConsolePasswords,
}

impl<'a> HumanUi<'a> {
    pub fn new(printer: &'a Printer, manifest_name: String, passwords: &ShowPasswordsArg) -> Self {
        Self {
            printer,
            manifest_name,
            passwords: ConsolePasswords::new(passwords, true),
        }
    }
}

impl PasswordReporter for HumanUi<'_> {
    fn seed_written(&self, vm_name: &str, user: &str, password: &OneTimePassword) {
        self.passwords.show(vm_name, user, password);
    }
}

/// `VM | line`, as the commands print them.
impl ProvisionReporter for HumanUi<'_> {
    fn provision_output(&self, step: &Step, line: &str) {
        self.printer
            .out(&format!("{} | {line}", machine_name(step)));
    }
}

impl Ui for HumanUi<'_> {
    fn show_plan(&self, plan: &Plan) {
        let text = crate::plan::render_text(plan, &self.manifest_name, self.printer.color_stdout());
        self.printer.out(text.trim_end());
    }

    fn confirm(&self, confirm: &Confirm) -> Result<bool, OperationError> {
        if !std::io::stdin().is_terminal() {
            return Err(OperationError::NobodyToAsk(*confirm));
        }
        print!(
            "\n{} Only 'y' or 'yes' goes ahead. [y/N] ",
            confirm.question
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(OperationError::Answer)?;
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }

    fn cancelled(&self) {
        self.printer.out("Apply cancelled.");
    }

    fn apply_starting(&self, _: &Plan) {
        self.printer.out("");
    }

    /// Live download bars on a terminal without `--quiet`; elsewhere the
    /// step lines say enough.
    fn download_reporter(&self) -> Box<dyn Reporter> {
        if self.printer.progress_stderr() {
            super::progress::reporter(false)
        } else {
            Box::new(crate::images::progress::Silent)
        }
    }

    fn step_started(&self, step: &Step) {
        self.printer.out(&format!("{}...", describe(step)));
    }

    fn step_still_running(&self, step: &Step, elapsed: Duration) {
        self.printer.out(&format!(
            "{}: Still {}... [{}s elapsed]",
            describe(step),
            progress_verb(&step.action),
            elapsed.as_secs()
        ));
    }

    fn step_finished(&self, step: &Step, elapsed: Duration, result: &Result<(), ActionError>) {
        let step = describe(step);
        self.printer.out(&match result {
            Ok(()) => format!("{step}: done after {}", seconds(elapsed)),
            Err(error) => format!("{step}: FAILED after {}: {error}", seconds(elapsed)),
        });
    }

    fn applied(&self, plan: &Plan, outcome: &Outcome) {
        report(plan, outcome, self.printer);
        self.passwords.report_withheld();
    }

    fn ssh_no_endpoint(&self, vm_name: &str) {
        self.printer.out(&format!(
            "{vm_name}: no SSH endpoint lvlab can reach (use a passt NIC with ssh_port, or a static address); not waiting"
        ));
    }

    fn ssh_waiting(&self, vm_names: &[&str], elapsed: Duration) {
        self.printer.out(&format!(
            "waiting for SSH on {}... [{}s elapsed]",
            vm_names.join(", "),
            elapsed.as_secs()
        ));
    }

    fn ssh_ready(&self, vm_name: &str, elapsed: Duration, connect: &str) {
        self.printer.out(&format!(
            "{vm_name} answers on SSH after {}s: {connect}",
            elapsed.as_secs()
        ));
    }
}

/// The machine's vm_name (an image's key) of a step.
pub(super) fn machine_name(step: &Step) -> &str {
    match &step.address {
        Address::Machine { vm_name, .. } => vm_name,
        Address::Image { key, .. } | Address::HostImage { key, .. } => key,
    }
}

/// `address: action`, as the executor's debug log says it too.
fn describe(step: &Step) -> String {
    crate::actions::info(step).describe()
}

/// Terraform's verb for a long step: what the step does to its resource.
pub(super) fn progress_verb(action: &Action) -> &'static str {
    match action {
        Action::DownloadImage { .. }
        | Action::UploadImage { .. }
        | Action::CreateDisk { .. }
        | Action::BuildSeed { .. }
        | Action::DefineDomain { .. } => "creating",
        Action::RedefineDomain { .. } => "modifying",
        Action::StartDomain { .. } | Action::ResumeDomain => "starting",
        Action::ShutdownDomain | Action::PowerOffDomain => "stopping",
        Action::UndefineDomain | Action::RemoveFiles { .. } => "destroying",
        Action::Provision { .. } => "provisioning",
    }
}

/// A line per host, for a plan over several.
fn report_hosts(plan: &Plan, printer: &Printer) {
    let hosts = plan.hosts();
    if hosts.len() < 2 {
        return;
    }
    for uri in hosts {
        let unreachable = plan
            .unreachable
            .iter()
            .filter(|u| u.address.uri() == Some(uri))
            .count();
        if unreachable > 0 {
            printer.out(&format!(
                "  {uri}: unreachable, {unreachable} machine(s) not planned"
            ));
            continue;
        }
        let blocks: Vec<_> = plan
            .blocks
            .iter()
            .filter(|b| b.address.uri() == Some(uri))
            .cloned()
            .collect();
        let s = crate::plan::summarize(&blocks);
        printer.out(&format!(
            "  {uri}: {} added, {} changed, {} destroyed",
            s.add, s.change, s.destroy
        ));
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn report(plan: &Plan, outcome: &Outcome, printer: &Printer) {
    printer.out("");
    if outcome.succeeded() {
        let s = plan.summary;
        printer.out(&format!(
            "Apply complete! Resources: {} added, {} changed, {} destroyed.",
            s.add, s.change, s.destroy
        ));
        report_hosts(plan, printer);
        return;
    }
    for (node, error) in &outcome.failed {
        let step = &plan.graph[*node];
        printer.error(&format!(
            "error: {}: {} failed: {error}",
            step.address,
            step.action.describe()
        ));
    }
    if outcome.interrupted {
        printer.error(&format!(
            "Interrupted: {} actions not started. Run the same command again to continue.",
            outcome.not_run.len()
        ));
        return;
    }
    printer.error(&format!(
        "Apply failed: {} action(s) failed, {} not run because they depend on them. \
         Fix the cause and apply again: lvlab continues from what exists.",
        outcome.failed.len(),
        outcome.not_run.len()
    ));
}

/// Lines for jobs that are not a plan's steps (snapshot verbs): one when a
/// job starts and one when it ends, as [`HumanUi`] writes them for steps.
pub struct JobLines<'a>(pub &'a Printer);

impl ExecutionObserver for JobLines<'_> {
    fn started(&self, job: &JobInfo) {
        self.0.out(&format!("{}...", job.describe()));
    }

    fn finished(&self, job: &JobInfo, elapsed: Duration, result: &Result<(), ActionError>) {
        let job = job.describe();
        self.0.out(&match result {
            Ok(()) => format!("{job}: done after {}", seconds(elapsed)),
            Err(error) => format!("{job}: FAILED after {}: {error}", seconds(elapsed)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_has_terraforms_verb_for_what_it_does() {
        let verb = |action| progress_verb(&action);
        let dir = std::path::Path::new("/vms/web");
        assert_eq!(verb(Action::remove_files_in(dir)), "destroying");
        assert_eq!(verb(Action::ShutdownDomain), "stopping");
        assert_eq!(verb(Action::UndefineDomain), "destroying");
        let watch = crate::plan::StartWatch::None;
        assert_eq!(verb(Action::StartDomain { watch }), "starting");
    }
}
