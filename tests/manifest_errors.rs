//! Every malformed manifest gives one screen of error naming file:line:col
//! and the key path, exits 1, and never panics.

use std::path::PathBuf;
use std::process::Command;

struct Case {
    file: &'static str,
    /// `line:col` the error points at, when it has a place in the file.
    at: Option<&'static str>,
    /// The key path printed under `note: key:`.
    key: Option<&'static str>,
    message: &'static str,
}

const CASES: &[Case] = &[
    Case {
        file: "invalid_yaml.yml",
        at: Some("6:7"),
        key: None,
        message: "invalid YAML",
    },
    Case {
        file: "list_body.yml",
        at: None,
        key: None,
        message: "must be a mapping, but it is a list",
    },
    Case {
        file: "empty_file.yml",
        at: None,
        key: None,
        message: "an empty document",
    },
    Case {
        file: "empty_environment.yml",
        at: Some("1:14"),
        key: Some("environment"),
        message: "`environment` is empty",
    },
    Case {
        file: "missing_images.yml",
        at: Some("1:1"),
        key: None,
        message: "the manifest has no `images`",
    },
    Case {
        file: "unknown_key.yml",
        at: Some("8:9"),
        key: Some("environment[0].machines[0].memroy"),
        message: "did you mean `memory`?",
    },
    Case {
        file: "wrong_type.yml",
        at: Some("8:14"),
        key: Some("environment[0].machines[0].cpu"),
        message: "`cpu` must be a whole number",
    },
    Case {
        file: "bogus_network_type.yml",
        at: Some("9:27"),
        key: Some("environment[0].machines[0].interfaces[0].network_type"),
        message: "expected network, user or passt",
    },
    Case {
        file: "static_ip_on_user_nic.yml",
        at: Some("10:18"),
        key: Some("environment[0].machines[0].interfaces[0].ip4"),
        message: "a static address needs `network_type: network`",
    },
    Case {
        file: "os_not_in_images.yml",
        at: Some("7:13"),
        key: Some("environment[0].machines[0].os"),
        message: "did you mean `debian12`?",
    },
    Case {
        file: "duplicate_vm_name.yml",
        at: Some("9:18"),
        key: Some("environment[0].machines[2].vm_name"),
        message: "machine `web01` is defined twice",
    },
    Case {
        file: "checksum_without_type.yml",
        at: Some("11:5"),
        key: Some("images.debian12.checksum_url"),
        message: "`checksum_type` is not",
    },
    Case {
        file: "url_ends_in_slash.yml",
        at: Some("10:16"),
        key: Some("images.debian12.image_url"),
        message: "ends in `/`",
    },
    Case {
        file: "url_ends_in_dotdot.yml",
        at: Some("10:16"),
        key: Some("images.debian12.image_url"),
        message: "ends in `..`",
    },
    Case {
        file: "missing_pubkey.yml",
        at: Some("4:9"),
        key: Some("environment[0].machines[0]"),
        message: "no SSH public key",
    },
    Case {
        file: "unknown_placeholder.yml",
        at: Some("8:23"),
        key: Some("environment[0].machines[0].cloud_init.user_data.hostname"),
        message: "unknown placeholder `{hostname}`",
    },
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests/invalid")
        .join(name)
}

#[test]
fn each_malformed_manifest_names_its_place_and_exits_1() {
    for case in CASES {
        let path = fixture(case.file);
        let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
            .env("LVLAB_NO_HOST_CONFIG", "1")
            .arg("-f")
            .arg(&path)
            .arg("validate")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: exit code\n{stderr}",
            case.file
        );
        assert!(out.stdout.is_empty(), "{}: nothing on stdout", case.file);
        assert!(
            !stderr.contains("panicked"),
            "{}: panicked\n{stderr}",
            case.file
        );
        assert!(
            stderr.contains(case.message),
            "{}: message\n{stderr}",
            case.file
        );
        let place = match case.at {
            Some(at) => format!("{}:{at}", path.display()),
            None => path.display().to_string(),
        };
        assert!(
            stderr.contains(&place),
            "{}: expected {place}\n{stderr}",
            case.file
        );
        if let Some(key) = case.key {
            assert!(
                stderr.contains(&format!("key: {key}\n")),
                "{}: key path\n{stderr}",
                case.file
            );
        }
        assert_eq!(
            stderr.matches("error:").count(),
            1,
            "{}: one problem, no follow-on errors\n{stderr}",
            case.file
        );
        assert!(
            stderr.lines().count() <= 24,
            "{}: fits one screen\n{stderr}",
            case.file
        );
    }
}

#[test]
fn a_missing_manifest_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .arg("-C")
        .arg(dir.path())
        .arg("validate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("cannot read manifest"), "{stderr}");
    assert!(stderr.contains("-f FILE"), "{stderr}");
}

#[test]
fn several_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Lvlab.yml");
    std::fs::write(
        &path,
        "environment:\n  - name: lab\n    machines:\n      - {vm_name: a, os: x, cpu: 0}\n      - {vm_name: b, os: y}\nimages: {}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .args(["-f", path.to_str().unwrap(), "validate", "--no-color"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("`os: x` is not a key"), "{stderr}");
    assert!(stderr.contains("`os: y` is not a key"), "{stderr}");
    assert!(stderr.contains("problems in"), "{stderr}");
}
