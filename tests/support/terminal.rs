//! A command run on a pseudo-terminal (`script` from bsdutils, which every
//! Debian has), for promises that hold only there: colour, progress bars,
//! what `-q` silences.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// Runs `command` (program, arguments, environment, directory) with a
/// terminal as its stdin, stdout and stderr, or with stdout sent to
/// `stdout_file` so that the terminal shows stderr alone. Returns the exit
/// status and what the terminal showed, line ends as `\n`.
pub fn on_terminal(command: &Command, stdout_file: Option<&Path>) -> (ExitStatus, String) {
    let mut line = quote(command.get_program().to_str().unwrap());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&quote(arg.to_str().unwrap()));
    }
    if let Some(file) = stdout_file {
        line.push_str(" >");
        line.push_str(&quote(file.to_str().unwrap()));
    }
    let mut script = Command::new("script");
    script
        .args(["-qfec", &line, "/dev/null"])
        .stdin(Stdio::null());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        script.current_dir(dir);
    }
    let out = script
        .output()
        .expect("script (bsdutils) gives the command a terminal");
    let shown = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    (out.status, shown)
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
