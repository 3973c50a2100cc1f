//! `Host` blocks for `~/.ssh/config` (or `ssh -F FILE`): one per machine
//! with an SSH endpoint, named by its vm_name (when no other printed
//! machine has it) and its domain name. Pure.
//!
//! By default the blocks check no host key and write no known_hosts (an
//! ephemeral lab's machines come back under the same addresses with new
//! keys); `strict` checks each machine against the host key lvlab made for
//! it (see [`super::ssh`]).

use super::ssh::{checked_name, config_path, ephemeral_options, host_key_options};
use super::{unreachable_reason, MachineReach};

/// The blocks for `reaches`, and a warning for each machine that gets none
/// or (with `strict`) cannot be checked.
pub struct SshConfig {
    pub text: String,
    pub warnings: Vec<String>,
}

/// Renders the blocks; an error names a machine whose name, user or path
/// cannot be written into ssh_config.
pub fn render(reaches: &[MachineReach], strict: bool) -> Result<SshConfig, String> {
    let mut text = String::new();
    let mut warnings = Vec::new();
    for reach in reaches {
        let Some(endpoint) = reach.endpoint else {
            warnings.push(format!("no block: {}", unreachable_reason(reach)));
            continue;
        };
        let unique = reaches
            .iter()
            .filter(|r| r.machine == reach.machine)
            .count()
            == 1;
        let mut names = Vec::new();
        if unique && reach.machine != reach.domain {
            names.push(checked_name(&reach.machine, "machine name")?);
        }
        names.push(checked_name(&reach.domain, "domain name")?);
        let proxy = match reach.route.proxy_command() {
            Ok(proxy) => proxy,
            Err(why) => {
                warnings.push(format!("no block: {}: {why}", reach.machine));
                continue;
            }
        };
        let mut lines = vec![
            ("HostName", endpoint.ip().to_string()),
            ("Port", endpoint.port().to_string()),
            ("User", checked_name(&reach.user, "user")?),
        ];
        if let Some(identity) = &reach.identity_file {
            lines.push(("IdentityFile", config_path(identity)?));
        }
        if let Some(proxy) = proxy {
            lines.push(("ProxyCommand", proxy));
        }
        if !strict {
            lines.extend(ephemeral_options());
        } else {
            if reach.known_hosts.is_none() {
                warnings.push(format!(
                    "{}: lvlab made no host key for it (it was deployed before lvlab made \
                     them; destroy and create it to get one): its block checks against \
                     ~/.ssh/known_hosts",
                    reach.machine
                ));
            }
            lines.extend(strict_options(reach)?);
        }
        text.push_str(&format!(
            "# {} ({})\nHost {}\n",
            reach.machine,
            reach.environment,
            names.join(" ")
        ));
        for (key, value) in lines {
            text.push_str(&format!("  {key} {value}\n"));
        }
        text.push('\n');
    }
    Ok(SshConfig {
        text: text.trim_end().to_string(),
        warnings,
    })
}

/// The strict check: against lvlab's known_hosts when it made one, else
/// against the user's own (ssh's default files, trusting nothing new).
fn strict_options(reach: &MachineReach) -> Result<Vec<(&'static str, String)>, String> {
    Ok(match reach.known_hosts {
        Some(_) => host_key_options(reach)?,
        None => vec![("StrictHostKeyChecking", "yes".into())],
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::access::ReachState;
    use crate::host::Route;

    fn reach(machine: &str, env: &str, port: u16) -> MachineReach {
        MachineReach {
            environment: env.into(),
            machine: machine.into(),
            domain: format!("{machine}_{env}"),
            hostname: machine.into(),
            fqdn: format!("{machine}.example"),
            user: "debian".into(),
            state: ReachState::Running,
            route: Route::Direct,
            endpoint: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            identity_file: Some(PathBuf::from("/home/u/.ssh/id_ed25519")),
            known_hosts: Some(PathBuf::from(format!("/vms/{env}/{machine}/known_hosts"))),
            addresses: vec![],
        }
    }

    #[test]
    fn blocks_default_to_an_ephemeral_lab() {
        let config = render(&[reach("web", "lab", 40022)], false).unwrap();
        assert_eq!(
            config.text,
            "# web (lab)\n\
             Host web web_lab\n\
             \x20 HostName 127.0.0.1\n\
             \x20 Port 40022\n\
             \x20 User debian\n\
             \x20 IdentityFile /home/u/.ssh/id_ed25519\n\
             \x20 StrictHostKeyChecking no\n\
             \x20 UserKnownHostsFile /dev/null\n\
             \x20 LogLevel ERROR"
        );
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn strict_blocks_check_lvlabs_host_key_under_the_domain_name() {
        let config = render(&[reach("web", "lab", 40022)], true).unwrap();
        assert!(config.text.ends_with(
            "  HostKeyAlias web_lab\n\
             \x20 UserKnownHostsFile /vms/lab/web/known_hosts\n\
             \x20 StrictHostKeyChecking yes"
        ));
        let mut older = reach("db", "lab", 40023);
        older.known_hosts = None;
        let config = render(&[older], true).unwrap();
        assert!(config.text.ends_with("  StrictHostKeyChecking yes"));
        assert!(!config.text.contains("/dev/null"));
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    }

    #[test]
    fn a_machine_on_a_remote_host_gets_its_hosts_proxy_command() {
        let mut remote = reach("web", "lab", 40022);
        let host = crate::host::RemoteHost::parse("qemu+ssh://root@hv2/system?keyfile=/k/id");
        remote.route = Route::ProxyCommand(host.hop().unwrap().clone());
        let mut tls = reach("db", "lab", 40023);
        tls.route = Route::Unreachable("qemu+tls://hv3/system: no SSH".into());
        let config = render(&[remote, tls], false).unwrap();
        assert!(
            config
                .text
                .contains("  ProxyCommand ssh -W %h:%p -i /k/id -l root hv2\n"),
            "{}",
            config.text
        );
        assert!(!config.text.contains("db"), "{}", config.text);
        assert_eq!(
            config.warnings,
            ["no block: db: qemu+tls://hv3/system: no SSH"]
        );
    }

    #[test]
    fn a_name_two_environments_share_is_left_to_the_domain_names() {
        let mut down = reach("db", "lab", 1);
        down.endpoint = None;
        down.state = ReachState::NotRunning;
        let config = render(
            &[reach("web", "a", 40001), reach("web", "b", 40002), down],
            false,
        )
        .unwrap();
        assert!(config.text.contains("Host web_a\n"), "{}", config.text);
        assert!(config.text.contains("Host web_b\n"), "{}", config.text);
        assert!(!config.text.contains("db"), "{}", config.text);
        assert_eq!(config.warnings.len(), 1);
        assert!(
            config.warnings[0].contains("lvlab up db"),
            "{:?}",
            config.warnings
        );
    }
}
