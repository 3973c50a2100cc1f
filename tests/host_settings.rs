//! Host-wide settings files as a user has them: `/etc/Lvlab.yml` (here a
//! config root named by `LVLAB_CONFIG_ROOT`), `~/.Lvlab.yml` (a temporary
//! HOME), the manifest in the original lvlab's format, and `--config FILE`,
//! driven through the real binary against libvirt's test driver.

#[path = "support/tiny_image.rs"]
mod support;
use support::tiny_image;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The original's format: nameservers under `config_defaults.interfaces`,
/// static addresses without gateways, `generate_password`, and no
/// `images:` (they come from ~/.Lvlab.yml).
const MANIFEST: &str = "\
environment:
  - name: lab
    libvirt_uri: test://$ROOT/state/bridged.xml
    config_defaults:
      os: tiny
      cpu: 1
      memory: 256
      domain: lab.example
      cloud_image_basedir: $DIR/cache
      disk_image_basedir: $DIR/vms
      interfaces:
        nameservers:
          addresses: [100.64.10.53]
          search: [lab.example]
      cloud_init:
        pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab
        generate_password: false
        runcmd:
          - echo defaults
    machines:
      - vm_name: web01
        interfaces:
          - ip4: 100.64.10.21/24
      - vm_name: db01
        interfaces:
          - ip4: 100.64.10.22/24
        cloud_init:
          runcmd_ignore_defaults: true
";

const SYSTEM: &str = "\
default_network: vlan10
networks:
  vlan10:
    gateway: 100.64.10.1
    dns: [100.64.10.10, 100.64.10.11]
    search: [vlan10.example]
runcmd:
  - echo from-etc
";

const USER: &str = "\
default_vm_username: labadmin
runcmd:
  - echo from-home
images:
  tiny:
    image_url: $DIR/source/tiny.qcow2
";

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    /// A config root, a HOME and a lab directory, each with its file.
    fn new() -> Self {
        let host = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        tiny_image(&host.path("cache/cloud-images/tiny.qcow2"), "16M");
        host.write("etc/Lvlab.yml", SYSTEM);
        host.write("home/.Lvlab.yml", USER);
        host.write("lab/Lvlab.yml", MANIFEST);
        host
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = text
            .replace("$ROOT", env!("CARGO_MANIFEST_DIR"))
            .replace("$DIR", &self.dir.path().display().to_string());
        std::fs::write(path, text).unwrap();
    }

    /// lvlab in the lab directory, with this host's settings files.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lvlab"));
        command
            .current_dir(self.path("lab"))
            .args(args)
            .env_remove("LVLAB_NO_HOST_CONFIG")
            .env(
                "LVLAB_STATE_DIR",
                std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
            )
            .env("HOME", self.path("home"))
            .env("LVLAB_CONFIG_ROOT", self.path("etc"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    fn resolved(&self, extra: &[&str]) -> Value {
        let mut args = vec!["validate", "--show-resolved", "--json"];
        args.extend(extra);
        let out = self.run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn machine<'v>(resolved: &'v Value, name: &str) -> &'v Value {
    resolved["environments"][0]["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["vm_name"] == name)
        .unwrap()
}

#[test]
fn validate_and_plan_accept_the_originals_format_with_host_settings() {
    let host = Host::new();
    let out = host.run(&["validate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let etc = host.path("etc/Lvlab.yml");
    let home = host.path("home/.Lvlab.yml");
    assert!(
        text.contains(&format!(
            "with settings from {} (host-wide, 4 values)",
            etc.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "with settings from {} (per user, 3 values)",
            home.display()
        )),
        "{text}"
    );

    let resolved = host.resolved(&[]);
    let web = machine(&resolved, "web01");
    let nic = &web["interfaces"][0];
    assert_eq!(nic["attachment"]["network"], "vlan10", "default_network");
    assert_eq!(
        nic["addressing"]["ipv4"]["gateway"], "100.64.10.1",
        "the networks: entry's gateway"
    );
    assert_eq!(
        web["nameservers"],
        serde_json::json!({"addresses": ["100.64.10.53"], "search": ["lab.example"]}),
        "config_defaults.interfaces.nameservers comes before networks:"
    );
    assert_eq!(web["cloud_init"]["user"], "labadmin");
    assert_eq!(web["cloud_init"]["password"]["kind"], "disabled");
    assert_eq!(
        web["cloud_init"]["host_runcmd"],
        serde_json::json!(["echo from-home"]),
        "a higher layer replaces the list"
    );
    let db = machine(&resolved, "db01");
    assert_eq!(db["cloud_init"]["host_runcmd"], serde_json::json!([]));

    // Which file supplied which value.
    let files = resolved["settings_files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["path"], etc.display().to_string());
    assert_eq!(files[0]["layer"], "system");
    assert_eq!(
        files[0]["supplies"],
        serde_json::json!([
            "default_network",
            "networks.vlan10.gateway",
            "networks.vlan10.dns",
            "networks.vlan10.search",
        ])
    );
    assert_eq!(files[1]["layer"], "user");
    assert_eq!(
        files[1]["supplies"],
        serde_json::json!(["runcmd", "default_vm_username", "images.tiny.image_url"])
    );

    let out = host.run(&["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_seed_runs_host_commands_first_and_uses_the_networks_settings() {
    let host = Host::new();
    let out = host.run(&["cloudinit", "web01", "--stdout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let host_cmd = text.find("echo from-home").expect("host runcmd");
    let defaults_cmd = text.find("echo defaults").expect("defaults' runcmd");
    assert!(host_cmd < defaults_cmd, "{text}");
    assert!(
        !text.contains("from-etc"),
        "~/.Lvlab.yml replaced it: {text}"
    );
    assert!(text.contains("via: \"100.64.10.1\""), "{text}");
    assert!(text.contains("100.64.10.53"), "{text}");
}

#[test]
fn the_manifest_and_config_override_host_layers_and_the_switch_ignores_them() {
    let host = Host::new();
    // The manifest overrides one nested value and keeps its siblings.
    host.write(
        "lab/Lvlab.yml",
        &format!("{MANIFEST}networks:\n  vlan10:\n    gateway: 100.64.10.254\n"),
    );
    let resolved = host.resolved(&[]);
    let web = machine(&resolved, "web01");
    assert_eq!(
        web["interfaces"][0]["addressing"]["ipv4"]["gateway"],
        "100.64.10.254"
    );
    assert_eq!(web["interfaces"][0]["attachment"]["network"], "vlan10");

    // --config sits above the manifest.
    host.write(
        "over.yml",
        "default_vm_username: override\nimages:\n  tiny:\n    username: pinned\n",
    );
    let over = host.path("over.yml");
    let resolved = host.resolved(&["--config", over.to_str().unwrap()]);
    assert_eq!(machine(&resolved, "web01")["cloud_init"]["user"], "pinned");
    let files = resolved["settings_files"].as_array().unwrap();
    assert_eq!(files.last().unwrap()["layer"], "config");
    assert_eq!(
        files.last().unwrap()["supplies"],
        serde_json::json!(["default_vm_username", "images.tiny.username"])
    );

    // Without host layers, the manifest has no images.
    let out = host
        .command(&["validate"])
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the manifest has no `images`"),
        "{}",
        stderr(&out)
    );

    let out = host.run(&["validate", "--config", "missing.yml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read settings file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_error_in_a_settings_file_cites_that_file() {
    let host = Host::new();
    host.write(
        "home/.Lvlab.yml",
        &format!("{USER}networks:\n  vlan10:\n    dns: [100.64.10.10, resolver]\n"),
    );
    host.write("etc/Lvlab.yml", &format!("{SYSTEM}environmnet: []\n"));
    let out = host.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let etc = host.path("etc/Lvlab.yml");
    assert!(
        err.contains(&format!("--> {}:9:1", etc.display())),
        "the unknown key, in its file: {err}"
    );
    assert!(err.contains("`environmnet` does not belong"), "{err}");

    host.write("etc/Lvlab.yml", SYSTEM);
    let out = host.run(&["validate"]);
    let err = stderr(&out);
    let home = host.path("home/.Lvlab.yml");
    assert!(err.contains("`resolver` is not an IP address"), "{err}");
    assert!(
        err.contains(&format!("--> {}:9:25", home.display())),
        "{err}"
    );
}

#[test]
fn a_saved_plan_covers_the_settings_files_and_keeps_its_config() {
    let host = Host::new();
    host.write("over.yml", "runcmd: [echo over]\n");
    let over = host.path("over.yml");
    let plan = host.path("lab.plan");
    let out = host.run(&[
        "plan",
        "--config",
        over.to_str().unwrap(),
        "--out",
        plan.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let saved: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    assert_eq!(saved["config"], over.display().to_string());

    // A comment changes no value, but the file is not what was reviewed.
    host.write("home/.Lvlab.yml", &format!("# edited\n{USER}"));
    let out = host.run(&["apply", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Saved plan is stale: a host-wide settings file"),
        "{}",
        stderr(&out)
    );

    // As it was: the plan applies, reading its --config again.
    host.write("home/.Lvlab.yml", USER);
    let out = host.run(&["apply", plan.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let user_data = std::fs::read_to_string(host.path("vms/lab/web01/user-data")).unwrap();
    assert!(user_data.contains("echo over"), "{user_data}");
}

#[test]
fn settings_files_may_be_empty_but_must_be_mappings() {
    let host = Host::new();
    host.write("etc/Lvlab.yml", "# nothing here yet\n");
    assert!(host.run(&["validate"]).status.success());
    host.write("etc/Lvlab.yml", "- a\n- b\n");
    let out = host.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("a settings file must be a mapping, but it is a list"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_original_format_example_validates_with_its_settings_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/original");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lvlab"))
            .env("LVLAB_NO_HOST_CONFIG", "1")
            .arg("-f")
            .arg(dir.join("Lvlab.yml"))
            .args(extra)
            .args(["validate", "--show-resolved", "--json"])
            .output()
            .unwrap()
    };
    let out = run(&["--config", dir.join("host.yml").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let resolved: Value = serde_json::from_slice(&out.stdout).unwrap();
    let salt = machine(&resolved, "salt.local");
    assert_eq!(
        salt["interfaces"][0]["addressing"]["ipv4"]["gateway"],
        "100.64.10.1"
    );
    assert_eq!(salt["nameservers"]["addresses"][0], "100.64.10.10");
    assert_eq!(salt["cloud_init"]["user"], "labadmin");
    let out = run(&[]);
    assert!(
        stderr(&out).contains("the manifest has no `images`"),
        "images come from the settings file: {}",
        stderr(&out)
    );
}

#[test]
fn a_manifest_that_is_a_host_layer_is_read_once() {
    let host = Host::new();
    // lvlab run in the config root, on its Lvlab.yml.
    host.write("etc/Lvlab.yml", &format!("{MANIFEST}{SYSTEM}"));
    let out = host
        .command(&["validate"])
        .current_dir(host.path("etc"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("host-wide"), "{}", stdout(&out));
}
