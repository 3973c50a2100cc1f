//! Snapshots: `lvlab snapshot create|revert|delete|list` as a user runs
//! them on libvirt's test driver (state files in `state/`, read afresh by
//! each run), the library round trip on one test-driver connection
//! (create, plan, revert, delete, whose effects a single connection
//! keeps), and one real QEMU domain on `qemu:///session` for what only
//! QEMU decides (live snapshot with memory, the seed skipped, the backing
//! chain kept).

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/plan_apply.rs"]
mod plan_apply;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/session_lab.rs"]
mod session_lab;
// Compiled here; the real-guest tier calls it.
#[path = "support/snapshot_checks.rs"]
mod snapshot_checks;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lab_manifest::LabManifest;
use lvlab::apply::NoObserver;
use lvlab::desired::Desired;
use lvlab::observe::PowerState;
use lvlab::plan::{Selection, Target};
use lvlab::reconcile::{ApplyOptions, Lab};
use lvlab::snapshot::{self, Problem, Request, SnapshotName, Verb};
use plan_apply::converge;
use run::{lvlab, texts};
use session_lab::SessionLab;
use support::tiny_image;

fn state_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("state")
        .join(name)
}

/// A lab of machines `web`, `db` and `new` of environment `lab` (with
/// `lab_id: state-files`, so that the state files' marks are its own) on
/// the test-driver host `state`, its image cached.
struct StateLab {
    dir: tempfile::TempDir,
}

impl StateLab {
    fn on(state: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
        let uri = format!("test://{}", state.display());
        LabManifest::tiny("lab", &uri, dir.path())
            .lab_id("state-files")
            .defaults(|d| d.memory(256).cpu(1).user_network().no_password())
            .machine("web", |m| m)
            .machine("db", |m| m)
            .machine("new", |m| m)
            .write(dir.path());
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        lvlab(self.dir.path()).args(args).output().unwrap()
    }

    /// `lvlab args`, which must exit with `code`: stdout and stderr.
    #[track_caller]
    fn exits(&self, code: i32, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "lvlab {args:?}:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let (stdout, _) = self.exits(0, args);
        serde_json::from_str(&stdout).unwrap()
    }
}

#[test]
fn list_shows_only_this_labs_machines_as_a_table_and_as_json() {
    let lab = StateLab::on(&state_file("snapshots.xml"));
    let (table, _) = lab.exits(0, &["snapshot", "list"]);
    assert_eq!(
        table,
        "ENVIRONMENT  MACHINE  NAME      CREATED               STATE\n\
         lab          web      base      2025-11-29T07:06:40Z  running\n\
         lab          web      pre-salt  2025-11-29T07:08:20Z  shutoff\n",
        "oldest first; the foreign mail's snapshot is never listed"
    );
    let rows = lab.json(&["snapshot", "list", "--json", "web"]);
    assert_eq!(
        rows[0],
        serde_json::json!({
            "environment": "lab",
            "machine": "web",
            "domain": "web_lab",
            "name": "base",
            "created": "2025-11-29T07:06:40Z",
            "state": "running",
            "description": "made by lvlab for machine web of environment lab",
        })
    );
    assert_eq!(rows[1]["description"], serde_json::Value::Null);
    assert_eq!(
        lab.json(&["snapshot", "list", "--json", "db"]),
        serde_json::json!([])
    );
    assert_eq!(
        lab.exits(0, &["snapshot", "list", "db"]).0,
        "No snapshots.\n"
    );
    let (_, stderr) = lab.exits(1, &["snapshot", "list", "new"]);
    assert!(
        stderr.contains("machine new is not deployed (lvlab up new creates it)"),
        "{stderr}"
    );
    let (_, stderr) = lab.exits(1, &["snapshot", "list", "nope"]);
    assert!(stderr.contains("no machine `nope`"), "{stderr}");
}

#[test]
fn each_machine_gets_its_step_and_the_result_of_every_one_is_reported() {
    let lab = StateLab::on(&state_file("snapshots.xml"));
    let (stdout, _) = lab.exits(0, &["snapshot", "create", "fresh", "--all"]);
    assert!(
        stdout.contains("lab.web: create snapshot fresh (running: with its memory): done after"),
        "running web is snapshotted live: {stdout}"
    );
    assert!(
        stdout.contains("lab.db: create snapshot fresh: done after"),
        "shut-off db without memory: {stdout}"
    );
    assert!(
        stdout.ends_with("\nSnapshot fresh created on 2 machines.\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("new"), "undeployed `new` is left out");

    let (stdout, _) = lab.exits(0, &["snapshot", "create", "base", "--all", "--replace"]);
    assert!(
        stdout.contains("lab.web: replace snapshot base (running: with its memory): done")
            && stdout.contains("lab.db: create snapshot base: done"),
        "--replace replaces where the name exists: {stdout}"
    );
    let (stdout, _) = lab.exits(0, &["snapshot", "revert", "pre-salt", "web"]);
    assert!(
        stdout.ends_with("\nReverted 1 machine to snapshot pre-salt.\n"),
        "{stdout}"
    );
    let (stdout, _) = lab.exits(0, &["snapshot", "delete", "base", "web"]);
    assert!(
        stdout.ends_with("\nSnapshot base deleted from 1 machine.\n"),
        "{stdout}"
    );
}

#[test]
fn a_request_with_any_problem_is_refused_whole_before_anything_is_done() {
    let lab = StateLab::on(&state_file("snapshots.xml"));
    let refused = |args: &[&str], expected: &[&str]| {
        let (stdout, stderr) = lab.exits(1, args);
        assert!(stdout.is_empty(), "nothing was done: {stdout}");
        for text in expected {
            assert!(stderr.contains(text), "{args:?}: {text}\n{stderr}");
        }
    };
    refused(
        &["snapshot", "create", "base", "--all"],
        &[
            "error: machine web already has a snapshot base",
            "hint: pick another name, delete it first (lvlab snapshot delete base web), or pass --replace",
        ],
    );
    refused(
        &["snapshot", "revert", "pre-salt", "--all"],
        &["error: machine db has no snapshot pre-salt (it has none)"],
    );
    refused(
        &["snapshot", "delete", "gone", "web", "db", "new"],
        &[
            "error: 3 problems; nothing was done:",
            "- machine web has no snapshot gone (it has: base, pre-salt)",
            "- machine db has no snapshot gone (it has none)",
            "- machine new is not deployed (lvlab up new creates it)",
        ],
    );
    refused(
        &["snapshot", "create", "a/b", "web"],
        &["is not a snapshot name"],
    );
    refused(
        &["snapshot", "create", "x"],
        &["required arguments were not provided:\n  <VM>..."],
    );

    let foreign = StateLab::on(&state_file("foreign.xml"));
    let (stdout, stderr) = foreign.exits(1, &["snapshot", "create", "x", "--all"]);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(
            "domain web_lab (machine web) was not made by this lab; lvlab never snapshots, \
             reverts or deletes another's domain"
        ),
        "{stderr}"
    );
    let (_, stderr) = foreign.exits(1, &["snapshot", "list", "web"]);
    assert!(stderr.contains("was not made by this lab"), "{stderr}");

    let empty = StateLab::on(&state_file("empty.xml"));
    let (_, stderr) = empty.exits(1, &["snapshot", "create", "x", "--all"]);
    assert!(
        stderr.contains("no machine of the selected environments is deployed"),
        "{stderr}"
    );
}

#[test]
fn the_verbs_that_change_anything_take_the_environment_lock() {
    let state = state_file("snapshots.xml");
    let lab = StateLab::on(&state);
    let uri = format!("test://{}", state.display());
    let _held =
        lvlab::apply::EnvironmentLock::acquire(&run::state_dir(), &uri, "lab", Duration::ZERO)
            .unwrap();
    let (stdout, stderr) = lab.exits(
        1,
        &["snapshot", "create", "x", "--all", "--lock-timeout", "0"],
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "another lvlab (PID {}) is changing environment lab",
            std::process::id()
        )),
        "{stderr}"
    );
    lab.exits(0, &["snapshot", "list"]);
}

/// The state without its snapshots, beside the lab.
fn without_snapshots(lab: &StateLab) -> PathBuf {
    let text = std::fs::read_to_string(state_file("snapshots.xml")).unwrap();
    let mut kept = String::new();
    let mut inside = false;
    for line in text.lines() {
        inside |= line.contains("<test:domainsnapshot");
        if !inside {
            kept.push_str(line);
            kept.push('\n');
        }
        inside &= !line.contains("</test:domainsnapshot>");
    }
    assert!(!kept.contains("domainsnapshot") && kept.contains("</node>"));
    let path = lab.dir.path().join("no-snapshots.xml");
    std::fs::write(&path, kept).unwrap();
    path
}

#[test]
fn the_plan_shows_snapshots_as_facts_and_never_as_changes() {
    let lab = StateLab::on(&state_file("snapshots.xml"));
    let (text, _) = lab.exits(0, &["plan"]);
    assert!(
        text.contains("Note: lab.web has 2 snapshots: base, pre-salt\n"),
        "{text}"
    );
    assert!(!text.contains("mail"), "{text}");
    let (text, _) = lab.exits(0, &["plan", "--target", "absent"]);
    assert!(text.contains("Note: lab.web has 2 snapshots"), "{text}");
    let with = lab.json(&["plan", "--json"]);
    assert_eq!(
        with["snapshots"],
        serde_json::json!([{
            "address": {"kind": "machine", "environment": "lab", "vm_name": "web", "domain": "web_lab",
                        "uri": format!("test://{}", state_file("snapshots.xml").display())},
            "names": ["base", "pre-salt"],
        }])
    );

    // The same host without them plans exactly the same changes.
    let bare_file = without_snapshots(&lab);
    let bare = StateLab::on(&bare_file);
    let without = bare.json(&["plan", "--json"]);
    assert_eq!(without["snapshots"], serde_json::json!([]));
    for field in ["actions", "changes", "summary", "notes"] {
        // Each step names its host: the two files are two hosts.
        let strip = |plan: &serde_json::Value| {
            serde_json::to_string(&plan[field])
                .unwrap()
                .replace(&state_file("snapshots.xml").display().to_string(), "HOST")
                .replace(&bare_file.display().to_string(), "HOST")
                .replace(&lab.dir.path().display().to_string(), "LAB")
                .replace(&bare.dir.path().display().to_string(), "LAB")
        };
        assert_eq!(strip(&with), strip(&without), "{field}");
    }
    let code = |lab: &StateLab| lab.run(&["plan", "--detailed-exitcode"]).status.code();
    assert_eq!(code(&lab), code(&bare));
}

// The library on one test-driver connection, whose state lasts as long
// as the connection: what a snapshot does is seen by the next observe.

fn deployed_lab(dir: &Path) -> Desired {
    tiny_image(&dir.join("cache/cloud-images/tiny.qcow2"), "16M");
    let uri = format!("test://{}", state_file("empty.xml").display());
    let yaml = LabManifest::tiny("lab", &uri, dir)
        .defaults(|d| d.tcg(256).user_network().no_password())
        .machine("web", |m| m)
        .machine("db", |m| m)
        .to_yaml();
    lvlab::manifest::load_str(&yaml, &dir.join("Lvlab.yml"))
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
}

/// `verb name` on `machines` (all when empty), which must succeed.
fn snapshot(lab: &Lab, verb: Verb, name: &str, machines: &[&str]) -> Vec<snapshot::Step> {
    let name = SnapshotName::parse(name).unwrap();
    let machines: Vec<String> = machines.iter().map(|m| m.to_string()).collect();
    let request = Request {
        verb,
        name: &name,
        machines: &machines,
    };
    let observed = lab.observe().unwrap();
    let steps = snapshot::plan(lab.desired, &lab.environments, &observed, &request)
        .unwrap_or_else(|p| panic!("{p}"));
    let outcome = snapshot::execute(&steps, &lab.hosts, 4, &NoObserver, &AtomicBool::new(false));
    assert!(outcome.succeeded(), "{:?}", outcome.failed);
    steps
}

/// Each machine's power state and snapshot names, as observed now.
fn seen(lab: &Lab) -> Vec<(String, PowerState, Vec<String>)> {
    let observed = lab.observe().unwrap();
    observed.environments[0]
        .domains
        .iter()
        .map(|d| {
            let names = d.snapshots.iter().map(|s| s.name.clone()).collect();
            (d.name.clone(), d.state, names)
        })
        .collect()
}

#[test]
fn create_revert_and_delete_on_the_test_driver_and_the_plan_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let desired = deployed_lab(dir.path());
    let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
    converge(&lab, Target::Running, &Selection::default());
    let before = lab.observe().unwrap().fingerprint();

    let steps = snapshot(&lab, Verb::Create { replace: false }, "base", &[]);
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.with_memory), "both run: live");
    let observed = lab.observe().unwrap();
    assert_eq!(
        observed.fingerprint(),
        before,
        "a plan saved before is not stale"
    );
    let web = observed.environments[0].domain("web_lab").unwrap();
    assert_eq!(web.snapshots[0].state, "running");
    let description = web.snapshots[0].description.clone().unwrap();
    assert!(
        description.starts_with("made by lvlab for machine web of environment lab (")
            && description.contains("Lvlab.yml"),
        "{description}"
    );

    // Facts, not changes: the converged lab still plans nothing.
    let plan = lab
        .plan(Target::Running, &Selection::default())
        .unwrap()
        .plan;
    assert!(plan.is_empty() && plan.blocks.is_empty());
    let names: Vec<(String, Vec<String>)> = plan
        .snapshots
        .iter()
        .map(|m| (m.address.to_string(), m.names.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("lab.web".to_string(), vec!["base".to_string()]),
            ("lab.db".to_string(), vec!["base".to_string()])
        ]
    );
    let text = lvlab::plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains("Note: lab.db has 1 snapshot: base\n")
            && text.contains("No changes. The lab matches Lvlab.yml."),
        "{text}"
    );

    // db stopped, a shut-off snapshot taken; reverting brings back each
    // snapshot's power state.
    let db = Selection {
        machines: vec!["db".into()],
        ..Selection::default()
    };
    let planned = lab.plan(Target::Stopped, &db).unwrap();
    let options = ApplyOptions {
        force: true,
        shutdown_timeout: Duration::from_secs(5),
        ..ApplyOptions::default()
    };
    let outcome = lab
        .apply(&planned, &options, &NoObserver, &AtomicBool::new(false))
        .unwrap();
    assert!(outcome.succeeded(), "{:?}", outcome.failed);
    let steps = snapshot(&lab, Verb::Create { replace: false }, "off", &["db"]);
    assert!(
        !steps[0].with_memory,
        "a shut-off machine has no memory to save"
    );
    snapshot(&lab, Verb::Revert, "base", &["db"]);
    snapshot(&lab, Verb::Revert, "base", &["web"]);
    assert_eq!(
        seen(&lab),
        [
            (
                "db_lab".into(),
                PowerState::Running,
                vec!["base".into(), "off".into()]
            ),
            ("web_lab".into(), PowerState::Running, vec!["base".into()]),
        ]
    );
    snapshot(&lab, Verb::Revert, "off", &["db"]);
    assert_eq!(seen(&lab)[0].1, PowerState::ShutOff, "back to shut off");

    // An existing name is refused unless replaced; delete removes it.
    let name = SnapshotName::parse("base").unwrap();
    let observed = lab.observe().unwrap();
    let refused = snapshot::plan(
        lab.desired,
        &lab.environments,
        &observed,
        &Request {
            verb: Verb::Create { replace: false },
            name: &name,
            machines: &[],
        },
    )
    .unwrap_err();
    assert_eq!(
        refused.0,
        ["web", "db"].map(|m| Problem::Exists {
            machine: m.into(),
            name: "base".into()
        })
    );
    let steps = snapshot(&lab, Verb::Create { replace: true }, "base", &["web"]);
    assert_eq!(steps[0].verb, Verb::Create { replace: true });
    snapshot(&lab, Verb::Delete, "base", &[]);
    snapshot(&lab, Verb::Delete, "off", &["db"]);
    assert!(seen(&lab).iter().all(|(_, _, names)| names.is_empty()));
    let plan = lab
        .plan(Target::Running, &Selection::default())
        .unwrap()
        .plan;
    assert!(plan.snapshots.is_empty());
}

// One real QEMU domain: what only QEMU decides.

/// `qemu-io -c COMMAND` on a qcow2 file no domain runs on: its output.
fn qemu_io(disk: &Path, command: &str) -> String {
    let out = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", command])
        .arg(disk)
        .output()
        .expect("qemu-io (qemu-utils) is installed by scripts/setup.sh");
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "qemu-io {command}: {stderr}");
    stdout + &stderr
}

impl SessionLab {
    fn virsh(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("virsh")
            .args(["-c", "qemu:///session"])
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "virsh {args:?}: {stderr}");
        stdout
    }

    fn domain(&self) -> String {
        format!("snap_{}", self.env)
    }
}

#[test]
fn qemu_snapshots_are_live_revert_disks_and_power_state_and_keep_the_backing_chain() {
    let lab = SessionLab::empty("snap");
    lab.cache_tiny_image();
    let share = lab.dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    lab.manifest()
        .defaults(|d| d.no_password())
        .machine("snap", |m| {
            m.set("disk_strategy", "backing")
                .set("interfaces", "[{network_type: passt}]")
                .set(
                    "shared_directories",
                    format!("[{{source: {}, mount_tag: data}}]", share.display()),
                )
        })
        .write(lab.dir.path());
    lab.ok(&["up", "--all"]);
    let domain = lab.domain();
    let out = lab.ok(&["snapshot", "create", "live", "snap"]);
    assert!(out.contains("(running: with its memory): done"), "{out}");
    let xml = lab.virsh(&["snapshot-dumpxml", &domain, "live"]);
    assert!(
        xml.contains("<memory snapshot='internal'/>")
            && xml.contains("<disk name='vda' snapshot='internal'/>"),
        "an internal snapshot with memory: {xml}"
    );
    assert!(
        xml.contains("snapshot='no'/>"),
        "the read-only seed is left out: {xml}"
    );
    assert_eq!(lab.virsh(&["domstate", &domain]).trim(), "running");

    let disk = lab
        .dir
        .path()
        .join(format!("vms/{}/snap/disk0.qcow2", lab.env));
    let info = std::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(&disk)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        info["snapshots"][0]["name"], "live",
        "inside the overlay: {info}"
    );
    assert_eq!(
        info["backing-filename"],
        lab.dir
            .path()
            .join("cache/cloud-images/tiny.qcow2")
            .display()
            .to_string(),
        "the backing chain is intact"
    );
    let files: Vec<String> = std::fs::read_dir(disk.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|f| f.contains("live")),
        "no external file: {files:?}"
    );

    lab.ok(&["down", "--force", "--timeout", "1"]);
    let out = lab.ok(&["snapshot", "create", "off", "snap"]);
    let done = format!("{}.snap: create snapshot off: done", lab.env);
    assert!(out.contains(&done), "shut off: no memory: {out}");
    // Written behind the snapshot's back, undone by the revert.
    assert!(qemu_io(&disk, "write -P 0xab 0 64k").contains("wrote 65536/65536 bytes"));
    assert!(qemu_io(&disk, "read -P 0xab 0 64k").contains("read 65536/65536 bytes"));
    lab.ok(&["snapshot", "revert", "off", "snap"]);
    assert_eq!(lab.virsh(&["domstate", &domain]).trim(), "shut off");
    let restored = qemu_io(&disk, "read -P 0 0 64k");
    assert!(
        restored.contains("read 65536/65536 bytes") && !restored.contains("failed"),
        "the disk is back as it was: {restored}"
    );
    lab.ok(&["snapshot", "revert", "live", "snap"]);
    assert_eq!(
        lab.virsh(&["domstate", &domain]).trim(),
        "running",
        "the running snapshot comes back running"
    );
    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    let (stdout, _) = texts(&plan);
    assert_eq!(plan.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("has 2 snapshots: live, off"), "{stdout}");
    lab.ok(&["snapshot", "delete", "live", "snap"]);
    assert_eq!(
        lab.virsh(&["snapshot-list", &domain, "--name"]).trim(),
        "off"
    );
}
