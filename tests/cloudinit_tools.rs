//! Rendered seeds checked by the real tools: cloud-init's schema validator
//! and network renderers (Debian's cloud-init 22.4), PyYAML (the parser
//! cloud-init reads user-data with), glibc's crypt, and xorriso reading
//! the seed ISO. The cloud-init calls are slow Python start-ups, so they
//! run in parallel.

#[path = "support/cloudinit_cases.rs"]
mod cases;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use cases::{load, render_case, render_machine, render_with_host_key, CASES, LAB};
use lvlab::cloudinit::host_key::{self, HostKey};
use lvlab::cloudinit::{self, password};
use lvlab::desired::{Addressing, MachineSpec, NetworkVersion, RunCommand};

const PYTHON: &str = "/usr/bin/python3";

/// Runs every command, a few at a time, and returns their outputs in order.
fn run_all(commands: Vec<Command>) -> Vec<Output> {
    let queue = Mutex::new(commands.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let Some((i, mut cmd)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let out = cmd
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/setup.sh)"));
                results.lock().unwrap().push((i, out));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, out)| out).collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every golden case, plus the LAB machines with hostile runcmd entries.
fn rendered_cases() -> Vec<(String, MachineSpec, lvlab::cloudinit::Seed)> {
    let mut all: Vec<_> = CASES
        .iter()
        .map(|(manifest, env, vm)| {
            let (desired, seed) = render_case(manifest, env, vm);
            let machine = desired.machine(vm, Some(env)).unwrap().clone();
            (format!("{env}-{vm}"), machine, seed)
        })
        .collect();
    let desired = load(LAB);
    let mut hostile = desired.machine("static", None).unwrap().clone();
    hostile.fqdn = "x: y # z\n'\"{{ }}\" ünï 🦀".into();
    hostile.cloud_init.runcmd = vec![
        RunCommand::Shell("echo 'a: b' # c\n- not: a list\n\"{{ x }}\"".into()),
        RunCommand::Argv(vec!["printf".into(), "%s\n".into(), "yes: no\tü".into()]),
    ];
    let seed = render_machine(&desired, &hostile);
    all.push(("hostile".into(), hostile, seed));
    // cloud-init's `ssh_keys`, in generated user-data and in an override.
    for vm in ["static", "override"] {
        let machine = desired.machine(vm, None).unwrap().clone();
        let key = HostKey::generate(&machine.domain_name).unwrap();
        let seed = render_with_host_key(&desired, &machine, Some(&key));
        assert!(seed.user_data.contains("ed25519_private"), "{vm}");
        all.push((format!("host-key-{vm}"), machine, seed));
    }
    all
}

/// The host key lvlab writes is one OpenSSH reads: `ssh-keygen -y` derives
/// from the key file the public key user-data gives the guest, and the
/// known_hosts line names the same key under the domain name.
#[test]
fn the_host_key_file_and_known_hosts_read_back_with_ssh_keygen() {
    let desired = load(LAB);
    let machine = desired.machine("static", None).unwrap();
    let key = HostKey::generate(&machine.domain_name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seed = render_with_host_key(&desired, machine, Some(&key));
    cloudinit::write_seed(&lvlab::host::LocalFiles, dir.path(), &seed).unwrap();
    let key_file = dir.path().join(host_key::KEY_FILE);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "ssh-keygen refuses a key others can read"
    );
    let derived = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(derived.status.success(), "{}", text(&derived));
    let derived = String::from_utf8(derived.stdout).unwrap();
    let user_data: serde_yaml::Value = serde_yaml::from_str(&seed.user_data).unwrap();
    let given = user_data["ssh_keys"]["ed25519_public"].as_str().unwrap();
    assert_eq!(derived.trim(), given, "ssh-keygen -y and user-data agree");
    assert_eq!(
        user_data["ssh_keys"]["ed25519_private"].as_str().unwrap(),
        std::fs::read_to_string(&key_file).unwrap()
    );
    let found = Command::new("ssh-keygen")
        .args(["-F", &machine.domain_name, "-f"])
        .arg(dir.path().join(host_key::KNOWN_HOSTS_FILE))
        .output()
        .unwrap();
    assert!(found.status.success(), "{}", text(&found));
    let base64 = given.split_whitespace().nth(1).unwrap();
    assert!(text(&found).contains(base64), "{}", text(&found));
}

#[test]
fn every_user_data_passes_cloud_init_schema_and_reads_the_same_in_pyyaml() {
    let dir = tempfile::tempdir().unwrap();
    let cases = rendered_cases();
    let files: Vec<PathBuf> = cases
        .iter()
        .map(|(name, _, seed)| {
            let path = dir.path().join(format!("{name}.user-data"));
            std::fs::write(&path, &seed.user_data).unwrap();
            path
        })
        .collect();
    let mut commands: Vec<Command> = files
        .iter()
        .map(|file| {
            let mut cmd = Command::new("cloud-init");
            cmd.args(["schema", "--config-file"]).arg(file);
            cmd
        })
        .collect();
    // One PyYAML pass over all files: each document as JSON, one a line.
    let mut pyyaml = Command::new(PYTHON);
    pyyaml
        .arg("-c")
        .arg("import json, sys, yaml\nfor f in sys.argv[1:]:\n    print(json.dumps(yaml.safe_load(open(f, encoding='utf-8'))))")
        .args(&files);
    commands.push(pyyaml);
    let outputs = run_all(commands);
    let (pyyaml, schema) = outputs.split_last().unwrap();
    for ((name, _, seed), out) in cases.iter().zip(schema) {
        assert!(
            out.status.success() && text(out).contains("Valid cloud-config"),
            "{name}: {}\n{}",
            text(out),
            seed.user_data
        );
    }
    assert!(pyyaml.status.success(), "{}", text(pyyaml));
    let lines: Vec<&str> = std::str::from_utf8(&pyyaml.stdout)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(lines.len(), cases.len());
    for ((name, _, seed), line) in cases.iter().zip(lines) {
        let python: serde_json::Value = serde_json::from_str(line).unwrap();
        let ours: serde_yaml::Value = serde_yaml::from_str(&seed.user_data).unwrap();
        assert_eq!(python, serde_json::to_value(&ours).unwrap(), "{name}");
    }
}

/// What one network renderer must have written for a machine.
fn check_rendered(out: &Path, renderer: &str, machine: &MachineSpec, version: NetworkVersion) {
    let read = |rel: &str| {
        std::fs::read_to_string(out.join(rel))
            .unwrap_or_else(|e| panic!("{}: {rel}: {e}", machine.vm_name))
    };
    let dns: Vec<String> = machine
        .nameservers
        .addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut whole = String::new();
    for nic in &machine.interfaces {
        let (label, mac) = (&nic.name, nic.mac.to_string());
        let (file, mut expect) = match renderer {
            "networkd" => (
                format!("etc/systemd/network/10-cloud-init-{label}.network"),
                vec![format!("MACAddress={mac}")],
            ),
            "sysconfig" => (
                format!("etc/sysconfig/network-scripts/ifcfg-{label}"),
                vec![format!("HWADDR={mac}")],
            ),
            _ => ("etc/network/interfaces.d/50-cloud-init".into(), vec![]),
        };
        let body = read(&file);
        match &nic.addressing {
            Addressing::Dhcp => expect.push(match (renderer, version) {
                ("networkd", NetworkVersion::V2) => "DHCP=yes".into(),
                ("networkd", NetworkVersion::V1) => "DHCP=ipv4".into(),
                ("sysconfig", _) => "BOOTPROTO=dhcp".into(),
                _ => format!("iface {label} inet dhcp"),
            }),
            Addressing::Static { ipv4, ipv6 } => {
                if let Some(v4) = ipv4 {
                    expect.push(match renderer {
                        "networkd" => format!("Address={}", v4.address),
                        "sysconfig" => format!("IPADDR={}", v4.address.addr()),
                        _ => format!("address {}", v4.address),
                    });
                    match (v4.gateway, renderer) {
                        (Some(gw), "sysconfig") => expect.push(format!("GATEWAY={gw}")),
                        (Some(gw), "networkd") => expect.push(format!("Gateway={gw}")),
                        (Some(gw), _) => expect.push(format!("gateway {gw}")),
                        (None, _) => assert!(!body.to_lowercase().contains("gateway"), "{body}"),
                    }
                }
                if let Some(v6) = ipv6 {
                    expect.push(match renderer {
                        "networkd" => format!("Address={}", v6.address),
                        "sysconfig" => format!("IPV6ADDR={}", v6.address),
                        _ => format!("address {}", v6.address),
                    });
                    if let Some(gw) = v6.gateway {
                        expect.push(match renderer {
                            "networkd" => format!("Gateway={gw}"),
                            "sysconfig" => format!("IPV6_DEFAULTGW={gw}"),
                            _ => format!("gateway {gw}"),
                        });
                    }
                }
            }
        }
        if renderer == "networkd" && !dns.is_empty() {
            expect.push(format!("DNS={}", dns.join(" ")));
        }
        for line in expect {
            assert!(
                body.lines().any(|l| l.trim() == line),
                "{} ({renderer}): no `{line}` in {file}:\n{body}",
                machine.vm_name
            );
        }
        // The IPv6 default route must stay ::/0 (cloud-init 22.4 made
        // `::/0` routes `::/64`).
        assert!(!body.contains("Destination=::/64"), "{body}");
        whole.push_str(&body);
    }
    match renderer {
        "sysconfig" if !dns.is_empty() => {
            let resolv = read("etc/resolv.conf");
            for ns in &dns {
                assert!(resolv.contains(&format!("nameserver {ns}")), "{resolv}");
            }
        }
        "eni" => {
            let rules = read("etc/udev/rules.d/70-persistent-net.rules");
            for nic in &machine.interfaces {
                let rule = format!("ATTR{{address}}==\"{}\", NAME=\"{}\"", nic.mac, nic.name);
                assert!(rules.contains(&rule), "{rules}");
            }
            if !dns.is_empty() {
                assert!(
                    whole.contains(&format!("dns-nameservers {}", dns.join(" "))),
                    "{whole}"
                );
            }
        }
        _ => {}
    }
}

#[test]
fn every_network_config_renders_through_cloud_inits_renderers() {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut commands = Vec::new();
    for (manifest, env, vm) in CASES {
        let (desired, seed) = render_case(manifest, env, vm);
        let machine = desired.machine(vm, Some(env)).unwrap().clone();
        let version = desired.images[&machine.os].network_version;
        let input = dir.path().join(format!("{env}-{vm}.network-config"));
        std::fs::write(&input, &seed.network_config).unwrap();
        let mut renderers = vec![("debian", "networkd"), ("fedora", "sysconfig")];
        if version == NetworkVersion::V1 {
            renderers.push(("debian", "eni"));
        }
        for (distro, renderer) in renderers {
            let out = dir.path().join(format!("{env}-{vm}-{renderer}"));
            let mut cmd = Command::new("cloud-init");
            cmd.args([
                "devel",
                "net-convert",
                "-k",
                "yaml",
                "-D",
                distro,
                "-O",
                renderer,
            ])
            .arg("-p")
            .arg(&input)
            .arg("-d")
            .arg(&out);
            commands.push(cmd);
            jobs.push((
                machine.clone(),
                version,
                renderer,
                out,
                seed.network_config.clone(),
            ));
        }
    }
    let outputs = run_all(commands);
    for ((machine, version, renderer, out, config), output) in jobs.iter().zip(&outputs) {
        assert!(
            output.status.success(),
            "{}: {}\n{config}",
            machine.vm_name,
            text(output)
        );
        check_rendered(out, renderer, machine, *version);
    }
}

#[test]
fn generated_password_hashes_verify_with_glibc_crypt() {
    let generated = password::OneTimePassword::generate().unwrap();
    let hash = generated.hash().unwrap();
    let check = |password: &str| {
        let out = Command::new(PYTHON)
            .args([
                "-W",
                "ignore",
                "-c",
                "import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
            ])
            .args([password, &hash])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim() == "True"
    };
    assert!(check(generated.reveal()));
    assert!(!check("not the password"));
}

fn xorriso(args: &[&str]) -> String {
    let out = Command::new("xorriso")
        .args(args)
        .output()
        .expect("xorriso (scripts/setup.sh installs it)");
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

#[test]
fn the_seed_iso_reads_back_with_xorriso_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (_, seed) = render_case(LAB, "lab", "multinic");
    let first = dir.path().join("first");
    let written = cloudinit::write_seed(&lvlab::host::LocalFiles, &first, &seed).unwrap();
    assert_eq!(written.len(), 4);
    let iso = first.join("cidata.iso");
    let iso_arg = iso.to_str().unwrap();
    let info = xorriso(&["-indev", iso_arg, "-pvd_info"]);
    assert!(info.lines().any(|l| l == "Volume Id    : cidata"), "{info}");
    // Rock Ridge: modes and exact names in the primary tree.
    let listing = xorriso(&["-indev", iso_arg, "-lsl", "/"]);
    for name in ["meta-data", "user-data", "network-config"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("-rw-r--r--") && l.ends_with(&format!("'{name}'"))),
            "{listing}"
        );
    }
    // Joliet: the names read the same without Rock Ridge.
    let joliet = xorriso(&["-read_fs", "norock", "-indev", iso_arg, "-ls", "/"]);
    for name in ["'meta-data'", "'user-data'", "'network-config'"] {
        assert!(joliet.lines().any(|l| l == name), "{joliet}");
    }
    let bytes = std::fs::read(&iso).unwrap();
    assert_eq!(
        &bytes[17 * 2048 + 88..17 * 2048 + 91],
        b"%/E",
        "Joliet level 3 descriptor"
    );

    let extracted = dir.path().join("extracted");
    let out = Command::new("osirrox")
        .args(["-indev", iso_arg, "-extract", "/"])
        .arg(&extracted)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut names: Vec<String> = std::fs::read_dir(&extracted)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["meta-data", "network-config", "user-data"]);
    for (name, text) in seed.documents() {
        assert_eq!(
            std::fs::read_to_string(extracted.join(name)).unwrap(),
            text,
            "{name}"
        );
        assert_eq!(
            std::fs::read_to_string(first.join(name)).unwrap(),
            text,
            "{name}"
        );
    }

    let second = dir.path().join("second");
    cloudinit::write_seed(&lvlab::host::LocalFiles, &second, &seed).unwrap();
    assert_eq!(bytes, std::fs::read(second.join("cidata.iso")).unwrap());
}

#[test]
fn every_seed_file_is_private_with_or_without_a_password() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    // A generated hash, `password: false`, and a `user_data` override
    // (which may hold anything, a plain-text password included).
    for vm in ["static", "nopassword", "override"] {
        let (_, seed) = render_case(LAB, "lab", vm);
        let written =
            cloudinit::write_seed(&lvlab::host::LocalFiles, &dir.path().join(vm), &seed).unwrap();
        assert_eq!(written.len(), 4, "three documents and the ISO");
        for path in &written {
            assert_eq!(mode(path), 0o600, "{}", path.display());
        }
    }
    // Rewriting a seed left 0644 by an older lvlab makes it private.
    let old = dir.path().join("nopassword/user-data");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, seed) = render_case(LAB, "lab", "nopassword");
    cloudinit::write_seed(
        &lvlab::host::LocalFiles,
        &dir.path().join("nopassword"),
        &seed,
    )
    .unwrap();
    assert_eq!(mode(&old), 0o600);
    assert!(std::fs::read_dir(dir.path().join("nopassword"))
        .unwrap()
        .all(|e| !lvlab::storage::is_temporary(&e.unwrap().file_name().to_string_lossy())));
}
