//! `lvlab schema`: the JSON Schema of `Lvlab.yml`, for editors that
//! validate YAML (docs/manifest.md, "Editors").

use std::process::ExitCode;

use super::{CliError, Printer};

pub fn run(printer: &Printer) -> Result<ExitCode, CliError> {
    let schema = crate::manifest::manifest_schema();
    printer.out(&serde_json::to_string_pretty(&schema).expect("a JSON value serializes"));
    Ok(ExitCode::SUCCESS)
}
