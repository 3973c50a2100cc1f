//! The lab's `/etc/hosts` lines for the host (or any machine that should
//! know the lab by name): `<address> <fqdn> <hostname>` for each address
//! of [`super::MachineReach::addresses`], per environment, under the
//! header the guests' own snippet has. Three ways out, as the original
//! had: the lines, a shell heredoc that appends them, and a file that gets
//! them as a marked block (`# BEGIN lvlab <env>` ... `# END lvlab <env>`)
//! which a later run replaces in place instead of appending twice.

use std::path::Path;

use serde::Serialize;

use super::ssh::checked_name;
use super::MachineReach;
use crate::cloudinit::hosts::HEADER;

/// One `/etc/hosts` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostsLine {
    pub environment: String,
    pub machine: String,
    pub address: std::net::IpAddr,
    pub fqdn: String,
    pub hostname: String,
}

/// The lines of `reaches`, in their order; an error names an environment
/// (of `environments`, the ones the blocks are for) or a machine whose
/// name could change the file's structure (anything but letters, digits,
/// `.`, `-`, `_`).
pub fn lines(environments: &[String], reaches: &[MachineReach]) -> Result<Vec<HostsLine>, String> {
    for env in environments {
        checked_name(env, "environment name")?;
    }
    let mut lines = Vec::new();
    for reach in reaches {
        for address in &reach.addresses {
            let name = |text: &str, what: &str| {
                checked_name(text, what).map_err(|e| format!("{}: {e}", reach.machine))
            };
            lines.push(HostsLine {
                environment: reach.environment.clone(),
                machine: reach.machine.clone(),
                address: *address,
                fqdn: name(&reach.fqdn, "fqdn")?,
                hostname: name(&reach.hostname, "hostname")?,
            });
        }
    }
    Ok(lines)
}

/// The environments of `lines`, each once, in order; `environments` first
/// (so an environment with no address still gets its block replaced).
fn environment_names<'a>(environments: &'a [String], lines: &'a [HostsLine]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    let all = environments.iter().map(String::as_str);
    for name in all.chain(lines.iter().map(|l| l.environment.as_str())) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// One environment's snippet: the header, the environment, its lines.
pub fn snippet(environment: &str, lines: &[HostsLine]) -> String {
    let mut text = format!("{HEADER}\n# Environment: {environment}\n");
    for line in lines.iter().filter(|l| l.environment == environment) {
        text.push_str(&format!(
            "{} {} {}\n",
            line.address, line.fqdn, line.hostname
        ));
    }
    text
}

/// The environments of `reaches`, each once, in order: the ones the
/// blocks are for.
pub fn environments(reaches: &[MachineReach]) -> Vec<String> {
    let mut environments: Vec<String> = Vec::new();
    for reach in reaches {
        if !environments.contains(&reach.environment) {
            environments.push(reach.environment.clone());
        }
    }
    environments
}

/// Every environment's snippet, one after the other.
pub fn plain(environments: &[String], lines: &[HostsLine]) -> String {
    environment_names(environments, lines)
        .into_iter()
        .map(|env| snippet(env, lines))
        .collect::<Vec<_>>()
        .join("\n")
}

fn begin(environment: &str) -> String {
    format!("# BEGIN lvlab {environment}")
}

fn end(environment: &str) -> String {
    format!("# END lvlab {environment}")
}

/// One environment's marked block.
pub fn block(environment: &str, lines: &[HostsLine]) -> String {
    format!(
        "{}\n{}{}\n",
        begin(environment),
        snippet(environment, lines),
        end(environment)
    )
}

/// A shell command that appends the marked blocks to `/etc/hosts`: paste
/// it into a terminal or a provisioning script.
pub fn heredoc(environments: &[String], lines: &[HostsLine]) -> String {
    let blocks: String = environment_names(environments, lines)
        .into_iter()
        .map(|env| block(env, lines))
        .collect();
    format!("cat >> /etc/hosts <<'LVLAB_HOSTS'\n{blocks}LVLAB_HOSTS\n")
}

/// `text` (a hosts file) with each environment's marked block replaced in
/// place, or appended when it has none. An opened block that is never
/// closed is an error: what follows it may be the user's.
pub fn with_blocks(
    text: &str,
    environments: &[String],
    lines: &[HostsLine],
) -> Result<String, String> {
    let mut text = text.to_string();
    for env in environment_names(environments, lines) {
        let new = block(env, lines);
        let kept: Vec<&str> = text.lines().collect();
        let start = kept.iter().position(|l| l.trim_end() == begin(env));
        text = match start {
            None => {
                let separator = if text.is_empty() || text.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                format!("{text}{separator}{new}")
            }
            Some(start) => {
                let stop = kept[start..]
                    .iter()
                    .position(|l| l.trim_end() == end(env))
                    .ok_or_else(|| {
                        format!(
                            "line {}: `{}` has no `{}` after it; remove the block by hand",
                            start + 1,
                            begin(env),
                            end(env)
                        )
                    })?;
                let mut out: Vec<String> = kept[..start].iter().map(|l| l.to_string()).collect();
                out.extend(new.lines().map(str::to_string));
                out.extend(kept[start + stop + 1..].iter().map(|l| l.to_string()));
                out.join("\n") + "\n"
            }
        };
    }
    Ok(text)
}

/// Puts the marked blocks into `file`: replaced in place, atomically,
/// keeping its mode and owner; a missing file is created (0644).
pub fn append_to(file: &Path, environments: &[String], lines: &[HostsLine]) -> Result<(), String> {
    let exists = std::fs::symlink_metadata(file).is_ok();
    let current = if exists {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
    } else {
        String::new()
    };
    let text = with_blocks(&current, environments, lines)
        .map_err(|problem| format!("{}: {problem}", file.display()))?;
    let written = if exists {
        crate::storage::rewrite_file(file, text.as_bytes())
    } else {
        crate::storage::write_file(file, text.as_bytes(), 0o644)
    };
    written.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(env: &str, machine: &str, address: &str) -> HostsLine {
        HostsLine {
            environment: env.into(),
            machine: machine.into(),
            address: address.parse().unwrap(),
            fqdn: format!("{machine}.example"),
            hostname: machine.into(),
        }
    }

    #[test]
    fn the_snippet_has_the_guests_header_and_one_line_per_address() {
        let lines = [
            line("lab", "web", "192.0.2.10"),
            line("lab", "db", "192.0.2.11"),
        ];
        assert_eq!(
            plain(&["lab".into()], &lines),
            "# Libvirt Labs /etc/hosts snippet\n# Environment: lab\n\
             192.0.2.10 web.example web\n192.0.2.11 db.example db\n"
        );
    }

    #[test]
    fn a_second_run_replaces_its_block_and_leaves_the_rest() {
        let envs = ["lab".to_string()];
        let original = "127.0.0.1 localhost\n::1 localhost";
        let first = with_blocks(original, &envs, &[line("lab", "web", "192.0.2.10")]).unwrap();
        assert_eq!(
            first,
            "127.0.0.1 localhost\n::1 localhost\n# BEGIN lvlab lab\n\
             # Libvirt Labs /etc/hosts snippet\n# Environment: lab\n\
             192.0.2.10 web.example web\n# END lvlab lab\n"
        );
        let edited = format!("{first}10.0.0.1 mine\n");
        let second = with_blocks(&edited, &envs, &[line("lab", "web", "192.0.2.99")]).unwrap();
        assert_eq!(second.matches("# BEGIN lvlab lab").count(), 1, "{second}");
        assert!(second.contains("192.0.2.99 web.example web\n# END lvlab lab\n10.0.0.1 mine\n"));
        assert!(!second.contains("192.0.2.10"));
        // Another environment gets a block of its own.
        let other = with_blocks(&second, &["dev".into()], &[line("dev", "x", "192.0.2.5")]);
        let other = other.unwrap();
        assert!(other.contains("# BEGIN lvlab lab") && other.contains("# BEGIN lvlab dev"));
        // No address left: the block stays, empty.
        let emptied = with_blocks(&other, &envs, &[]).unwrap();
        assert!(
            emptied.contains("# Environment: lab\n# END lvlab lab\n"),
            "{emptied}"
        );
    }

    #[test]
    fn an_unclosed_block_is_an_error() {
        let err = with_blocks("a\n# BEGIN lvlab lab\nb\n", &["lab".into()], &[]).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("# END lvlab lab"),
            "{err}"
        );
    }

    #[test]
    fn the_heredoc_appends_the_marked_blocks() {
        let text = heredoc(&["lab".into()], &[line("lab", "web", "192.0.2.10")]);
        assert!(text.starts_with("cat >> /etc/hosts <<'LVLAB_HOSTS'\n# BEGIN lvlab lab\n"));
        assert!(text.ends_with("# END lvlab lab\nLVLAB_HOSTS\n"));
    }
}
