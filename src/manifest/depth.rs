//! A nesting-depth limit checked in one linear pass over the text, before
//! serde_yaml sees it: serde_yaml rejects deep nesting too, but only after
//! its parser has spent quadratic time on it (100 000 nested `[` took 22 s).
//!
//! The count is conservative: flow collections (`[`, `{`) outside quoted
//! scalars and comments, plus block levels by indentation and by `- `
//! entries, with block scalars (`|`, `>`) skipped. Where the scan cannot
//! tell, it counts less, never more, so a valid manifest is never rejected;
//! anything it lets through still meets serde_yaml's own limit.

use super::source::Location;

/// Deeper than any manifest needs (they use about six levels), far below
/// where parsing gets slow.
pub const MAX_DEPTH: usize = 64;

/// Where the text first nests deeper than [`MAX_DEPTH`].
pub fn too_deep(text: &str) -> Option<Location> {
    let mut scan = Scan::default();
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if let Some((column, at)) = scan.line(line) {
            return Some(Location {
                line: index + 1,
                column,
                bytes: (offset + at, offset + at + 1),
            });
        }
        offset += line.len();
    }
    None
}

#[derive(Default)]
struct Scan {
    /// Columns of the open block levels, innermost last.
    indents: Vec<usize>,
    flow: usize,
    quote: Option<char>,
    /// The indentation of the node that owns the block scalar being skipped.
    block_scalar: Option<usize>,
}

impl Scan {
    fn depth(&self) -> usize {
        self.indents.len() + self.flow
    }

    /// Scans one line (with its line break); the 1-based column and the
    /// byte offset in the line where the depth first exceeds the limit.
    fn line(&mut self, line: &str) -> Option<(usize, usize)> {
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches(' ').len();
        let rest = &content[indent..];
        if let Some(owner) = self.block_scalar {
            if rest.is_empty() || indent > owner {
                return None;
            }
            self.block_scalar = None;
        }
        let mut start = 0;
        if self.quote.is_none() && self.flow == 0 {
            if rest.is_empty() || rest.starts_with('#') {
                return None;
            }
            start = self.block_levels(content, indent);
            if self.depth() > MAX_DEPTH {
                return Some((column_of(content, start), start));
            }
        }
        let end = match self.flow_and_quotes(content, start) {
            Ok(comment) => comment.unwrap_or(content.len()),
            Err(at) => return Some((column_of(content, at), at)),
        };
        if self.quote.is_none() && self.flow == 0 && ends_in_block_indicator(&content[..end]) {
            self.block_scalar = Some(*self.indents.last().unwrap_or(&0));
        }
        None
    }

    /// Pops the levels this line closes, opens the one it starts and one
    /// per `- ` (or `? `, `: `) entry at its start; returns the offset where
    /// the line's first node begins.
    fn block_levels(&mut self, content: &str, indent: usize) -> usize {
        while self.indents.last().is_some_and(|&top| top > indent) {
            self.indents.pop();
        }
        self.open_block(indent);
        let bytes = content.as_bytes();
        let mut at = indent;
        while at < bytes.len()
            && matches!(bytes[at], b'-' | b'?' | b':')
            && bytes.get(at + 1).is_none_or(|b| *b == b' ')
        {
            at += 1;
            while bytes.get(at) == Some(&b' ') {
                at += 1;
            }
            self.open_block(at);
        }
        at
    }

    fn open_block(&mut self, column: usize) {
        if self.indents.last().is_none_or(|&top| top < column) {
            self.indents.push(column);
        }
    }

    /// Flow brackets and quotes from `start` on. `Ok(Some(at))`: a comment
    /// starts at `at`; `Err(at)`: the depth limit is passed at `at`.
    fn flow_and_quotes(&mut self, content: &str, start: usize) -> Result<Option<usize>, usize> {
        let bytes = content.as_bytes();
        let mut at = start;
        while at < bytes.len() {
            let b = bytes[at];
            let token_start = at == 0 || matches!(bytes[at - 1], b' ' | b'\t');
            match self.quote {
                Some('"') => match b {
                    b'\\' => at += 1,
                    b'"' => self.quote = None,
                    _ => {}
                },
                Some(_) => {
                    if b == b'\'' {
                        if bytes.get(at + 1) == Some(&b'\'') {
                            at += 1;
                        } else {
                            self.quote = None;
                        }
                    }
                }
                None => {
                    // Inside a flow collection a plain scalar cannot hold
                    // these characters; in block context they open
                    // something only where a node starts.
                    let opens = token_start || self.flow > 0 && is_flow_indicator(bytes[at - 1]);
                    match b {
                        b'#' if token_start => return Ok(Some(at)),
                        b'"' | b'\'' if opens => self.quote = Some(b as char),
                        b'[' | b'{' if opens || self.flow > 0 => {
                            self.flow += 1;
                            if self.depth() > MAX_DEPTH {
                                return Err(at);
                            }
                        }
                        b']' | b'}' if self.flow > 0 => self.flow -= 1,
                        _ => {}
                    }
                }
            }
            at += 1;
        }
        Ok(None)
    }
}

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b'[' | b'{' | b',' | b':')
}

/// Whether a line's last token is a block scalar header (`|`, `>-`, `|2+`).
fn ends_in_block_indicator(line: &str) -> bool {
    let line = line.trim_end();
    let token = line.rsplit([' ', '\t']).next().unwrap_or(line);
    let mut chars = token.chars();
    matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| c.is_ascii_digit() || c == '+' || c == '-')
}

/// The 1-based column of byte offset `at`, counted in characters.
fn column_of(line: &str, at: usize) -> usize {
    line[..at.min(line.len())].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str) -> Option<(usize, usize)> {
        too_deep(text).map(|l| (l.line, l.column))
    }

    #[test]
    fn deep_flow_nesting_is_found_where_it_passes_the_limit() {
        let text = format!("a: {}", "[".repeat(100_000));
        assert_eq!(depth_error(&text), Some((1, 4 + MAX_DEPTH - 1)));
        let text = format!("a:\n  - {}\n", "{x: ".repeat(200));
        assert!(depth_error(&text).is_some());
    }

    #[test]
    fn deep_block_nesting_is_found() {
        let mut text = String::new();
        for level in 0..100 {
            text.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        assert_eq!(
            depth_error(&text).map(|(line, _)| line),
            Some(MAX_DEPTH + 1)
        );
        let dashes = format!("{}x\n", "- ".repeat(100));
        assert!(depth_error(&dashes).is_some());
    }

    #[test]
    fn brackets_in_strings_comments_and_block_scalars_do_not_count() {
        let many = "[".repeat(200);
        for text in [
            format!("a: \"{many}\"\n"),
            format!("a: '{many}'' {many}'\n"),
            format!("a: b # {many}\n"),
            format!("# {many}\na: 1\n"),
            format!("a: |\n  {many}\n\n  {many}\nb: 1\n"),
            format!("- >-\n   {many}\n"),
            format!("a: x{many}\n"),
            format!("a: [\"{many}\", '{many}']\n"),
            format!("a: \"multi\n  line {many}\"\n"),
        ] {
            assert_eq!(depth_error(&text), None, "{text}");
        }
    }

    #[test]
    fn ordinary_manifests_pass() {
        let text = "environment:\n  - name: lab\n    machines:\n      - {vm_name: a, \
                    interfaces: [{network: n, ip: [1, 2]}]}\n    x: {a: [b, {c: d}]}\nimages: {}\n";
        assert_eq!(depth_error(text), None);
    }
}
