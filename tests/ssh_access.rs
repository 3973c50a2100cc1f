//! `lvlab ssh`, `ssh-config` and `hosts` as a user runs them, on the
//! test-driver host `state/partly-deployed.xml` (machine `web` of `lab`
//! runs there with this lab's mark; `db` is not deployed). The command
//! lines and config blocks lvlab makes are read back by the real OpenSSH
//! client (`ssh -G` prints what it would use, and connects nowhere); the
//! exit code of `lvlab ssh` is checked with a stand-in `ssh` on PATH that
//! exits with a code of its own.

#[path = "support/lvlab_run.rs"]
mod run;
// The real-guest tier's checks of these commands: compiled here so they
// keep up with the binary's options.
#[path = "support/ssh_checks.rs"]
mod ssh_checks;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use run::{lvlab, texts};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab";

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// `web` with a static address on a libvirt network, `db` with a
    /// user-mode NIC and a DHCP NIC; the pubkey is a file beside its
    /// private key.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().display();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("keys/id_lab.pub"), format!("{KEY}\n")).unwrap();
        std::fs::write(dir.path().join("keys/id_lab"), "a private key\n").unwrap();
        let state = format!("{}/state/partly-deployed.xml", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(
            dir.path().join("Lvlab.yml"),
            format!(
                "environment:
  - name: lab
    libvirt_uri: test://{state}
    lab_id: state-files
    config_defaults:
      os: tiny
      domain: example
      disk_image_basedir: {base}/vms
      cloud_image_basedir: {base}/cache
      cloud_init: {{user: labuser, pubkey: {base}/keys/id_lab.pub, password: false}}
    machines:
      - vm_name: web
        interfaces:
          - {{network: isolated, ip4: 192.0.2.10/24}}
      - vm_name: db
        interfaces:
          - {{network_type: user}}
          - {{network: isolated}}
images:
  tiny:
    image_url: {base}/tiny.qcow2
"
            ),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        lvlab(self.path()).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "lvlab {args:?}:\n{stdout}\n{stderr}");
        stdout
    }

    fn known_hosts(&self) -> PathBuf {
        self.path().join("vms/lab/web/known_hosts")
    }
}

/// What `ssh -G ARGS` would use, as `key value` lines.
fn ssh_g(args: &[String]) -> String {
    let out = Command::new("ssh").arg("-G").args(args).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "ssh -G {args:?}: {stderr}");
    stdout
}

fn has(config: &str, line: &str) -> bool {
    config.lines().any(|l| l == line)
}

/// The words of `lvlab ssh --print`'s line (no word it prints needs the
/// shell's quotes in this lab).
fn printed_argv(lab: &Lab, vm: &str) -> Vec<String> {
    let line = lab.ok(&["ssh", vm, "--print"]);
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn ssh_uses_the_ephemeral_defaults_until_lvlab_made_a_host_key_then_checks_it() {
    let lab = Lab::new();
    let argv = printed_argv(&lab, "web");
    assert_eq!(argv[0], "ssh");
    let config = ssh_g(&argv[1..]);
    for line in [
        "hostname 192.0.2.10",
        "port 22",
        "user labuser",
        "stricthostkeychecking false",
        "userknownhostsfile /dev/null",
        "loglevel ERROR",
    ] {
        assert!(has(&config, line), "{line} not in:\n{config}");
    }
    let identity = format!("identityfile {}/keys/id_lab", lab.path().display());
    assert!(has(&config, &identity), "{identity} not in:\n{config}");

    // The first seed makes the host key and the known_hosts beside it.
    lab.ok(&["cloudinit", "web"]);
    let known = std::fs::read_to_string(lab.known_hosts()).unwrap();
    assert!(known.starts_with("web_lab ssh-ed25519 AAAA"), "{known}");
    let key = lab.path().join("vms/lab/web/ssh_host_ed25519_key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let user_data = std::fs::read_to_string(lab.path().join("vms/lab/web/user-data")).unwrap();
    assert!(user_data.contains("ed25519_private"), "{user_data}");

    let config = ssh_g(&printed_argv(&lab, "web")[1..]);
    for line in [
        "stricthostkeychecking true".to_string(),
        "hostkeyalias web_lab".into(),
        format!("userknownhostsfile {}", lab.known_hosts().display()),
    ] {
        assert!(has(&config, &line), "{line} not in:\n{config}");
    }

    // A later seed keeps the key.
    lab.ok(&["cloudinit", "web"]);
    assert_eq!(std::fs::read_to_string(lab.known_hosts()).unwrap(), known);
}

#[test]
fn ssh_becomes_the_ssh_client_and_exits_with_its_code() {
    let lab = Lab::new();
    let bin = lab.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let stand_in = bin.join("ssh");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done\necho\nexit 7\n",
    )
    .unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = lvlab(lab.path())
        .env("PATH", path)
        .args(["ssh", "web", "--", "-x", "echo 'a b'"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
    assert!(
        stdout.ends_with("[-p][22][-l][labuser][--][192.0.2.10][-x][echo 'a b']\n"),
        "{stdout}"
    );
}

#[test]
fn a_machine_that_is_not_deployed_or_unknown_is_an_error() {
    let lab = Lab::new();
    let out = lab.run(&["ssh", "db"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("db is not deployed; start it with `lvlab up db`"),
        "{stderr}"
    );
    let out = lab.run(&["ssh", "wbe"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        texts(&out).1.contains("web"),
        "a suggestion: {}",
        texts(&out).1
    );
}

#[test]
fn ssh_config_blocks_are_what_ssh_reads() {
    let lab = Lab::new();
    lab.ok(&["cloudinit", "web"]);
    let out = lab.run(&["ssh-config", "--strict-host-keys"]);
    let (text, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no block: db is not deployed"), "{stderr}");
    assert!(!text.contains("Host db"), "{text}");
    let file = lab.path().join("ssh_config");
    std::fs::write(&file, &text).unwrap();
    for name in ["web", "web_lab"] {
        let config = ssh_g(&["-F".into(), file.display().to_string(), name.into()]);
        for line in [
            "hostname 192.0.2.10".to_string(),
            "port 22".into(),
            "user labuser".into(),
            "hostkeyalias web_lab".into(),
            "stricthostkeychecking true".into(),
            format!("userknownhostsfile {}", lab.known_hosts().display()),
            format!("identityfile {}/keys/id_lab", lab.path().display()),
        ] {
            assert!(has(&config, &line), "{name}: {line} not in:\n{config}");
        }
    }
    let plain = lab.ok(&["ssh-config", "web"]);
    assert!(
        plain.contains("  UserKnownHostsFile /dev/null\n"),
        "{plain}"
    );
    let json: serde_json::Value = serde_json::from_str(&lab.ok(&["ssh-config", "--json"])).unwrap();
    assert_eq!(json[0]["endpoint"], "192.0.2.10:22");
    assert_eq!(json[1]["state"], "undeployed");
}

#[test]
fn hosts_prints_marks_and_replaces_its_block() {
    let lab = Lab::new();
    let printed = lab.ok(&["hosts"]);
    assert_eq!(
        printed,
        "# Libvirt Labs /etc/hosts snippet\n# Environment: lab\n192.0.2.10 web.example web\n"
    );
    let heredoc = lab.ok(&["hosts", "--heredoc"]);
    assert!(heredoc.starts_with("cat >> /etc/hosts <<'LVLAB_HOSTS'\n# BEGIN lvlab lab\n"));
    let json: serde_json::Value = serde_json::from_str(&lab.ok(&["hosts", "--json"])).unwrap();
    assert_eq!(json[0]["address"], "192.0.2.10");

    let file = lab.path().join("hosts");
    std::fs::write(&file, "127.0.0.1 localhost\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let target = file.display().to_string();
    lab.ok(&["hosts", "--append", &target]);
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap() + "10.0.0.1 mine\n",
    )
    .unwrap();
    lab.ok(&["hosts", "--append", &target]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        "127.0.0.1 localhost\n# BEGIN lvlab lab\n# Libvirt Labs /etc/hosts snippet\n\
         # Environment: lab\n192.0.2.10 web.example web\n# END lvlab lab\n10.0.0.1 mine\n"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the file keeps its mode");
}

#[test]
fn a_machine_whose_seed_lvlab_wrote_before_host_keys_keeps_rendering_without_one() {
    let lab = Lab::new();
    // What an older lvlab left: a seed, no host key.
    let dir = lab.path().join("vms/lab/web");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("user-data"), "#cloud-config\nhostname: web\n").unwrap();
    let printed = lab.ok(&["cloudinit", "web", "--stdout"]);
    assert!(!printed.contains("ssh_keys"), "{printed}");
    lab.ok(&["cloudinit", "web"]);
    assert!(!dir.join("ssh_host_ed25519_key").exists());
    assert!(!lab.known_hosts().exists());
    let line = lab.ok(&["ssh", "web", "--print"]);
    assert!(line.contains("StrictHostKeyChecking=no"), "{line}");
}

/// What libvirt's leases or the guest agent report, by hand (the test
/// driver lists none): only a DHCP NIC on a libvirt network gives `ssh` an
/// address to use and `hosts` a line, IPv4 first.
#[test]
fn only_dhcp_nics_on_libvirt_networks_lend_their_reported_addresses() {
    use lvlab::access::{self, ReachState};
    let manifest = format!(
        "environment:
  - name: lab
    config_defaults: {{os: tiny, domain: example, cloud_init: {{pubkey: {KEY}}}}}
    machines:
      - vm_name: mixed
        interfaces:
          - {{network_type: user}}
          - {{network: isolated, ip4: 192.0.2.10/24}}
          - {{network: natted}}
      - vm_name: dhcp
        interfaces:
          - {{network: natted}}
images:
  tiny:
    image_url: /nonexistent/tiny.qcow2
"
    );
    let desired = lvlab::manifest::load_str(&manifest, Path::new("/srv/lab/Lvlab.yml")).unwrap();
    let env = &desired.environments[0];
    let mixed = &env.machines[0];
    let reported = |i: usize, addresses: &[&str]| {
        (
            mixed.interfaces[i].mac.to_string(),
            addresses.iter().map(|a| a.parse().unwrap()).collect(),
        )
    };
    let by_mac = [
        reported(0, &["10.0.2.15"]),
        reported(1, &["192.0.2.10"]),
        reported(2, &["fd00::7", "192.168.122.7"]),
    ]
    .into_iter()
    .collect();
    let leased = access::dhcp_addresses(mixed, &by_mac);
    assert_eq!(
        leased,
        ["192.168.122.7", "fd00::7"].map(|a| a.parse::<std::net::IpAddr>().unwrap())
    );
    let host = lvlab::host::Host::open("test:///default").unwrap();
    let reach = access::reach(&host, env, mixed, ReachState::Running, &leased);
    assert_eq!(
        reach.addresses,
        ["192.0.2.10", "192.168.122.7"].map(|a| a.parse::<std::net::IpAddr>().unwrap())
    );
    assert_eq!(
        reach.endpoint,
        Some("192.0.2.10:22".parse().unwrap()),
        "the static address first"
    );

    let dhcp = &env.machines[1];
    let by_mac = [(
        dhcp.interfaces[0].mac.to_string(),
        vec!["192.168.122.8".parse().unwrap()],
    )]
    .into_iter()
    .collect();
    let leased = access::dhcp_addresses(dhcp, &by_mac);
    let reach = access::reach(&host, env, dhcp, ReachState::Running, &leased);
    assert_eq!(reach.endpoint, Some("192.168.122.8:22".parse().unwrap()));
    let lines = access::hosts::lines(&["lab".into()], std::slice::from_ref(&reach)).unwrap();
    assert_eq!(lines[0].address.to_string(), "192.168.122.8");
    // Not running: no endpoint, whatever was reported.
    let stopped = access::reach(&host, env, dhcp, ReachState::NotRunning, &[]);
    assert_eq!(stopped.endpoint, None);
    assert!(access::unreachable_reason(&stopped).contains("lvlab up dhcp"));
}
