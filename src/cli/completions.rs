//! `lvlab completions SHELL`: clap_complete's script for SHELL, made from
//! the same clap definitions as the parser, so every command and option is
//! in it. For bash and zsh a few lines more complete machine and
//! environment names: they ask `lvlab __complete` ([`super::complete_names`])
//! and fall back to clap's completion where it prints nothing.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{CliError, Printer};

const BIN: &str = "lvlab";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    printer.out(script(args.shell).trim_end());
    Ok(ExitCode::SUCCESS)
}

/// The whole completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut command = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut out);
    let script = String::from_utf8(out).expect("clap_complete writes UTF-8");
    match shell {
        Shell::Bash => script + BASH_NAMES,
        Shell::Zsh => zsh_with_names(&script),
        _ => script,
    }
}

/// Registered after clap's `_lvlab`, so it replaces it as the completion
/// function and calls it where there are no names to offer.
const BASH_NAMES: &str = r#"
# Machine and environment names from the manifest the line names: lvlab
# __complete prints those the word being completed takes, else nothing.
_lvlab_names() {
    local names
    names=$("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    if [[ -n $names ]]; then
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$names" -- "${COMP_WORDS[COMP_CWORD]}"))
        return 0
    fi
    _lvlab "$@"
}
complete -F _lvlab_names -o bashdefault -o default lvlab
"#;

/// Takes the place of clap's `_lvlab` (renamed `_lvlab_clap`) before the
/// script's closing lines call or register `_lvlab`.
const ZSH_NAMES: &str = r#"
# Machine and environment names from the manifest the line names: lvlab
# __complete prints those the word being completed takes, else nothing.
_lvlab() {
    local -a names
    names=(${(f)"$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)"})
    if (( ${#names} )); then
        compadd -a names
    else
        _lvlab_clap "$@"
    fi
}
"#;

/// clap's zsh script with its `_lvlab` renamed and [`ZSH_NAMES`] inserted
/// before the closing `if [ "$funcstack[1]" = "_lvlab" ]` block.
fn zsh_with_names(script: &str) -> String {
    const DEFINITION: &str = "\n_lvlab() {";
    const CLOSING: &str = "\nif [ \"$funcstack[1]\" = \"_lvlab\" ]; then";
    let renamed = script.replacen(DEFINITION, "\n_lvlab_clap() {", 1);
    match renamed.rfind(CLOSING) {
        Some(at) => format!("{}{ZSH_NAMES}{}", &renamed[..at], &renamed[at..]),
        // A clap_complete whose script looks otherwise: its own, unchanged.
        None => script.to_string(),
    }
}
