use std::process::ExitCode;

use lvlab::cli::{self, Invocation};

fn main() -> ExitCode {
    match cli::parse() {
        Ok(Invocation::Command(cli)) => cli::run(*cli),
        Ok(Invocation::Complete(args)) => cli::complete(&args),
        Err(err) => cli::usage_error(&err),
    }
}
