//! The `user_data` override: a complete cloud-config from the manifest that
//! replaces the generated user-data. It is data, not a template: its
//! strings get their placeholders expanded, every user gets the machine's
//! SSH keys, the guest gets lvlab's host key in `ssh_keys`, its `runcmd`
//! gets lvlab's leading commands (the `/etc/hosts` ones and the host
//! layers'), and the result is written as YAML by [`super::yaml`].

use std::cell::Cell;

use serde_yaml::{Mapping, Value};

use super::host_key::HostKey;
use super::render::SshKeys;
use super::{pubkey, yaml, CloudInitError};
use crate::desired::{expand_placeholders, MachineSpec, RunCommand};

const KEYS: &str = "ssh_authorized_keys";
const RUNCMD: &str = "runcmd";

/// What the placeholders stand for.
pub struct Placeholders<'a> {
    pub machine: &'a MachineSpec,
    /// `None` when the machine has no console password.
    pub password_hash: Option<&'a str>,
}

impl Placeholders<'_> {
    fn value(&self, name: &str) -> Option<String> {
        let m = self.machine;
        Some(match name {
            "vm_name" => m.vm_name.clone(),
            "vm_hostname" => m.hostname.clone(),
            "fqdn" => m.fqdn.clone(),
            "default_vm_username" => m.cloud_init.user.clone(),
            // Checked by the caller: a missing hash is an error of its own.
            "password_hash" => self.password_hash.unwrap_or_default().to_string(),
            "environment" => m.environment.clone(),
            _ => return None,
        })
    }
}

/// Whether any string of `template` uses `{password_hash}`.
pub fn uses_password_hash(template: &Value) -> bool {
    let used = Cell::new(false);
    visit_strings(template, &mut |text| {
        let _ = expand_placeholders(text, |name| {
            if name == "password_hash" {
                used.set(true);
            }
            Some(String::new())
        });
    });
    used.get()
}

/// The user-data document for an override: `#cloud-config`, then the
/// override with placeholders expanded, `keys` added to every user and
/// `leading` put at the front of its `runcmd` (placeholders are not
/// expanded in them: they are not the override's text).
pub fn render(
    template: &Value,
    placeholders: &Placeholders,
    keys: &[String],
    leading: &[RunCommand],
    host_key: Option<&HostKey>,
) -> Result<String, CloudInitError> {
    if placeholders.password_hash.is_none() && uses_password_hash(template) {
        return Err(CloudInitError::UserData(
            "`user_data` uses {password_hash}, but the machine has no console password \
             (`password: false`); remove the placeholder or the setting"
                .into(),
        ));
    }
    let mut doc = expand(template, placeholders)?;
    for (site, key) in own_keys(&doc) {
        pubkey::parse_public_keys(key)
            .map_err(|problem| CloudInitError::UserData(format!("{site}: {problem}")))?;
    }
    add_keys(&mut doc, keys);
    if let (Some(key), Value::Mapping(top)) = (host_key, &mut doc) {
        let ssh_keys = serde_yaml::to_value(SshKeys::of(key))
            .map_err(|e| CloudInitError::Internal(e.to_string()))?;
        top.insert(Value::String("ssh_keys".into()), ssh_keys);
    }
    prepend_runcmd(&mut doc, leading)?;
    let body = yaml::block_document(&doc).map_err(CloudInitError::UserData)?;
    Ok(format!("#cloud-config\n{body}"))
}

/// A copy of `value` with placeholders expanded in every string value
/// (keys are left as written).
fn expand(value: &Value, placeholders: &Placeholders) -> Result<Value, CloudInitError> {
    Ok(match value {
        Value::String(text) => Value::String(
            expand_placeholders(text, |name| placeholders.value(name))
                .map_err(CloudInitError::UserData)?,
        ),
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .map(|item| expand(item, placeholders))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            let mut out = Mapping::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k.clone(), expand(v, placeholders)?);
            }
            Value::Mapping(out)
        }
        Value::Tagged(tagged) => {
            let mut tagged = tagged.clone();
            tagged.value = expand(&tagged.value, placeholders)?;
            Value::Tagged(tagged)
        }
        other => other.clone(),
    })
}

/// Where one of the override's own SSH keys is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySite {
    /// The entry of `users`, or `None` for the top-level list.
    pub user: Option<usize>,
    /// The entry of the list, or `None` for a single string.
    pub index: Option<usize>,
}

impl std::fmt::Display for KeySite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(user) = self.user {
            write!(f, "users[{user}].")?;
        }
        f.write_str(KEYS)?;
        match self.index {
            Some(index) => write!(f, "[{index}]"),
            None => Ok(()),
        }
    }
}

/// The override's own SSH keys: the top-level `ssh_authorized_keys` and
/// each user's, as a string or a list of strings.
pub fn own_keys<'a>(doc: &'a Value) -> Vec<(KeySite, &'a str)> {
    let mut found = Vec::new();
    let mut collect = |map: &'a Mapping, user: Option<usize>| match map.get(KEYS) {
        Some(Value::String(key)) => found.push((KeySite { user, index: None }, key.as_str())),
        Some(Value::Sequence(list)) => {
            for (index, key) in list.iter().enumerate() {
                if let Value::String(key) = key {
                    let site = KeySite {
                        user,
                        index: Some(index),
                    };
                    found.push((site, key.as_str()));
                }
            }
        }
        _ => {}
    };
    let Value::Mapping(top) = doc else {
        return found;
    };
    collect(top, None);
    if let Some(Value::Sequence(users)) = top.get("users") {
        for (index, user) in users.iter().enumerate() {
            if let Value::Mapping(user) = user {
                collect(user, Some(index));
            }
        }
    }
    found
}

/// Adds `keys` to each user's `ssh_authorized_keys`. cloud-init gives the
/// top-level `ssh_authorized_keys` to the distribution's default user, so
/// the keys go there too when `users` has no list or names `default`.
fn add_keys(doc: &mut Value, keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let Value::Mapping(top) = doc else { return };
    let mut default_user = true;
    if let Some(Value::Sequence(users)) = top.get_mut("users") {
        default_user = false;
        for user in users {
            match user {
                Value::Mapping(user) => append_keys(user, keys),
                Value::String(name) if name == "default" => default_user = true,
                _ => {}
            }
        }
    }
    if default_user {
        append_keys(top, keys);
    }
}

/// Puts `commands` before the override's own `runcmd` (a list, or none).
fn prepend_runcmd(doc: &mut Value, commands: &[RunCommand]) -> Result<(), CloudInitError> {
    let Value::Mapping(top) = doc else {
        return Ok(());
    };
    if commands.is_empty() {
        return Ok(());
    }
    let mut runcmd = commands
        .iter()
        .map(|command| {
            serde_yaml::to_value(command).map_err(|e| CloudInitError::Internal(e.to_string()))
        })
        .collect::<Result<Vec<Value>, _>>()?;
    match top.get(RUNCMD) {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(own)) => runcmd.extend(own.iter().cloned()),
        Some(_) => {
            return Err(CloudInitError::UserData(
                "`runcmd` must be a list of commands; lvlab puts its own before them".into(),
            ))
        }
    }
    top.insert(Value::String(RUNCMD.into()), Value::Sequence(runcmd));
    Ok(())
}

fn append_keys(map: &mut Mapping, keys: &[String]) {
    let entry = map
        .entry(Value::String(KEYS.into()))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if let Value::String(single) = entry {
        *entry = Value::Sequence(vec![Value::String(single.clone())]);
    }
    if let Value::Sequence(list) = entry {
        for key in keys {
            let key = Value::String(key.clone());
            if !list.contains(&key) {
                list.push(key);
            }
        }
    }
}

fn visit_strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(text) => f(text),
        Value::Sequence(items) => items.iter().for_each(|item| visit_strings(item, f)),
        Value::Mapping(map) => map.values().for_each(|v| visit_strings(v, f)),
        Value::Tagged(tagged) => visit_strings(&tagged.value, f),
        _ => {}
    }
}
