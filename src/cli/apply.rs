//! `lvlab apply`, and what the classic commands (`up`, `down`, `destroy`)
//! share with it: building the [`Operation`], picking its view (text or
//! `--json`) and turning how it ended into an exit code.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use clap::Args;

use super::human_ui::HumanUi;
use super::json_ui::{JsonStream, JsonUi};
use super::passwords::ShowPasswordsArg;
use super::reconcile_args::{Selectors, Session};
use super::wait::WaitArgs;
use super::{CliError, GlobalArgs, Printer};
use crate::plan::saved::SavedPlan;
use crate::plan::{Selection, Target};
use crate::reconcile::{Confirm, Ended, Lab, Operation};

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

    /// Print one JSON object per line (docs/apply-json.md) instead of text;
    /// needs a way past the confirmation question
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, args: &ApplyArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let saved_file = match args.selectors.vms.as_slice() {
        [file] if Path::new(file).is_file() => Some(Path::new(file)),
        _ => None,
    };
    if saved_file.is_none() && !args.auto_approve {
        json_needs_no_question(&args.execution, "--auto-approve or a saved plan")?;
    }
    with_view(&args.execution, printer, |view| match saved_file {
        Some(file) => apply_saved(global, file, args, view),
        None => {
            let session = args.selectors.session(global)?;
            let (target, selection) = args.selectors.request();
            let mut operation = operation(target, selection, &args.execution);
            operation.confirm = (!args.auto_approve).then_some(Confirm::APPLY);
            operation.wait = args.wait.requested();
            operation.provision_timeout = args.wait.timeout();
            view.run(&operation, &session, &session.lab()?, &args.passwords)
        }
    })
}

fn apply_saved(
    global: &GlobalArgs,
    file: &Path,
    args: &ApplyArgs,
    view: &View,
) -> Result<ExitCode, CliError> {
    let saved = SavedPlan::read(file)?;
    saved.check_connect(file, global.connect.as_deref())?;
    let session = Session::open(
        saved.manifest.clone(),
        saved.environment.clone(),
        saved.config.as_deref(),
        saved.connect.clone(),
    )?;
    // A saved plan was reviewed when it was made: no confirmation.
    let mut operation = operation(saved.target, saved.selection.clone(), &args.execution);
    operation.saved = Some(&saved);
    operation.wait = args.wait.requested();
    operation.provision_timeout = args.wait.timeout();
    view.run(&operation, &session, &session.lab()?, &args.passwords)
}

/// An operation carried out as `execution` says, without confirmation,
/// forcing, saved plan or waiting.
pub fn operation<'a>(
    target: Target,
    selection: Selection,
    execution: &ExecutionArgs,
) -> Operation<'a> {
    Operation {
        parallelism: usize::from(execution.parallelism),
        lock_timeout: Duration::from_secs(execution.lock_timeout),
        ..Operation::new(target, selection)
    }
}

/// `--json` cannot ask: refused unless `skip` (how to go without the
/// question) was given.
pub fn json_needs_no_question(execution: &ExecutionArgs, skip: &str) -> Result<(), CliError> {
    if execution.json {
        return Err(CliError::Other(format!(
            "--json needs {skip}: nobody can answer a question in a JSON stream"
        )));
    }
    Ok(())
}

/// Runs `command` with the view `execution` picks: text, or the JSON
/// stream (its version line first, and the command's error as its last
/// diagnostic).
pub fn with_view(
    execution: &ExecutionArgs,
    printer: &Printer,
    command: impl FnOnce(&View) -> Result<ExitCode, CliError>,
) -> Result<ExitCode, CliError> {
    if !execution.json {
        return command(&View::Human(printer));
    }
    let stream = JsonStream::start(printer);
    let result = command(&View::Json(&stream));
    if let Err(err) = &result {
        stream.error(&err.render(false));
    }
    result
}

/// How an operation is shown.
pub enum View<'s, 'p> {
    Human(&'p Printer),
    Json(&'s JsonStream<'p>),
}

impl View<'_, '_> {
    /// Runs `operation` on `lab` and turns how it ended into the exit code:
    /// 1 when cancelled or a step failed, 130 when interrupted.
    pub fn run(
        &self,
        operation: &Operation,
        session: &Session,
        lab: &Lab,
        passwords: &ShowPasswordsArg,
    ) -> Result<ExitCode, CliError> {
        let ended = match self {
            View::Human(printer) => {
                let ui = HumanUi::new(printer, session.manifest_name(), passwords);
                operation.run(lab, &ui, interrupt_flag())?
            }
            View::Json(stream) => {
                let ui = JsonUi::new(stream, passwords.show_passwords);
                operation.run(lab, &ui, interrupt_flag())?
            }
        };
        Ok(match ended {
            Ended::NothingToDo => ExitCode::SUCCESS,
            Ended::Cancelled => ExitCode::from(1),
            Ended::Applied(outcome) if outcome.succeeded() => ExitCode::SUCCESS,
            Ended::Applied(outcome) if outcome.interrupted => ExitCode::from(130),
            Ended::Applied(_) => ExitCode::from(1),
        })
    }

    /// A sentence that is not part of an operation.
    pub fn note(&self, text: &str) {
        match self {
            View::Human(printer) => printer.out(text),
            View::Json(stream) => stream.diagnostic("note", text, Default::default()),
        }
    }
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
