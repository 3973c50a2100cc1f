//! Where console passwords are shown. A person at a terminal sees each
//! one the moment its seed is written. Without a terminal (CI, a pipe, a
//! log file) a password is a secret that would be kept in a log: it goes
//! to stderr only with `--show-passwords`, and never to stdout; otherwise
//! one line on stderr says how many were set and not shown.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cloudinit::password::{OneTimePassword, PasswordReporter};

/// The `--show-passwords` option of the commands that set passwords.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct ShowPasswordsArg {
    /// Print console passwords even without a terminal (on stderr, never on
    /// stdout); on a terminal they are always shown
    #[arg(long)]
    pub show_passwords: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Stdout,
    Stderr,
    Withheld,
}

pub struct ConsolePasswords {
    destination: Destination,
    withheld: AtomicUsize,
}

impl ConsolePasswords {
    /// `stdout_free` is false when stdout carries a document of its own
    /// (`cloudinit --stdout`).
    pub fn new(arg: &ShowPasswordsArg, stdout_free: bool) -> Self {
        let destination = if stdout_free && std::io::stdout().is_terminal() {
            Destination::Stdout
        } else if arg.show_passwords || std::io::stderr().is_terminal() {
            Destination::Stderr
        } else {
            Destination::Withheld
        };
        Self {
            destination,
            withheld: AtomicUsize::new(0),
        }
    }

    /// Whether passwords go nowhere (no terminal, no `--show-passwords`):
    /// then `lvlab passwd` sets none.
    pub fn withheld(&self) -> bool {
        self.destination == Destination::Withheld
    }

    /// Shows `password`, or counts it as withheld.
    pub fn show(&self, vm_name: &str, user: &str, password: &OneTimePassword) {
        self.emit(format!(
            "Console password for {vm_name} (user {user}): {}  (shown once; lvlab keeps only its hash)",
            password.reveal()
        ));
    }

    /// Shows a password `lvlab passwd` set, which lvlab keeps nothing of.
    pub fn show_new(&self, vm_name: &str, user: &str, password: &OneTimePassword) {
        self.emit(format!(
            "New console password for {vm_name} (user {user}): {}  (shown once; lvlab keeps no copy)",
            password.reveal()
        ));
    }

    fn emit(&self, line: String) {
        match self.destination {
            Destination::Stdout => println!("{line}"),
            Destination::Stderr => eprintln!("{line}"),
            Destination::Withheld => {
                self.withheld.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Says once, on stderr, how many passwords were set and not shown.
    pub fn report_withheld(&self) {
        let count = self.withheld.load(Ordering::Relaxed);
        if count == 0 {
            return;
        }
        let (what, them) = if count == 1 {
            ("console password was", "it")
        } else {
            ("console passwords were", "them")
        };
        eprintln!(
            "note: {count} {what} set and not shown: no terminal, and no --show-passwords. \
             Only the hashes are kept; to see new ones, run with --show-passwords \
             (on stderr), or set {them} again later with `lvlab passwd`."
        );
    }
}

impl PasswordReporter for ConsolePasswords {
    fn seed_written(&self, vm_name: &str, user: &str, password: &OneTimePassword) {
        self.show(vm_name, user, password);
    }
}
