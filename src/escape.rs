//! Text from outside lvlab (a checksum file's lines, a signature parser's
//! complaint, a server's error) made safe to print: control characters
//! would otherwise reach the terminal, where an escape sequence can recolor,
//! retitle or rewrite what the user sees. Every such text is printed
//! through [`escape_controls`]. And words made safe for a shell
//! ([`shell_quote`]): a printed command line, ssh's `ProxyCommand`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with each control character (C0, DEL, C1, line breaks and tabs
/// included) and each bidirectional override written as a Rust-style
/// escape: ESC becomes `\u{1b}`, a line break `\n`.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` escaped line by line: its own line breaks stay, for messages
/// that lvlab laid out over several lines (`\n  hint: ...`).
pub fn escape_controls_by_line(text: &str) -> String {
    text.split('\n')
        .map(escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` as XML element text.
pub fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `word` as one word for a POSIX shell: as it is when it holds nothing
/// the shell would read, else in single quotes.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_the_shell_would_read_are_quoted() {
        assert_eq!(shell_quote("-p"), "-p");
        assert_eq!(
            shell_quote("UserKnownHostsFile=/dev/null"),
            "UserKnownHostsFile=/dev/null"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape_controls("a\u{1b}[31mred\u{7}\u{9b}\u{202e}é 日本\n\t"),
            "a\\u{1b}[31mred\\u{7}\\u{9b}\\u{202e}é 日本\\n\\t"
        );
        assert!(matches!(escape_controls("plain text"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls_by_line("x\u{1b}\n  hint: y\r"),
            "x\\u{1b}\n  hint: y\\r"
        );
    }
}
