//! `lvlab plan`: what apply would do, and why.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{reconcile_args::Selectors, CliError, GlobalArgs, Printer};
use crate::plan::saved::SavedPlan;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub selectors: Selectors,

    /// Save the plan to FILE for `lvlab apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the plan as one JSON document
    #[arg(long)]
    pub json: bool,

    /// Exit 0 for no changes, 2 when there are changes, 1 on error (for CI drift checks)
    #[arg(long)]
    pub detailed_exitcode: bool,
}

pub fn run(global: &GlobalArgs, args: &PlanArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let session = args.selectors.session(global)?;
    let lab = session.lab()?;
    let (target, selection) = args.selectors.request();
    let planned = lab.plan(target, &selection)?;
    let json = crate::plan::to_json(&planned.plan);
    if args.json {
        printer.out(&serde_json::to_string_pretty(&json).expect("JSON values serialize"));
    } else {
        let text = crate::plan::render_text(
            &planned.plan,
            &session.manifest_name(),
            printer.color_stdout(),
        );
        printer.out(text.trim_end());
    }
    if let Some(out) = &args.out {
        let saved = SavedPlan::new(
            &session.desired,
            args.selectors.env.clone(),
            session.connect.clone(),
            target,
            selection,
            &planned.observed,
            json,
        );
        saved.write(out)?;
        if !args.json {
            printer.out(&format!(
                "\nSaved the plan to {}. Apply it with: lvlab apply {}",
                out.display(),
                out.display()
            ));
        }
    }
    crate::reconcile::OperationError::unless_reachable(&planned.plan)?;
    let changes = !planned.plan.blocks.is_empty();
    Ok(if args.detailed_exitcode && changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
