//! The examples each command's `--help` ends with, written once beside the
//! command with [`examples!`], and read back by `lvlab man` for the man
//! pages' EXAMPLES section.

/// A command's `after_help`: "Examples:" and, per example, its command line
/// indented two spaces and what it does indented six (short enough to fit
/// an 80-column terminal). Each command line starts with `lvlab` and parses
/// (tests/completions.rs runs them through clap).
macro_rules! examples {
    ($($line:literal => $what:literal),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line, "\n      ", $what),+)
    };
}

/// One example of a command's `--help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub line: String,
    pub what: String,
}

/// The examples of an `after_help` text that [`examples!`] wrote; none
/// for any other text.
pub fn parse(after_help: &str) -> Vec<Example> {
    let mut lines = after_help.lines();
    if lines.next() != Some("Examples:") {
        return Vec::new();
    }
    let mut examples: Vec<Example> = Vec::new();
    for line in lines {
        if let Some(what) = line.strip_prefix("      ") {
            if let Some(last) = examples.last_mut() {
                last.what = what.trim().to_string();
            }
        } else if let Some(command) = line.strip_prefix("  ") {
            examples.push(Example {
                line: command.trim().to_string(),
                what: String::new(),
            });
        }
    }
    examples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_back_what_the_macro_writes() {
        let text = examples!(
            "lvlab plan" => "what apply would change",
            "lvlab plan --json > plan.json" => "the same as JSON",
        );
        assert_eq!(
            parse(text),
            [
                Example {
                    line: "lvlab plan".into(),
                    what: "what apply would change".into()
                },
                Example {
                    line: "lvlab plan --json > plan.json".into(),
                    what: "the same as JSON".into()
                },
            ]
        );
        assert!(parse("Some other text\n  lvlab plan").is_empty());
    }
}
