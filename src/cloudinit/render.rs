//! The render step: one resolved machine, its environment and its image in;
//! the three NoCloud documents out. Pure: no clock, no randomness, no I/O
//! (the caller reads the SSH keys and decides the password hash), so the
//! same inputs always give the same seed.

use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::host_key::HostKey;
use super::{hosts, network, user_data, yaml, CloudInitError, Seed};
use crate::desired::{EnvironmentSpec, ImageSpec, MachineSpec, RunCommand};

const TEMPLATES: &[(&str, &str)] = &[
    (
        "meta-data.yaml.j2",
        include_str!("../../templates/meta-data.yaml.j2"),
    ),
    (
        "user-data.yaml.j2",
        include_str!("../../templates/user-data.yaml.j2"),
    ),
    (
        "network-config-v1.yaml.j2",
        include_str!("../../templates/network-config-v1.yaml.j2"),
    ),
    (
        "network-config-v2.yaml.j2",
        include_str!("../../templates/network-config-v2.yaml.j2"),
    ),
];

/// Everything a seed is made of.
#[derive(Debug, Clone, Copy)]
pub struct SeedInput<'a> {
    pub machine: &'a MachineSpec,
    /// The machine's environment: its `/etc/hosts` snippet lists the
    /// environment's static addresses.
    pub environment: &'a EnvironmentSpec,
    /// The machine's image: its family picks the hosts template, its
    /// `network_version` the network-config format.
    pub image: &'a ImageSpec,
    /// The SSH public keys (see [`super::pubkey::authorized_keys`]).
    pub authorized_keys: &'a [String],
    /// The console password's crypt hash, `None` for no console password
    /// (see [`super::password::console_credential`]).
    pub password_hash: Option<&'a str>,
    /// The guest's SSH host key, `None` for keys of the guest's own (see
    /// [`super::host_key::for_seed`]).
    pub host_key: Option<&'a HostKey>,
}

#[derive(Serialize)]
struct MetaData<'a> {
    instance_id: String,
    local_hostname: &'a str,
}

#[derive(Serialize)]
struct UserData<'a> {
    hostname: &'a str,
    fqdn: &'a str,
    manage_etc_hosts: bool,
    user: User<'a>,
    runcmd: Vec<RunCommand>,
    mounts: &'a [Vec<String>],
    ssh_keys: Option<SshKeys<'a>>,
}

/// cloud-config's `ssh_keys`: the host key pair the guest's sshd uses.
#[derive(Serialize)]
pub(super) struct SshKeys<'a> {
    ed25519_private: &'a str,
    ed25519_public: String,
}

impl<'a> SshKeys<'a> {
    pub(super) fn of(key: &'a HostKey) -> Self {
        Self {
            ed25519_private: key.private(),
            ed25519_public: key.public(),
        }
    }
}

#[derive(Serialize)]
struct User<'a> {
    name: &'a str,
    ssh_authorized_keys: &'a [String],
    sudo: &'a [String],
    shell: &'a str,
    passwd: Option<&'a str>,
}

/// Renders meta-data, user-data and network-config for one machine.
pub fn render(input: &SeedInput) -> Result<Seed, CloudInitError> {
    let machine = input.machine;
    let meta_data = render_template(
        "meta-data.yaml.j2",
        &MetaData {
            instance_id: format!("iid-{}", machine.domain_name),
            local_hostname: &machine.fqdn,
        },
    )?;
    let user_data = match &machine.cloud_init.user_data {
        Some(template) => user_data::render(
            template,
            &user_data::Placeholders {
                machine,
                password_hash: input.password_hash,
            },
            input.authorized_keys,
            &leading_runcmd(input),
            input.host_key,
        )?,
        None => render_template("user-data.yaml.j2", &generated_user_data(input))?,
    };
    let network_config = render_template(
        network::template_name(input.image.network_version),
        &network::context(machine),
    )?;
    Ok(Seed {
        meta_data,
        user_data,
        network_config,
        host_key: input.host_key.cloned(),
    })
}

fn generated_user_data<'a>(input: &'a SeedInput) -> UserData<'a> {
    let machine = input.machine;
    let ci = &machine.cloud_init;
    let mut runcmd = leading_runcmd(input);
    runcmd.extend(ci.runcmd.iter().cloned());
    UserData {
        hostname: &machine.hostname,
        fqdn: &machine.fqdn,
        manage_etc_hosts: ci.manage_etc_hosts,
        user: User {
            name: &ci.user,
            ssh_authorized_keys: input.authorized_keys,
            sudo: &ci.sudo,
            shell: &ci.shell,
            passwd: input.password_hash,
        },
        runcmd,
        mounts: &ci.mounts,
        ssh_keys: input.host_key.map(SshKeys::of),
    }
}

/// The commands that run before the machine's own, in generated user-data
/// and in a `user_data` override alike (as the original did): the
/// `/etc/hosts` commands when `manage_etc_hosts` is on, then the host
/// layers' `runcmd`.
fn leading_runcmd(input: &SeedInput) -> Vec<RunCommand> {
    let ci = &input.machine.cloud_init;
    let mut runcmd = Vec::with_capacity(ci.host_runcmd.len() + 2);
    if ci.manage_etc_hosts {
        runcmd.extend(hosts::commands(input.environment, &input.image.family));
    }
    runcmd.extend(ci.host_runcmd.iter().cloned());
    runcmd
}

fn render_template<T: Serialize>(name: &str, context: &T) -> Result<String, CloudInitError> {
    let env = environment()?;
    let template = env.get_template(name).map_err(CloudInitError::Template)?;
    template
        .render(Value::from(Serde(context)))
        .map_err(CloudInitError::Template)
}

/// The template environment, built once: strict about undefined values and
/// about values printed without the `yaml` filter.
fn environment() -> Result<&'static Environment<'static>, CloudInitError> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(yaml::strict_formatter);
        env.add_filter("yaml", yaml::yaml_filter);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|e| e.to_string())?;
        }
        Ok(env)
    })
    .as_ref()
    .map_err(|e| CloudInitError::Internal(format!("templates: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = environment().unwrap();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
    }

    #[test]
    fn a_value_without_the_filter_is_an_error() {
        let env = environment().unwrap();
        let err = env
            .render_str("x: {{ v }}", minijinja::context! { v => "a: b" })
            .unwrap_err();
        assert!(
            err.to_string().contains("without the `yaml` filter"),
            "{err}"
        );
        let ok = env
            .render_str(
                "x: {{ v | yaml }} n: {{ 3 }}",
                minijinja::context! { v => "a: b" },
            )
            .unwrap();
        assert_eq!(ok, r#"x: "a: b" n: 3"#);
    }
}
