//! Rendered seeds: golden files for every kind of machine, hostile values
//! that must round-trip through YAML, the `user_data` placeholders, and the
//! errors a seed can end in. `LVLAB_BLESS=1 cargo test --test
//! cloudinit_render` rewrites the golden files after an intended change.

#[path = "support/cloudinit_cases.rs"]
mod cases;

use std::path::PathBuf;

use cases::{golden_hash, load, render_case, render_machine, sections, CASES, KEY, LAB};
use lvlab::cloudinit::{self, pubkey, CloudInitError, SeedInput};
use lvlab::desired::{Addressing, PublicKey, RunCommand};
use serde_yaml::Value;

fn golden_path(env: &str, vm: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/cloudinit")
        .join(format!("{env}-{vm}.txt"))
}

#[test]
fn every_case_matches_its_golden_file() {
    let bless = std::env::var_os("LVLAB_BLESS").is_some();
    let mut mismatches = Vec::new();
    for (manifest, env, vm) in CASES {
        let (_, seed) = render_case(manifest, env, vm);
        let rendered = sections(&seed);
        let path = golden_path(env, vm);
        if bless {
            std::fs::write(&path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (bless with LVLAB_BLESS=1)", path.display()));
        if expected != rendered {
            mismatches.push(format!("{}:\n{rendered}", path.display()));
        }
    }
    assert!(
        mismatches.is_empty(),
        "differs from golden:\n{}",
        mismatches.join("\n")
    );
}

fn user_data(env: &str, vm: &str) -> Value {
    let manifest = CASES.iter().find(|c| c.1 == env && c.2 == vm).unwrap().0;
    let (_, seed) = render_case(manifest, env, vm);
    assert!(seed.user_data.starts_with("#cloud-config\n"));
    serde_yaml::from_str(&seed.user_data).unwrap()
}

fn runcmd(doc: &Value) -> Vec<Value> {
    doc["runcmd"].as_sequence().cloned().unwrap_or_default()
}

fn is_hosts_command(cmd: &Value) -> bool {
    cmd.as_sequence()
        .is_some_and(|argv| argv.get(3) == Some(&Value::from("lvlab-hosts")))
}

#[test]
fn hosts_snippets_list_the_environments_static_addresses_first() {
    let doc = user_data("lab", "dhcp");
    let cmds = runcmd(&doc);
    assert!(is_hosts_command(&cmds[0]) && is_hosts_command(&cmds[1]));
    let snippet = cmds[0][4].as_str().unwrap();
    assert_eq!(
        snippet,
        "# Libvirt Labs /etc/hosts snippet\n# Environment: lab\n\
         192.168.122.10 static.lab.example static\n\
         192.168.122.12 dualstack.lab.example dualstack\n\
         192.168.122.13 multinic.lab.example multinic\n\
         192.168.122.16 nohosts.lab.example nohosts"
    );
    assert_eq!(cmds[0][5], Value::from("/etc/hosts"));
    assert_eq!(
        cmds[1][5],
        Value::from("/etc/cloud/templates/hosts.debian.tmpl")
    );
    assert_eq!(doc["manage_etc_hosts"], Value::Bool(true));
}

#[test]
fn hosts_are_on_or_off_per_environment_and_per_machine() {
    let off = user_data("lab", "nohosts");
    assert_eq!(off["manage_etc_hosts"], Value::Bool(false));
    assert!(!runcmd(&off).iter().any(is_hosts_command));
    let env_off = user_data("quiet", "rocky-off");
    assert_eq!(env_off["manage_etc_hosts"], Value::Bool(false));
    assert!(!runcmd(&env_off).iter().any(is_hosts_command));
    let machine_on = runcmd(&user_data("quiet", "rocky-on"));
    assert_eq!(
        machine_on[1][5],
        Value::from("/etc/cloud/templates/hosts.redhat.tmpl")
    );
    // The snippet covers every machine, also those with hosts off.
    assert!(machine_on[0][4]
        .as_str()
        .unwrap()
        .contains("10.1.0.5 rocky-off rocky-off"));
    // A family without a known template only appends to /etc/hosts.
    let other = runcmd(&user_data("quiet", "alpine"));
    assert_eq!(other.len(), 1);
    assert_eq!(other[0][5], Value::from("/etc/hosts"));
}

#[test]
fn the_hosts_commands_append_the_snippet_when_run() {
    let dir = tempfile::tempdir().unwrap();
    let doc = user_data("quiet", "rocky-on");
    let cmds = runcmd(&doc);
    let hosts = dir.path().join("hosts");
    let template = dir.path().join("hosts.redhat.tmpl");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    for (cmd, target) in cmds[..2].iter().zip([&hosts, &template]) {
        let mut argv: Vec<String> = cmd
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        argv[5] = target.display().to_string();
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let text = std::fs::read_to_string(&hosts).unwrap();
    assert!(text.starts_with("127.0.0.1 localhost\n# Libvirt Labs /etc/hosts snippet\n"));
    assert!(text.contains("\n10.1.0.6 rocky-on rocky-on\n"), "{text}");
    assert!(text.ends_with("10.1.0.8 legacy legacy\n"), "{text}");
    // No template on this "guest": none is created.
    assert!(!template.exists());
}

#[test]
fn runcmd_is_defaults_then_machine_unless_the_machine_opts_out() {
    let tail = |vm| -> Vec<Value> {
        runcmd(&user_data("lab", vm))
            .into_iter()
            .filter(|c| !is_hosts_command(c))
            .collect()
    };
    let merged = tail("static");
    assert_eq!(merged[0], Value::from("apt-get update"));
    assert_eq!(
        merged[1],
        serde_yaml::from_str::<Value>("[systemctl, enable, --now, qemu-guest-agent]").unwrap()
    );
    assert_eq!(merged[2], Value::from("echo static > /etc/role"));
    assert_eq!(merged.len(), 3);
    assert_eq!(tail("dhcp").len(), 2, "defaults once, not twice");
    let own = tail("ignore-defaults");
    assert_eq!(
        own,
        [Value::from(
            "cat > /etc/motd <<'MOTD'\nonly my commands\nMOTD\n"
        )]
    );
}

#[test]
fn password_settings_decide_passwd_and_lock_passwd() {
    let generated = user_data("lab", "static");
    let user = &generated["users"][0];
    assert_eq!(user["passwd"], Value::from(golden_hash()));
    assert_eq!(user["lock_passwd"], Value::Bool(false));
    let given = user_data("lab", "passwd");
    assert!(given["users"][0]["passwd"]
        .as_str()
        .unwrap()
        .starts_with("$6$rounds=4096$"));
    assert_eq!(given["users"][0]["name"], Value::from("labuser"));
    let none = user_data("lab", "nopassword");
    assert!(none["users"][0].get("passwd").is_none());
    assert!(none["users"][0].get("lock_passwd").is_none());
}

#[test]
fn the_override_expands_every_placeholder_and_gets_the_key() {
    let doc = user_data("lab", "override");
    assert_eq!(doc["hostname"], Value::from("override"));
    assert_eq!(doc["fqdn"], Value::from("override.lab.example"));
    assert_eq!(doc["users"][0], Value::from("default"));
    let user = &doc["users"][1];
    assert_eq!(user["name"], Value::from("debian"));
    assert_eq!(user["passwd"], Value::from(golden_hash()));
    assert_eq!(
        user["ssh_authorized_keys"],
        serde_yaml::from_str::<Value>(&format!("[ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAQQDFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXF other@example, {KEY}]"))
            .unwrap()
    );
    // `default` in users: the default user gets the key at the top level.
    assert_eq!(doc["ssh_authorized_keys"][0], Value::from(KEY));
    assert_eq!(
        doc["write_files"][0]["content"],
        Value::from("override in lab; literal {braces}; shell ${HOME}\n")
    );
    // The /etc/hosts commands first (manage_etc_hosts is on), then the
    // override's own; strings YAML 1.1 would read as booleans, numbers or
    // dates stay strings.
    let cmds = runcmd(&doc);
    assert!(is_hosts_command(&cmds[0]) && is_hosts_command(&cmds[1]));
    let expected: Vec<Value> = ["yes", "on", "12:30", "2001-12-14", "1_000"]
        .into_iter()
        .map(Value::from)
        .collect();
    assert_eq!(cmds[2..], expected);
}

/// `machine` of LAB with the host layers' `runcmd` filled in, rendered.
fn with_host_runcmd(vm: &str, edit: impl FnOnce(&mut lvlab::desired::MachineSpec)) -> Value {
    let desired = load(LAB);
    let mut machine = desired.machine(vm, None).unwrap().clone();
    machine.cloud_init.host_runcmd = vec![
        RunCommand::Shell("echo host".into()),
        RunCommand::Argv(vec!["touch".into(), "/host".into()]),
    ];
    edit(&mut machine);
    let seed = render_machine(&desired, &machine);
    serde_yaml::from_str(&seed.user_data).unwrap()
}

#[test]
fn host_runcmd_runs_after_the_hosts_commands_and_before_the_machines_own() {
    let host: Vec<Value> = vec![
        Value::from("echo host"),
        serde_yaml::from_str("[touch, /host]").unwrap(),
    ];
    // Generated user-data: hosts commands, host layers, defaults + machine.
    let cmds = runcmd(&with_host_runcmd("static", |_| {}));
    assert!(is_hosts_command(&cmds[0]) && is_hosts_command(&cmds[1]));
    assert_eq!(cmds[2..4], host);
    assert_eq!(cmds[4], Value::from("apt-get update"));
    assert_eq!(cmds.last(), Some(&Value::from("echo static > /etc/role")));

    // An override: the same leading commands before its own.
    let cmds = runcmd(&with_host_runcmd("override", |_| {}));
    assert!(is_hosts_command(&cmds[0]) && is_hosts_command(&cmds[1]));
    assert_eq!(cmds[2..4], host);
    assert_eq!(cmds[4], Value::from("yes"));
    assert_eq!(cmds.len(), 9);

    // Without manage_etc_hosts only the host layers' commands lead; an
    // override without a runcmd of its own gets one.
    let doc = with_host_runcmd("override", |m| {
        m.cloud_init.manage_etc_hosts = false;
        let Some(Value::Mapping(data)) = &mut m.cloud_init.user_data else {
            panic!("an override")
        };
        data.remove("runcmd");
    });
    assert_eq!(runcmd(&doc), host);
}

#[test]
fn an_override_without_leading_commands_is_left_as_written() {
    let desired = load(LAB);
    let mut machine = desired.machine("override", None).unwrap().clone();
    machine.cloud_init.manage_etc_hosts = false;
    let doc: Value = serde_yaml::from_str(&render_machine(&desired, &machine).user_data).unwrap();
    let expected: Vec<Value> = ["yes", "on", "12:30", "2001-12-14", "1_000"]
        .into_iter()
        .map(Value::from)
        .collect();
    assert_eq!(runcmd(&doc), expected);
    // A runcmd that is not a list cannot take lvlab's commands.
    machine.cloud_init.manage_etc_hosts = true;
    let Some(Value::Mapping(data)) = &mut machine.cloud_init.user_data else {
        panic!("an override")
    };
    data.insert("runcmd".into(), Value::from("echo one"));
    let image = &desired.images["debian12"];
    let err = cloudinit::render(&SeedInput {
        machine: &machine,
        environment: &desired.environments[0],
        image,
        authorized_keys: &[],
        password_hash: Some("x"),
        host_key: None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("`runcmd` must be a list"), "{err}");
}

#[test]
fn unknown_placeholders_and_a_missing_hash_are_errors() {
    let mut desired = load(LAB);
    let env = desired
        .environments
        .iter_mut()
        .find(|e| e.name == "lab")
        .unwrap();
    let machine = env
        .machines
        .iter_mut()
        .find(|m| m.vm_name == "override")
        .unwrap();
    // The manifest layer rejects unknown placeholders; the renderer must
    // too, for a spec built any other way.
    machine.cloud_init.user_data = Some(serde_yaml::from_str("hostname: '{hostname}'").unwrap());
    let machine = machine.clone();
    let image = &desired.images["debian12"];
    let env = &desired.environments[0];
    let input = SeedInput {
        machine: &machine,
        environment: env,
        image,
        authorized_keys: &[],
        password_hash: None,
        host_key: None,
    };
    let err = cloudinit::render(&input).unwrap_err().to_string();
    assert!(
        err.contains("{hostname}") && err.contains("{vm_hostname}"),
        "{err}"
    );

    let mut machine = machine.clone();
    machine.cloud_init.user_data =
        Some(serde_yaml::from_str("users: [{passwd: '{password_hash}'}]").unwrap());
    let input = SeedInput {
        machine: &machine,
        ..input
    };
    let err = cloudinit::render(&input).unwrap_err();
    assert!(matches!(err, CloudInitError::UserData(_)), "{err}");
    assert!(err.to_string().contains("password: false"), "{err}");
}

#[test]
fn an_unknown_placeholder_in_the_manifest_is_rejected_when_loading() {
    let err = cases::try_load(&LAB.replace("\"{vm_hostname}\"", "\"{nope}\"")).unwrap_err();
    assert!(err.contains("{nope}"), "{err}");
}

/// Values that would break a naively templated document.
const HOSTILE: &[&str] = &[
    "line one\nline two: injected",
    "key: value # not a comment",
    "'single' \"double\" `back`",
    "{{ not_a_template }} {% nor_this %}",
    "ünïcödé 日本語 🦀 \u{2028} \u{85}",
    "- looks like a list",
    "yes",
    "\u{1b}[31m escape \t tab \\ backslash",
    "&anchor *alias !tag %directive @at",
];

#[test]
fn hostile_values_round_trip_through_user_data_and_network_config() {
    let desired = load(LAB);
    let mut machine = desired.machine("multinic", Some("lab")).unwrap().clone();
    for (i, hostile) in HOSTILE.iter().enumerate() {
        machine.hostname = format!("h{i} {hostile}");
        machine.fqdn = format!("{hostile}.example");
        machine.cloud_init.user = hostile.to_string();
        machine.cloud_init.shell = hostile.to_string();
        machine.cloud_init.sudo = vec![hostile.to_string()];
        machine.cloud_init.runcmd = vec![
            RunCommand::Shell(hostile.to_string()),
            RunCommand::Argv(vec!["echo".into(), hostile.to_string()]),
        ];
        machine.cloud_init.mounts = vec![vec![hostile.to_string(), "/mnt".into()]];
        // Keys are checked: the hostile text is the key's comment.
        let key = format!("{KEY} {}", hostile.replace('\n', " "));
        machine.cloud_init.pubkey = Some(PublicKey::Literal(key.clone()));
        machine.interfaces[0].name = hostile.to_string();
        machine.nameservers.search = vec![hostile.to_string()];
        let keys = pubkey::authorized_keys(machine.cloud_init.pubkey.as_ref().unwrap()).unwrap();
        let seed = cloudinit::render(&SeedInput {
            machine: &machine,
            environment: &desired.environments[0],
            image: &desired.images["debian12"],
            authorized_keys: &keys,
            password_hash: Some(hostile),
            host_key: None,
        })
        .unwrap();
        let meta: Value = serde_yaml::from_str(&seed.meta_data).unwrap();
        assert_eq!(meta["local-hostname"], Value::from(machine.fqdn.clone()));
        let doc: Value = serde_yaml::from_str(&seed.user_data)
            .unwrap_or_else(|e| panic!("{e}\n{}", seed.user_data));
        assert_eq!(doc.as_mapping().unwrap().len(), 6, "{}", seed.user_data);
        assert_eq!(doc["hostname"], Value::from(machine.hostname.clone()));
        assert_eq!(doc["fqdn"], Value::from(machine.fqdn.clone()));
        let user = &doc["users"][0];
        for key in ["name", "shell", "sudo", "passwd"] {
            assert_eq!(user[key], Value::from(*hostile), "{key}");
        }
        assert_eq!(user["ssh_authorized_keys"][0], Value::from(key.trim()));
        let cmds = runcmd(&doc);
        assert_eq!(cmds[2], Value::from(*hostile));
        assert_eq!(cmds[3][1], Value::from(*hostile));
        assert_eq!(doc["mounts"][0][0], Value::from(*hostile));
        let net: Value = serde_yaml::from_str(&seed.network_config).unwrap();
        let nic = &net["ethernets"][*hostile];
        assert_eq!(
            nic["match"]["macaddress"],
            Value::from(machine.interfaces[0].mac.to_string())
        );
        assert_eq!(nic["nameservers"]["search"][0], Value::from(*hostile));
    }
}

#[test]
fn network_config_follows_the_interfaces() {
    let (desired, seed) = render_case(LAB, "lab", "multinic");
    let machine = desired.machine("multinic", None).unwrap();
    let net: Value = serde_yaml::from_str(&seed.network_config).unwrap();
    assert_eq!(net["version"], Value::from(2));
    let lan = &net["ethernets"]["lan"];
    assert_eq!(
        lan["match"]["macaddress"],
        Value::from(machine.interfaces[0].mac.to_string())
    );
    assert!(lan.get("set-name").is_none());
    assert_eq!(lan["dhcp4"], Value::Bool(false));
    assert_eq!(lan["addresses"][1], Value::from("fd00:122::13/64"));
    assert_eq!(lan["routes"][0]["via"], Value::from("192.168.122.1"));
    // A static NIC without an IPv6 gateway gets no IPv6 route.
    assert!(lan.get("gateway6").is_none());
    let backend = &net["ethernets"]["backend"];
    assert_eq!(
        backend["match"]["macaddress"],
        Value::from("52:54:00:aa:bb:01")
    );
    assert_eq!(
        (backend["dhcp4"].as_bool(), backend["dhcp6"].as_bool()),
        (Some(true), Some(true))
    );
    // Only a static IPv6 address: DHCP for IPv4 stays on, as the original
    // renders it.
    let v6only = &net["ethernets"]["v6only"];
    assert_eq!(
        (v6only["dhcp4"].as_bool(), v6only["dhcp6"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(v6only["addresses"][0], Value::from("fd00:aa::13/64"));
    assert_eq!(v6only["gateway6"], Value::from("fd00:aa::1"));
    assert!(v6only.get("routes").is_none());

    let (_, seed) = render_case(cases::QUIET, "quiet", "rocky-off");
    let net: Value = serde_yaml::from_str(&seed.network_config).unwrap();
    let nic = &net["ethernets"]["eth0"];
    assert!(
        nic.get("routes").is_none(),
        "no gateway, no route: {}",
        seed.network_config
    );

    let (desired, seed) = render_case(cases::QUIET, "quiet", "legacy");
    let net: Value = serde_yaml::from_str(&seed.network_config).unwrap();
    assert_eq!(net["version"], Value::from(1));
    let config = net["config"].as_sequence().unwrap();
    let legacy = desired.machine("legacy", None).unwrap();
    assert_eq!(
        config[0]["mac_address"],
        Value::from(legacy.interfaces[0].mac.to_string())
    );
    assert_eq!(config[0]["subnets"][0]["gateway"], Value::from("10.1.0.1"));
    assert_eq!(config[1]["subnets"][0]["type"], Value::from("dhcp"));
    // Only a static IPv6 address: IPv4 still from DHCP.
    let subnets: Vec<&Value> = config[2]["subnets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| &s["type"])
        .collect();
    assert_eq!(subnets, [&Value::from("dhcp"), &Value::from("static6")]);
    assert_eq!(config[3]["type"], Value::from("nameserver"));

    let (desired, seed) = render_case(cases::QUIET, "laptop", "usermode");
    let net: Value = serde_yaml::from_str(&seed.network_config).unwrap();
    for nic in &desired.machine("usermode", None).unwrap().interfaces {
        assert_eq!(nic.addressing, Addressing::Dhcp);
        assert_eq!(
            net["ethernets"][nic.name.as_str()]["dhcp4"],
            Value::Bool(true)
        );
    }
}

#[test]
fn rendering_is_deterministic_and_the_digest_tracks_every_document() {
    let desired = load(LAB);
    let machine = desired.machine("dualstack", None).unwrap();
    let a = render_machine(&desired, machine);
    let b = render_machine(&desired, machine);
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    assert_eq!(
        cloudinit::iso::build(&a).unwrap(),
        cloudinit::iso::build(&b).unwrap()
    );
    let mut changed = machine.clone();
    changed
        .cloud_init
        .runcmd
        .push(RunCommand::Shell("true".into()));
    assert_ne!(render_machine(&desired, &changed).digest(), a.digest());
    let mut changed = machine.clone();
    changed.interfaces[0].mac.0[5] ^= 1;
    assert_ne!(render_machine(&desired, &changed).digest(), a.digest());
}
