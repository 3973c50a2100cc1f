//! Deserializes the parsed manifest into the [`raw`](super::raw) structs
//! and reports every unknown key and wrong type in one run, not serde's
//! first one.
//!
//! serde stops at the first error, so each error is recorded, its cause is
//! taken out of the value (an unknown key removed, a wrong value replaced by
//! a placeholder), and deserialization runs again. Each round removes one
//! cause, so the rounds are bounded by the number of nodes.

use std::collections::HashMap;

use serde_yaml::Value;

use super::error::{did_you_mean, Problem};
use super::raw::RawManifest;
use super::source::{KeyPath, Segment, Target};

/// More problems than a person reads in one run; also bounds the rounds.
const MAX_ROUNDS: usize = 256;

/// The raw manifest and every problem serde finds in `value`. The manifest
/// is `None` when no repair lets it deserialize; otherwise the values that
/// caused problems are absent from it (`None`, or an empty placeholder in a
/// list or map).
pub fn deserialize(mut value: Value) -> (Option<RawManifest>, Vec<Problem>) {
    let mut problems = Vec::new();
    // Placeholders tried at each path, so a path that rejects one gets the
    // next, and one that rejects all of them gives way to its parent.
    let mut tried: HashMap<KeyPath, usize> = HashMap::new();
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, RawManifest>(value.clone()) {
            Ok(raw) => return (Some(raw), problems),
            Err(err) => err,
        };
        let path = key_path(err.path());
        let message = err.inner().to_string();
        let message = super::strip_location(&message);
        if let Some(rest) = message.strip_prefix("unknown field ") {
            let problem = unknown_key_problem(path, rest);
            if !remove_key(&mut value, &problem.path) {
                problems.push(problem);
                return (None, problems);
            }
            problems.push(problem);
            continue;
        }
        if !tried.contains_key(&path) {
            problems.push(wrong_value_problem(path.clone(), message));
        }
        if !replace_with_placeholder(&mut value, &mut tried, path) {
            return (None, problems);
        }
    }
    (None, problems)
}

/// Whether a resolution problem is a consequence of a value [`deserialize`]
/// took out: it is about that value, or it says a key is missing from the
/// mapping that held it ("the machine has no `os`" after `os: [a]`).
pub fn follows_from(deserialization: &[Problem], problem: &Problem) -> bool {
    deserialization.iter().any(|cause| {
        problem.path.starts_with(&cause.path)
            || (problem.target == Target::Key
                && cause.path.parent().as_ref() == Some(&problem.path))
    })
}

fn key_path(path: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment as S;
    KeyPath::from_segments(
        path.iter()
            .filter_map(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Enum { .. } | S::Unknown => None,
            })
            .collect(),
    )
}

/// serde says: invalid type: string "lots", expected a whole number.
fn wrong_value_problem(path: KeyPath, message: &str) -> Problem {
    let what = subject(&path);
    let detail = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "));
    let message = match detail {
        Some((found, expected)) => format!(
            "`{what}` must be {}, not {}",
            yaml_words(expected),
            yaml_words(found)
        ),
        None => format!("`{what}`: {message}"),
    };
    Problem::value(path, message).hint("docs/manifest.md lists every key and its type")
}

/// The path from its last key on: `cpu`, `runcmd[0]`, `mounts[1][0]`.
fn subject(path: &KeyPath) -> String {
    let segments = path.segments();
    let from = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Key(_)))
        .unwrap_or(0);
    KeyPath::from_segments(segments[from..].to_vec()).to_string()
}

/// serde's names for shapes, in the words of YAML and of the manifest's
/// docs: `map` and `struct RawMachine` are mappings, `sequence` a list.
fn yaml_words(text: &str) -> String {
    match text {
        "map" | "a map" => "a mapping".into(),
        "sequence" | "a sequence" => "a list".into(),
        t if t.starts_with("struct ") => "a mapping".into(),
        t => t.to_string(),
    }
}

/// serde says: unknown field `memroy`, expected one of `vm_name`, `cpu`, ...
fn unknown_key_problem(path: KeyPath, rest: &str) -> Problem {
    let mut names = rest.split('`').skip(1).step_by(2);
    let unknown = names.next().unwrap_or_default().to_string();
    let known: Vec<&str> = names.collect();
    let path = if path.last_key() == Some(unknown.as_str()) {
        path
    } else {
        path.key(&unknown)
    };
    let problem = Problem::key(path, format!("unknown key `{unknown}`"));
    match did_you_mean(&unknown, &known) {
        Some(best) => problem
            .label(format!("did you mean `{best}`?"))
            .hint(format!("rename `{unknown}` to `{best}`")),
        None => problem
            .label("not a key here")
            .hint(format!("the keys allowed here are: {}", known.join(", "))),
    }
}

/// Removes the entry at `path` from its mapping; false when there is none.
fn remove_key(value: &mut Value, path: &KeyPath) -> bool {
    let (Some(parent), Some(key)) = (path.parent(), path.last_key()) else {
        return false;
    };
    match node_mut(value, &parent) {
        Some(Value::Mapping(map)) => {
            let before = map.len();
            map.retain(|k, _| !key_is(k, key));
            map.len() < before
        }
        _ => false,
    }
}

/// Puts the next placeholder at `path`: `null` fits an optional field, `{}`
/// a struct, `""` a string or scalar, `[]` a list. When `path` has refused
/// them all, its parent is replaced instead. False once the root is reached.
fn replace_with_placeholder(
    value: &mut Value,
    tried: &mut HashMap<KeyPath, usize>,
    path: KeyPath,
) -> bool {
    let placeholders = [
        Value::Null,
        Value::Mapping(Default::default()),
        Value::String(String::new()),
        Value::Sequence(Vec::new()),
    ];
    let mut path = path;
    loop {
        if path.is_root() {
            return false;
        }
        let attempt = tried.entry(path.clone()).or_insert(0);
        if let Some(placeholder) = placeholders.get(*attempt) {
            *attempt += 1;
            if let Some(node) = node_mut(value, &path) {
                *node = placeholder.clone();
                return true;
            }
        }
        let Some(parent) = path.parent() else {
            return false;
        };
        path = parent;
    }
}

fn node_mut<'v>(value: &'v mut Value, path: &KeyPath) -> Option<&'v mut Value> {
    path.segments()
        .iter()
        .try_fold(value, |node, segment| match (node, segment) {
            (Value::Mapping(map), Segment::Key(key)) => {
                map.iter_mut().find(|(k, _)| key_is(k, key)).map(|(_, v)| v)
            }
            (Value::Sequence(seq), Segment::Index(i)) => seq.get_mut(*i),
            _ => None,
        })
}

/// serde names a mapping key by its text; a key written `1` or `true` is
/// not a YAML string.
fn key_is(key: &Value, name: &str) -> bool {
    match key {
        Value::String(s) => s == name,
        Value::Number(n) => n.to_string() == name,
        Value::Bool(b) => b.to_string() == name,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> (Option<RawManifest>, Vec<String>) {
        let value: Value = serde_yaml::from_str(text).unwrap();
        let (raw, problems) = deserialize(value);
        let listed = problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        (raw, listed)
    }

    #[test]
    fn reports_every_unknown_key_and_wrong_type() {
        let (raw, problems) = collect(
            "environment:\n  - name: lab\n    machines:\n      - {vm_name: a, memroy: 1, cpu: lots}\n      - {vm_name: b, hostnme: x, autostart: maybe}\nimages: {d: {image_url: x, checksum: y}}\n",
        );
        assert_eq!(
            problems,
            [
                "environment[0].machines[0].memroy: unknown key `memroy`",
                "environment[0].machines[0].cpu: `cpu` must be a whole number, not string \"lots\"",
                "environment[0].machines[1].hostnme: unknown key `hostnme`",
                "environment[0].machines[1].autostart: `autostart` must be true or false, not string \"maybe\"",
                "images.d.checksum: unknown key `checksum`",
            ]
        );
        let raw = raw.expect("repaired manifest deserializes");
        let machines = raw.environment.unwrap()[0].machines.clone().unwrap();
        assert_eq!(machines[0].cpu, None);
        assert_eq!(machines[1].vm_name.as_deref(), Some("b"));
    }

    #[test]
    fn a_wrong_list_element_is_reported_once() {
        let (raw, problems) = collect(
            "environment:\n  - name: lab\n    machines:\n      - just a string\n      - {vm_name: b, cloud_init: {sudo: [{a: b}]}}\nimages: {}\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("environment[0].machines[0]: "),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("environment[0].machines[1].cloud_init.sudo[0]: "),
            "{problems:?}"
        );
        assert!(raw.is_some());
    }

    #[test]
    fn top_level_values_of_the_wrong_shape_are_replaced() {
        let (raw, problems) = collect("environment: 3\nimages: [1]\nbogus: 1\n");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(raw.is_some(), "the top level keys were replaced");
    }

    #[test]
    fn missing_key_reports_on_a_repaired_mapping_are_consequences() {
        let cause = Problem::value(
            KeyPath::root().key("environment").index(0).key("name"),
            "wrong",
        );
        let missing = Problem::key(KeyPath::root().key("environment").index(0), "no name");
        let elsewhere = Problem::key(KeyPath::root().key("environment").index(1), "no name");
        assert!(follows_from(std::slice::from_ref(&cause), &missing));
        assert!(!follows_from(std::slice::from_ref(&cause), &elsewhere));
    }
}
