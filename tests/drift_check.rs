//! scripts/drift-check.sh, the CI drift check that docs/ci.md's GitHub
//! Actions and GitLab CI recipes call, run as those jobs run it, against a
//! lab on `qemu:///session` (TCG, a blank disk, one user-mode NIC, defined
//! but never started, so no QEMU runs): 0 and a plan without changes while
//! the lab matches its manifest, 2 and the plan with the reason after
//! `virsh setmaxmem --config` behind lvlab's back, 1 and no plan for a
//! broken manifest. One lab, destroyed even when a case fails.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/session_lab.rs"]
mod session_lab;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use session_lab::SessionLab;

/// What one run of the script gave: its exit code, stdout and stderr, and
/// the plan it left for the job's artifact.
struct Check {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    plan: Option<serde_json::Value>,
}

impl SessionLab {
    /// The script with lvlab's test settings, the lab's directory and
    /// `args` after its own `--artifacts`.
    fn drift_check(&self, args: &[&str]) -> Check {
        let artifacts = self.dir.path().join("artifacts");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/drift-check.sh");
        let (mut command, lvlab_args) = run::like_lvlab(self.dir.path(), "sh");
        let out = command
            .arg(script)
            .arg("--artifacts")
            .arg(&artifacts)
            .args(lvlab_args)
            .args(args)
            .env("LVLAB", env!("CARGO_BIN_EXE_lvlab"))
            .output()
            .unwrap();
        let (stdout, stderr) = run::texts(&out);
        let plan = std::fs::read_to_string(artifacts.join("plan.json"))
            .ok()
            .map(|text| serde_json::from_str(&text).expect("plan.json is JSON"));
        Check {
            code: out.status.code(),
            stdout,
            stderr,
            plan,
        }
    }
}

#[test]
fn drift_check_exits_0_2_and_1_and_keeps_the_json_plan() {
    let lab = SessionLab::empty("driftck");
    lab.cache_tiny_image();
    lab.manifest()
        .defaults(|d| d.no_password())
        .machine("one", |m| m.set("interfaces", "[{network_type: user}]"))
        .write(lab.dir.path());
    // Defined, not started: the check needs a domain, not a running guest.
    let stopped = ["--target", "stopped"];
    lab.ok(&["apply", "--auto-approve", "--target", "stopped"]);

    let clean = lab.drift_check(&stopped);
    assert_eq!(clean.code, Some(0), "{}{}", clean.stdout, clean.stderr);
    assert!(clean.stdout.contains("no drift"), "{}", clean.stdout);
    let plan = clean.plan.expect("the plan of a clean lab is kept");
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["changes"].as_array().map(Vec::len), Some(0), "{plan}");

    let domain = format!("one_{}", lab.env);
    let virsh = Command::new("virsh")
        .args([
            "-c",
            "qemu:///session",
            "setmaxmem",
            &domain,
            "256M",
            "--config",
        ])
        .output()
        .expect("virsh (libvirt-clients) is installed by scripts/setup.sh");
    assert!(virsh.status.success(), "{:?}", run::texts(&virsh));
    let drifted = lab.drift_check(&stopped);
    assert_eq!(
        drifted.code,
        Some(2),
        "{}{}",
        drifted.stdout,
        drifted.stderr
    );
    assert!(
        drifted.stdout.contains("drift: the lab differs"),
        "{}",
        drifted.stdout
    );
    // The text plan for the log gives the reason.
    assert!(
        drifted.stdout.contains("changed outside lvlab"),
        "{}",
        drifted.stdout
    );
    let plan = drifted.plan.expect("the plan of a drifted lab is kept");
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{plan}");
    assert_eq!(changes[0]["address"]["vm_name"], "one", "{plan}");

    // A manifest of its own, so that dropping the lab still destroys it.
    let broken = lab.dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "environment:\n  - name: broken\n    machines: [{vm_name: x, memroy: 1}]\n",
    )
    .unwrap();
    let failed = lab.drift_check(&["-f", broken.to_str().unwrap()]);
    assert_eq!(failed.code, Some(1), "{}{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("unknown key `memroy`") && failed.stderr.contains("did not run"),
        "{}",
        failed.stderr
    );
    assert!(failed.plan.is_none(), "no plan is left for a failed check");
}
