//! The merge rules, defaults and naming rules of the Lvlab.yml format, and
//! the original lvlab's manifest defects, each shown on a small manifest.

use std::path::{Path, PathBuf};

use lvlab::desired::{
    Addressing, Attachment, ConsolePassword, Desired, DiskRole, DiskSize, DiskStrategy, DomainType,
    MachineSpec, NetworkVersion, PublicKey, RunCommand, SshPort,
};
use lvlab::manifest::load_str;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab@example";

fn load(yaml: &str) -> Desired {
    let yaml = yaml.replace("$KEY", KEY);
    match load_str(&yaml, Path::new("/srv/lab/Lvlab.yml")) {
        Ok(desired) => desired,
        Err(err) => panic!("manifest should load:\n{}", err.render(false)),
    }
}

fn load_err(yaml: &str) -> String {
    let yaml = yaml.replace("$KEY", KEY);
    load_str(&yaml, Path::new("/srv/lab/Lvlab.yml"))
        .expect_err("manifest should be rejected")
        .render(false)
}

fn machine<'a>(desired: &'a Desired, name: &str) -> &'a MachineSpec {
    desired.machine(name, None).unwrap()
}

const IMAGES: &str = "
images:
  debian12:
    image_url: https://example.org/bookworm/debian-12-genericcloud-amd64.qcow2
    checksum_url: https://example.org/bookworm/SHA512SUMS
    checksum_type: sha512
  rocky9-salt:
    image_url: images/Rocky-9.qcow2
    checksum_url: file:///mirror/CHECKSUM
    checksum_type: SHA256
    checksum_url_gpg: https://example.org/keys/RPM-GPG-KEY-Rocky-9
  centos9:
    image_url: https://example.org/c9.qcow2
  alpine318:
    image_url: https://example.org/alpine.qcow2
    network_version: 1
  mine:
    image_url: https://example.org/mine.qcow2
    os_variant: fedora40
    username: admin
";

#[test]
fn machine_scalars_win_over_defaults_and_defaults_fill_the_rest() {
    let d = load(&format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cpu: 4
      domain_type: qemu
      cloud_init: {{pubkey: $KEY}}
    machines:
      - vm_name: a
      - vm_name: b
        cpu: 1
        memory: 512
        os: rocky9-salt
        domain_type: kvm
{IMAGES}"
    ));
    let (a, b) = (machine(&d, "a"), machine(&d, "b"));
    assert_eq!((a.cpu, a.memory_mib, a.os.as_str()), (4, 2048, "debian12"));
    assert_eq!(a.domain_type, DomainType::Qemu);
    assert_eq!(
        (b.cpu, b.memory_mib, b.os.as_str()),
        (1, 512, "rocky9-salt")
    );
    assert_eq!(b.domain_type, DomainType::Kvm);
}

#[test]
fn defaults_when_nothing_is_said() {
    let d = load(&format!(
        "
environment:
  - name: lab
    machines:
      - vm_name: web01
        os: debian12
        cloud_init: {{pubkey: $KEY}}
{IMAGES}"
    ));
    let env = &d.environments[0];
    assert_eq!(env.libvirt_uri, "qemu:///session");
    let m = &env.machines[0];
    assert_eq!(m.cpu, 2);
    assert_eq!(m.memory_mib, 2048, "the original's typo was 2024");
    assert_eq!(m.domain_type, DomainType::Auto);
    assert_eq!(m.hostname, "web01");
    assert_eq!(
        m.fqdn, "web01",
        "no `domain`: the fqdn is the hostname, never None.None"
    );
    assert_eq!(m.disks.len(), 1);
    assert_eq!(m.disks[0].size, DiskSize::ImageSize);
    assert_eq!(
        m.disks[0].role,
        DiskRole::Boot {
            strategy: DiskStrategy::Copy
        }
    );
    assert_eq!(
        m.interfaces.len(),
        1,
        "no interfaces anywhere: one NIC, no crash"
    );
    let nic = &m.interfaces[0];
    assert_eq!(nic.name, "eth0");
    assert_eq!(
        nic.attachment,
        Attachment::Network {
            network: "default".into()
        }
    );
    assert_eq!(nic.addressing, Addressing::Dhcp);
    let ci = &m.cloud_init;
    assert_eq!(ci.user, "debian", "the image's user");
    assert_eq!(ci.password, ConsolePassword::Generate);
    assert!(ci.manage_etc_hosts);
    assert_eq!(ci.sudo, vec!["ALL=(ALL) NOPASSWD:ALL".to_string()]);
    assert_eq!(ci.shell, "/bin/bash");
    assert_eq!(m.domain_name, "web01_lab");
    assert_eq!(
        m.vm_dir,
        PathBuf::from("/var/lib/libvirt/images/lvlab/lab/web01")
    );
    assert_eq!(
        m.image_path,
        PathBuf::from(
            "/var/lib/libvirt/images/lvlab/cloud-images/debian-12-genericcloud-amd64.qcow2"
        )
    );
}

#[test]
fn disks_merge_by_name_and_are_numbered_in_list_order() {
    let d = load(&format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      disk_strategy: backing
      cloud_init: {{pubkey: $KEY}}
      disks:
        - {{name: root, size: 20G}}
        - {{name: data, size: 5G}}
    machines:
      - vm_name: plain
      - vm_name: custom
        disks:
          - name: root
          - {{name: logs, size: 1G}}
          - {{name: data, size: 50G}}
{IMAGES}"
    ));
    let plain = machine(&d, "plain");
    assert_eq!(
        plain.disks.len(),
        2,
        "no disks of its own: the default list"
    );
    assert_eq!(plain.disks[1].size, DiskSize::Bytes(5 << 30));
    let custom = machine(&d, "custom");
    let names: Vec<&str> = custom.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["root", "logs", "data"]);
    assert_eq!(
        custom.disks[0].size,
        DiskSize::Bytes(20 << 30),
        "size from the default `root`"
    );
    assert_eq!(
        custom.disks[0].role,
        DiskRole::Boot {
            strategy: DiskStrategy::Backing
        }
    );
    assert_eq!(custom.disks[1].role, DiskRole::Blank);
    assert_eq!(
        custom.disks[2].size,
        DiskSize::Bytes(50 << 30),
        "the machine's size wins"
    );
    let files: Vec<String> = custom
        .disks
        .iter()
        .map(|d| d.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["disk0.qcow2", "disk1.qcow2", "disk2.qcow2"]);
    assert!(custom.disks[0]
        .path
        .starts_with("/var/lib/libvirt/images/lvlab/lab/custom"));
}

#[test]
fn an_extra_disk_without_size_is_an_error() {
    let err = load_err(&format!(
        "
environment:
  - name: lab
    machines:
      - vm_name: a
        os: debian12
        cloud_init: {{pubkey: $KEY}}
        disks: [{{name: root}}, {{name: data}}]
{IMAGES}"
    ));
    assert!(err.contains("extra disk `data` has no `size`"), "{err}");
}

#[test]
fn interfaces_overlay_the_default_mapping_and_get_stable_macs() {
    let yaml = format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {{pubkey: $KEY}}
      interfaces:
        network: labnet
        ip4gw: 10.0.0.1
    machines:
      - vm_name: a
        interfaces:
          - ip4: 10.0.0.5/24
          - {{name: mgmt, network_type: passt, ssh_port: auto}}
          - {{name: fixed, macaddress: 52:54:00:AA:BB:CC, ip6: fd00::5/64}}
      - vm_name: b
{IMAGES}"
    );
    let d = load(&yaml);
    let a = machine(&d, "a");
    assert_eq!(a.interfaces.len(), 3, "every interface is attached");
    let first = &a.interfaces[0];
    assert_eq!(
        first.attachment,
        Attachment::Network {
            network: "labnet".into()
        }
    );
    match &first.addressing {
        Addressing::Static {
            ipv4: Some(v4),
            ipv6: None,
        } => {
            assert_eq!(v4.address.to_string(), "10.0.0.5/24");
            assert_eq!(v4.gateway.unwrap().to_string(), "10.0.0.1");
        }
        other => panic!("expected static IPv4, got {other:?}"),
    }
    assert_eq!(
        a.interfaces[1].attachment,
        Attachment::Passt {
            ssh_port: Some(SshPort::Auto)
        }
    );
    assert_eq!(
        a.interfaces[1].addressing,
        Addressing::Dhcp,
        "inherited gateway is ignored"
    );
    assert_eq!(a.interfaces[2].mac.to_string(), "52:54:00:aa:bb:cc");
    match &a.interfaces[2].addressing {
        Addressing::Static {
            ipv4: None,
            ipv6: Some(v6),
        } => assert_eq!(v6.gateway, None),
        other => panic!("expected static IPv6 without gateway, got {other:?}"),
    }
    let b = machine(&d, "b");
    assert_eq!(
        b.interfaces.len(),
        1,
        "no interfaces: one from the defaults"
    );
    assert_eq!(
        b.interfaces[0].attachment,
        Attachment::Network {
            network: "labnet".into()
        }
    );

    let again = load(&yaml);
    let macs = |d: &Desired| -> Vec<String> {
        d.environments[0]
            .machines
            .iter()
            .flat_map(|m| m.interfaces.iter().map(|i| i.mac.to_string()))
            .collect()
    };
    assert_eq!(macs(&d), macs(&again), "MACs are stable across loads");
    let all = macs(&d);
    let unique: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "MACs are distinct");
    assert!(all.iter().all(|m| m.starts_with("52:54:00:")));
}

#[test]
fn a_duplicate_manifest_mac_is_an_error() {
    let err = load_err(&format!(
        "
environment:
  - name: lab
    config_defaults: {{os: debian12, cloud_init: {{pubkey: $KEY}}}}
    machines:
      - {{vm_name: a, interfaces: [{{macaddress: '52:54:00:00:00:01'}}]}}
      - {{vm_name: b, interfaces: [{{macaddress: '52:54:00:00:00:01'}}]}}
{IMAGES}"
    ));
    assert!(
        err.contains("MAC 52:54:00:00:00:01 is used by both a/eth0 and b/eth0"),
        "{err}"
    );
}

#[test]
fn shared_directories_merge_by_mount_tag_and_expand_paths() {
    std::env::set_var("LVLAB_TEST_SRC", "/opt/src");
    let home = std::env::var("HOME").unwrap();
    let d = load(&format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {{pubkey: $KEY}}
      shared_directories:
        - {{source: ~/states, mount_tag: salt}}
        - {{source: shared, mount_tag: common}}
    machines:
      - vm_name: a
        shared_directories:
          - {{source: $LVLAB_TEST_SRC/other-states, mount_tag: salt}}
          - {{source: /data, mount_tag: data}}
      - vm_name: b
{IMAGES}"
    ));
    let a: Vec<(String, String)> = machine(&d, "a")
        .shared_directories
        .iter()
        .map(|s| (s.mount_tag.clone(), s.source.display().to_string()))
        .collect();
    assert_eq!(
        a,
        [
            ("salt".to_string(), "/opt/src/other-states".to_string()),
            ("common".to_string(), "/srv/lab/shared".to_string()),
            ("data".to_string(), "/data".to_string()),
        ]
    );
    let b = &machine(&d, "b").shared_directories;
    assert_eq!(b[0].source, PathBuf::from(format!("{home}/states")));
}

#[test]
fn cloud_init_keys_overlay_and_runcmd_concatenates() {
    let d = load(&format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init:
        pubkey: $KEY
        user: admin
        shell: /bin/zsh
        manage_etc_hosts: no
        runcmd: [echo one, [touch, /two]]
    machines:
      - vm_name: no-cloud-init
      - vm_name: more
        cloud_init:
          user: ops
          runcmd: [echo three]
      - vm_name: alone
        cloud_init:
          runcmd_ignore_defaults: true
          runcmd: [echo only]
          manage_etc_hosts: on
{IMAGES}"
    ));
    let no_ci = &machine(&d, "no-cloud-init").cloud_init;
    assert_eq!(
        no_ci.runcmd,
        [
            RunCommand::Shell("echo one".into()),
            RunCommand::Argv(vec!["touch".into(), "/two".into()])
        ],
        "a machine without cloud_init gets the defaults' runcmd once (the original: twice)"
    );
    assert_eq!(
        (no_ci.user.as_str(), no_ci.shell.as_str()),
        ("admin", "/bin/zsh")
    );
    assert!(
        !no_ci.manage_etc_hosts,
        "YAML 1.1 `no` is false, as the original read it"
    );
    let more = &machine(&d, "more").cloud_init;
    assert_eq!(more.user, "ops");
    assert_eq!(more.runcmd.len(), 3);
    assert_eq!(more.runcmd[2], RunCommand::Shell("echo three".into()));
    let alone = &machine(&d, "alone").cloud_init;
    assert_eq!(alone.runcmd, [RunCommand::Shell("echo only".into())]);
    assert!(alone.manage_etc_hosts);
}

#[test]
fn console_password_and_public_key_forms() {
    let d = load(&format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {{pubkey: ~/.ssh/id_ed25519.pub, passwd: '$6$abc$hash'}}
    machines:
      - vm_name: hashed
      - vm_name: none
        cloud_init: {{password: false, pubkey: keys/lab.pub}}
      - vm_name: literal
        cloud_init: {{pubkey: $KEY}}
{IMAGES}"
    ));
    let home = std::env::var("HOME").unwrap();
    let hashed = &machine(&d, "hashed").cloud_init;
    assert_eq!(hashed.password, ConsolePassword::Hash("$6$abc$hash".into()));
    assert_eq!(
        hashed.pubkey,
        Some(PublicKey::File(
            format!("{home}/.ssh/id_ed25519.pub").into()
        ))
    );
    let none = &machine(&d, "none").cloud_init;
    assert_eq!(none.password, ConsolePassword::Disabled);
    assert_eq!(
        none.pubkey,
        Some(PublicKey::File("/srv/lab/keys/lab.pub".into()))
    );
    let literal = &machine(&d, "literal").cloud_init;
    assert_eq!(
        literal.pubkey,
        Some(PublicKey::Literal(KEY.into())),
        "key text holding `/` is still a key, not a path"
    );
}

#[test]
fn user_data_replaces_the_pubkey_requirement_and_keeps_placeholders() {
    let d = load(&format!(
        "
environment:
  - name: lab
    machines:
      - vm_name: custom
        os: debian12
        cloud_init:
          user_data:
            hostname: '{{vm_hostname}}'
            runcmd: ['echo {{environment}} ${{HOME}} {{{{literal}}}}']
{IMAGES}"
    ));
    let ci = &machine(&d, "custom").cloud_init;
    assert_eq!(ci.pubkey, None);
    let data = ci.user_data.as_ref().unwrap();
    assert_eq!(
        data["hostname"].as_str(),
        Some("{vm_hostname}"),
        "expanded at render time"
    );
}

#[test]
fn image_key_rules_and_cache_names() {
    let d = load(&format!(
        "
environment:
  - name: lab
    config_defaults:
      cloud_init: {{pubkey: $KEY}}
      cloud_image_basedir: /cache/cloud-images
    machines:
      - {{vm_name: a, os: debian12}}
      - {{vm_name: b, os: rocky9-salt}}
      - {{vm_name: c, os: centos9}}
      - {{vm_name: d, os: alpine318}}
      - {{vm_name: e, os: mine}}
{IMAGES}"
    ));
    let img = |k: &str| &d.images[k];
    assert_eq!(img("debian12").os_variant, "debian12");
    assert_eq!(
        img("rocky9-salt").os_variant,
        "rocky9",
        "key up to the first `-`"
    );
    assert_eq!(img("rocky9-salt").username, "rocky");
    assert_eq!(img("centos9").username, "cloud-user");
    assert_eq!(img("alpine318").username, "alpine");
    assert_eq!(
        img("mine").os_variant,
        "fedora40",
        "explicit os_variant wins"
    );
    assert_eq!(img("mine").username, "admin", "explicit username wins");
    assert_eq!(
        img("debian12").network_version,
        NetworkVersion::V2,
        "lvlab defaults to v2"
    );
    assert_eq!(img("alpine318").network_version, NetworkVersion::V1);
    let checksum = img("debian12").checksum.as_ref().unwrap();
    assert_eq!(
        checksum.file_name,
        "debian-12-genericcloud-amd64.qcow2.SHA512SUMS"
    );
    let rocky = img("rocky9-salt");
    assert_eq!(
        rocky.source.as_file(),
        Some(Path::new("/srv/lab/images/Rocky-9.qcow2"))
    );
    assert_eq!(
        rocky.signature.as_ref().unwrap().keys_file_name,
        "RPM-GPG-KEY-Rocky-9"
    );
    assert_eq!(
        machine(&d, "a").image_path,
        PathBuf::from("/cache/cloud-images/debian-12-genericcloud-amd64.qcow2"),
        "cloud-images is not doubled"
    );
}

#[test]
fn hostname_and_fqdn_come_from_vm_name_and_domain() {
    let d = load(&format!(
        "
environment:
  - name: lvlab-dev
    config_defaults: {{os: debian12, domain: lab.example, cloud_init: {{pubkey: $KEY}}}}
    machines:
      - vm_name: salt.local
      - {{vm_name: web_01, hostname: web01}}
      - {{vm_name: db, fqdn: database.other.example}}
{IMAGES}"
    ));
    let salt = machine(&d, "salt.local");
    assert_eq!(
        (salt.hostname.as_str(), salt.fqdn.as_str()),
        ("salt", "salt.lab.example")
    );
    assert_eq!(salt.domain_name, "salt.local_lvlab-dev");
    assert_eq!(machine(&d, "web_01").fqdn, "web01.lab.example");
    assert_eq!(machine(&d, "db").fqdn, "database.other.example");
}

#[test]
fn an_invalid_derived_hostname_asks_for_hostname() {
    let err = load_err(&format!(
        "
environment:
  - name: lab
    machines: [{{vm_name: web_01, os: debian12, cloud_init: {{pubkey: $KEY}}}}]
{IMAGES}"
    ));
    assert!(err.contains("set `hostname:`"), "{err}");
}

#[test]
fn every_environment_is_loaded_and_selectable() {
    let d = load(&format!(
        "
environment:
  - name: dev
    config_defaults: {{os: debian12, cloud_init: {{pubkey: $KEY}}}}
    machines: [{{vm_name: web}}, {{vm_name: db}}]
  - name: prod
    libvirt_uri: qemu:///system
    config_defaults: {{os: debian12, cloud_init: {{pubkey: $KEY}}}}
    machines: [{{vm_name: web}}]
{IMAGES}"
    ));
    assert_eq!(
        d.environments.len(),
        2,
        "the original ignored all but the first"
    );
    assert_eq!(
        d.environments(Some("prod")).unwrap()[0].libvirt_uri,
        "qemu:///system"
    );
    let err = d.environments(Some("staging")).unwrap_err();
    assert!(err.contains("dev, prod"), "{err}");
    let err = d.machine("web", None).unwrap_err();
    assert!(err.contains("several environments (dev, prod)"), "{err}");
    assert_eq!(
        d.machine("web", Some("prod")).unwrap().domain_name,
        "web_prod"
    );
    assert_eq!(d.machine("db", None).unwrap().environment, "dev");
    let err = d.machine("nope", None).unwrap_err();
    assert!(err.contains("no machine `nope`"), "{err}");
}

#[test]
fn os_is_required() {
    let err = load_err(&format!(
        "
environment:
  - name: lab
    machines: [{{vm_name: a, cloud_init: {{pubkey: $KEY}}}}]
{IMAGES}"
    ));
    assert!(err.contains("the machine has no `os`"), "{err}");
    assert!(err.contains("one of alpine318, centos9, debian12"), "{err}");
}

#[test]
fn yaml_anchors_and_merge_keys_work_as_in_the_original() {
    let d = load(&format!(
        "
x-common: &common
  os: debian12
  cloud_init: {{pubkey: $KEY}}
environment:
  - name: lab
    machines:
      - &base
        <<: *common
        vm_name: a
        cpu: 3
      - <<: *base
        vm_name: b
        memory: 1024
{IMAGES}"
    ));
    let b = machine(&d, "b");
    assert_eq!((b.cpu, b.memory_mib, b.os.as_str()), (3, 1024, "debian12"));
}

#[test]
fn defaults_only_keys_are_rejected_on_config_defaults() {
    let err = load_err(&format!(
        "
environment:
  - name: lab
    config_defaults: {{vm_name: x, os: debian12, cloud_init: {{pubkey: $KEY}}}}
    machines: [{{vm_name: a}}]
{IMAGES}"
    ));
    assert!(err.contains("`vm_name` cannot be a default"), "{err}");
}

#[test]
fn config_defaults_interfaces_must_be_one_mapping() {
    let err = load_err(&format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {{pubkey: $KEY}}
      interfaces: [{{network: default}}]
    machines: [{{vm_name: a}}]
{IMAGES}"
    ));
    assert!(err.contains("one mapping of defaults"), "{err}");
}

#[test]
fn a_bare_file_name_is_a_key_file_and_other_text_is_an_error() {
    let d = load(&format!(
        "
environment:
  - name: lab
    machines: [{{vm_name: a, os: debian12, cloud_init: {{pubkey: id_ed25519.pub}}}}]
{IMAGES}"
    ));
    assert_eq!(
        machine(&d, "a").cloud_init.pubkey,
        Some(PublicKey::File("/srv/lab/id_ed25519.pub".into())),
        "taken against the manifest's directory, not as key text"
    );
    let err = load_err(&format!(
        "
environment:
  - name: lab
    machines: [{{vm_name: a, os: debian12, cloud_init: {{pubkey: not a key}}}}]
{IMAGES}"
    ));
    assert!(
        err.contains("neither an SSH public key nor a path"),
        "{err}"
    );
}

/// A private key as someone might paste it; `SECRET-BODY` must never show.
const PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE/SECRET-BODY/AAAA\n-----END OPENSSH PRIVATE KEY-----";

#[test]
fn pubkey_text_must_be_an_openssh_public_key_and_never_a_private_one() {
    let with_pubkey = |pubkey: &str| {
        format!(
            "
environment:
  - name: lab
    machines: [{{vm_name: a, os: debian12, cloud_init: {{pubkey: {pubkey}}}}}]
{IMAGES}"
        )
    };
    // The right type name, but base64 of nothing like a key.
    let err = load_err(&with_pubkey("ssh-ed25519 AAAAC3Nza lab"));
    assert!(
        err.contains("not an OpenSSH public key: line 1: the key is not valid base64"),
        "{err}"
    );
    assert!(err.contains("Lvlab.yml:4:"), "{err}");
    // A type the key's own data contradicts.
    let swapped = KEY.replacen("ssh-ed25519", "ssh-rsa", 1);
    let err = load_err(&with_pubkey(&swapped));
    assert!(err.contains("of another type"), "{err}");

    // Pasted in one line (quoted) or as a block: refused, never shown.
    let err = load_err(&with_pubkey(&format!("{:?}", PRIVATE_KEY)));
    assert!(
        err.contains("this is a private key; give the public key"),
        "{err}"
    );
    assert!(err.contains("at /srv/lab/Lvlab.yml:4:"), "{err}");
    assert!(!err.contains("SECRET-BODY"), "{err}");
    let block = format!(
        "
environment:
  - name: lab
    machines:
      - vm_name: a
        os: debian12
        cloud_init:
          pubkey: |
{}
{IMAGES}",
        PRIVATE_KEY
            .lines()
            .map(|l| format!("            {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let err = load_err(&block);
    assert!(err.contains("this is a private key"), "{err}");
    assert!(!err.contains("SECRET-BODY"), "{err}");
}

#[test]
fn keys_inside_a_user_data_override_are_checked_too() {
    let with_keys = |keys: &str| {
        format!(
            "
environment:
  - name: lab
    machines:
      - vm_name: custom
        os: debian12
        cloud_init:
          user_data:
            ssh_authorized_keys: [$KEY]
            users:
              - default
              - name: ops
                ssh_authorized_keys: {keys}
{IMAGES}"
        )
    };
    load(&with_keys("[$KEY]"));
    let err = load_err(&with_keys("[$KEY, 'ssh-ed25519 AAAA ops']"));
    assert!(
        err.contains("not an OpenSSH public key: line 1: the key's data is cut short"),
        "{err}"
    );
    assert!(
        err.contains(
            "key: environment[0].machines[0].cloud_init.user_data.users[1].ssh_authorized_keys[1]"
        ),
        "{err}"
    );
    let err = load_err(&with_keys(&format!("{:?}", PRIVATE_KEY)));
    assert!(err.contains("this is a private key"), "{err}");
    assert!(!err.contains("SECRET-BODY"), "{err}");
}

#[test]
fn memory_takes_binary_units_and_a_bare_number_is_mib() {
    let desired = load(&format!(
        "
environment:
  - name: lab
    config_defaults:
      os: debian12
      cloud_init: {{pubkey: \"$KEY\"}}
      memory: 512M
    machines:
      - {{vm_name: bare, memory: 3072}}
      - {{vm_name: quoted, memory: \"1024\"}}
      - {{vm_name: gib, memory: 4G}}
      - {{vm_name: long, memory: 2GiB}}
      - {{vm_name: mib, memory: 768MiB}}
      - vm_name: default
{IMAGES}"
    ));
    let memory = |name| machine(&desired, name).memory_mib;
    assert_eq!(memory("bare"), 3072);
    assert_eq!(memory("quoted"), 1024);
    assert_eq!(memory("gib"), 4096);
    assert_eq!(memory("long"), 2048);
    assert_eq!(memory("mib"), 768);
    assert_eq!(memory("default"), 512);
    let err = load_err(&format!(
        "
environment:
  - name: lab
    config_defaults: {{os: debian12, cloud_init: {{pubkey: \"$KEY\"}}}}
    machines:
      - {{vm_name: a, memory: 4GB}}
      - {{vm_name: b, memory: 32M}}
      - {{vm_name: c, memory: -1G}}
{IMAGES}"
    ));
    assert!(err.contains("`4GB`: memory takes K, M, G or T"), "{err}");
    assert!(
        err.contains("`memory: 32 MiB` is out of range (64..=16777216 MiB)"),
        "{err}"
    );
    assert!(err.contains("`-1G` is negative"), "{err}");
}
