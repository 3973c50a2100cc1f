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
    Case {
        file: "negative_cpu.yml",
        at: Some("8:14"),
        key: Some("environment[0].machines[0].cpu"),
        message: "`cpu: -2` is out of range (1..=1024)",
    },
    Case {
        file: "huge_number.yml",
        at: Some("8:14"),
        key: Some("environment[0].machines[0].cpu"),
        message: "`99999999999999999999999` is too large a number",
    },
    Case {
        file: "duplicate_key.yml",
        at: Some("10:9"),
        key: Some("environment[0].machines[0].cpu"),
        message: "`cpu` is first set on line 8",
    },
    Case {
        file: "memory_decimal_unit.yml",
        at: Some("8:17"),
        key: Some("environment[0].machines[0].memory"),
        message: "memory takes K, M, G or T",
    },
    Case {
        file: "empty_image_url.yml",
        at: Some("10:16"),
        key: Some("images.debian12.image_url"),
        message: "the value is empty",
    },
    Case {
        file: "files_on_remote_host.yml",
        at: Some("4:14"),
        key: Some("environment[0].storage"),
        message: "`storage: files` cannot reach qemu+ssh://root@hv2.example/system, a remote host",
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

#[test]
fn misleading_messages_are_gone() {
    let cases = [
        ("negative_cpu.yml", "whole number"),
        ("huge_number.yml", "fix the YAML syntax"),
        ("empty_image_url.yml", "ends in `/`"),
        ("duplicate_key.yml", "invalid YAML"),
    ];
    for (file, misleading) in cases {
        let out = validate(&fixture(file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(misleading), "{file}\n{stderr}");
    }
}

fn validate(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .arg("-f")
        .arg(path)
        .args(["validate", "--no-color"])
        .output()
        .unwrap()
}

/// Nine misspelt keys and a misspelt image key over four machines, two
/// environments, `config_defaults` and `images`; two wrong types; a value out
/// of range and one in a unit memory does not take: one run names them all.
#[test]
fn every_problem_in_the_file_is_reported_in_one_run() {
    let path = fixture("many_problems.yml");
    let out = validate(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = [
        ("6:7", "unknown key `memroy`"),
        ("10:9", "unknown key `cpus`"),
        ("11:9", "unknown key `disk`"),
        ("15:14", "`cpu` must be a whole number, not string \"lots\""),
        ("16:9", "unknown key `hostnme`"),
        ("17:9", "unknown key `intrefaces`"),
        ("21:14", "`cpu: 0` is out of range (1..=1024)"),
        ("22:17", "`4GB`: memory takes K, M, G or T"),
        ("23:9", "unknown key `autostrat`"),
        ("25:11", "unknown key `usr`"),
        ("30:13", "`os: debain12` is not a key in `images`"),
        ("31:20", "`autostart` must be true or false"),
        ("32:9", "unknown key `graphic`"),
        ("36:5", "unknown key `checksum_typ`"),
    ];
    // Each problem is its message, then its place on the next line.
    let lines: Vec<&str> = stderr.lines().collect();
    for (at, message) in expected {
        let place = format!("--> {}:{at}", path.display());
        let found = lines.windows(2).any(|w| {
            w[0].starts_with("error: ") && w[0].contains(message) && w[1].ends_with(&place)
        });
        assert!(found, "expected `{message}` at {at}\n{stderr}");
    }
    assert_eq!(
        stderr.matches("error:").count(),
        expected.len(),
        "no other problems, no follow-on errors\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} problems in", expected.len())),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `memory`?"), "{stderr}");
    assert!(stderr.contains("did you mean `debian12`?"), "{stderr}");
}

/// A key of the wrong type is reported as such, not also as missing.
#[test]
fn a_wrong_type_is_not_also_reported_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Lvlab.yml");
    std::fs::write(
        &path,
        "environment:\n  - name: lab\n    machines:\n      - {vm_name: a, os: [debian12]}\n      - {vm_name: [b], os: debian12}\nimages:\n  debian12: {image_url: https://example.org/d.qcow2}\n",
    )
    .unwrap();
    let out = validate(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("`os` must be a string"), "{stderr}");
    assert!(stderr.contains("`vm_name` must be a string"), "{stderr}");
    assert!(!stderr.contains("has no"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 2, "{stderr}");
}

#[test]
fn a_directory_or_a_binary_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let out = validate(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("it is a directory"), "{stderr}");
    assert!(!stderr.contains("permissions"), "{stderr}");
    let binary = dir.path().join("Lvlab.yml");
    std::fs::write(&binary, b"\xff\xfe\x00images: {}\n").unwrap();
    let out = validate(&binary);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("not UTF-8 text"), "{stderr}");
    assert!(!stderr.contains("permissions"), "{stderr}");
}
