//! `provision:` as a user runs it: the real binary applies a lab on the
//! test-driver host `state/loopback.xml`, whose machines have static
//! addresses on the host's loopback. The test listens on port 22 there with
//! a stand-in SSH server (it only says its banner, which is what the wait
//! for SSH asks of it), and a stand-in `ssh` on PATH records its argv and
//! standard input, prints lines on both streams and exits with a code of
//! its choice: what lvlab streams, prefixes, feeds and does with a failure.
//! A real guest's run is the real-guest tier's
//! (`tests/support/provision_checks.rs`).

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
// The real-guest tier's check: compiled here so it keeps up with the
// binary's options.
#[path = "support/provision_checks.rs"]
mod provision_checks;
#[path = "support/tiny_image.rs"]
mod tiny;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use lab_manifest::LabManifest;
use run::{lvlab, texts};

/// Records each call as `calls/TIME-PID` (argv, one word a line) and
/// `calls/TIME-PID.in` (stdin); prints `out: LAST-WORD` and `err: LAST-WORD`, then each stdin
/// line as `in: LINE`; exits 7 when the last word holds `fail`.
const STAND_IN_SSH: &str = r#"#!/bin/sh
calls="$(dirname "$0")/../calls"
mkdir -p "$calls"
call="$calls/$(date +%s%N)-$$"
printf '%s\n' "$@" > "$call"
cat > "$call.in"
for word; do last=$word; done
echo "out: $last"
echo "err: $last" >&2
sed 's/^/in: /' "$call.in"
case "$last" in *fail*) exit 7;; esac
"#;

struct Lab {
    dir: tempfile::TempDir,
    _servers: Vec<TcpListener>,
}

impl Lab {
    /// `web` at `127.0.0.<web>` provisioned by a command and a script,
    /// `db` at `127.0.0.<db>` by a failing command and one after it.
    fn new(web: u8, db: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        tiny::tiny_image(&base.join("cache/cloud-images/tiny.qcow2"), "16M");
        std::fs::write(base.join("setup.sh"), "set -e\nhostname\n").unwrap();
        std::fs::create_dir(base.join("bin")).unwrap();
        let ssh = base.join("bin/ssh");
        std::fs::write(&ssh, STAND_IN_SSH).unwrap();
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let uri = format!("test://{}/state/loopback.xml", env!("CARGO_MANIFEST_DIR"));
        LabManifest::tiny("lab", &uri, base)
            .lab_id("state-files")
            .defaults(|d| {
                d.memory(256)
                    .cpu(1)
                    .no_password()
                    .set("provision", "[\"echo defaults\"]")
            })
            .machine("web", |m| {
                m.set(
                    "interfaces",
                    format!("[{{network: loop, ip4: 127.0.0.{web}/8}}]"),
                )
                .set("provision", "[{script: setup.sh}]")
            })
            .machine("db", |m| {
                m.set(
                    "interfaces",
                    format!("[{{network: loop, ip4: 127.0.0.{db}/8}}]"),
                )
                .set("provision", "[\"this will fail\", \"never runs\"]")
            })
            .write(base);
        let servers = [web, db].map(|host| ssh_server(&format!("127.0.0.{host}:22")));
        Self {
            dir,
            _servers: servers.into(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        lvlab(self.path())
            .env("PATH", path)
            .args(args)
            .output()
            .unwrap()
    }

    /// Each call of the stand-in ssh, in order: its argv and its stdin.
    fn calls(&self) -> Vec<(Vec<String>, String)> {
        let dir = self.path().join("calls");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.retain(|n| !n.ends_with(".in"));
        names.sort();
        names
            .iter()
            .map(|name| {
                let read = |name: String| std::fs::read_to_string(dir.join(name)).unwrap();
                let argv = read(name.clone()).lines().map(str::to_string).collect();
                (argv, read(format!("{name}.in")))
            })
            .collect()
    }
}

/// A stand-in SSH server at `address` that sends its banner to whoever
/// connects (the wait for SSH probes for it), on a thread of its own.
fn ssh_server(address: &str) -> TcpListener {
    let listener = TcpListener::bind(address).unwrap_or_else(|e| {
        panic!("cannot listen on {address} (these tests run as root, nothing else on port 22 of 127.0.0.x): {e}")
    });
    let serving = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for stream in serving.incoming().flatten() {
            use std::io::Write;
            let _ = (&stream).write_all(b"SSH-2.0-stand-in\r\n");
        }
    });
    listener
}

fn lines_of(text: &str, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn each_machine_runs_its_list_over_ssh_prefixed_and_a_failure_stops_only_that_machine() {
    let lab = Lab::new(21, 22);
    let out = lab.run(&["apply", "--auto-approve"]);
    let (stdout, stderr) = texts(&out);
    assert!(
        !out.status.success(),
        "db's provisioning failed:\n{stdout}\n{stderr}"
    );
    // Both streams of each command, line by line, behind the machine's name.
    assert_eq!(
        lines_of(&stdout, "web | "),
        [
            "web | err: -s",
            "web | err: echo defaults",
            "web | in: hostname",
            "web | in: set -e",
            "web | out: -s",
            "web | out: echo defaults",
        ],
        "{stdout}"
    );
    assert_eq!(
        lines_of(&stdout, "db | "),
        [
            "db | err: echo defaults",
            "db | err: this will fail",
            "db | out: echo defaults",
            "db | out: this will fail",
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("lab.web: provision: done after"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "provision `this will fail` failed (exit code 7); the entries after it did not run"
        ),
        "{stderr}"
    );
    // The commands lvlab ran: a command line as ssh's remote command, a
    // script as `sh -s` with its text on stdin; nothing after the failure.
    let calls = lab.calls();
    let at = |host: &str| -> Vec<(String, String)> {
        calls
            .iter()
            .filter(|(argv, _)| argv.iter().any(|w| w == host))
            .map(|(argv, stdin)| {
                (
                    argv[argv.iter().position(|w| w == host).unwrap() + 1..].join(" "),
                    stdin.clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        at("127.0.0.21"),
        [
            ("echo defaults".to_string(), String::new()),
            ("sh -s".to_string(), "set -e\nhostname\n".to_string()),
        ]
    );
    assert_eq!(
        at("127.0.0.22"),
        [
            ("echo defaults".to_string(), String::new()),
            ("this will fail".to_string(), String::new()),
        ]
    );
    let (argv, _) = &calls[0];
    assert_eq!(
        argv[0], "-o",
        "the argv of `lvlab ssh`: options, then -p, -l, --"
    );
    let tail = &argv[argv.iter().position(|w| w == "-p").unwrap()..];
    assert_eq!(tail[0..2], ["-p", "22"]);
    assert_eq!(tail[4], "--");
}

#[test]
fn the_json_view_has_terraforms_provision_lines() {
    let lab = Lab::new(23, 24);
    let out = lab.run(&["apply", "--auto-approve", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert!(
        !out.status.success(),
        "db's provisioning failed:\n{stdout}\n{stderr}"
    );
    let schema = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/apply-json.schema.json"),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&serde_json::from_str(&schema).unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for line in &lines {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["type"] == kind).collect()
    };
    assert_eq!(of("provision_start").len(), 2);
    assert_eq!(of("provision_complete").len(), 1);
    let errored = of("provision_errored");
    assert_eq!(errored.len(), 1);
    assert_eq!(errored[0]["hook"]["resource"]["vm_name"], "db");
    assert_eq!(errored[0]["hook"]["error"]["kind"], "provision");
    let outputs: Vec<&str> = of("provision_progress")
        .iter()
        .map(|l| l["hook"]["output"].as_str().unwrap())
        .collect();
    assert!(outputs.contains(&"out: echo defaults"), "{outputs:?}");
    assert!(outputs.contains(&"in: set -e"), "{outputs:?}");
    assert_eq!(of("provision_complete")[0]["hook"]["action"], "provision");
    assert_eq!(
        of("provision_complete")[0]["hook"]["resource"]["vm_name"],
        "web"
    );
    // Before the step's own apply_complete, as terraform orders them.
    let position = |kind: &str| {
        lines
            .iter()
            .position(|l| l["type"] == kind && l["hook"]["action"] == "provision")
            .unwrap()
    };
    assert!(position("provision_complete") < position("apply_complete"));
    assert!(position("provision_errored") < position("apply_errored"));
}

#[test]
fn reprovision_takes_a_machine_of_the_manifest_that_has_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("test://{}/state/loopback.xml", env!("CARGO_MANIFEST_DIR"));
    LabManifest::tiny("lab", &uri, dir.path())
        .machine("web", |m| m.set("provision", "[\"true\"]"))
        .machine("db", |m| m)
        .write(dir.path());
    let plan = |vm: &str| {
        lvlab(dir.path())
            .args(["plan", "--reprovision", vm])
            .output()
            .unwrap()
    };
    let out = plan("wbe");
    let (_, stderr) = texts(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("wbe") && stderr.contains("web"), "{stderr}");
    let out = plan("db");
    let (_, stderr) = texts(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--reprovision db: the machine has no `provision:` list to run"),
        "{stderr}"
    );
}

#[test]
fn a_missing_script_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("test://{}/state/loopback.xml", env!("CARGO_MANIFEST_DIR"));
    let manifest: PathBuf = LabManifest::tiny("lab", &uri, dir.path())
        .machines_yaml("      - vm_name: web\n        provision:\n          - echo ok\n          - script: ./nowhere.sh\n")
        .write(dir.path());
    let out = lvlab(dir.path()).arg("validate").output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(!out.status.success(), "{stdout}");
    let line = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .position(|l| l.contains("nowhere.sh"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("Lvlab.yml:{line}:")),
        "file:line:col of the entry: {stderr}"
    );
    assert!(stderr.contains("cannot read the script"), "{stderr}");
    assert!(stderr.contains("nowhere.sh"), "{stderr}");
}

#[test]
fn plan_json_has_the_provision_step_after_the_start() {
    let lab = Lab::new(25, 26);
    let out = lab.run(&["plan", "--json", "web"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let schema = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan-json.schema.json"),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&serde_json::from_str(&schema).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&plan)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let actions = plan["actions"].as_array().unwrap();
    let id_of = |kind: &str| {
        actions
            .iter()
            .find(|a| a["action"] == kind)
            .unwrap_or_else(|| panic!("no {kind}: {stdout}"))
    };
    let provision = id_of("provision");
    assert!(provision["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        provision["depends_on"],
        serde_json::json!([id_of("start_domain")["id"]])
    );
}
