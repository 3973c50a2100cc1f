//! Host-wide settings layered with the manifest, as the original lvlab
//! (0.5 and later) has them: `/etc/Lvlab.yml`, then `~/.Lvlab.yml`, then the
//! manifest, then `--config FILE`, deep-merged into one document before the
//! raw structs are read. A higher layer overrides a nested value and keeps
//! its siblings; lists and scalars replace.
//!
//! Every layer keeps its own text, so a problem in the merged document is
//! placed in the file that supplied the value, and `validate
//! --show-resolved` can say which file supplied what. This module reads
//! files and merges values; it knows nothing of what the keys mean.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};
use sha2::{Digest, Sha256};

use super::error::{did_you_mean, ManifestError, Problem};
use super::source::{KeyPath, Segment, SourceMap};
use crate::desired::{SettingsFile, SettingsLayer};

/// Set to `1` to read no `/etc/Lvlab.yml` and no `~/.Lvlab.yml` (tests, and
/// runs that must not depend on the host).
pub const NO_HOST_CONFIG_VAR: &str = "LVLAB_NO_HOST_CONFIG";
/// The directory that holds the host-wide `Lvlab.yml`, instead of `/etc`.
pub const CONFIG_ROOT_VAR: &str = "LVLAB_CONFIG_ROOT";
const DEFAULT_CONFIG_ROOT: &str = "/etc";
/// File names looked for, first found wins, as the original looks for them.
const SYSTEM_FILE_NAMES: &[&str] = &["Lvlab.yml", "Lvlab.yaml"];
const USER_FILE_NAMES: &[&str] = &[".Lvlab.yml", ".Lvlab.yaml"];
const UNREADABLE_HOST_LAYER: &str =
    "check the file's permissions, or set LVLAB_NO_HOST_CONFIG=1 to skip host-wide settings";

/// The top-level keys a settings file may hold (the manifest holds these
/// and `environment`).
pub const SETTINGS_KEYS: &[&str] = &[
    "networks",
    "default_network",
    "default_vm_username",
    "runcmd",
    "user_data",
    "images",
];

/// Where the settings files around the manifest are, before reading them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// The config root holding `Lvlab.yml`, when reading host layers.
    system_dir: Option<PathBuf>,
    /// The home directory holding `.Lvlab.yml`, when reading host layers.
    home_dir: Option<PathBuf>,
    /// `--config FILE`: above the manifest, and required to exist.
    config: Option<PathBuf>,
}

impl HostSettings {
    /// No settings files: the manifest alone.
    pub fn none() -> Self {
        Self::default()
    }

    /// The host layers this process's environment names, and `config`:
    /// `$LVLAB_CONFIG_ROOT` (default `/etc`) and `$HOME`, unless
    /// `LVLAB_NO_HOST_CONFIG=1`. An explicit `config` is read regardless.
    pub fn discover(config: Option<&Path>) -> Self {
        let host = std::env::var(NO_HOST_CONFIG_VAR).map_or(true, |v| v.is_empty() || v == "0");
        let root = std::env::var_os(CONFIG_ROOT_VAR)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONFIG_ROOT), PathBuf::from);
        Self {
            system_dir: host.then_some(root),
            home_dir: host
                .then(|| std::env::var_os("HOME").filter(|v| !v.is_empty()))
                .flatten()
                .map(PathBuf::from),
            config: config.map(Path::to_path_buf),
        }
    }
}

/// One file of the stack, read and parsed.
pub(super) struct Layer {
    pub role: Role,
    pub path: PathBuf,
    pub text: String,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Settings(SettingsLayer),
    Manifest,
}

/// A file of the stack read but not yet parsed.
pub(super) struct Found {
    pub role: Role,
    pub path: PathBuf,
    pub text: String,
}

/// Reads the settings files `host` names: below the manifest (system, user)
/// and above it (`--config`). Missing host layers are skipped, and so is a
/// host layer that is the `manifest` itself (lvlab run in `/etc`); a
/// missing `--config` file, or any unreadable one, is an error naming it.
pub(super) fn read(
    host: &HostSettings,
    manifest: &Path,
) -> Result<(Vec<Found>, Option<Found>), ManifestError> {
    let manifest = std::fs::canonicalize(manifest).ok();
    let mut errors = Vec::new();
    let mut below = Vec::new();
    let candidates = [
        (SettingsLayer::System, &host.system_dir, SYSTEM_FILE_NAMES),
        (SettingsLayer::User, &host.home_dir, USER_FILE_NAMES),
    ];
    for (layer, dir, names) in candidates {
        let Some(dir) = dir else { continue };
        let Some(path) = names.iter().map(|n| dir.join(n)).find(|p| p.is_file()) else {
            continue;
        };
        if manifest.is_some() && std::fs::canonicalize(&path).ok() == manifest {
            continue;
        }
        match read_text(&path, UNREADABLE_HOST_LAYER) {
            Ok(text) => below.push(Found {
                role: Role::Settings(layer),
                path,
                text,
            }),
            Err(err) => errors.push(err),
        }
    }
    let above = match &host.config {
        Some(path) => match read_text(path, "name an existing settings file with --config") {
            Ok(text) => Some(Found {
                role: Role::Settings(SettingsLayer::Config),
                // Absolute: a saved plan reads it again, maybe elsewhere.
                path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
                text,
            }),
            Err(err) => {
                errors.push(err);
                None
            }
        },
        None => None,
    };
    match ManifestError::join(errors) {
        Some(err) => Err(err),
        None => Ok((below, above)),
    }
}

fn read_text(path: &Path, hint: &str) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|err| {
        ManifestError::unreadable(
            path,
            Problem::value(KeyPath::root(), format!("cannot read settings file: {err}")).hint(hint),
        )
    })
}

/// Problems with a settings file's own top-level keys: only
/// [`SETTINGS_KEYS`] belong there.
pub(super) fn check_settings_keys(layer: &Layer) -> Vec<Problem> {
    let Value::Mapping(top) = &layer.value else {
        return Vec::new();
    };
    top.keys()
        .filter_map(|key| {
            let name = key.as_str().unwrap_or("?");
            if SETTINGS_KEYS.contains(&name) {
                return None;
            }
            let problem = Problem::key(
                KeyPath::root().key(name),
                format!("`{name}` does not belong in a host-wide settings file"),
            );
            let hint = format!(
                "a settings file holds only {}; machines and environments go in the manifest",
                SETTINGS_KEYS.join(", ")
            );
            Some(match did_you_mean(name, SETTINGS_KEYS) {
                Some(best) => problem.label(format!("did you mean `{best}`?")).hint(hint),
                None => problem.label("not a settings key").hint(hint),
            })
        })
        .collect()
}

/// The manifest and its settings files, lowest first.
pub(super) struct Stack {
    pub layers: Vec<Layer>,
}

impl Stack {
    /// Every layer deep-merged over the ones below it.
    pub fn merged(&self) -> Value {
        let mut merged = Value::Mapping(Mapping::new());
        for layer in &self.layers {
            deep_merge(&mut merged, layer.value.clone());
        }
        merged
    }

    /// The layer that supplied the value at `path` in the merged document:
    /// the highest one holding it, or for a path no layer holds, the one
    /// holding its nearest ancestor. The top level is the manifest's.
    fn owner(&self, path: &KeyPath) -> usize {
        let mut current = Some(path.clone());
        while let Some(path) = current.filter(|p| !p.is_root()) {
            if let Some(index) = self
                .layers
                .iter()
                .rposition(|l| lookup(&l.value, &path).is_some())
            {
                return index;
            }
            current = path.parent();
        }
        self.layers
            .iter()
            .position(|l| l.role == Role::Manifest)
            .unwrap_or_default()
    }

    /// `problems` of the merged document, each placed in the file that
    /// supplied its value.
    pub fn error(&self, problems: Vec<Problem>) -> ManifestError {
        let mut maps: Vec<Option<SourceMap>> = self.layers.iter().map(|_| None).collect();
        let errors: Vec<ManifestError> = problems
            .into_iter()
            .map(|problem| {
                let index = self.owner(&problem.path);
                let layer = &self.layers[index];
                let map = maps[index].get_or_insert_with(|| SourceMap::build(&layer.text));
                ManifestError::new(&layer.path, &layer.text, map, vec![problem])
            })
            .collect();
        ManifestError::join(errors).expect("called with at least one problem")
    }

    /// Each settings file with the key paths whose merged value it supplied.
    pub fn settings_files(&self) -> Vec<SettingsFile> {
        if self.layers.iter().all(|l| l.role == Role::Manifest) {
            return Vec::new();
        }
        let merged = self.merged();
        let mut leaves = Vec::new();
        collect_leaves(&merged, &KeyPath::root(), &mut leaves);
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(index, layer)| match layer.role {
                Role::Settings(kind) => Some((index, kind, layer)),
                Role::Manifest => None,
            })
            .map(|(index, kind, layer)| SettingsFile {
                path: layer.path.clone(),
                layer: kind,
                sha256: format!("sha256:{:x}", Sha256::digest(layer.text.as_bytes())),
                supplies: leaves
                    .iter()
                    .filter(|leaf| self.owner(leaf) == index)
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect()
    }
}

/// Merges `over` into `base`: mappings key by key, recursively; anything
/// else (scalars, lists, a mapping over a non-mapping) replaces.
pub(super) fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// The value at `path` in `value`, if there is one.
fn lookup<'v>(value: &'v Value, path: &KeyPath) -> Option<&'v Value> {
    path.segments()
        .iter()
        .try_fold(value, |value, segment| match segment {
            Segment::Key(key) => value.as_mapping()?.get(key.as_str()),
            Segment::Index(index) => value.as_sequence()?.get(*index),
        })
}

/// The paths of every value that is not a non-empty mapping: what a layer
/// supplies whole.
fn collect_leaves(value: &Value, path: &KeyPath, out: &mut Vec<KeyPath>) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_string);
                collect_leaves(value, &path.key(&key), out);
            }
        }
        _ if path.is_root() => {}
        _ => out.push(path.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    fn layer(role: Role, path: &str, text: &str) -> Layer {
        Layer {
            role,
            path: PathBuf::from(path),
            text: text.to_string(),
            value: yaml(text),
        }
    }

    fn stack() -> Stack {
        Stack {
            layers: vec![
                layer(
                    Role::Settings(SettingsLayer::System),
                    "/etc/Lvlab.yml",
                    "networks:\n  vlan10:\n    gateway: 10.0.0.1\n    dns: [10.0.0.53]\nruncmd: [a, b]\n",
                ),
                layer(
                    Role::Settings(SettingsLayer::User),
                    "/home/u/.Lvlab.yml",
                    "networks:\n  vlan10:\n    dns: [10.0.0.54]\nruncmd: [c]\n",
                ),
                layer(Role::Manifest, "/srv/Lvlab.yml", "environment: []\n"),
            ],
        }
    }

    #[test]
    fn higher_layers_override_nested_values_and_replace_lists() {
        let merged = stack().merged();
        let expected = yaml(
            "networks: {vlan10: {gateway: 10.0.0.1, dns: [10.0.0.54]}}\nruncmd: [c]\nenvironment: []\n",
        );
        assert_eq!(merged, expected);
    }

    #[test]
    fn each_value_is_owned_by_the_highest_layer_that_sets_it() {
        let stack = stack();
        let files = stack.settings_files();
        assert_eq!(files[0].supplies, ["networks.vlan10.gateway"]);
        assert_eq!(files[1].supplies, ["networks.vlan10.dns", "runcmd"]);
        assert!(files[0].sha256.starts_with("sha256:"));
        let deep = KeyPath::root().key("environment").index(3).key("name");
        assert_eq!(stack.owner(&deep), 2, "the manifest");
        assert_eq!(stack.owner(&KeyPath::root()), 2, "the manifest");
    }

    #[test]
    fn problems_are_placed_in_the_file_that_supplied_the_value() {
        let stack = stack();
        let path = KeyPath::root().key("networks").key("vlan10").key("gateway");
        let err = stack.error(vec![Problem::value(path, "bad gateway")]);
        assert_eq!(
            err.to_string(),
            "/etc/Lvlab.yml:3:14: bad gateway (at networks.vlan10.gateway)\n"
        );
    }

    #[test]
    fn settings_files_hold_only_settings_keys() {
        let bad = layer(
            Role::Settings(SettingsLayer::User),
            "/home/u/.Lvlab.yml",
            "imagse: {}\nenvironment: []\nrunсmd: []\n",
        );
        let problems = check_settings_keys(&bad);
        assert_eq!(problems.len(), 3);
        assert_eq!(problems[0].label.as_deref(), Some("did you mean `images`?"));
        assert!(problems[1].message.contains("`environment`"));
    }
}
