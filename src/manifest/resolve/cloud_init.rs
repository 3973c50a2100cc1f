//! `cloud_init`: machine keys over default keys, `runcmd` concatenation,
//! the console password, the public key and the `user_data` override.

use serde_yaml::{Mapping, Value};

use super::{Layered, Resolver};
use crate::cloudinit::pubkey::{is_private_key, parse_public_keys, KeyProblem};
use crate::cloudinit::{own_keys, KeySite};
use crate::desired::{
    expand_placeholders, CloudInitSpec, ConsolePassword, ImageSpec, PublicKey, RunCommand,
    USER_DATA_PLACEHOLDERS,
};
use crate::manifest::error::Problem;
use crate::manifest::raw::{OneOrMany, RawCloudInit, Scalar};
use crate::manifest::source::KeyPath;
use crate::manifest::values;

const DEFAULT_SUDO: &str = "ALL=(ALL) NOPASSWD:ALL";
const DEFAULT_SHELL: &str = "/bin/bash";

/// Public keys begin with their type; anything else is a path. (Base64 key
/// text can hold `/`, so the original's "contains a slash" rule alone
/// misread keys as paths.)
const KEY_TYPE_PREFIXES: &[&str] = &["ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"];

pub(super) fn resolve_cloud_init(
    r: &mut Resolver,
    m: &Layered,
    image: &ImageSpec,
) -> Option<CloudInitSpec> {
    let empty = RawCloudInit::default();
    let own = m.machine.cloud_init.as_ref().unwrap_or(&empty);
    let defaults = m.defaults.cloud_init.as_ref().unwrap_or(&empty);
    let own_path = m.machine_path.key("cloud_init");
    let defaults_path = m.defaults_path.key("cloud_init");
    if defaults.runcmd_ignore_defaults.is_some() {
        r.report(
            Problem::key(
                defaults_path.key("runcmd_ignore_defaults"),
                "`runcmd_ignore_defaults` belongs on a machine",
            )
            .hint("move it to the machine whose runcmd should replace the defaults'"),
        );
    }
    // The machine's or the defaults' `user_data` wins over the settings'
    // top-level one (checked once, by `settings`).
    let user_data = match pick(m, "user_data", |c| c.user_data.as_ref()) {
        Some((data, path))
            if !check_mapping(r, data, &path) || !check_override_keys(r, data, &path) =>
        {
            return None
        }
        Some((data, _)) => Some(data.clone()),
        None => r.settings.user_data.clone(),
    };
    let pubkey = resolve_pubkey(
        r,
        m,
        pick(m, "pubkey", |c| c.pubkey.as_ref()),
        user_data.is_some(),
    )?;
    let ignore_defaults = own.runcmd_ignore_defaults.is_some_and(|f| f.0);
    let password = resolve_password(r, own, &own_path)
        .or_else(|| resolve_password(r, defaults, &defaults_path))
        .unwrap_or(Some(ConsolePassword::Generate))?;
    Some(CloudInitSpec {
        user: pick(m, "user", |c| c.user.as_ref())
            .map_or_else(|| image.username.clone(), |(user, _)| user.clone()),
        pubkey,
        sudo: pick(m, "sudo", |c| c.sudo.as_ref()).map_or_else(
            || vec![DEFAULT_SUDO.to_string()],
            |(sudo, _)| sudo.clone().into_vec(),
        ),
        shell: pick(m, "shell", |c| c.shell.as_ref())
            .map_or_else(|| DEFAULT_SHELL.to_string(), |(shell, _)| shell.clone()),
        password,
        host_runcmd: if ignore_defaults {
            Vec::new()
        } else {
            r.settings.runcmd.clone()
        },
        runcmd: runcmd(own, defaults, ignore_defaults),
        mounts: pick(m, "mounts", |c| c.mounts.as_ref())
            .map(|(mounts, _)| {
                mounts
                    .iter()
                    .map(|entry| entry.iter().map(|s| s.0.clone()).collect())
                    .collect()
            })
            .unwrap_or_default(),
        manage_etc_hosts: pick(m, "manage_etc_hosts", |c| c.manage_etc_hosts.as_ref())
            .is_none_or(|(flag, _)| flag.0),
        user_data: user_data.map(Value::Mapping),
    })
}

/// A `cloud_init` key of the machine or, failing that, of `config_defaults`,
/// with its path (see [`Layered::pick`]).
fn pick<'a, T>(
    m: &Layered<'a>,
    key: &str,
    field: impl Fn(&'a RawCloudInit) -> Option<&'a T>,
) -> Option<(&'a T, KeyPath)> {
    m.pick("cloud_init", |x| x.cloud_init.as_ref().and_then(&field))
        .map(|(value, path)| (value, path.key(key)))
}

/// The defaults' commands followed by the machine's own, unless the machine
/// sets `runcmd_ignore_defaults`. Each default command appears once.
fn runcmd(own: &RawCloudInit, defaults: &RawCloudInit, ignore_defaults: bool) -> Vec<RunCommand> {
    let inherited = if ignore_defaults {
        None
    } else {
        defaults.runcmd.as_ref()
    };
    commands(inherited.into_iter().chain(own.runcmd.as_ref()).flatten())
}

/// `runcmd` entries as written: a string runs in a shell, a list as argv.
pub(super) fn commands<'a>(
    entries: impl Iterator<Item = &'a OneOrMany<Scalar>>,
) -> Vec<RunCommand> {
    entries
        .map(|entry| match entry {
            OneOrMany::One(Scalar(cmd)) => RunCommand::Shell(cmd.clone()),
            OneOrMany::Many(argv) => RunCommand::Argv(argv.iter().map(|s| s.0.clone()).collect()),
        })
        .collect()
}

/// `None` when this level says nothing about the password.
fn resolve_password(
    r: &mut Resolver,
    level: &RawCloudInit,
    path: &KeyPath,
) -> Option<Option<ConsolePassword>> {
    // `generate_password` is the original's spelling of `password`.
    let password = match (level.password, level.generate_password) {
        (Some(a), Some(b)) if a != b => {
            r.report(
                Problem::key(
                    path.key("generate_password"),
                    "`password` and `generate_password` contradict each other",
                )
                .hint(
                    "keep one of them: `generate_password` is the original's name for `password`",
                ),
            );
            return Some(None);
        }
        (a, b) => a.or(b),
    };
    let disabled = password.is_some_and(|flag| !flag.0);
    match (&level.passwd, disabled) {
        (Some(_), true) => {
            let key = if level.password.is_some() {
                "password"
            } else {
                "generate_password"
            };
            r.report(
                Problem::key(path.key(key), format!("`passwd` and `{key}: false` contradict each other"))
                    .hint(format!("remove `passwd` to have no console password, or `{key}: false` to use the hash")),
            );
            Some(None)
        }
        (Some(hash), false) => Some(Some(ConsolePassword::Hash(hash.clone()))),
        (None, true) => Some(Some(ConsolePassword::Disabled)),
        (None, false) => password.map(|_| Some(ConsolePassword::Generate)),
    }
}

fn resolve_pubkey(
    r: &mut Resolver,
    m: &Layered,
    picked: Option<(&String, KeyPath)>,
    has_user_data: bool,
) -> Option<Option<PublicKey>> {
    let Some((text, path)) = picked else {
        if has_user_data {
            return Some(None);
        }
        r.report(
            Problem::key(m.machine_path.clone(), "no SSH public key for this machine")
                .hint("set `cloud_init: {pubkey: ~/.ssh/id_ed25519.pub}` in config_defaults (a path or the key itself)"),
        );
        return None;
    };
    let text = text.trim();
    if is_private_key(text) {
        r.report(private_key_problem(path));
        return None;
    }
    if KEY_TYPE_PREFIXES.iter().any(|p| text.starts_with(p)) {
        return match parse_public_keys(text) {
            Ok(_) => Some(Some(PublicKey::Literal(text.to_string()))),
            Err(problem) => {
                r.report(key_problem(path, problem));
                None
            }
        };
    }
    // Not key text: a path, even a bare file name (`id_ed25519.pub`), which
    // is taken against the manifest's directory. Text with spaces that does
    // not start with a key type is neither.
    if text.contains(char::is_whitespace) && !text.contains('/') && !text.starts_with('~') {
        r.report(
            Problem::value(path, "`pubkey` is neither an SSH public key nor a path").hint(
                "give the key itself (`ssh-ed25519 AAAA... you@host`) or the path of a .pub file",
            ),
        );
        return None;
    }
    let expanded = values::expand_path(text, r.base());
    r.check(&path, expanded).map(|p| Some(PublicKey::File(p)))
}

/// A private key never shows in a report: not its text, not its line.
fn private_key_problem(path: KeyPath) -> Problem {
    Problem::value(path, "this is a private key; give the public key")
        .hint("use the .pub file next to it (e.g. `pubkey: ~/.ssh/id_ed25519.pub`) or its text")
        .conceal_source()
}

fn key_problem(path: KeyPath, problem: KeyProblem) -> Problem {
    match problem {
        KeyProblem::PrivateKey => private_key_problem(path),
        other => Problem::value(path, format!("not an OpenSSH public key: {other}"))
            .hint("copy the whole line of the .pub file: `ssh-ed25519 AAAA... you@host`"),
    }
}

/// The override's own `ssh_authorized_keys` must be OpenSSH public keys;
/// `false` if one is not.
fn check_override_keys(r: &mut Resolver, data: &Mapping, path: &KeyPath) -> bool {
    let doc = Value::Mapping(data.clone());
    let mut ok = true;
    for (site, key) in own_keys(&doc) {
        if let Err(problem) = parse_public_keys(key) {
            r.report(key_problem(key_site_path(path, site), problem));
            ok = false;
        }
    }
    ok
}

fn key_site_path(user_data: &KeyPath, site: KeySite) -> KeyPath {
    let parent = match site.user {
        Some(user) => user_data.key("users").index(user),
        None => user_data.clone(),
    };
    let keys = parent.key("ssh_authorized_keys");
    match site.index {
        Some(index) => keys.index(index),
        None => keys,
    }
}

/// Every string in `user_data` may only use the known placeholders. Every
/// entry is visited (`&=` does not stop early), so all bad strings are
/// reported; `false` if there was one.
pub(super) fn check_mapping(r: &mut Resolver, map: &Mapping, path: &KeyPath) -> bool {
    let mut ok = true;
    for (key, value) in map {
        let key = key.as_str().map_or_else(|| "?".to_string(), str::to_string);
        ok &= check_value(r, value, &path.key(&key));
    }
    ok
}

fn check_value(r: &mut Resolver, value: &Value, path: &KeyPath) -> bool {
    match value {
        Value::String(text) => {
            let known = |name: &str| USER_DATA_PLACEHOLDERS.contains(&name).then(String::new);
            r.check(path, expand_placeholders(text, known)).is_some()
        }
        Value::Sequence(items) => {
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                ok &= check_value(r, item, &path.index(i));
            }
            ok
        }
        Value::Mapping(map) => check_mapping(r, map, path),
        Value::Tagged(tagged) => check_value(r, &tagged.value, path),
        _ => true,
    }
}
