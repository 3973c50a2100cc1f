//! `lvlab apply`, and the plan-confirm-execute-report flow that the classic
//! commands (`up`, `down`, `destroy`) share with it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use clap::Args;

use super::apply_progress::LineProgress;
use super::passwords::{ConsolePasswords, ShowPasswordsArg};
use super::reconcile_args::{Selectors, Session};
use super::wait::WaitArgs;
use super::{CliError, GlobalArgs, Printer};
use crate::apply::EnvironmentLock;
use crate::plan::saved::SavedPlan;
use crate::plan::{Selection, Target};
use crate::reconcile::{ApplyOptions, Lab, Planned};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `lvlab plan --out FILE`, or machines to act on
    #[command(flatten)]
    pub selectors: Selectors,

    #[command(flatten)]
    pub execution: ExecutionArgs,

    /// Apply without asking for confirmation
    #[arg(long)]
    pub auto_approve: bool,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub passwords: ShowPasswordsArg,
}

/// How a plan is carried out; shared by apply and the classic commands.
#[derive(Debug, Args, Clone)]
pub struct ExecutionArgs {
    /// Run at most N actions at once
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,

    /// Wait up to SECONDS for another lvlab working on the same environment
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

pub fn run(global: &GlobalArgs, args: &ApplyArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    if let [file] = args.selectors.vms.as_slice() {
        if Path::new(file).is_file() {
            return apply_saved(global, Path::new(file), args, printer);
        }
    }
    let session = args.selectors.session(global)?;
    let (target, selection) = args.selectors.request();
    let mut flow = Flow::new(target, selection, &args.execution);
    flow.confirm = (!args.auto_approve).then_some(Confirm::APPLY);
    flow.wait = args.wait.requested();
    flow.passwords = args.passwords.clone();
    flow.run(&session, printer)
}

fn apply_saved(
    global: &GlobalArgs,
    file: &Path,
    args: &ApplyArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let saved = SavedPlan::read(file)?;
    if global.connect.is_some() && global.connect != saved.connect {
        return Err(CliError::Other(format!(
            "{} was made for {}, not --connect {}\n  hint: apply it without --connect, \
             or make a new plan with this --connect",
            file.display(),
            saved
                .connect
                .as_deref()
                .map_or("the manifest's libvirt_uri".to_string(), |uri| format!(
                    "--connect {uri}"
                )),
            global.connect.as_deref().unwrap_or_default(),
        )));
    }
    let session = Session::open(
        saved.manifest.clone(),
        saved.environment.clone(),
        saved.config.as_deref(),
        saved.connect.clone(),
    )?;
    // A saved plan was reviewed when it was made: no confirmation.
    let mut flow = Flow::new(saved.target, saved.selection.clone(), &args.execution);
    flow.saved = Some(&saved);
    flow.wait = args.wait.requested();
    flow.passwords = args.passwords.clone();
    flow.run(&session, printer)
}

/// The question asked before changes, and the flag that skips it.
pub struct Confirm {
    pub question: &'static str,
    pub skip_flag: &'static str,
}

impl Confirm {
    pub const APPLY: Confirm = Confirm {
        question: "Apply these changes?",
        skip_flag: "--auto-approve",
    };
}

/// Plan, show, confirm, execute, report.
pub struct Flow<'a> {
    pub target: Target,
    pub selection: Selection,
    pub execution: ExecutionArgs,
    pub confirm: Option<Confirm>,
    pub shutdown: Duration,
    pub force: bool,
    pub saved: Option<&'a SavedPlan>,
    /// Wait for SSH on the machines after a successful apply.
    pub wait: Option<WaitArgs>,
    /// Where console passwords of new seeds may be shown.
    pub passwords: ShowPasswordsArg,
}

impl<'a> Flow<'a> {
    /// A flow without confirmation, forcing, saved plan or waiting, that
    /// gives guests apply's default time to shut down.
    pub fn new(target: Target, selection: Selection, execution: &ExecutionArgs) -> Self {
        Self {
            target,
            selection,
            execution: execution.clone(),
            confirm: None,
            shutdown: ApplyOptions::default().shutdown_timeout,
            force: false,
            saved: None,
            wait: None,
            passwords: ShowPasswordsArg::default(),
        }
    }

    pub fn run(&self, session: &Session, printer: &Printer) -> Result<ExitCode, CliError> {
        self.run_in(session, &session.lab()?, printer)
    }

    /// [`Flow::run`] on a lab the caller opened from `session`.
    pub fn run_in(
        &self,
        session: &Session,
        lab: &Lab,
        printer: &Printer,
    ) -> Result<ExitCode, CliError> {
        let _locks = self.lock(lab)?;
        let planned = lab.plan(self.target, &self.selection)?;
        if let Some(saved) = self.saved {
            saved.check(&session.desired, &planned.observed)?;
        }
        let text = crate::plan::render_text(
            &planned.plan,
            &session.manifest_name(),
            printer.color_stdout(),
        );
        printer.out(text.trim_end());
        if planned.plan.is_empty() {
            return self.wait_if_asked(lab, printer).map(|()| ExitCode::SUCCESS);
        }
        if let Some(confirm) = &self.confirm {
            if !ask(confirm)? {
                printer.out("Apply cancelled.");
                return Ok(ExitCode::from(1));
            }
        }
        printer.out("");
        let passwords = Arc::new(ConsolePasswords::new(&self.passwords, true));
        let options = ApplyOptions {
            parallelism: usize::from(self.execution.parallelism),
            shutdown_timeout: self.shutdown,
            force: self.force,
            image_reporter: download_bars(printer),
            password_reporter: Box::new(passwords.clone()),
        };
        let outcome = lab.apply(&planned, &options, &LineProgress::new(), interrupt_flag())?;
        let code = report(&planned, &outcome, printer);
        passwords.report_withheld();
        if outcome.succeeded() {
            self.wait_if_asked(lab, printer)?;
        }
        Ok(code)
    }

    fn wait_if_asked(&self, lab: &Lab, printer: &Printer) -> Result<(), CliError> {
        match &self.wait {
            Some(args) if self.target == Target::Running => {
                super::wait::wait_for_ssh(lab, &self.selection.machines, args, printer)
            }
            _ => Ok(()),
        }
    }

    /// One lock per (canonical URI, environment), whichever manifest
    /// names them: two manifests with one environment name serialize.
    fn lock(&self, lab: &Lab) -> Result<Vec<EnvironmentLock>, CliError> {
        let timeout = Duration::from_secs(self.execution.lock_timeout);
        let mut pairs = Vec::new();
        for env in &lab.environments {
            let uri = lab.hosts.get(&env.libvirt_uri).canonical_uri();
            pairs.push((uri.to_string(), env.name.clone()));
        }
        Ok(EnvironmentLock::acquire_all(
            &crate::apply::state_dir()?,
            pairs,
            timeout,
        )?)
    }
}

/// Live download bars on a terminal without `--quiet`; elsewhere the
/// action lines say enough.
fn download_bars(printer: &Printer) -> Box<dyn crate::images::Reporter> {
    if printer.progress_stderr() {
        super::progress::reporter(false)
    } else {
        Box::new(crate::images::progress::Silent)
    }
}

fn ask(confirm: &Confirm) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Other(format!(
            "not asking \"{}\": standard input is not a terminal; pass {} to go ahead",
            confirm.question, confirm.skip_flag
        )));
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
        .map_err(|e| CliError::Other(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Set by the first Ctrl-C: no new actions start. The second exits at once.
pub(super) fn interrupt_flag() -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            if FLAG.swap(true, Ordering::SeqCst) {
                eprintln!("\nInterrupted again: exiting now. The next apply converges from what exists.");
                std::process::exit(130);
            }
            eprintln!("\nInterrupt: starting no new actions; waiting for running ones (Ctrl-C again exits now).");
        });
        if let Err(err) = installed {
            tracing::warn!("cannot watch for Ctrl-C: {err}");
        }
    });
    &FLAG
}

fn report(planned: &Planned, outcome: &crate::apply::Outcome, printer: &Printer) -> ExitCode {
    let plan = &planned.plan;
    printer.out("");
    if outcome.succeeded() {
        let s = plan.summary;
        printer.out(&format!(
            "Apply complete! Resources: {} added, {} changed, {} destroyed.",
            s.add, s.change, s.destroy
        ));
        return ExitCode::SUCCESS;
    }
    for (node, message) in &outcome.failed {
        let step = &plan.graph[*node];
        printer.error(&format!(
            "error: {}: {} failed: {message}",
            step.address,
            step.action.describe()
        ));
    }
    if outcome.interrupted {
        printer.error(&format!(
            "Interrupted: {} actions not started. Run the same command again to continue.",
            outcome.not_run.len()
        ));
        return ExitCode::from(130);
    }
    printer.error(&format!(
        "Apply failed: {} action(s) failed, {} not run because they depend on them. \
         Fix the cause and apply again: lvlab continues from what exists.",
        outcome.failed.len(),
        outcome.not_run.len()
    ));
    ExitCode::from(1)
}
