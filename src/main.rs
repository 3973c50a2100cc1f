use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match lvlab::cli::Cli::try_parse() {
        Ok(cli) => lvlab::cli::run(cli),
        Err(err) => lvlab::cli::usage_error(&err),
    }
}
