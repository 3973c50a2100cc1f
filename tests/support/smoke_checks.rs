//! `lvlab smoke` run as a user runs it, and what it must leave behind:
//! nothing. [`run_smoke`] runs it with `--json` in a `TMPDIR` of its own
//! and reads the report; [`leftovers`] names what the run left (a domain,
//! a file in that `TMPDIR`). The fast tier checks the failure path with
//! these (a blank disk never boots); the real-guest tier calls
//! [`smoke_passes`] with its real image, and records each returned check
//! with its own tally. Needs the test file to include
//! `support/lvlab_run.rs` as `run` (lvlab's locks and kept KVM probe go
//! to the test run's state directory).

// Each test file uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every step of the report, in order.
pub const STEPS: [&str; 11] = [
    "host",
    "image",
    "up",
    "ssh",
    "login",
    "cloud-init",
    "hostname",
    "user",
    "key",
    "down",
    "destroy",
];

/// One finished `lvlab smoke --json`.
pub struct SmokeRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The report, when stdout held one.
    pub report: Option<serde_json::Value>,
    /// The `TMPDIR` it ran with: empty again afterwards.
    pub tmpdir: PathBuf,
}

impl SmokeRun {
    /// `(verdict, detail)` of step `name`.
    pub fn step(&self, name: &str) -> Option<(String, String)> {
        let steps = self.report.as_ref()?["steps"].as_array()?;
        let step = steps.iter().find(|s| s["step"] == name)?;
        Some((
            step["verdict"].as_str()?.to_string(),
            step["detail"].as_str()?.to_string(),
        ))
    }

    /// The step names of the report, in its order.
    pub fn step_names(&self) -> Vec<String> {
        self.report
            .as_ref()
            .and_then(|r| r["steps"].as_array())
            .map_or(Vec::new(), |steps| {
                steps
                    .iter()
                    .filter_map(|s| s["step"].as_str().map(str::to_string))
                    .collect()
            })
    }

    pub fn domain(&self) -> Option<String> {
        Some(self.report.as_ref()?["domain"].as_str()?.to_string())
    }
}

/// `lvlab -C dir smoke --json ARGS` (`binary` the lvlab binary) with `TMPDIR` a
/// new directory in `dir`, as `tests/support/lvlab_run.rs` runs lvlab: no
/// host-wide settings, no colour, no terminal, the test run's state
/// directory.
pub fn run_smoke(binary: &Path, dir: &Path, args: &[&str]) -> SmokeRun {
    let tmpdir = dir.join("smoke-tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let out = Command::new(binary)
        .arg("-C")
        .arg(dir)
        .args(["smoke", "--json"])
        .args(args)
        .env("TMPDIR", &tmpdir)
        .env("NO_COLOR", "1")
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(lvlab::apply::STATE_DIR_VAR, crate::run::state_dir())
        .env_remove("LVLAB_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the lvlab binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    SmokeRun {
        code: out.status.code(),
        report: serde_json::from_str(&stdout).ok(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        tmpdir,
    }
}

/// What the run left behind on `uri` and in its `TMPDIR`.
pub fn leftovers(run: &SmokeRun, uri: &str) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(domain) = run.domain() {
        let info = Command::new("virsh")
            .args(["-c", uri, "dominfo", &domain])
            .stdin(Stdio::null())
            .output()
            .expect("virsh (libvirt-clients) is installed by scripts/setup.sh");
        if info.status.success() {
            left.push(format!("domain {domain}"));
        }
    }
    for entry in std::fs::read_dir(&run.tmpdir).unwrap() {
        left.push(entry.unwrap().path().display().to_string());
    }
    left
}

/// One check of the real-guest run: what was expected and what was found.
#[derive(Debug)]
pub struct SmokeCheck {
    pub check: String,
    pub ok: bool,
    pub expected: String,
    pub found: String,
}

/// Runs `lvlab smoke --image IMAGE` on `qemu:///session` in `dir` (a
/// directory whose `Lvlab.yml` names `image`, the real-guest tier's
/// Debian image) with the lvlab binary at `binary`: it must exit 0 with
/// every step passed, and leave no domain and no file behind.
pub fn smoke_passes(binary: &Path, dir: &Path, image: &str) -> Vec<SmokeCheck> {
    let uri = "qemu:///session";
    let run = run_smoke(binary, dir, &["--image", image, "--connect", uri]);
    let mut checks = Vec::new();
    let mut check = |check: String, ok: bool, expected: &str, found: String| {
        checks.push(SmokeCheck {
            check,
            ok,
            expected: expected.to_string(),
            found,
        })
    };
    check(
        "`lvlab smoke` exits 0".into(),
        run.code == Some(0) && run.report.is_some(),
        "exit code 0 and a JSON report on stdout",
        format!("exit code {:?}\n{}{}", run.code, run.stdout, run.stderr),
    );
    check(
        "`lvlab smoke` reports every step".into(),
        run.step_names() == STEPS,
        &STEPS.join(", "),
        run.step_names().join(", "),
    );
    for name in STEPS {
        let (verdict, detail) = run.step(name).unwrap_or_default();
        check(
            format!("`lvlab smoke` step `{name}`"),
            verdict == "pass",
            "pass",
            format!("{verdict}: {detail}"),
        );
    }
    let left = leftovers(&run, uri);
    check(
        "`lvlab smoke` leaves nothing behind".into(),
        left.is_empty(),
        "no domain, no file in its TMPDIR",
        left.join(", "),
    );
    checks
}
