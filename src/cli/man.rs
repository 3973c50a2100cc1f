//! `lvlab man [--dir DIR]`: one man page per command (clap_mangen:
//! `lvlab.1`, `lvlab-plan.1`, `lvlab-snapshot-create.1`, ...), each with
//! the examples of the command's `--help` as its EXAMPLES section.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use super::{examples, CliError, Printer};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write the pages into DIR (made when missing)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

pub fn run(args: &ManArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    std::fs::create_dir_all(&args.dir).map_err(|err| write_error(&args.dir, &err))?;
    // clap's `help` subcommand is no command of lvlab's: no page for it.
    let mut command = super::Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_pages(&command, &args.dir, &mut written)?;
    for path in written {
        printer.out(&path.display().to_string());
    }
    Ok(ExitCode::SUCCESS)
}

/// The page of `command` and of each visible subcommand under it.
fn write_pages(
    command: &clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), CliError> {
    let page = Man::new(command.clone())
        .manual("lvlab manual")
        .source(concat!("lvlab ", env!("CARGO_PKG_VERSION")));
    let path = dir.join(page.get_filename());
    let text = render(&page, command).map_err(|err| write_error(&path, &err))?;
    std::fs::write(&path, text).map_err(|err| write_error(&path, &err))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// clap_mangen's sections, with EXAMPLES in place of its EXTRA section
/// (which runs the examples together into one paragraph).
fn render(page: &Man, command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        page.render_options_section(&mut out)?;
    }
    if command.get_subcommands().any(|sub| !sub.is_hide_set()) {
        page.render_subcommands_section(&mut out)?;
    }
    examples_section(command).to_writer(&mut out)?;
    page.render_version_section(&mut out)?;
    Ok(out)
}

/// Each example as a tagged paragraph: the command line in bold, then
/// what it does.
fn examples_section(command: &clap::Command) -> Roff {
    let mut roff = Roff::default();
    let text = command
        .get_after_help()
        .map(|text| text.to_string())
        .unwrap_or_default();
    let examples = examples::parse(&text);
    if examples.is_empty() {
        return roff;
    }
    roff.control("SH", ["EXAMPLES"]);
    for example in examples {
        roff.control("TP", []);
        roff.text([bold(example.line)]);
        roff.text([roman(example.what)]);
    }
    roff
}

fn write_error(path: &Path, err: &std::io::Error) -> CliError {
    CliError::Other(format!(
        "cannot write man pages to {}: {err}\n  hint: name a directory you can write with --dir DIR",
        path.display()
    ))
}
