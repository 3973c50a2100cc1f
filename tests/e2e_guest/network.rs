//! The guest's network: the environment's `/etc/hosts` snippet (in the file
//! and in cloud-init's template), its static IPv4 address on the isolated
//! network, the other guest reached by name, and no DNS leaving the guest.

use crate::checks::Checks;
use crate::guest::GuestShell;
use crate::lab::{DOMAIN, GUESTS};

pub fn check(checks: &mut Checks, shell: &GuestShell) {
    let (vm, guest, lab) = (shell.guest.vm, shell.guest, shell.lab);
    let run = |command: &str| shell.run(command);

    // One line per static IPv4 address of the environment, both guests'.
    let mut snippet = format!(
        "# Libvirt Labs /etc/hosts snippet\n# Environment: {}",
        lab.env
    );
    for other in &GUESTS {
        snippet.push_str(&format!(
            "\n{} {}.{DOMAIN} {}",
            other.ip4, other.vm, other.vm
        ));
    }
    let hosts = run("cat /etc/hosts");
    checks.check(
        vm,
        "/etc/hosts snippet",
        hosts.contains(&snippet),
        &format!("/etc/hosts contains\n{snippet}"),
        &hosts,
    );
    let template = run("cat /etc/cloud/templates/hosts.debian.tmpl");
    checks.check(
        vm,
        "hosts template snippet",
        template.contains(&snippet),
        "cloud-init's hosts.debian.tmpl holds the snippet too",
        &template,
    );

    let addresses = run("ip -4 -o addr show");
    checks.check(
        vm,
        "static IPv4",
        addresses.contains(&format!("inet {}/24 ", guest.ip4)),
        &format!("{}/24 on the NIC of the isolated network", guest.ip4),
        &addresses,
    );
    // The other guest by the name its /etc/hosts line gives, on SSH's port:
    // the line resolves and the address is live.
    let other = GUESTS.iter().find(|g| g.vm != vm).unwrap();
    let reached = run(&format!(
        "getent hosts {name} && timeout 10 bash -c '</dev/tcp/{name}/22' && echo open",
        name = other.vm
    ));
    checks.check(
        vm,
        "the other guest by its /etc/hosts name",
        reached.starts_with(other.ip4) && reached.ends_with("open"),
        &format!(
            "{} resolves to {} and its port 22 answers",
            other.vm, other.ip4
        ),
        &reached,
    );

    // The workplace allows traffic only on loopback: a resolver from
    // passt's DHCP would send the guest's lookups to the host's resolver.
    let resolvers = run("grep '^nameserver' /etc/resolv.conf");
    checks.check(
        vm,
        "no DNS leaves the guest",
        resolvers
            .lines()
            .all(|l| l.trim() == "nameserver 127.0.0.1"),
        "only nameserver 127.0.0.1 in /etc/resolv.conf",
        &resolvers,
    );
}
