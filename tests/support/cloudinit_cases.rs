//! The machines the cloud-init tests render: one per golden file, each a
//! small manifest loaded through `lvlab::manifest::load_str`. Shared by
//! `tests/cloudinit_render.rs` (goldens, round trips) and
//! `tests/cloudinit_tools.rs` (cloud-init's own validator and renderers).

#![allow(dead_code)]

use std::path::Path;

use lvlab::cloudinit::{self, password, pubkey, Seed, SeedInput};
use lvlab::desired::{ConsolePassword, Desired, MachineSpec};
use lvlab::manifest::load_str;

pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab@example";

const IMAGES: &str = "
images:
  debian12:
    image_url: https://example.org/debian-12-genericcloud-amd64.qcow2
  debian11:
    image_url: https://example.org/debian-11-genericcloud-amd64.qcow2
    network_version: 1
  rocky9:
    image_url: https://example.org/Rocky-9-GenericCloud.qcow2
  alpine318:
    image_url: https://example.org/alpine.qcow2
    network_version: 1
  ubuntu2404:
    image_url: https://example.org/noble-server-cloudimg-amd64.img
";

/// A lab with defaults for everything: static, DHCP, dual stack, several
/// NICs (one with only a static IPv6 address), runcmd merging, hosts on and off, the password settings and a
/// `user_data` override.
pub const LAB: &str = r#"
environment:
  - name: lab
    config_defaults:
      os: debian12
      domain: lab.example
      disk_image_basedir: /srv/lvlab
      interfaces:
        network: default
        ip4gw: 192.168.122.1
      nameservers:
        addresses: [192.168.122.1, "fd00:122::1"]
        search: [lab.example]
      cloud_init:
        pubkey: $KEY
        runcmd:
          - apt-get update
          - [systemctl, enable, --now, qemu-guest-agent]
        mounts:
          - [vdb, /srv, ext4, "defaults,nofail", "0", "2"]
    machines:
      - vm_name: static
        interfaces:
          - ip4: 192.168.122.10/24
        cloud_init:
          runcmd: ["echo static > /etc/role"]
      - vm_name: dhcp
      - vm_name: dualstack
        interfaces:
          - ip4: 192.168.122.12/24
            ip6: fd00:122::12/64
            ip6gw: fd00:122::1
      - vm_name: multinic
        interfaces:
          - name: lan
            ip4: 192.168.122.13/24
            ip6: fd00:122::13/64
          - name: backend
            network: isolated
            macaddress: "52:54:00:aa:bb:01"
          - name: v6only
            network: isolated
            ip6: fd00:aa::13/64
            ip6gw: fd00:aa::1
      - vm_name: ignore-defaults
        cloud_init:
          runcmd_ignore_defaults: true
          runcmd:
            - |
              cat > /etc/motd <<'MOTD'
              only my commands
              MOTD
      - vm_name: nohosts
        interfaces:
          - ip4: 192.168.122.16/24
        cloud_init:
          manage_etc_hosts: false
      - vm_name: passwd
        cloud_init:
          passwd: "$6$rounds=4096$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./0123456789ab"
          user: labuser
          shell: /bin/zsh
      - vm_name: nopassword
        cloud_init:
          password: false
      - vm_name: override
        cloud_init:
          user_data:
            hostname: "{vm_hostname}"
            fqdn: "{fqdn}"
            users:
              - default
              - name: "{default_vm_username}"
                passwd: "{password_hash}"
                lock_passwd: false
                ssh_authorized_keys: ["ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAQQDFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXF other@example"]
            write_files:
              - path: /etc/lab
                content: "{vm_name} in {environment}; literal {{braces}}; shell ${HOME}\n"
            runcmd: ["yes", "on", "12:30", "2001-12-14", "1_000"]
"#;

/// hosts off for an environment and back on for one machine, the RedHat
/// hosts template, a family without one, network-config v1 (with a NIC
/// that has only a static IPv6 address), and static addresses without a
/// gateway.
pub const QUIET: &str = r#"
environment:
  - name: quiet
    config_defaults:
      os: rocky9
      disk_image_basedir: /srv/lvlab
      cloud_init:
        pubkey: $KEY
        manage_etc_hosts: false
    machines:
      - vm_name: rocky-off
        interfaces:
          - ip4: 10.1.0.5/24
      - vm_name: rocky-on
        interfaces:
          - ip4: 10.1.0.6/24
            ip4gw: 10.1.0.1
        cloud_init:
          manage_etc_hosts: true
      - vm_name: alpine
        os: alpine318
        interfaces:
          - ip4: 10.1.0.7/24
            ip4gw: 10.1.0.1
            ip6: fd01::7/64
            ip6gw: fd01::1
          - name: eth1
        nameservers:
          addresses: [10.1.0.1]
        cloud_init:
          manage_etc_hosts: true
      - vm_name: legacy
        os: debian11
        interfaces:
          - ip4: 10.1.0.8/24
            ip4gw: 10.1.0.1
          - name: eth1
          - name: eth2
            ip6: fd01::8/64
            ip6gw: fd01::1
        nameservers:
          addresses: [10.1.0.1]
          search: [quiet.example]
        cloud_init:
          manage_etc_hosts: true
  - name: laptop
    libvirt_uri: qemu:///session
    config_defaults:
      os: ubuntu2404
      disk_image_basedir: /srv/lvlab
      cloud_init:
        pubkey: $KEY
    machines:
      - vm_name: usermode
        interfaces:
          - network_type: passt
            ssh_port: 2222
          - name: slirp
            network_type: user
"#;

/// Every golden case: (manifest, environment, machine).
pub const CASES: &[(&str, &str, &str)] = &[
    (LAB, "lab", "static"),
    (LAB, "lab", "dhcp"),
    (LAB, "lab", "dualstack"),
    (LAB, "lab", "multinic"),
    (LAB, "lab", "ignore-defaults"),
    (LAB, "lab", "nohosts"),
    (LAB, "lab", "passwd"),
    (LAB, "lab", "nopassword"),
    (LAB, "lab", "override"),
    (QUIET, "quiet", "rocky-off"),
    (QUIET, "quiet", "rocky-on"),
    (QUIET, "quiet", "alpine"),
    (QUIET, "quiet", "legacy"),
    (QUIET, "laptop", "usermode"),
];

/// The whole manifest text of `manifest` (one of the consts above).
pub fn manifest_text(manifest: &str) -> String {
    format!("{}{IMAGES}", manifest.replace("$KEY", KEY))
}

pub fn try_load(manifest: &str) -> Result<Desired, String> {
    load_str(&manifest_text(manifest), Path::new("/srv/lab/Lvlab.yml"))
        .map_err(|err| err.render(false))
}

pub fn load(manifest: &str) -> Desired {
    try_load(manifest).unwrap_or_else(|err| panic!("manifest should load:\n{err}"))
}

/// The hash that stands for a generated console password, so goldens are
/// stable: the SHA-512 crypt of a known password with a fixed salt.
pub fn golden_hash() -> String {
    // 5000 rounds of SHA-512 are slow in a debug build: compute it once.
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::sha512_crypt("correct horse", b"lvlab-golden").unwrap())
        .clone()
}

/// Renders `machine` of `desired` as the planner would on first creation,
/// with [`golden_hash`] for a generated password and no SSH host key.
pub fn render_machine(desired: &Desired, machine: &MachineSpec) -> Seed {
    render_with_host_key(desired, machine, None)
}

/// [`render_machine`] with the SSH host key `host_key`.
pub fn render_with_host_key(
    desired: &Desired,
    machine: &MachineSpec,
    host_key: Option<&lvlab::cloudinit::host_key::HostKey>,
) -> Seed {
    let environment = desired
        .environments
        .iter()
        .find(|e| e.name == machine.environment)
        .unwrap();
    let image = &desired.images[&machine.os];
    let keys = match &machine.cloud_init.pubkey {
        Some(key) => pubkey::authorized_keys(key).unwrap(),
        None => Vec::new(),
    };
    let generated = golden_hash();
    let hash = match &machine.cloud_init.password {
        ConsolePassword::Disabled => None,
        ConsolePassword::Hash(hash) => Some(hash.as_str()),
        ConsolePassword::Generate => {
            Some(generated.as_str()).filter(|_| cloudinit::needs_password_hash(machine))
        }
    };
    cloudinit::render(&SeedInput {
        machine,
        environment,
        image,
        authorized_keys: &keys,
        password_hash: hash,
        host_key,
    })
    .unwrap()
}

pub fn render_case(manifest: &str, env: &str, vm: &str) -> (Desired, Seed) {
    let desired = load(manifest);
    let machine = desired.machine(vm, Some(env)).unwrap().clone();
    let seed = render_machine(&desired, &machine);
    (desired, seed)
}

/// The `--stdout` layout: what the golden files hold.
pub fn sections(seed: &Seed) -> String {
    seed.documents()
        .iter()
        .map(|(name, text)| format!("--- {name} ---\n{text}"))
        .collect()
}
