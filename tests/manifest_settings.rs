//! The original's spellings and host-wide settings keys, written in the
//! manifest itself (no settings files: `load_str`): where `nameservers` is
//! read, `networks:` gateways and DNS, `default_network`,
//! `default_vm_username`, the top-level `runcmd` and `user_data`, and
//! `generate_password`.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;

use std::net::IpAddr;
use std::path::Path;

use lvlab::desired::{
    Addressing, Attachment, ConsolePassword, Desired, MachineSpec, Nameservers, RunCommand,
};
use lvlab::manifest::load_str;

use lab_manifest::PUBKEY;

const IMAGES: &str = "
images:
  debian12:
    image_url: https://example.org/debian-12-genericcloud-amd64.qcow2
  mine:
    image_url: https://example.org/mine.qcow2
    username: admin
";

fn load(yaml: &str) -> Desired {
    let yaml = format!("{}{IMAGES}", yaml.replace("$KEY", PUBKEY));
    match load_str(&yaml, Path::new("/srv/lab/Lvlab.yml")) {
        Ok(desired) => desired,
        Err(err) => panic!("manifest should load:\n{}", err.render(false)),
    }
}

fn load_err(yaml: &str) -> String {
    let yaml = format!("{}{IMAGES}", yaml.replace("$KEY", PUBKEY));
    load_str(&yaml, Path::new("/srv/lab/Lvlab.yml"))
        .expect_err("manifest should be rejected")
        .render(false)
}

fn machine<'a>(desired: &'a Desired, name: &str) -> &'a MachineSpec {
    desired.machine(name, None).unwrap()
}

fn ns(addresses: &[&str], search: &[&str]) -> Nameservers {
    Nameservers {
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        search: search.iter().map(|s| s.to_string()).collect(),
    }
}

fn gateway4(m: &MachineSpec) -> Option<IpAddr> {
    match &m.interfaces[0].addressing {
        Addressing::Static { ipv4, .. } => ipv4.as_ref()?.gateway.map(IpAddr::V4),
        Addressing::Dhcp => None,
    }
}

/// The original's released manifests put the nameservers under
/// `config_defaults.interfaces`; a machine's own block replaces it whole.
#[test]
fn nameservers_are_read_where_the_original_reads_them() {
    let d = load(
        "
networks:
  vlan10: {gateway: 10.10.0.1, dns: [10.10.0.53], search: [vlan.example]}
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {pubkey: $KEY}
      interfaces:
        network: vlan10
        nameservers: {addresses: [192.0.2.1], search: [defaults-nic.example]}
      nameservers: {addresses: [192.0.2.2], search: [defaults.example]}
    machines:
      - vm_name: own
        interfaces: [{ip4: 10.10.0.5/24}]
        nameservers: {addresses: [192.0.2.3]}
      - vm_name: inherits
        interfaces: [{ip4: 10.10.0.6/24}]
  - name: plain
    config_defaults:
      os: debian12
      cloud_init: {pubkey: $KEY}
      nameservers: {addresses: [192.0.2.2]}
    machines:
      - vm_name: lvlab-spelling
  - name: bridged
    config_defaults:
      os: debian12
      cloud_init: {pubkey: $KEY}
    machines:
      - vm_name: from-network
        interfaces: [{network: vlan10, ip4: 10.10.0.7/24}]
      - vm_name: first-nic-decides
        interfaces: [{network: other, ip4: 10.20.0.7/24}, {network: vlan10}]
",
    );
    let m = |name: &str| {
        d.environments
            .iter()
            .flat_map(|e| &e.machines)
            .find(|m| m.vm_name == name)
            .unwrap()
    };
    // The machine's own block, not overlaid by the defaults' search.
    assert_eq!(m("own").nameservers, ns(&["192.0.2.3"], &[]));
    assert_eq!(
        m("inherits").nameservers,
        ns(&["192.0.2.1"], &["defaults-nic.example"])
    );
    assert_eq!(m("lvlab-spelling").nameservers, ns(&["192.0.2.2"], &[]));
    assert_eq!(
        m("from-network").nameservers,
        ns(&["10.10.0.53"], &["vlan.example"])
    );
    assert_eq!(m("first-nic-decides").nameservers, ns(&[], &[]));
}

#[test]
fn nameservers_on_a_machine_interface_are_not_read() {
    let err = load_err(
        "
environment:
  - name: lab
    config_defaults: {os: debian12, cloud_init: {pubkey: $KEY}}
    machines:
      - vm_name: a
        interfaces:
          - ip4: 10.0.0.5/24
            nameservers: {addresses: [10.0.0.1]}
",
    );
    assert!(
        err.contains("`nameservers` is not read on a machine's interface"),
        "{err}"
    );
    assert!(err.contains("Lvlab.yml:9:13"), "{err}");
}

#[test]
fn networks_give_static_addresses_their_gateway_unless_the_interface_names_one() {
    let d = load(
        "
default_network: vlan10
networks:
  vlan10: {gateway: 10.10.0.1}
  v6net: {gateway: 'fd00::1'}
  bare:
environment:
  - name: lab
    config_defaults: {os: debian12, cloud_init: {pubkey: $KEY}}
    machines:
      - vm_name: inherits
        interfaces: [{ip4: 10.10.0.5/24}]
      - vm_name: names-one
        interfaces: [{ip4: 10.10.0.6/24, ip4gw: 10.10.0.254}]
      - vm_name: dhcp
      - vm_name: other-family
        interfaces: [{network: v6net, ip4: 10.30.0.6/24, ip6: 'fd00::6/64'}]
      - vm_name: user-mode
        interfaces: [{network_type: user}]
      - vm_name: empty-entry
        interfaces: [{network: bare, ip4: 10.40.0.6/24}]
",
    );
    let inherits = machine(&d, "inherits");
    assert_eq!(
        inherits.interfaces[0].attachment,
        Attachment::Network {
            network: "vlan10".into()
        },
        "default_network names the network of interfaces that name none"
    );
    assert_eq!(gateway4(inherits), Some("10.10.0.1".parse().unwrap()));
    assert_eq!(
        gateway4(machine(&d, "names-one")),
        Some("10.10.0.254".parse().unwrap())
    );
    assert_eq!(
        machine(&d, "dhcp").interfaces[0].addressing,
        Addressing::Dhcp
    );
    let Addressing::Static { ipv4, ipv6 } = &machine(&d, "other-family").interfaces[0].addressing
    else {
        panic!("static")
    };
    assert_eq!(ipv4.as_ref().unwrap().gateway, None);
    assert_eq!(
        ipv6.as_ref().unwrap().gateway,
        Some("fd00::1".parse().unwrap())
    );
    assert_eq!(
        machine(&d, "user-mode").interfaces[0].attachment,
        Attachment::User
    );
    assert_eq!(gateway4(machine(&d, "empty-entry")), None);
}

#[test]
fn a_bad_networks_entry_is_reported_at_its_place() {
    let err = load_err(
        "
networks:
  vlan10:
    gateway: 10.10.0.300
    dns: [10.10.0.53, nameserver]
environment:
  - name: lab
    config_defaults: {os: debian12, cloud_init: {pubkey: $KEY}}
    machines: [{vm_name: a}]
",
    );
    assert!(err.contains("`10.10.0.300` is not an IP address"), "{err}");
    assert!(err.contains("Lvlab.yml:4:14"), "{err}");
    assert!(err.contains("key: networks.vlan10.gateway"), "{err}");
}

#[test]
fn default_vm_username_sits_between_the_image_username_and_the_family_default() {
    let d = load(
        "
default_vm_username: labadmin
environment:
  - name: lab
    config_defaults: {cloud_init: {pubkey: $KEY}}
    machines:
      - {vm_name: a, os: debian12}
      - {vm_name: b, os: mine}
      - {vm_name: c, os: debian12, cloud_init: {user: me}}
",
    );
    assert_eq!(d.images["debian12"].username, "labadmin");
    assert_eq!(d.images["mine"].username, "admin");
    assert_eq!(machine(&d, "a").cloud_init.user, "labadmin");
    assert_eq!(machine(&d, "b").cloud_init.user, "admin");
    assert_eq!(machine(&d, "c").cloud_init.user, "me");
}

#[test]
fn top_level_runcmd_comes_first_and_counts_as_defaults() {
    let d = load(
        "
runcmd:
  - echo host
  - [touch, /host]
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {pubkey: $KEY, runcmd: [echo defaults]}
    machines:
      - vm_name: a
        cloud_init: {runcmd: [echo own]}
      - vm_name: b
        cloud_init: {runcmd: [echo own], runcmd_ignore_defaults: true}
",
    );
    let a = &machine(&d, "a").cloud_init;
    assert_eq!(
        a.host_runcmd,
        [
            RunCommand::Shell("echo host".into()),
            RunCommand::Argv(vec!["touch".into(), "/host".into()])
        ]
    );
    assert_eq!(
        a.runcmd,
        [
            RunCommand::Shell("echo defaults".into()),
            RunCommand::Shell("echo own".into())
        ]
    );
    let b = &machine(&d, "b").cloud_init;
    assert!(b.host_runcmd.is_empty(), "runcmd_ignore_defaults drops it");
    assert_eq!(b.runcmd, [RunCommand::Shell("echo own".into())]);
}

#[test]
fn cloud_init_user_data_wins_over_the_top_level_one() {
    let d = load(
        "
user_data:
  users: [{name: '{default_vm_username}'}]
environment:
  - name: lab
    config_defaults: {os: debian12}
    machines:
      - vm_name: top
      - vm_name: own
        cloud_init: {user_data: {packages: [git]}}
  - name: defaults
    config_defaults:
      os: debian12
      cloud_init: {user_data: {packages: [vim]}}
    machines:
      - vm_name: from-defaults
",
    );
    let user_data = |name: &str| {
        let m = d
            .environments
            .iter()
            .flat_map(|e| &e.machines)
            .find(|m| m.vm_name == name)
            .unwrap();
        serde_yaml::to_string(m.cloud_init.user_data.as_ref().unwrap()).unwrap()
    };
    assert!(user_data("top").contains("{default_vm_username}"));
    assert_eq!(
        machine(&d, "top").cloud_init.pubkey,
        None,
        "no pubkey needed"
    );
    assert!(user_data("own").contains("git"));
    assert!(user_data("from-defaults").contains("vim"));
}

#[test]
fn a_bad_placeholder_in_top_level_user_data_is_reported_once() {
    let err = load_err(
        "
user_data:
  runcmd: ['echo {nope}']
environment:
  - name: lab
    config_defaults: {os: debian12}
    machines: [{vm_name: a}, {vm_name: b}]
",
    );
    assert_eq!(
        err.matches("unknown placeholder `{nope}`").count(),
        1,
        "{err}"
    );
    assert!(err.contains("key: user_data.runcmd[0]"), "{err}");
}

#[test]
fn generate_password_false_means_password_false() {
    let d = load(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {pubkey: $KEY, generate_password: false}
    machines:
      - vm_name: a
      - vm_name: b
        cloud_init: {generate_password: true}
      - vm_name: c
        cloud_init: {password: true}
",
    );
    assert_eq!(
        machine(&d, "a").cloud_init.password,
        ConsolePassword::Disabled
    );
    assert_eq!(
        machine(&d, "b").cloud_init.password,
        ConsolePassword::Generate
    );
    assert_eq!(
        machine(&d, "c").cloud_init.password,
        ConsolePassword::Generate
    );
    let err = load_err(
        "
environment:
  - name: lab
    config_defaults: {os: debian12}
    machines:
      - vm_name: a
        cloud_init: {pubkey: $KEY, password: true, generate_password: false}
      - vm_name: b
        cloud_init: {pubkey: $KEY, passwd: '$6$x$y', generate_password: false}
",
    );
    assert!(
        err.contains("`password` and `generate_password` contradict each other"),
        "{err}"
    );
    assert!(
        err.contains("`passwd` and `generate_password: false` contradict each other"),
        "{err}"
    );
}

#[test]
fn a_manifest_without_settings_has_no_settings_files() {
    let d = load(
        "
environment:
  - name: lab
    config_defaults: {os: debian12, cloud_init: {pubkey: $KEY}}
    machines: [{vm_name: a}]
",
    );
    assert!(d.settings_files.is_empty());
    let a = machine(&d, "a");
    assert!(a.cloud_init.host_runcmd.is_empty());
    assert_eq!(
        a.interfaces[0].attachment,
        Attachment::Network {
            network: "default".into()
        }
    );
}
