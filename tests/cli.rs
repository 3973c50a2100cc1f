//! The command line as a user meets it: the examples validate, global flags
//! behave, and output goes where it should.

#[path = "support/terminal.rs"]
mod terminal;
use terminal::on_terminal;

use std::path::PathBuf;
use std::process::{Command, Output};

fn lvlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        )
        .args(args)
        .env_remove("LVLAB_LOG")
        .output()
        .unwrap()
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .join("Lvlab.yml")
        .display()
        .to_string()
}

#[test]
fn the_full_example_resolves_every_machine_completely() {
    let out = lvlab(&[
        "-f",
        &example("full"),
        "validate",
        "--show-resolved",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resolved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let machines: Vec<&serde_json::Value> = resolved["environments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["machines"].as_array().unwrap())
        .collect();
    assert_eq!(machines.len(), 5);
    for m in &machines {
        for key in [
            "vm_name",
            "domain_name",
            "hostname",
            "fqdn",
            "os",
            "cpu",
            "memory_mib",
            "domain_type",
            "image_path",
            "vm_dir",
            "disks",
            "interfaces",
            "cloud_init",
        ] {
            assert!(!m[key].is_null(), "{} lacks {key}", m["vm_name"]);
        }
        assert!(!m["interfaces"].as_array().unwrap().is_empty());
        assert!(!m["disks"].as_array().unwrap().is_empty());
    }
    let images = resolved["images"].as_array().unwrap();
    assert_eq!(images.len(), 4, "only the images the machines use");
}

#[test]
fn the_yaml_view_is_plain_yaml() {
    let out = lvlab(&[
        "-f",
        &example("full"),
        "validate",
        "--show-resolved",
        "--env",
        "laptop",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(value["environments"][0]["name"].as_str(), Some("laptop"));
    assert!(!text.contains(" !"), "no YAML tags in the output:\n{text}");
}

#[test]
fn the_demo_example_validates() {
    let out = lvlab(&["-f", &example("demo"), "validate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("demo (qemu:///session): 1 machine [web], images [demo]"),
        "{text}"
    );
}

#[test]
fn dash_c_changes_directory_before_reading_lvlab_yml() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let out = lvlab(&["-C", dir.to_str().unwrap(), "validate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary[0]["environment"], "demo");
}

#[test]
fn an_unknown_environment_is_an_error_listing_the_known_ones() {
    let out = lvlab(&["-f", &example("full"), "validate", "--env", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no environment `nope`"), "{stderr}");
    assert!(stderr.contains("saltlab, laptop"), "{stderr}");
}

/// `validate` of a misspelt key on a terminal, with `flags` and, when
/// `no_color_env`, `NO_COLOR=1`.
fn validate_on_terminal(flags: &[&str], no_color_env: bool) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lvlab"));
    command
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env_remove("LVLAB_LOG")
        .env_remove("NO_COLOR")
        .args(flags)
        .args(["-f", &bad_manifest(), "validate"]);
    if no_color_env {
        command.env("NO_COLOR", "1");
    }
    let (status, shown) = on_terminal(&command, None);
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("unknown key `memroy`"), "{shown}");
    shown
}

#[test]
fn errors_are_colored_on_a_terminal_only_and_never_with_no_color() {
    let shown = validate_on_terminal(&[], false);
    assert!(shown.contains("\u{1b}["), "colour on a terminal: {shown}");
    let shown = validate_on_terminal(&["--no-color"], false);
    assert!(!shown.contains('\u{1b}'), "--no-color: {shown}");
    let shown = validate_on_terminal(&[], true);
    assert!(!shown.contains('\u{1b}'), "NO_COLOR: {shown}");

    let out = lvlab(&["-f", &bad_manifest(), "validate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown key `memroy`"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "not on a terminal: {stderr}");
}

/// Exit 2 means "changes pending" to `plan --detailed-exitcode`: a usage
/// error must not look like it.
#[test]
fn usage_errors_exit_1_and_help_and_version_exit_0() {
    let out = lvlab(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("lvlab "));
    for help in [&["--help"][..], &["plan", "--help"], &["help", "init"]] {
        let out = lvlab(help);
        assert_eq!(out.status.code(), Some(0), "{help:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    }
    let usage_errors: [(&[&str], &str); 5] = [
        (&["validate", "--bogus"], "--bogus"),
        (&["bogus"], "bogus"),
        (&["plan", "--target", "sideways"], "sideways"),
        (&["init", "--jobs", "many"], "many"),
        (&[], "Usage:"),
    ];
    for (args, named) in usage_errors {
        let out = lvlab(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[test]
fn status_json_without_a_manifest_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = lvlab(&["-C", dir.path().to_str().unwrap(), "status", "--json"]);
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows, serde_json::json!([]));
}

#[test]
fn a_near_miss_machine_name_gets_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Lvlab.yml");
    std::fs::write(
        &manifest,
        "environment:\n  - name: lab\n    libvirt_uri: test:///default\n    config_defaults:\n      cloud_init: {pubkey: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab@example\"}\n    machines:\n      - {vm_name: salt.local, os: debian12}\n      - {vm_name: web01, os: debian12}\nimages:\n  debian12: {image_url: https://example.org/d.qcow2}\n",
    )
    .unwrap();
    let file = manifest.to_str().unwrap();
    for args in [
        &["-f", file, "cloudinit", "salt", "--stdout"][..],
        &["-f", file, "up", "salt"],
        &["-f", file, "plan", "salt"],
        &["-f", file, "plan", "--replace", "salt"],
    ] {
        let out = lvlab(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no machine `salt`") && stderr.contains("did you mean `salt.local`?"),
            "{args:?}: {stderr}"
        );
    }
    let out = lvlab(&["-f", file, "cloudinit", "zzz"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("machines: salt.local, web01"), "{stderr}");
}

#[test]
fn a_near_miss_catalog_name_gets_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let out = lvlab(&["-C", dir.path().to_str().unwrap(), "init", "ubuntu2404"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `ubuntu24.04`?"), "{stderr}");
}

#[test]
fn a_missing_dash_c_directory_is_an_error_line() {
    let out = lvlab(&["-C", "/nonexistent/lvlab", "validate"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot change to /nonexistent/lvlab"),
        "{stderr}"
    );
}

#[test]
fn verbose_logs_go_to_stderr_and_quiet_silences_warnings() {
    let full = example("full");
    let out = lvlab(&["-vv", "-f", &full, "validate"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DEBUG") && stderr.contains("manifest resolved"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("valid") && !stdout.contains("DEBUG"),
        "results only on stdout"
    );
    let out = lvlab(&["-f", &full, "validate"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("DEBUG"));
    // LVLAB_LOG takes a tracing filter, without -v.
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env("LVLAB_LOG", "lvlab::manifest=debug")
        .args(["-f", &full, "validate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DEBUG") && stderr.contains("manifest resolved"),
        "{stderr}"
    );

    // A manifest that warns: the warning shows, and `-q` leaves only errors.
    let dir = tempfile::tempdir().unwrap();
    let warns = dir.path().join("Lvlab.yml");
    std::fs::write(
        &warns,
        "environment:
  - name: lab
    libvirt_uri: test:///default
    config_defaults:
      cloud_init: {pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab}
    machines:
      - {vm_name: a, os: tiny}
images:
  tiny:
    image_url: https://example.org/tiny.qcow2
    checksum_type: sha256
",
    )
    .unwrap();
    let warns = warns.to_str().unwrap();
    let out = lvlab(&["-f", warns, "validate"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("checksum_type has no effect"),
        "{stderr}"
    );
    let out = lvlab(&["-q", "-f", warns, "validate"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid"),
        "results stay"
    );
    let out = lvlab(&["-q", "-f", &bad_manifest(), "validate"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: unknown key"),
        "errors stay"
    );
}

fn bad_manifest() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests/invalid/unknown_key.yml")
        .display()
        .to_string()
}

/// The defaults the README gives are the ones the options take.
#[test]
fn the_documented_defaults_are_the_options_defaults() {
    for (command, option, default) in [
        ("apply", "--parallelism <N>", "[default: 10]"),
        ("init", "--jobs <JOBS>", "[default: 4]"),
        ("up", "--wait-timeout <SECONDS>", "[default: 600]"),
    ] {
        let out = lvlab(&[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let (_, after) = help
            .split_once(option)
            .unwrap_or_else(|| panic!("{command} --help names {option}: {help}"));
        // The option's own text ends at the first `]`, its default's.
        let (text, _) = after.split_once(']').unwrap_or((after, ""));
        assert!(
            format!("{text}]").ends_with(default),
            "{command} {option}: {text}"
        );
    }
}
