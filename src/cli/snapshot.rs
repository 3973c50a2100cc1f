//! `lvlab snapshot create|revert|delete NAME [VM...|--all]` and `lvlab
//! snapshot list [VM...]`: one call each into [`crate::snapshot::command`]
//! (which takes the locks, observes once, decides every machine's step or
//! refuses the request whole, and runs the steps); this module only
//! parses and renders.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::apply::{interrupt_flag, ExecutionArgs};
use super::human_ui::JobLines;
use super::reconcile_args::Session;
use super::{CliError, GlobalArgs, Printer};
use crate::apply::Outcome;
use crate::snapshot::{self, ChangeOptions, Request, SnapshotName, SnapshotRow, Step, Verb};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot of machines (a running one stays running; its
    /// memory is saved too)
    #[command(after_help = examples!(
        "lvlab snapshot create clean web db" => "snapshot two machines as `clean`",
        "lvlab snapshot create clean --all --replace" =>
            "every deployed machine, replacing an older `clean`",
    ))]
    Create(CreateArgs),
    /// Bring machines back to a snapshot: disks, and power state (a
    /// running snapshot comes back running, with its memory)
    #[command(after_help = examples!(
        "lvlab snapshot revert clean web" => "bring web back to `clean`",
        "lvlab snapshot revert clean --all --env test" => "every machine of one environment",
    ))]
    Revert(VerbArgs),
    /// Delete a snapshot of machines
    #[command(after_help = examples!(
        "lvlab snapshot delete clean web" => "delete web's `clean`",
        "lvlab snapshot delete clean --all" => "delete `clean` wherever it is",
    ))]
    Delete(VerbArgs),
    /// Each machine's snapshots
    #[command(after_help = examples!(
        "lvlab snapshot list" => "each deployed machine's snapshots",
        "lvlab snapshot list web --json" => "web's, as JSON",
    ))]
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: VerbArgs,
    /// Replace a snapshot of that name a machine already has (deleted
    /// first); without it, an existing name is an error
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct VerbArgs {
    /// The snapshot's name: letters, digits, `.`, `_` and `-`
    #[arg(value_name = "NAME", value_parser = SnapshotName::parse)]
    pub name: SnapshotName,
    /// Machines to act on
    #[arg(
        value_name = "VM",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub vms: Vec<String>,
    /// Every deployed machine of the selected environments
    #[arg(long)]
    pub all: bool,
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    #[command(flatten)]
    pub execution: ExecutionArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Machines to list (default: every deployed one)
    #[arg(value_name = "VM")]
    pub vms: Vec<String>,
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(
    global: &GlobalArgs,
    args: &SnapshotArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    match &args.command {
        SnapshotCommand::Create(create) => change(
            global,
            &create.target,
            Verb::Create {
                replace: create.replace,
            },
            printer,
        ),
        SnapshotCommand::Revert(target) => change(global, target, Verb::Revert, printer),
        SnapshotCommand::Delete(target) => change(global, target, Verb::Delete, printer),
        SnapshotCommand::List(list) => self::list(global, list, printer),
    }
}

fn change(
    global: &GlobalArgs,
    args: &VerbArgs,
    verb: Verb,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let session = Session::load(global, args.env.clone())?;
    session.require_machines(&args.vms)?;
    let request = Request {
        verb,
        name: &args.name,
        machines: &args.vms,
    };
    let options = ChangeOptions {
        lock_timeout: Duration::from_secs(args.execution.lock_timeout),
        parallelism: usize::from(args.execution.parallelism),
        observer: &JobLines(printer),
        interrupt: interrupt_flag(),
    };
    let (steps, outcome) = snapshot::change(&session.lab()?, &request, &options)?;
    Ok(report(&steps, &outcome, verb, &args.name, printer))
}

/// Every failure, then one summary line; 1 when any step failed, 130
/// when interrupted.
fn report(
    steps: &[Step],
    outcome: &Outcome,
    verb: Verb,
    name: &SnapshotName,
    printer: &Printer,
) -> ExitCode {
    let machines = |n: usize| format!("{n} machine{}", if n == 1 { "" } else { "s" });
    printer.out("");
    if outcome.succeeded() {
        let count = machines(steps.len());
        printer.out(&match verb {
            Verb::Create { .. } => format!("Snapshot {name} created on {count}."),
            Verb::Revert => format!("Reverted {count} to snapshot {name}."),
            Verb::Delete => format!("Snapshot {name} deleted from {count}."),
        });
        return ExitCode::SUCCESS;
    }
    for (node, message) in &outcome.failed {
        let step = &steps[node.index()];
        printer.error(&format!(
            "error: {}: {} {} failed: {message}",
            step.address,
            step.verb.describe(),
            step.name
        ));
    }
    let done = machines(outcome.completed.len());
    if outcome.interrupted {
        printer.error(&format!(
            "Interrupted: {done} done, {} not started.",
            machines(outcome.not_run.len())
        ));
        return ExitCode::from(130);
    }
    printer.error(&format!(
        "{} failed on {} of {}; {done} succeeded.",
        verb.describe(),
        machines(outcome.failed.len()),
        steps.len()
    ));
    ExitCode::from(1)
}

fn list(global: &GlobalArgs, args: &ListArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let session = Session::load(global, args.env.clone())?;
    session.require_machines(&args.vms)?;
    let rows = snapshot::list(&session.lab()?, &args.vms)?;
    if args.json {
        printer.out(&serde_json::to_string_pretty(&rows).expect("rows serialize"));
    } else if rows.is_empty() {
        printer.out("No snapshots.");
    } else {
        printer.out(table(&rows).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[SnapshotRow]) -> String {
    let header = ["ENVIRONMENT", "MACHINE", "NAME", "CREATED", "STATE"].map(String::from);
    let cells: Vec<[String; 5]> = std::iter::once(header)
        .chain(rows.iter().map(|r| {
            [
                r.environment.clone(),
                r.machine.clone(),
                r.name.clone(),
                r.created.clone(),
                r.state.clone(),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..5)
        .map(|i| cells.iter().map(|c| c[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    crate::escape::escape_controls_by_line(&out)
}
