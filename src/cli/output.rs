//! Where output goes and whether it is colored. Results go to stdout, logs
//! and errors to stderr.

use std::io::IsTerminal;

pub struct Printer {
    color_stdout: bool,
    color_stderr: bool,
    progress_stderr: bool,
}

impl Printer {
    /// Colors only on a terminal, and never with `--no-color` or `NO_COLOR`
    /// set to anything non-empty (<https://no-color.org>). Live progress
    /// only on a terminal, and never with `--quiet` (only errors on stderr).
    pub fn new(no_color: bool, quiet: bool) -> Self {
        let allowed = !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self {
            color_stdout: allowed && std::io::stdout().is_terminal(),
            color_stderr: allowed && std::io::stderr().is_terminal(),
            progress_stderr: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// Whether live progress (download bars) may be drawn on stderr.
    pub fn progress_stderr(&self) -> bool {
        self.progress_stderr
    }

    pub fn color_stdout(&self) -> bool {
        self.color_stdout
    }

    pub fn color_stderr(&self) -> bool {
        self.color_stderr
    }

    /// How many columns stdout's lines may use: `COLUMNS` when set (as
    /// clap's help reads it), else the terminal's width; `None` when
    /// stdout is no terminal and `COLUMNS` is unset.
    pub fn stdout_columns(&self) -> Option<usize> {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&columns: &usize| columns > 0)
            .or_else(|| {
                terminal_size::terminal_size_of(std::io::stdout())
                    .map(|(width, _)| usize::from(width.0))
                    .filter(|&columns| columns > 0)
            })
    }

    /// A result line on stdout. A closed pipe (`lvlab ... | head`) ends the
    /// process quietly, as it does for other Unix tools.
    pub fn out(&self, line: &str) {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        if let Err(err) = writeln!(stdout, "{line}") {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: cannot write to stdout: {err}");
            std::process::exit(1);
        }
    }

    /// An already formatted error on stderr.
    pub fn error(&self, text: &str) {
        eprintln!("{}", text.trim_end());
    }
}

/// The colours of terraform's plan: green adds or runs, yellow changes or
/// stops, red destroys or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Green,
    Yellow,
    Red,
}

/// `text` in `tone`, for a stream the [`Printer`] allows colour on.
pub fn paint(text: &str, tone: Tone) -> String {
    let code = match tone {
        Tone::Green => "\x1b[32m",
        Tone::Yellow => "\x1b[33m",
        Tone::Red => "\x1b[31m",
    };
    format!("{code}{text}\x1b[0m")
}
