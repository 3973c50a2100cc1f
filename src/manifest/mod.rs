//! Reads `Lvlab.yml`, validates it, and resolves it into the desired state
//! ([`crate::desired::Desired`]).
//!
//! Three passes over the text: serde_yaml parses it (YAML merge keys
//! applied) and [`layers`] deep-merges it with the host-wide settings files,
//! [`collect`] deserializes the [`raw`] structs, and [`resolve`] applies the
//! merge rules and defaults. Every problem becomes a [`Problem`] with a key
//! path, placed by the [`source::SourceMap`] of the file that supplied the
//! value; one run reports all of them. [`manifest_schema`] is the JSON
//! Schema of the same raw structs, for editors.

mod collect;
mod depth;
mod error;
mod layers;
mod names;
mod raw;
mod resolve;
mod schema;
mod source;
mod values;

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::desired::Desired;
pub use error::{did_you_mean, ManifestError, Problem};
use layers::{Found, Layer, Role, Stack};
pub use layers::{HostSettings, CONFIG_ROOT_VAR, NO_HOST_CONFIG_VAR, SETTINGS_KEYS};
pub use names::{cache_file_name, companion_file_name, family_of, name_for_source, versioned_name};
pub use schema::manifest_schema;
use source::{KeyPath, Location, SourceMap};
pub use values::{check_hostname, check_name, parse_memory_mib, parse_size};

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
        use std::io::ErrorKind;
        let (message, hint) = match err.kind() {
            ErrorKind::NotFound => (
                format!("cannot read manifest: {err}"),
                "run lvlab in the directory that holds Lvlab.yml, or name it with -f FILE",
            ),
            ErrorKind::IsADirectory => (
                "cannot read manifest: it is a directory".to_string(),
                "name the manifest file itself, e.g. -f DIR/Lvlab.yml, or change to DIR with -C",
            ),
            ErrorKind::InvalidData => (
                "cannot read manifest: it is not UTF-8 text".to_string(),
                "save the manifest as UTF-8; is this the right file?",
            ),
            _ => (
                format!("cannot read manifest: {err}"),
                "check the file's permissions",
            ),
        };
        ManifestError::unreadable(path, Problem::value(KeyPath::root(), message).hint(hint))
    })?;
    let (below, above) = layers::read(host, path)?;
    load_layers(below, &text, path, above, false)
}

/// Validates and resolves manifest `text` alone, as if read from `path`
/// (relative paths in it are taken against `path`'s directory).
pub fn load_str(text: &str, path: &Path) -> Result<Desired, ManifestError> {
    load_layers(Vec::new(), text, path, None, false)
}

/// Resolves the one-off manifest `createvm` generated, `text`, with the
/// settings files `host` names, as a manifest at `label` (which names it in
/// reports; relative paths are taken against its directory). Its one
/// environment is one-off ([`crate::desired::EnvironmentSpec::one_off`]).
pub fn load_one_off(
    text: &str,
    label: &Path,
    host: &HostSettings,
) -> Result<Desired, ManifestError> {
    let (below, above) = layers::read(host, label)?;
    load_layers(below, text, label, above, true)
}

/// The image keys the settings files `host` names define under `images:`
/// (a file that does not parse adds none; loading reports it).
pub fn settings_image_keys(host: &HostSettings) -> Result<Vec<String>, ManifestError> {
    let (below, above) = layers::read(host, Path::new(""))?;
    let mut keys = Vec::new();
    for file in below.into_iter().chain(above) {
        let Ok(Value::Mapping(top)) = serde_yaml::from_str::<Value>(&file.text) else {
            continue;
        };
        if let Some(Value::Mapping(images)) = top.get("images") {
            keys.extend(images.keys().filter_map(Value::as_str).map(str::to_string));
        }
    }
    Ok(keys)
}

/// The manifest `text` with settings files `below` and `above` it;
/// `one_off` for `createvm`'s generated one.
fn load_layers(
    below: Vec<Found>,
    text: &str,
    path: &Path,
    above: Option<Found>,
    one_off: bool,
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
    let (raw, mut problems) = collect::deserialize(stack.merged());
    let manifest_path = absolute(path);
    // Resolution runs on whatever deserialized, so its problems join serde's;
    // those that only follow from a value serde rejected are left out.
    match raw.map(|raw| resolve::resolve(raw, &manifest_path, stack.settings_files(), one_off)) {
        Some(Ok(desired)) if problems.is_empty() => {
            tracing::debug!(
                manifest = %manifest_path.display(),
                settings_files = desired.settings_files.len(),
                environments = desired.environments.len(),
                images = desired.images.len(),
                "manifest resolved"
            );
            return Ok(desired);
        }
        Some(Err(resolution)) => {
            let own: Vec<Problem> = resolution
                .into_iter()
                .filter(|p| !collect::follows_from(&problems, p))
                .collect();
            problems.extend(own);
        }
        Some(Ok(_)) | None => {}
    }
    Err(stack.error(problems))
}

/// One file of the stack parsed; a settings file also holds only settings
/// keys, and may be empty.
fn parse_layer(file: Found) -> Result<Layer, ManifestError> {
    let Found { role, path, text } = file;
    let value = parse_yaml(&text, role).map_err(|fault| match fault {
        YamlFault::At(problem, location) => ManifestError::at(&path, &text, *problem, location),
        YamlFault::Placed(problems) => {
            ManifestError::new(&path, &text, &SourceMap::build(&text), problems)
        }
    })?;
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
        let map = SourceMap::build(&layer.text);
        Err(ManifestError::new(&layer.path, &layer.text, &map, problems))
    }
}

/// A problem found before there is a typed manifest to walk.
enum YamlFault {
    /// A syntax error, at the parser's place when it has one.
    At(Box<Problem>, Option<Location>),
    /// Problems with a key path, placed by the source map.
    Placed(Vec<Problem>),
}

/// `text` as YAML; a settings file (`role`) may be empty.
fn parse_yaml(text: &str, role: Role) -> Result<Value, YamlFault> {
    if let Some(at) = depth::too_deep(text) {
        let problem = Problem::value(
            KeyPath::root(),
            format!("the YAML nests more than {} levels deep", depth::MAX_DEPTH),
        )
        .label("too deep here")
        .hint("a manifest needs a few levels of lists and mappings; is this the right file?");
        return Err(YamlFault::At(Box::new(problem), Some(at)));
    }
    let mut value: Value = serde_yaml::from_str(text).map_err(|err| yaml_fault(text, &err))?;
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
        return Err(YamlFault::At(Box::new(problem), None));
    }
    apply_merges(&mut value).map_err(|err| {
        let problem = Problem::value(KeyPath::root(), format!("invalid YAML merge (`<<`): {err}"));
        YamlFault::At(Box::new(problem), None)
    })?;
    if let Value::Mapping(top) = &mut value {
        // `x-` keys hold YAML anchors for reuse, as in docker compose files.
        top.retain(|key, _| !key.as_str().is_some_and(|k| k.starts_with("x-")));
    }
    Ok(value)
}

/// serde_yaml's own words for a duplicate key and an integer beyond 64 bits
/// point at the enclosing mapping and say "fix the syntax"; both are
/// reported at their key instead.
fn yaml_fault(text: &str, err: &serde_yaml::Error) -> YamlFault {
    let message = err.to_string();
    let message = strip_location(&message);
    let map = SourceMap::build(text);
    if message.contains(": duplicate entry with key ") {
        let problems: Vec<Problem> = map
            .duplicates()
            .iter()
            .map(|(path, first)| {
                let key = path.last_key().unwrap_or_default();
                Problem::key(path.clone(), format!("duplicate key `{key}`"))
                    .label(format!("`{key}` again"))
                    .hint(format!(
                        "remove one of them: `{key}` is first set on line {}",
                        first.line
                    ))
            })
            .collect();
        if !problems.is_empty() {
            return YamlFault::Placed(problems);
        }
    }
    let at = err.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
        bytes: (l.index(), l.index()),
    });
    if message.contains(" as u128,") || message.contains(" as i128,") {
        let number = message.split('`').nth(1).unwrap_or("the number");
        let path = at.and_then(|at| map.path_at(at.line, at.column));
        if let Some(path) = path {
            let problem = Problem::value(path, format!("`{number}` is too large a number"))
                .hint("numbers here fit in 64 bits; check for extra digits");
            return YamlFault::Placed(vec![problem]);
        }
    }
    let problem = Problem::value(KeyPath::root(), format!("invalid YAML: {message}"))
        .hint("fix the YAML syntax; `yamllint` shows more detail");
    YamlFault::At(Box::new(problem), at)
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

/// serde's messages end in ` at line L column C`; the report shows the place
/// itself.
fn strip_location(msg: &str) -> &str {
    msg.split(" at line ").next().unwrap_or(msg)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
