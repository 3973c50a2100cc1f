//! `apply --json` and the classic commands' `--json`, as a script runs
//! them: the real binary on libvirt's test driver, every stdout line parsed
//! as JSON (docs/apply-json.md), and the human progress line for a long
//! step.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/schema_names.rs"]
mod schema_names;
#[path = "support/tiny_image.rs"]
mod tiny;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use http::{Behaviour, Server};
use lab_manifest::{Image, LabManifest};
use run::{lvlab, sha256_hex, texts};
use schema_names::schema_names;

/// A manifest of machines `web` and `db` on the test-driver host `uri`,
/// whose image `tiny` is as `image` makes it (from `dir/source` unless it
/// says otherwise).
fn write_manifest(dir: &Path, uri: &str, image: impl FnOnce(Image) -> Image) {
    LabManifest::tiny("lab", uri, dir)
        .lab_id("state-files")
        .defaults(|d| d.memory(256).cpu(1).user_network().no_password())
        .machine("web", |m| m)
        .machine("db", |m| m)
        .image("tiny", image)
        .write(dir);
}

/// A lab on the state file `state` (under `state/`) whose image is cached.
fn lab_on(state: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tiny::tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
    let uri = format!("test://{}/state/{state}", env!("CARGO_MANIFEST_DIR"));
    write_manifest(dir.path(), &uri, |image| image);
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    lvlab(dir).args(args).output().unwrap()
}

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/apply-json.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every stdout line as JSON; each must parse, carry the four keys and
/// match the strict schema in docs/.
fn json_lines(out: &Output) -> Vec<Value> {
    let (stdout, stderr) = texts(out);
    let validator = jsonschema::validator_for(&schema()).unwrap();
    stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stderr}"));
            for key in ["@level", "@message", "@timestamp", "type"] {
                assert!(value.get(key).is_some(), "no {key}: {line}");
            }
            let stamp = value["@timestamp"].as_str().unwrap();
            assert!(is_rfc3339(stamp), "{stamp}");
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{errors:#?}\n{line}");
            value
        })
        .collect()
}

/// `2026-11-29T13:08:31Z`: what lvlab writes.
fn is_rfc3339(stamp: &str) -> bool {
    let b = stamp.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

/// (address, action) of each line of `kind`, under `key` (`change` or `hook`).
fn steps(lines: &[Value], kind: &str, key: &str) -> BTreeSet<(String, String)> {
    of_type(lines, kind)
        .iter()
        .map(|l| {
            (
                l[key]["resource"]["addr"].as_str().unwrap().to_string(),
                l[key]["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check_version_first(lines: &[Value]) {
    let first = &lines[0];
    assert_eq!(first["type"], "version", "{first}");
    assert_eq!(first["lvlab"], env!("CARGO_PKG_VERSION"));
    assert_eq!(first["ui"], "1.0");
    assert_eq!(of_type(lines, "version").len(), 1);
}

#[test]
fn apply_json_streams_the_plan_each_step_and_the_summary() {
    let dir = lab_on("empty.xml");
    let plan = run(dir.path(), &["plan", "--json"]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let planned: BTreeSet<(String, String)> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap().to_string(),
                a["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    let out = run(dir.path(), &["apply", "--json", "--auto-approve"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines = json_lines(&out);
    check_version_first(&lines);
    assert_eq!(steps(&lines, "planned_change", "change"), planned);
    assert_eq!(
        of_type(&lines, "planned_change").len(),
        plan["actions"].as_array().unwrap().len()
    );
    for change in of_type(&lines, "planned_change") {
        assert_eq!(change["change"]["reason"], "not_deployed", "{change}");
    }
    assert_eq!(steps(&lines, "apply_start", "hook"), planned);
    assert_eq!(steps(&lines, "apply_complete", "hook"), planned);
    assert_eq!(of_type(&lines, "apply_complete").len(), planned.len());
    assert!(of_type(&lines, "apply_errored").is_empty(), "{stdout}");
    for done in of_type(&lines, "apply_complete") {
        assert!(done["hook"]["elapsed_seconds"].is_number(), "{done}");
    }
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "change_summary", "{last}");
    assert_eq!(
        last["changes"],
        serde_json::json!({"add": 2, "change": 0, "destroy": 0, "operation": "apply"})
    );
    assert!(dir.path().join("vms/lab/web/disk0.qcow2").is_file());
}

#[test]
fn an_errored_step_gives_apply_errored_with_its_kind_and_exit_1() {
    let dir = lab_on("empty.xml");
    // A file where web's directory goes: its disk and seed cannot be made.
    std::fs::create_dir_all(dir.path().join("vms/lab")).unwrap();
    std::fs::write(dir.path().join("vms/lab/web"), "in the way").unwrap();
    let out = run(dir.path(), &["up", "--all", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let lines = json_lines(&out);
    check_version_first(&lines);
    let errored = of_type(&lines, "apply_errored");
    assert!(!errored.is_empty(), "{stdout}");
    let kinds: BTreeSet<&str> = errored
        .iter()
        .map(|l| {
            assert_eq!(l["hook"]["resource"]["addr"], "lab.web", "{l}");
            assert_eq!(l["@level"], "error");
            let message = l["hook"]["error"]["message"].as_str().unwrap();
            assert!(message.contains("is not a directory"), "{message}");
            l["hook"]["error"]["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, BTreeSet::from(["seed", "storage"]), "{stdout}");
    // db is made all the same.
    assert!(steps(&lines, "apply_complete", "hook")
        .contains(&("lab.db".to_string(), "define_domain".to_string())));
    let errors: Vec<&Value> = of_type(&lines, "diagnostic")
        .into_iter()
        .filter(|d| d["diagnostic"]["severity"] == "error")
        .collect();
    assert!(
        errors
            .iter()
            .any(|d| d["@message"].as_str().unwrap().starts_with("Apply failed:")),
        "{stdout}"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "change_summary", "{last}");
    assert_eq!(last["changes"]["add"], 1, "db only: {last}");
}

#[test]
fn json_without_a_way_past_the_question_is_refused() {
    let dir = lab_on("empty.xml");
    for (args, flag) in [
        (&["apply", "--json"][..], "--auto-approve"),
        (&["destroy", "--json"][..], "--force"),
    ] {
        let out = run(dir.path(), args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}\n{stdout}\n{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.contains(&format!("--json needs {flag}")),
            "{args:?}: {stderr}"
        );
    }
    assert!(!dir.path().join("vms").exists(), "nothing was done");
}

#[test]
fn down_and_destroy_json_say_their_operation() {
    let dir = lab_on("partly-deployed.xml");
    let out = run(dir.path(), &["down", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines = json_lines(&out);
    check_version_first(&lines);
    assert!(steps(&lines, "apply_complete", "hook")
        .contains(&("lab.web".to_string(), "shutdown_domain".to_string())));
    assert_eq!(lines.last().unwrap()["changes"]["operation"], "apply");

    let out = run(dir.path(), &["destroy", "--json", "--force"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines = json_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(last["changes"]["operation"], "destroy", "{last}");
    assert_eq!(last["changes"]["destroy"], 1, "{last}");
}

#[test]
fn an_error_before_the_plan_is_a_diagnostic_after_the_version() {
    let dir = lab_on("empty.xml");
    let out = run(dir.path(), &["up", "nosuch", "--json"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    check_version_first(&lines);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "diagnostic", "{last}");
    assert_eq!(last["diagnostic"]["severity"], "error");
    assert!(last["@message"].as_str().unwrap().contains("nosuch"));
    assert!(
        stderr.contains("nosuch"),
        "people still read stderr: {stderr}"
    );
}

/// A lab whose image download takes `takes`, served from loopback.
fn slow_download(takes: Duration) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    server.put("i/tiny.qcow2", bytes.clone());
    server.put("i/SUMS", format!("{}  tiny.qcow2\n", sha256_hex(&bytes)));
    server.behave("i/tiny.qcow2", Behaviour::Trickle(takes));
    write_manifest(dir.path(), "test:///default", |image| {
        image
            .url(server.url("i/tiny.qcow2"))
            .checksum(server.url("i/SUMS"), "sha256")
    });
    (dir, server)
}

/// One step longer than 10 s: terraform's "Still creating..." for a
/// person, an `apply_progress` line with its elapsed seconds for a script.
#[test]
fn a_long_step_reports_progress_every_ten_seconds() {
    let takes = Duration::from_millis(11_500);
    let (human, _server) = slow_download(takes);
    let (script, _server2) = slow_download(takes);
    let script_run = std::thread::spawn(move || {
        let out = run(script.path(), &["up", "web", "--json"]);
        (out, script)
    });
    let out = run(human.path(), &["up", "web"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let still: Vec<&str> = stdout.lines().filter(|l| l.contains("Still")).collect();
    // A loaded host may stretch the download past 20 s: one line per 10 s.
    assert!(!still.is_empty(), "{stdout}");
    for (i, line) in still.iter().enumerate() {
        assert_eq!(
            *line,
            format!(
                "image.tiny: download image, verify checksum: Still creating... [{}s elapsed]",
                10 * (i + 1)
            ),
            "{stdout}"
        );
    }

    let (out, _script) = script_run.join().unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines = json_lines(&out);
    let progress = of_type(&lines, "apply_progress");
    assert!(!progress.is_empty(), "{stdout}");
    for (i, line) in progress.iter().enumerate() {
        assert_eq!(line["hook"]["resource"]["addr"], "image.tiny");
        assert_eq!(line["hook"]["action"], "download_image");
        assert_eq!(line["hook"]["elapsed_seconds"], 10 * (i + 1), "{stdout}");
    }
}

/// The schema is strict: a field it does not list fails, wherever it is.
#[test]
fn the_line_schema_refuses_undocumented_fields() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let complete = serde_json::json!({
        "@level": "info", "@message": "m", "@module": "lvlab.ui",
        "@timestamp": "2026-11-29T13:08:31Z", "type": "apply_complete",
        "hook": {"resource": {"addr": "lab.web", "kind": "machine", "environment": "lab",
                              "vm_name": "web", "domain": "web_lab",
                              "uri": "qemu:///session"},
                 "action": "define_domain", "description": "define domain",
                 "elapsed_seconds": 0.1}
    });
    assert!(validator.is_valid(&complete));
    let mut extra = complete.clone();
    extra["hook"]["undocumented"] = serde_json::json!(1);
    assert!(!validator.is_valid(&extra), "an extra hook field fails");
    let mut extra = complete.clone();
    extra["undocumented"] = serde_json::json!(1);
    assert!(
        !validator.is_valid(&extra),
        "an extra top-level field fails"
    );
}

/// docs/apply-json.md names every property and value of its schema, and
/// links to it.
#[test]
fn the_apply_json_page_documents_every_name_of_its_schema() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/apply-json.md"))
            .unwrap();
    assert!(doc.contains("(apply-json.schema.json)"));
    let mut names = schema_names(&schema());
    assert!(names.len() > 40, "{names:?}");
    names.retain(|name| !doc.contains(&format!("`{name}`")));
    names.dedup();
    assert!(names.is_empty(), "not in docs/apply-json.md: {names:?}");
}

/// A new machine's console password is a `sensitive` note; its value is
/// in the stream only with `--show-passwords`.
#[test]
fn a_console_password_is_a_sensitive_note_shown_only_when_asked() {
    let dir = lab_on("empty.xml");
    let manifest = dir.path().join("Lvlab.yml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace(", password: false", "")).unwrap();
    for show in [false, true] {
        let mut args = vec!["up", "web", "--json"];
        if show {
            args.push("--show-passwords");
            // A fresh machine: a seed already written keeps its password.
            std::fs::remove_dir_all(dir.path().join("vms")).unwrap();
        }
        let out = run(dir.path(), &args);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let lines = json_lines(&out);
        let notes: Vec<&Value> = of_type(&lines, "diagnostic")
            .into_iter()
            .filter(|d| d.get("sensitive").is_some())
            .collect();
        assert_eq!(notes.len(), 1, "{stdout}");
        let note = &notes[0];
        assert_eq!(note["sensitive"], true);
        assert_eq!(note["diagnostic"]["vm_name"], "web");
        let password = note["diagnostic"].get("password");
        assert_eq!(password.is_some(), show, "{note}");
        if let Some(password) = password {
            assert!(password.as_str().unwrap().len() >= 12, "{note}");
        }
    }
}

/// A saved plan was reviewed when it was made: `apply FILE --json` needs
/// no `--auto-approve`.
#[test]
fn a_saved_plan_applies_as_a_stream_without_auto_approve() {
    let dir = lab_on("empty.xml");
    let saved = dir.path().join("lab.plan");
    let out = run(dir.path(), &["plan", "--out", saved.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let out = run(dir.path(), &["apply", saved.to_str().unwrap(), "--json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines = json_lines(&out);
    check_version_first(&lines);
    assert_eq!(lines.last().unwrap()["changes"]["add"], 2, "{stdout}");
}
