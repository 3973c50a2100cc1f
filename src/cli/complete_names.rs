//! `lvlab __complete -- WORD...` (hidden): what the bash and zsh completion
//! scripts ask at each TAB. The WORDs are the command line after `lvlab`,
//! the last one the word being completed. It prints, one a line, the
//! machine or environment names that word takes, from the manifest the
//! line names (its `-C`, `-f` and `--config`, as lvlab would read them),
//! and nothing otherwise: not a place for names, no manifest, a broken one.
//! It never fails and never writes to stderr: a TAB must not print errors.
//!
//! Which arguments take names comes from clap's definitions, so new
//! commands complete by the same convention: an argument whose value name
//! is `VM` takes machine names (of the `--env` given, if any), an argument
//! with id `env` (`--env NAME`) environment names.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::ExitCode;

use clap::{Arg, Args, CommandFactory};

use super::Printer;

/// Its name on the command line.
pub const SUBCOMMAND: &str = "__complete";

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The command line after `lvlab`, up to the word being completed
    #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub words: Vec<String>,
}

/// What kind of name a word takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    Machines,
    Environments,
}

pub fn run(args: &CompleteArgs, printer: &Printer) -> ExitCode {
    let mut command = super::Cli::command();
    // Makes global options (-f, -C, --config) visible on every subcommand.
    command.build();
    let line = read_line(&command, &args.words);
    for name in line
        .wanted
        .and_then(|kind| names(kind, &line.values))
        .unwrap_or_default()
    {
        printer.out(&name);
    }
    ExitCode::SUCCESS
}

/// What a partial command line says so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Line {
    /// Option values given before the word being completed, by argument id.
    pub values: HashMap<String, String>,
    /// The names the word being completed takes, if any.
    pub wanted: Option<Names>,
}

/// Walks `words` (the last one being completed) the way clap would parse
/// them: into subcommands, past options and their values, counting
/// positional arguments.
pub fn read_line(root: &clap::Command, words: &[String]) -> Line {
    let Some((current, before)) = words.split_last() else {
        return Line::default();
    };
    let mut line = Line::default();
    let mut command = root;
    let mut pending: Option<&Arg> = None;
    let mut positionals = 0;
    let mut after_dashes = false;
    for word in before {
        // bash splits `--env=x` into `--env`, `=`, `x`.
        if word == "=" && pending.is_some() {
            continue;
        }
        if let Some(arg) = pending.take() {
            line.values.insert(arg.get_id().to_string(), word.clone());
        } else if after_dashes {
            positionals += 1;
        } else if word == "--" {
            after_dashes = true;
        } else if let Some(long) = word.strip_prefix("--") {
            pending = long_option(command, long, &mut line.values);
        } else if word.len() > 1 && word.starts_with('-') {
            pending = short_options(command, &word[1..], &mut line.values);
        } else if let Some(sub) = (positionals == 0)
            .then(|| command.find_subcommand(word))
            .flatten()
        {
            command = sub;
        } else {
            positionals += 1;
        }
    }
    line.wanted = match pending {
        Some(arg) => names_of(arg),
        None if after_dashes || current.starts_with('-') => None,
        None => positional(command, positionals).and_then(names_of),
    };
    line
}

/// `--name` or `--name=value`: records the value; the option when its
/// value is the next word.
fn long_option<'c>(
    command: &'c clap::Command,
    text: &str,
    values: &mut HashMap<String, String>,
) -> Option<&'c Arg> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    let arg = command.get_arguments().find(|arg| {
        arg.get_long() == Some(name) || arg.get_all_aliases().is_some_and(|a| a.contains(&name))
    })?;
    if !takes_value(arg) {
        return None;
    }
    match value {
        Some(value) => {
            values.insert(arg.get_id().to_string(), value.to_string());
            None
        }
        None => Some(arg),
    }
}

/// `-vq`, `-fFILE`, `-f FILE`: records an attached value; the option when
/// its value is the next word.
fn short_options<'c>(
    command: &'c clap::Command,
    text: &str,
    values: &mut HashMap<String, String>,
) -> Option<&'c Arg> {
    for (at, short) in text.char_indices() {
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_short() == Some(short))?;
        if takes_value(arg) {
            let rest = &text[at + short.len_utf8()..];
            if rest.is_empty() {
                return Some(arg);
            }
            values.insert(arg.get_id().to_string(), rest.to_string());
            return None;
        }
    }
    None
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// The positional argument the `index`th positional word fills: the last
/// one keeps taking words when it takes several.
fn positional(command: &clap::Command, index: usize) -> Option<&Arg> {
    let mut args: Vec<&Arg> = command
        .get_positionals()
        .filter(|arg| !arg.is_last_set())
        .collect();
    args.sort_by_key(|arg| arg.get_index());
    let takes_many = |arg: &&&Arg| arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    args.get(index)
        .or_else(|| args.last().filter(takes_many))
        .copied()
}

fn names_of(arg: &Arg) -> Option<Names> {
    if arg.get_id() == "env" {
        Some(Names::Environments)
    } else if arg
        .get_value_names()
        .is_some_and(|names| names.iter().any(|name| name == "VM"))
    {
        Some(Names::Machines)
    } else {
        None
    }
}

/// The names of `kind` in the manifest `values` (the line's `-C`, `-f`,
/// `--config`, `--env`) point at; `None` when it cannot be read.
fn names(kind: Names, values: &HashMap<String, String>) -> Option<Vec<String>> {
    if let Some(dir) = values.get("directory") {
        std::env::set_current_dir(dir).ok()?;
    }
    let path = crate::manifest::manifest_path(values.get("file").map(Path::new));
    let config = values.get("config").map(Path::new);
    let desired = super::load_manifest(&path, config, None).ok()?;
    let names: BTreeSet<String> = match kind {
        Names::Environments => desired
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect(),
        Names::Machines => desired
            .environments(values.get("env").map(String::as_str))
            .ok()?
            .iter()
            .flat_map(|env| env.machines.iter().map(|m| m.vm_name.clone()))
            .collect(),
    };
    Some(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(line: &str) -> Option<Names> {
        let mut command = super::super::Cli::command();
        command.build();
        // "plan " splits into "plan" and the empty word being completed.
        let words: Vec<String> = line.split(' ').map(String::from).collect();
        read_line(&command, &words).wanted
    }

    #[test]
    fn machine_names_where_a_vm_argument_is_next() {
        for line in [
            "plan ",
            "plan web ",
            "up --env lab w",
            "-f x.yml ssh ",
            "snapshot create clean ",
            "hosts --append /tmp/h ",
            "destroy --env=lab ",
            "plan --replace ",
        ] {
            assert_eq!(wanted(line), Some(Names::Machines), "{line:?}");
        }
    }

    #[test]
    fn environment_names_after_env() {
        for line in ["plan --env ", "capabilities --env ", "-v status --env p"] {
            assert_eq!(wanted(line), Some(Names::Environments), "{line:?}");
        }
    }

    #[test]
    fn no_names_for_commands_options_and_other_values() {
        for line in [
            "",
            "pl",
            "plan -",
            "plan --out ",
            "snapshot create ",
            "ssh web -- ",
            "ssh web ",
            "init ",
            "-f ",
            "images ",
        ] {
            assert_eq!(wanted(line), None, "{line:?}");
        }
    }

    #[test]
    fn option_values_before_the_word_are_kept_by_id() {
        let mut command = super::super::Cli::command();
        command.build();
        let words: Vec<String> = ["-Clab", "--file=x.yml", "ssh", "--env", "test", ""]
            .map(String::from)
            .to_vec();
        let line = read_line(&command, &words);
        assert_eq!(line.values["directory"], "lab");
        assert_eq!(line.values["file"], "x.yml");
        assert_eq!(line.values["env"], "test");
        assert_eq!(line.wanted, Some(Names::Machines));
    }
}
