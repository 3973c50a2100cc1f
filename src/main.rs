use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lvlab::cli::Cli::parse();
    lvlab::cli::run(cli)
}
