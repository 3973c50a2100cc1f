//! The classic commands as plan targets: `up` (running), `down` (stopped),
//! `destroy` (absent). Each prints the plan it carries out, in plan's
//! format, and runs the same operation as `apply`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::apply::{json_needs_no_question, operation, with_view, ExecutionArgs};
use super::passwords::ShowPasswordsArg;
use super::reconcile_args::Session;
use super::wait::WaitArgs;
use super::{CliError, GlobalArgs, Printer};
use crate::plan::{Selection, Target};
use crate::reconcile::Confirm;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Machines to bring up
    #[arg(
        value_name = "VM",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub vms: Vec<String>,
    /// Every machine of the selected environments
    #[arg(long)]
    pub all: bool,
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Take over domains under this lab's names that another lab's mark
    /// names (another checkout, environment or lab_id); never unmarked ones
    #[arg(long)]
    pub adopt: bool,
    /// Run VM's `provision:` list again (a changed list runs only so)
    #[arg(long, value_name = "VM")]
    pub reprovision: Vec<String>,
    #[command(flatten)]
    pub execution: ExecutionArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub passwords: ShowPasswordsArg,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Machines to stop (default: all that are deployed)
    #[arg(value_name = "VM")]
    pub vms: Vec<String>,
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Seconds to wait for each guest to stop after the ACPI request
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
    /// Power off guests that did not stop in time
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub execution: ExecutionArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Machines to destroy (default: all)
    #[arg(value_name = "VM")]
    pub vms: Vec<String>,
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Do not ask for confirmation
    #[arg(long, visible_alias = "yes", short = 'y')]
    pub force: bool,
    #[command(flatten)]
    pub execution: ExecutionArgs,
}

pub fn up(global: &GlobalArgs, args: &UpArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    with_view(&args.execution, printer, |view| {
        let session = Session::load(global, args.env.clone())?;
        session.require_machines(&args.vms)?;
        session.require_machines(&args.reprovision)?;
        let selection = Selection {
            adopt: args.adopt,
            reprovision: args.reprovision.clone(),
            ..machines(&args.vms)
        };
        let mut operation = operation(Target::Running, selection, &args.execution);
        operation.wait = args.wait.requested();
        operation.provision_timeout = args.wait.timeout();
        view.run(&operation, &session, &session.lab()?, &args.passwords)
    })
}

pub fn down(global: &GlobalArgs, args: &DownArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    with_view(&args.execution, printer, |view| {
        let session = Session::load(global, args.env.clone())?;
        let lab = session.lab()?;
        // `down` stops what exists; it never creates a machine.
        let stop = lab.deployed_among(&args.vms, session.env.as_deref())?;
        if stop.is_empty() {
            view.note("No machine is deployed: nothing to stop.");
            return Ok(ExitCode::SUCCESS);
        }
        let mut operation = operation(Target::Stopped, machines(&stop), &args.execution);
        operation.shutdown_timeout = Duration::from_secs(args.timeout);
        operation.force = args.force;
        view.run(&operation, &session, &lab, &ShowPasswordsArg::default())
    })
}

pub fn destroy(
    global: &GlobalArgs,
    args: &DestroyArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    if !args.force {
        json_needs_no_question(&args.execution, "--force")?;
    }
    with_view(&args.execution, printer, |view| {
        let session = Session::load(global, args.env.clone())?;
        let lab = session.lab()?;
        // Named machines must be deployed; without names the plan's own
        // reading of the host is the only one (it is a destroy's cost).
        if !args.vms.is_empty() {
            lab.deployed_among(&args.vms, session.env.as_deref())?;
        }
        let mut operation = operation(Target::Absent, machines(&args.vms), &args.execution);
        operation.confirm = (!args.force).then_some(Confirm::DESTROY);
        view.run(&operation, &session, &lab, &ShowPasswordsArg::default())
    })
}

/// These machines (all when none are named).
fn machines(vms: &[String]) -> Selection {
    Selection {
        machines: vms.to_vec(),
        ..Selection::default()
    }
}
