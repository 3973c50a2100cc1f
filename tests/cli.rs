//! The command line as a user meets it: the examples validate, global flags
//! behave, and output goes where it should.

use std::path::PathBuf;
use std::process::{Command, Output};

fn lvlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
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
        text.contains("demo (qemu:///session): 2 machines [web, db], images [demo]"),
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

#[test]
fn errors_are_uncolored_when_not_on_a_terminal_or_with_no_color() {
    let bad =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/invalid/unknown_key.yml");
    let out = lvlab(&["-f", bad.to_str().unwrap(), "validate"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
    let out = lvlab(&["--no-color", "-f", bad.to_str().unwrap(), "validate"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
}

#[test]
fn version_and_bad_arguments() {
    let out = lvlab(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("lvlab "));
    let out = lvlab(&["validate", "--bogus"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
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
    let out = lvlab(&["-q", "-f", &full, "validate"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
