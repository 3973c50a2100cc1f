use std::process::ExitCode;

use clap::Args;

use super::{CliError, GlobalArgs, Printer};

#[derive(Debug, Args)]
pub struct CapabilitiesArgs {
    /// libvirt URI to ask (default: each selected environment's libvirt_uri)
    #[arg(long, value_name = "URI")]
    pub connect: Option<String>,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(
    _global: &GlobalArgs,
    _args: &CapabilitiesArgs,
    _printer: &Printer,
) -> Result<ExitCode, CliError> {
    Err(CliError::Other("capabilities: not built yet".into()))
}
