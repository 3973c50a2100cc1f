//! Where each key and value of the manifest sits in the file, so that every
//! error can name `file:line:col` and underline the culprit.
//!
//! serde_yaml gives typed values but no positions below the first syntax
//! error, so the text is walked once more with saphyr's event parser and
//! every node is recorded under its key path.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, Span};

/// One step of a key path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root, printed as `environment[0].machines[1].cpu`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn key(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_string()))
    }

    pub fn index(&self, index: usize) -> Self {
        self.with(Segment::Index(index))
    }

    fn with(&self, segment: Segment) -> Self {
        let mut path = self.0.clone();
        path.push(segment);
        Self(path)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    pub fn from_segments(segments: Vec<Segment>) -> Self {
        Self(segments)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A position in the file: 1-based line and column, and a byte range on that
/// line for underlining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub bytes: (usize, usize),
}

#[derive(Debug, Clone, Copy)]
struct Node {
    key: Option<Location>,
    value: Location,
}

/// Key path -> where its key and its value are in the text.
#[derive(Debug, Default)]
pub struct SourceMap {
    nodes: HashMap<KeyPath, Node>,
}

/// Which part of a `key: value` entry an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Key,
    Value,
}

impl SourceMap {
    /// Records every node of the first document. Text that does not parse
    /// gives an empty map: serde_yaml reports the syntax error itself.
    pub fn build(text: &str) -> Self {
        let mut walker = Walker {
            text: LineIndex::new(text),
            map: SourceMap::default(),
            stack: Vec::new(),
        };
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            if !walker.on_event(event, span) {
                break;
            }
        }
        walker.map
    }

    /// Where `path` is, or where its nearest recorded ancestor is (a key
    /// that came in through a YAML merge `<<` has no place of its own).
    pub fn locate(&self, path: &KeyPath, target: Target) -> Option<Location> {
        let mut current = Some(path.clone());
        while let Some(path) = current {
            if let Some(node) = self.nodes.get(&path) {
                return Some(match target {
                    Target::Key => node.key.unwrap_or(node.value),
                    Target::Value => node.value,
                });
            }
            current = path.parent();
        }
        None
    }
}

enum Frame {
    Mapping {
        path: KeyPath,
        pending_key: Option<(String, Location)>,
    },
    Sequence {
        path: KeyPath,
        next: usize,
    },
}

struct Walker<'t> {
    text: LineIndex<'t>,
    map: SourceMap,
    stack: Vec<Frame>,
}

impl Walker<'_> {
    /// Returns false once the first document is complete.
    fn on_event(&mut self, event: Event<'_>, span: Span) -> bool {
        match event {
            Event::Scalar(value, ..) => {
                let location = self.text.location(span);
                if let Some(Frame::Mapping { pending_key, .. }) = self.stack.last_mut() {
                    if pending_key.is_none() {
                        *pending_key = Some((value.into_owned(), location));
                        return true;
                    }
                }
                self.place_value(location);
            }
            Event::Alias(_) => {
                let location = self.text.location(span);
                self.place_value(location);
            }
            Event::MappingStart(..) => {
                let location = self.text.location(span);
                let path = self.place_value(location);
                self.stack.push(Frame::Mapping {
                    path,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let location = self.text.location(span);
                let path = self.place_value(location);
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentEnd => return false,
            _ => {}
        }
        true
    }

    /// Records a value at the position the enclosing collection expects next
    /// and returns its path.
    fn place_value(&mut self, value: Location) -> KeyPath {
        let (path, key) = match self.stack.last_mut() {
            None => (KeyPath::root(), None),
            Some(Frame::Sequence { path, next }) => {
                *next += 1;
                (path.index(*next - 1), None)
            }
            Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
                Some((key, key_location)) => (path.key(&key), Some(key_location)),
                // A complex (non-scalar) key: not used by manifests.
                None => (path.key("?"), None),
            },
        };
        self.map.nodes.insert(path.clone(), Node { key, value });
        path
    }
}

/// Converts saphyr's character positions to byte ranges on a line.
struct LineIndex<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, line_starts }
    }

    fn location(&self, span: Span) -> Location {
        let line = span.start.line().max(1);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let line_text = self.text[line_start..].split('\n').next().unwrap_or("");
        let start = line_start + byte_offset(line_text, span.start.col());
        let end_col = if span.end.line() == span.start.line() {
            span.end.col()
        } else {
            line_text.chars().count()
        };
        let end = (line_start + byte_offset(line_text, end_col)).max(start);
        Location {
            line,
            column: span.start.col() + 1,
            bytes: (start, end),
        }
    }
}

fn byte_offset(line: &str, chars: usize) -> usize {
    line.char_indices()
        .nth(chars)
        .map_or(line.len(), |(byte, _)| byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
environment:
  - name: lab
    machines:
      - vm_name: web01
        cpu: 2
images:
  débian12: {image_url: x}
";

    fn path(segments: &[&str]) -> KeyPath {
        KeyPath::from_segments(
            segments
                .iter()
                .map(|s| match s.parse() {
                    Ok(i) => Segment::Index(i),
                    Err(_) => Segment::Key(s.to_string()),
                })
                .collect(),
        )
    }

    #[test]
    fn locates_keys_and_values_of_nested_entries() {
        let map = SourceMap::build(TEXT);
        let cpu = path(&["environment", "0", "machines", "0", "cpu"]);
        let key = map.locate(&cpu, Target::Key).unwrap();
        assert_eq!((key.line, key.column), (5, 9));
        assert_eq!(&TEXT[key.bytes.0..key.bytes.1], "cpu");
        let value = map.locate(&cpu, Target::Value).unwrap();
        assert_eq!((value.line, value.column), (5, 14));
        assert_eq!(&TEXT[value.bytes.0..value.bytes.1], "2");
    }

    #[test]
    fn byte_ranges_are_correct_after_multibyte_characters() {
        let map = SourceMap::build(TEXT);
        let url = path(&["images", "débian12", "image_url"]);
        let value = map.locate(&url, Target::Value).unwrap();
        assert_eq!(&TEXT[value.bytes.0..value.bytes.1], "x");
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let map = SourceMap::build(TEXT);
        let missing = path(&["environment", "0", "machines", "0", "memory"]);
        let found = map.locate(&missing, Target::Key).unwrap();
        assert_eq!(found.line, 4, "the machine mapping starts on line 4");
    }

    #[test]
    fn paths_print_like_the_manifest_reads() {
        let p = path(&["environment", "0", "machines", "1", "cpu"]);
        assert_eq!(p.to_string(), "environment[0].machines[1].cpu");
    }
}
