//! `lvlab schema`, the JSON Schema (draft 2020-12) of Lvlab.yml for
//! editors, checked with a real validator (the jsonschema crate): every
//! valid manifest and settings file under examples/ and tests/ passes it, a
//! typo fails it as it fails the loader, the schema and the loader agree on
//! the values the loader reads leniently or checks after serde, and
//! docs/lvlab.schema.json is what `lvlab schema` prints
//! (`LVLAB_BLESS=1 cargo test --test manifest_schema` rewrites it).

#[path = "support/cloudinit_cases.rs"]
mod cloudinit_cases;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;

use std::path::{Path, PathBuf};

use jsonschema::Validator;
use lab_manifest::{LabManifest, Settings};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn validator() -> Validator {
    jsonschema::draft202012::new(&lvlab::manifest::manifest_schema())
        .expect("the schema is a valid draft 2020-12 schema")
}

/// YAML text as the JSON an editor validates, with `<<` merge keys
/// expanded as the loader expands them.
fn as_json(text: &str) -> Value {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    // One level of merges per pass, as in the loader.
    for _ in 0..16 {
        value.apply_merge().unwrap();
    }
    serde_json::to_value(value).unwrap()
}

/// The schema's complaints about `text`, each with where it is.
fn schema_errors(validator: &Validator, text: &str) -> Vec<String> {
    validator
        .iter_errors(&as_json(text))
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Every YAML file under `dir`, except under `skip`.
fn yaml_files(dir: &Path, skip: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.starts_with(skip) {
            continue;
        }
        if path.is_dir() {
            yaml_files(&path, skip, found);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            found.push(path);
        }
    }
}

#[test]
fn every_valid_manifest_under_examples_and_tests_passes_the_schema() {
    let validator = validator();
    let mut files = Vec::new();
    let invalid = repo("tests/manifests/invalid");
    yaml_files(&repo("examples"), &invalid, &mut files);
    yaml_files(&repo("tests"), &invalid, &mut files);
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
        .collect();
    // The manifests the cloud-init goldens are rendered from.
    for (name, manifest) in [
        ("cloudinit_cases::LAB", cloudinit_cases::LAB),
        ("cloudinit_cases::QUIET", cloudinit_cases::QUIET),
    ] {
        texts.push((name.into(), cloudinit_cases::manifest_text(manifest)));
    }
    for (name, text) in &texts {
        let errors = schema_errors(&validator, text);
        assert!(errors.is_empty(), "{name}:\n{errors:#?}");
    }
}

#[test]
fn a_typo_fails_the_schema_as_it_fails_the_loader() {
    let validator = validator();
    let full = std::fs::read_to_string(repo("examples/full/Lvlab.yml")).unwrap();
    assert!(schema_errors(&validator, &full).is_empty());
    let typo = full.replacen("memory:", "memroy:", 1);
    assert_ne!(typo, full);
    let loaded = lvlab::manifest::load_str(&typo, &repo("examples/full/Lvlab.yml"));
    let err = loaded
        .expect_err("the loader refuses the typo")
        .render(false);
    assert!(err.contains("unknown key `memroy`"), "{err}");
    let errors = schema_errors(&validator, &typo);
    assert!(
        errors.iter().any(|e| e.contains("memroy")),
        "the schema names the key: {errors:#?}"
    );
    for file in ["unknown_key.yml", "wrong_type.yml"] {
        let text = std::fs::read_to_string(repo("tests/manifests/invalid").join(file)).unwrap();
        assert!(
            !schema_errors(&validator, &text).is_empty(),
            "{file} passes the schema"
        );
    }
}

/// A tiny lab whose machine `web` has `change` applied, loaded as if it
/// were `dir/Lvlab.yml`: whether the loader accepts it, and its text.
fn machine_case(dir: &Path, change: impl FnOnce(Settings) -> Settings) -> (bool, String) {
    let text = LabManifest::tiny("lab", "test:///default", dir)
        .machine("web", change)
        .to_yaml();
    (loads(dir, &text), text)
}

fn loads(dir: &Path, text: &str) -> bool {
    lvlab::manifest::load_str(text, &dir.join("Lvlab.yml")).is_ok()
}

/// The words the schema lists for the value type `name`.
fn schema_words(name: &str) -> Vec<String> {
    let schema = lvlab::manifest::manifest_schema();
    let words: Vec<String> = schema["$defs"][name]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("no words for {name}"))
        .iter()
        .map(|choice| choice["const"].as_str().unwrap().to_string())
        .collect();
    assert!(words.len() >= 2, "{name}: {words:?}");
    words
}

#[test]
fn the_schema_and_the_loader_agree_on_lenient_and_late_checked_values() {
    let validator = validator();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut cases: Vec<(String, bool, String)> = Vec::new();
    let mut case = |label: String, (loaded, text): (bool, String)| {
        cases.push((label, loaded, text));
    };
    // Every word the schema offers loads; one it does not offer fails both.
    for (def, key) in [
        ("DomainType", "domain_type"),
        ("Graphics", "graphics"),
        ("DiskStrategy", "disk_strategy"),
    ] {
        for word in schema_words(def).into_iter().chain(["bogus".into()]) {
            case(
                format!("{key}: {word}"),
                machine_case(dir, |m| m.set(key, &word)),
            );
        }
    }
    for word in schema_words("NetworkType")
        .into_iter()
        .chain(["bridge".into()])
    {
        let nic = format!("[{{network_type: {word}}}]");
        case(
            format!("network_type: {word}"),
            machine_case(dir, |m| m.set("interfaces", &nic)),
        );
    }
    for (key, value) in [
        ("memory", "2048"),
        ("memory", "'2048'"),
        ("memory", "4G"),
        ("memory", "4GiB"),
        ("memory", "1.5G"),
        ("memory", "512M"),
        ("memory", "32"),
        ("memory", "4GB"),
        ("memory", "lots"),
        ("memory", "[4G]"),
        ("cpu", "2"),
        ("cpu", "'2'"),
        ("cpu", "0"),
        ("cpu", "2000"),
        ("cpu", "two"),
        ("autostart", "yes"),
        ("autostart", "On"),
        ("autostart", "false"),
        ("autostart", "maybe"),
        ("hostname", "web-01"),
        ("hostname", "web_01"),
        (
            "disks",
            "[{name: root, size: 25G}, {name: data, size: 10GB}]",
        ),
        ("disks", "[{name: root}, {name: data, size: 1.5GiB}]"),
        ("disks", "[{name: root}, {name: data, size: 3X}]"),
        ("disks", "[{strategy: backing}]"),
        ("disks", "[{strategy: link}]"),
        ("interfaces", "[{network_type: passt, ssh_port: auto}]"),
        ("interfaces", "[{network_type: passt, ssh_port: 2222}]"),
        ("interfaces", "[{network_type: passt, ssh_port: 0}]"),
        ("cloud_init", "{password: no}"),
        ("cloud_init", "{generate_password: false}"),
        ("cloud_init", "{sudo: ALL=(ALL) ALL}"),
        ("cloud_init", "{runcmd: [echo hi, [touch, /x], 42]}"),
        ("cloud_init", "{runcmd: echo hi}"),
    ] {
        case(
            format!("{key}: {value}"),
            machine_case(dir, |m| m.set(key, value)),
        );
    }
    for (kind, version) in [
        ("sha256", "2"),
        ("SHA512", "'1'"),
        ("md5", "2"),
        ("sha256", "3"),
    ] {
        let text = LabManifest::tiny("lab", "test:///default", dir)
            .image("tiny", |i| {
                i.checksum("https://example.org/SUMS", kind)
                    .set("network_version", version)
            })
            .to_yaml();
        let label = format!("checksum_type: {kind}, network_version: {version}");
        case(label, (loads(dir, &text), text));
    }
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for (label, loaded, text) in &cases {
        let errors = schema_errors(&validator, text);
        accepted += usize::from(*loaded);
        if errors.is_empty() != *loaded {
            disagreements.push(format!("{label}: loader {loaded}, schema {errors:?}"));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // Both verdicts occur, so neither side agrees by accepting everything.
    assert!(
        accepted > 10 && accepted + 10 < cases.len(),
        "{accepted} of {}",
        cases.len()
    );
}

#[test]
fn docs_schema_file_is_what_lvlab_schema_prints() {
    let dir = tempfile::tempdir().unwrap();
    let out = run::lvlab(dir.path()).arg("schema").output().unwrap();
    let (stdout, stderr) = run::texts(&out);
    assert!(out.status.success(), "{stderr}");
    let schema: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema, lvlab::manifest::manifest_schema());
    let path = repo("docs/lvlab.schema.json");
    if std::env::var_os("LVLAB_BLESS").is_some() {
        std::fs::write(&path, &stdout).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with LVLAB_BLESS=1)", path.display()));
    assert!(
        committed == stdout,
        "docs/lvlab.schema.json differs from `lvlab schema`; rewrite it with \
         LVLAB_BLESS=1 cargo test --test manifest_schema"
    );
}
