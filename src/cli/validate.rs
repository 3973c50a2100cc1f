use std::process::ExitCode;

use clap::Args;

use super::{CliError, GlobalArgs, Printer};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Print every machine fully resolved (YAML, or JSON with --json)
    #[arg(long)]
    pub show_resolved: bool,

    /// JSON instead of YAML or text
    #[arg(long)]
    pub json: bool,
}

pub fn run(
    _global: &GlobalArgs,
    _args: &ValidateArgs,
    _printer: &Printer,
) -> Result<ExitCode, CliError> {
    Err(CliError::Other("validate: not built yet".into()))
}
