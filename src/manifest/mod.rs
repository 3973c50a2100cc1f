//! Reads `Lvlab.yml`, validates it, and resolves it into the desired state
//! ([`crate::desired::Desired`]).
//!
//! Three passes over the text: serde_yaml parses it (YAML merge keys
//! applied) and [`layers`] deep-merges it with the host-wide settings files,
//! serde deserializes the [`raw`] structs, and [`resolve`] applies the merge
//! rules and defaults. Every problem becomes a [`Problem`] with a key path,
//! placed by the [`source::SourceMap`] of the file that supplied the value.

mod error;
mod layers;
mod names;
mod raw;
mod resolve;
mod source;
mod values;

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::desired::Desired;
pub use error::{ManifestError, Problem};
use layers::{Found, Layer, Role, Stack};
pub use layers::{HostSettings, CONFIG_ROOT_VAR, NO_HOST_CONFIG_VAR, SETTINGS_KEYS};
pub use names::{cache_file_name, companion_file_name, family_of};
use source::{KeyPath, Location, Segment};

/// The manifest lvlab reads when none is named.
const DEFAULT_FILE: &str = "Lvlab.yml";

/// The manifest path: `file` when given, else `Lvlab.yml` here.
pub fn manifest_path(file: Option<&Path>) -> PathBuf {
    file.map_or_else(|| PathBuf::from(DEFAULT_FILE), Path::to_path_buf)
}

/// Reads, validates and resolves the manifest at `path`, merged with the
/// settings files `host` names.
pub fn load(path: &Path, host: &HostSettings) -> Result<Desired, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        let hint = if err.kind() == std::io::ErrorKind::NotFound {
            "run lvlab in the directory that holds Lvlab.yml, or name it with -f FILE"
        } else {
            "check the file's permissions"
        };
        ManifestError::unreadable(
            path,
            Problem::value(KeyPath::root(), format!("cannot read manifest: {err}")).hint(hint),
        )
    })?;
    let (below, above) = layers::read(host, path)?;
    load_layers(below, &text, path, above)
}

/// Validates and resolves manifest `text` alone, as if read from `path`
/// (relative paths in it are taken against `path`'s directory).
pub fn load_str(text: &str, path: &Path) -> Result<Desired, ManifestError> {
    load_layers(Vec::new(), text, path, None)
}

/// The manifest `text` with settings files `below` and `above` it.
fn load_layers(
    below: Vec<Found>,
    text: &str,
    path: &Path,
    above: Option<Found>,
) -> Result<Desired, ManifestError> {
    let manifest = Found {
        role: Role::Manifest,
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    let mut layers = Vec::new();
    let mut errors = Vec::new();
    for file in below.into_iter().chain([manifest]).chain(above) {
        match parse_layer(file) {
            Ok(layer) => layers.push(layer),
            Err(err) => errors.push(err),
        }
    }
    if let Some(err) = ManifestError::join(errors) {
        return Err(err);
    }
    let stack = Stack { layers };
    let raw = deserialize(stack.merged()).map_err(|problem| stack.error(vec![problem]))?;
    let manifest_path = absolute(path);
    let desired = resolve::resolve(raw, &manifest_path, stack.settings_files())
        .map_err(|problems| stack.error(problems))?;
    tracing::debug!(
        manifest = %manifest_path.display(),
        settings_files = desired.settings_files.len(),
        environments = desired.environments.len(),
        images = desired.images.len(),
        "manifest resolved"
    );
    Ok(desired)
}

/// One file of the stack parsed; a settings file also holds only settings
/// keys, and may be empty.
fn parse_layer(file: Found) -> Result<Layer, ManifestError> {
    let Found { role, path, text } = file;
    let value = parse_yaml(&text, role)
        .map_err(|fault| ManifestError::at(&path, &text, *fault.problem, fault.location))?;
    let layer = Layer {
        role,
        path,
        text,
        value,
    };
    if role == Role::Manifest {
        return Ok(layer);
    }
    let problems = layers::check_settings_keys(&layer);
    if problems.is_empty() {
        Ok(layer)
    } else {
        let map = source::SourceMap::build(&layer.text);
        Err(ManifestError::new(&layer.path, &layer.text, &map, problems))
    }
}

/// A problem found before there is a typed manifest to walk.
struct YamlFault {
    problem: Box<Problem>,
    location: Option<Location>,
}

/// `text` as YAML; a settings file (`role`) may be empty.
fn parse_yaml(text: &str, role: Role) -> Result<Value, YamlFault> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|err| {
        let at = err.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
            bytes: (l.index(), l.index()),
        });
        let message = err.to_string();
        let message = strip_location(&message);
        let problem = Problem::value(KeyPath::root(), format!("invalid YAML: {message}"))
            .hint("fix the YAML syntax; `yamllint` shows more detail");
        YamlFault {
            problem: Box::new(problem),
            location: at,
        }
    })?;
    if role != Role::Manifest && value.is_null() {
        value = Value::Mapping(serde_yaml::Mapping::new());
    }
    if !value.is_mapping() {
        let found = match &value {
            Value::Null => "an empty document",
            Value::Sequence(_) => "a list",
            _ => "a single value",
        };
        let (file, hint) = match role {
            Role::Manifest => (
                "the manifest",
                "start the file with `environment:` (a list of environments) and `images:`"
                    .to_string(),
            ),
            Role::Settings(_) => (
                "a settings file",
                format!("give it top-level keys: {}", SETTINGS_KEYS.join(", ")),
            ),
        };
        let problem = Problem::value(
            KeyPath::root(),
            format!("{file} must be a mapping, but it is {found}"),
        )
        .hint(hint);
        return Err(YamlFault {
            problem: Box::new(problem),
            location: None,
        });
    }
    apply_merges(&mut value).map_err(|err| {
        let problem = Problem::value(KeyPath::root(), format!("invalid YAML merge (`<<`): {err}"));
        YamlFault {
            problem: Box::new(problem),
            location: None,
        }
    })?;
    if let Value::Mapping(top) = &mut value {
        // `x-` keys hold YAML anchors for reuse, as in docker compose files.
        top.retain(|key, _| !key.as_str().is_some_and(|k| k.starts_with("x-")));
    }
    Ok(value)
}

/// serde_yaml merges one level per pass: a merged mapping that itself held
/// a `<<` (an anchor built on another anchor) needs another pass.
fn apply_merges(value: &mut Value) -> Result<(), serde_yaml::Error> {
    const MAX_DEPTH: usize = 16;
    for _ in 0..MAX_DEPTH {
        let before = value.clone();
        value.apply_merge()?;
        if *value == before {
            break;
        }
    }
    Ok(())
}

fn deserialize(value: Value) -> Result<raw::RawManifest, Problem> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = key_path(err.path());
        serde_problem(path, &err.inner().to_string())
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

/// Turns serde's message into a problem; unknown keys get a suggestion.
fn serde_problem(path: KeyPath, message: &str) -> Problem {
    let message = strip_location(message);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return unknown_key_problem(path, rest);
    }
    let what = path.last_key().unwrap_or("value").to_string();
    let detail = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "));
    let message = match detail {
        Some((found, expected)) => format!("`{what}` must be {expected}, not {found}"),
        None => format!("`{what}`: {message}"),
    };
    Problem::value(path, message).hint("docs/manifest.md lists every key and its type")
}

/// serde's messages end in ` at line L column C`; the report shows the place
/// itself.
fn strip_location(msg: &str) -> &str {
    msg.split(" at line ").next().unwrap_or(msg)
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
    match error::did_you_mean(&unknown, &known) {
        Some(best) => problem
            .label(format!("did you mean `{best}`?"))
            .hint(format!("rename `{unknown}` to `{best}`")),
        None => problem
            .label("not a key here")
            .hint(format!("the keys allowed here are: {}", known.join(", "))),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
