//! The one way a manifest value enters a templated YAML document: the `yaml`
//! filter, which turns any value into a YAML flow node (a double-quoted
//! scalar, a flow sequence or a flow mapping) that a YAML 1.1 or 1.2 parser
//! reads back as exactly that value. The template environment's formatter
//! refuses every string that did not pass through the filter, so a template
//! cannot print a manifest value raw by mistake.
//!
//! [`block_document`] writes a whole `serde_yaml::Value` (the `user_data`
//! override) the same way. serde_yaml's own emitter is not used for it: it
//! leaves strings such as `yes`, `on`, `1_000`, `12:30` or `2001-12-14`
//! plain, which cloud-init's YAML 1.1 parser reads as booleans, numbers and
//! dates.

use std::fmt::Write as _;

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind, Output, State};

/// `value | yaml`: the value as a YAML flow node, marked safe for output.
pub fn yaml_filter(value: &Value) -> Result<Value, Error> {
    let mut out = String::new();
    flow_node(value, &mut out)?;
    Ok(Value::from_safe_string(out))
}

/// The environment's formatter: prints what the filter produced, numbers
/// and booleans (which templates compute), and nothing else.
pub fn strict_formatter(out: &mut Output, _state: &mut State, value: &Value) -> Result<(), Error> {
    let allowed = value.is_safe() || matches!(value.kind(), ValueKind::Number | ValueKind::Bool);
    if !allowed {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("template printed {value:?} without the `yaml` filter"),
        ));
    }
    let text = match value.kind() {
        // minijinja prints booleans the Python way (`True`).
        ValueKind::Bool => if value.is_true() { "true" } else { "false" }.to_string(),
        _ => value.to_string(),
    };
    out.write_str(&text)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "write failed"))
}

fn flow_node(value: &Value, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String => out.push_str(&quote(value.as_str().unwrap_or_default())),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            let _ = write!(out, "{value}");
        }
        ValueKind::None => out.push_str("null"),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow_node(&item, out)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow_node(&key, out)?;
                out.push_str(": ");
                flow_node(&value.get_item(&key)?, out)?;
            }
            out.push('}');
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`yaml` filter cannot write {value:?}"),
            ))
        }
    }
    Ok(())
}

/// `text` as a YAML double-quoted scalar. Printable characters stay as they
/// are (UTF-8); everything a YAML parser would reject in a stream, fold as
/// a line break, or strip as a byte-order mark is escaped.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value` as a block-style YAML document: mappings and sequences as
/// indented blocks, every string double-quoted (keys that are plain words
/// stay bare, for reading), numbers in a form both YAML 1.1 and 1.2 read
/// back as the same number.
pub fn block_document(value: &serde_yaml::Value) -> Result<String, String> {
    let mut out = String::new();
    match value {
        serde_yaml::Value::Mapping(map) if !map.is_empty() => block_mapping(map, 0, &mut out)?,
        serde_yaml::Value::Sequence(seq) if !seq.is_empty() => block_sequence(seq, 0, &mut out)?,
        scalar => {
            out.push_str(&scalar_node(scalar)?);
            out.push('\n');
        }
    }
    Ok(out)
}

fn block_mapping(map: &serde_yaml::Mapping, indent: usize, out: &mut String) -> Result<(), String> {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a mapping inside a sequence item follows its `- `.
        if i > 0 || out.is_empty() || out.ends_with('\n') {
            push_indent(out, indent);
        }
        out.push_str(&key_node(key)?);
        out.push(':');
        block_value(value, indent + 2, out)?;
    }
    Ok(())
}

fn block_sequence(
    seq: &[serde_yaml::Value],
    indent: usize,
    out: &mut String,
) -> Result<(), String> {
    for (i, item) in seq.iter().enumerate() {
        if i > 0 || out.is_empty() || out.ends_with('\n') {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            serde_yaml::Value::Mapping(map) if !map.is_empty() => {
                block_mapping(map, indent + 2, out)?;
            }
            serde_yaml::Value::Sequence(inner) if !inner.is_empty() => {
                block_sequence(inner, indent + 2, out)?;
            }
            scalar => {
                out.push_str(&scalar_node(scalar)?);
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// What follows `key:`: a nested block on the next lines, or ` scalar`.
fn block_value(value: &serde_yaml::Value, indent: usize, out: &mut String) -> Result<(), String> {
    match value {
        serde_yaml::Value::Mapping(map) if !map.is_empty() => {
            out.push('\n');
            block_mapping(map, indent, out)
        }
        serde_yaml::Value::Sequence(seq) if !seq.is_empty() => {
            out.push('\n');
            block_sequence(seq, indent, out)
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_node(scalar)?);
            out.push('\n');
            Ok(())
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A key: bare when it is a word that no YAML version reads as anything
/// but that string, otherwise a flow node.
fn key_node(key: &serde_yaml::Value) -> Result<String, String> {
    if let Some(text) = key.as_str() {
        let word = text.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || (i > 0 && (c.is_ascii_digit() || c == '-'))
        });
        if word && !text.is_empty() && !is_yaml11_word(text) {
            return Ok(text.to_string());
        }
    }
    scalar_node(key)
}

/// Words YAML 1.1 reads as booleans or null.
fn is_yaml11_word(text: &str) -> bool {
    const WORDS: &[&str] = &["y", "yes", "n", "no", "true", "false", "on", "off", "null"];
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(text))
}

/// A scalar, or an empty or nested collection, as one flow node.
fn scalar_node(value: &serde_yaml::Value) -> Result<String, String> {
    use serde_yaml::Value;
    Ok(match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        Value::Sequence(seq) => {
            let items: Result<Vec<String>, String> = seq.iter().map(scalar_node).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Mapping(map) => {
            let pairs: Result<Vec<String>, String> = map
                .iter()
                .map(|(k, v)| Ok(format!("{}: {}", scalar_node(k)?, scalar_node(v)?)))
                .collect();
            format!("{{{}}}", pairs?.join(", "))
        }
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                return Err(format!("unsupported YAML tag `{tag}`"));
            }
            format!("!{name} {}", scalar_node(&tagged.value)?)
        }
    })
}

/// Integers as digits; floats always with a `.` (YAML 1.1 reads `1e3` as a
/// string) and never with an exponent.
fn number(n: &serde_yaml::Number) -> String {
    match n.as_f64() {
        Some(f) if !(n.is_i64() || n.is_u64()) => {
            if f.is_nan() {
                ".nan".into()
            } else if f.is_infinite() {
                if f > 0.0 { ".inf" } else { "-.inf" }.into()
            } else {
                let text = format!("{f}");
                if text.contains('.') {
                    text
                } else {
                    format!("{text}.0")
                }
            }
        }
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> serde_yaml::Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn quoted_strings_read_back_unchanged() {
        for s in [
            "plain",
            "a: b # c",
            "line\nbreak\r\n",
            "\"quotes' and \\ backslash",
            "{{ not a template }} {% nor this %}",
            "- [list] {map} & *alias !tag %directive @ `",
            "yes",
            "0x1f",
            "~",
            "",
            "tab\there \u{7} bell \u{1b}[31m",
            "é ü 日本 🦀 \u{85}\u{2028}\u{2029}\u{feff}",
        ] {
            assert_eq!(
                parse(&quote(s)),
                serde_yaml::Value::String(s.into()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn block_documents_read_back_unchanged() {
        let text = "a: [1, -2, 1.5, 1.0e+300, .inf, .nan, true, null, '']\nyes: {}\n'1': []\n\
                    users:\n  - name: x\n    groups: [a, b]\n  - default\n  - [n, [m]]\n\
                    k: !custom value\n\"with space\": \"on\"\n";
        let value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let emitted = block_document(&value).unwrap();
        let back: serde_yaml::Value = serde_yaml::from_str(&emitted).unwrap();
        // NaN never equals itself: compare the rest.
        assert_eq!(format!("{back:?}"), format!("{value:?}"), "{emitted}");
        assert!(emitted.contains("\"yes\": {}"), "{emitted}");
        assert!(
            emitted.contains("users:\n  - name: \"x\"\n    groups:\n      - \"a\"\n"),
            "{emitted}"
        );
    }

    #[test]
    fn sequences_and_mappings_are_flow_nodes() {
        let value = Value::from(vec![Value::from("a, b"), Value::from(3), Value::from(true)]);
        let text = yaml_filter(&value).unwrap().to_string();
        assert_eq!(text, r#"["a, b", 3, true]"#);
        assert_eq!(parse(&text), parse("['a, b', 3, true]"));
    }
}
