//! The environment's `/etc/hosts` snippet, and the two `runcmd` commands
//! that append it to `/etc/hosts` and to the distribution's cloud-init
//! hosts template (with `manage_etc_hosts` on, cloud-init rewrites
//! `/etc/hosts` from that template at every boot, so the snippet must live
//! in both to survive a reboot).

use crate::desired::{Addressing, EnvironmentSpec, OsFamily, RunCommand};

pub const HEADER: &str = "# Libvirt Labs /etc/hosts snippet";

/// Appends `$1` (the snippet) to the file `$2`. Values travel as arguments,
/// never inside the script, so no hostname or FQDN can change the command.
const APPEND: &str = "printf '%s\\n' \"$1\" >> \"$2\"";
/// The same, only when the template exists: appending to a missing
/// template would create one that holds nothing but the snippet.
const APPEND_IF_PRESENT: &str = "if [ -f \"$2\" ]; then printf '%s\\n' \"$1\" >> \"$2\"; fi";

/// The snippet: a header, the environment, then `<ip> <fqdn> <hostname>`
/// for every static IPv4 address of every machine of the environment, in
/// manifest order.
pub fn snippet(environment: &EnvironmentSpec) -> String {
    let mut lines = vec![
        HEADER.to_string(),
        format!("# Environment: {}", environment.name),
    ];
    for machine in &environment.machines {
        for nic in &machine.interfaces {
            if let Addressing::Static {
                ipv4: Some(v4),
                ipv6: _,
            } = &nic.addressing
            {
                lines.push(format!(
                    "{} {} {}",
                    v4.address.addr(),
                    machine.fqdn,
                    machine.hostname
                ));
            }
        }
    }
    lines.join("\n")
}

/// cloud-init's hosts template for the family, if lvlab knows it.
pub fn template_path(family: &OsFamily) -> Option<&'static str> {
    match family {
        OsFamily::Debian | OsFamily::Ubuntu => Some("/etc/cloud/templates/hosts.debian.tmpl"),
        OsFamily::Fedora
        | OsFamily::AlmaLinux
        | OsFamily::Rocky
        | OsFamily::CentOS
        | OsFamily::Rhel => Some("/etc/cloud/templates/hosts.redhat.tmpl"),
        OsFamily::Other(_) => None,
    }
}

/// The commands that put the snippet in place: one for `/etc/hosts`, one
/// for the family's template (families without a known template get only
/// the first).
pub fn commands(environment: &EnvironmentSpec, family: &OsFamily) -> Vec<RunCommand> {
    let text = snippet(environment);
    let append = |script: &str, file: &str| {
        RunCommand::Argv(
            ["sh", "-c", script, "lvlab-hosts", &text, file]
                .map(str::to_string)
                .to_vec(),
        )
    };
    let mut commands = vec![append(APPEND, "/etc/hosts")];
    if let Some(template) = template_path(family) {
        commands.push(append(APPEND_IF_PRESENT, template));
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_map_to_their_templates() {
        assert_eq!(
            template_path(&OsFamily::Ubuntu),
            Some("/etc/cloud/templates/hosts.debian.tmpl")
        );
        assert_eq!(
            template_path(&OsFamily::Rocky),
            Some("/etc/cloud/templates/hosts.redhat.tmpl")
        );
        assert_eq!(template_path(&OsFamily::Other("alpine".into())), None);
    }

    #[test]
    fn the_snippet_of_an_empty_environment_is_its_header() {
        let env = EnvironmentSpec {
            name: "lab".into(),
            libvirt_uri: "qemu:///session".into(),
            lab_id: None,
            one_off: false,
            machines: vec![],
            image_cache_dir: "/var/lib/libvirt/images/lvlab/cloud-images".into(),
        };
        assert_eq!(
            snippet(&env),
            "# Libvirt Labs /etc/hosts snippet\n# Environment: lab"
        );
        assert_eq!(commands(&env, &OsFamily::Other("arch".into())).len(), 1);
    }
}
