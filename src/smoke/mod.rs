//! `lvlab smoke`: a self-test of a libvirt host. It makes a one-machine lab
//! of its own in a temporary directory ([`lab`]), runs the operations `up
//! --wait`, `down` and `destroy` run, checks inside the guest over SSH that
//! cloud-init applied the seed ([`guest`]), and reports each step with its
//! time. Whatever fails, the machine is destroyed and the directory
//! removed; the image stays in its cache.
//!
//! The steps, in order: `host` (libvirt answers; where KVM is offered and
//! no probe's answer is kept, the KVM probe runs, so `domain_type: auto`
//! picks TCG where KVM is broken), `image`, `up`, `ssh`, `login`,
//! `cloud-init`, `hostname`, `user`, `key`, `down`, `destroy`. A failure
//! skips every later step but `destroy`.

mod guest;
pub mod lab;
mod ui;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::images::set::CachedImage;
use crate::images::Reporter;
use crate::plan::{Selection, Target};
use crate::reconcile::{Ended, Lab, Operation};
pub use lab::LabError;
use lab::SmokeLab;
use ui::{Recorded, Recorder};

/// How long `down` waits for the guest's ACPI shutdown (a Debian guest
/// under TCG takes 5 to 6 s).
const DOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// What to test.
pub struct SmokeRequest {
    /// The image, and the cache it is (or goes) in.
    pub image: CachedImage,
    pub uri: String,
    /// How long to wait for SSH, as `up --wait` waits.
    pub wait: Duration,
    /// Where the lab's directory is made (`$TMPDIR`).
    pub work_dir: PathBuf,
}

/// Hears about the run as it goes.
pub trait SmokeReporter: Sync {
    fn finished(&self, step: &StepResult);
    /// Every so often while the wait for SSH lasts.
    fn waiting_for_ssh(&self, elapsed: Duration);
    /// Hears about the image download, if there is one.
    fn download_reporter(&self) -> Box<dyn Reporter>;
}

/// One step of the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Host,
    Image,
    Up,
    Ssh,
    Login,
    CloudInit,
    Hostname,
    User,
    Key,
    Down,
    Destroy,
}

impl Step {
    pub const ALL: [Step; 11] = [
        Step::Host,
        Step::Image,
        Step::Up,
        Step::Ssh,
        Step::Login,
        Step::CloudInit,
        Step::Hostname,
        Step::User,
        Step::Key,
        Step::Down,
        Step::Destroy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Host => "host",
            Step::Image => "image",
            Step::Up => "up",
            Step::Ssh => "ssh",
            Step::Login => "login",
            Step::CloudInit => "cloud-init",
            Step::Hostname => "hostname",
            Step::User => "user",
            Step::Key => "key",
            Step::Down => "down",
            Step::Destroy => "destroy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

/// How one step went.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: Step,
    pub verdict: Verdict,
    /// How long it took; `None` when skipped.
    pub seconds: Option<f64>,
    /// What it found, or why it failed or was skipped.
    pub detail: String,
}

/// The whole test.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub image: String,
    pub uri: String,
    /// The libvirt domain the test made (and destroyed).
    pub domain: String,
    pub passed: bool,
    pub seconds: f64,
    pub steps: Vec<StepResult>,
}

impl Report {
    /// The first step that failed.
    pub fn first_failure(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.verdict == Verdict::Fail)
    }
}

/// Runs the test. An error only when the lab cannot even be made (its
/// directory, key or manifest); everything after is a step of the report.
pub fn run(
    request: &SmokeRequest,
    reporter: &dyn SmokeReporter,
    interrupt: &AtomicBool,
) -> Result<Report, LabError> {
    let started = Instant::now();
    let smoke = SmokeLab::create(&request.work_dir, &request.image, &request.uri)?;
    let mut steps = Steps {
        reporter,
        results: Vec::new(),
    };
    let environments = smoke.desired.environments.iter().collect();
    let lab = steps.run(Step::Host, || {
        let lab = Lab::open(&smoke.desired, environments).map_err(|e| e.to_string())?;
        let detail = host_detail(&lab)?;
        Ok((lab, detail))
    });
    if let Some(lab) = lab {
        let run = Run {
            lab: &lab,
            smoke: &smoke,
            reporter,
        };
        run.create_and_check(&mut steps, request.wait, interrupt);
        // Its own interrupt flag: after a Ctrl-C the machine still goes.
        steps.run_always(Step::Destroy, || run.destroy());
    }
    steps.skip_rest("nothing was created: `host` did not pass");
    let machine = &smoke.desired.environments[0].machines[0];
    Ok(Report {
        image: request.image.spec.key.clone(),
        uri: request.uri.clone(),
        domain: machine.domain_name.clone(),
        passed: steps.results.iter().all(|s| s.verdict == Verdict::Pass),
        seconds: millis(started.elapsed()),
        steps: steps.results,
    })
}

/// The results so far, told to the reporter as they come.
struct Steps<'r> {
    reporter: &'r dyn SmokeReporter,
    results: Vec<StepResult>,
}

impl Steps<'_> {
    /// Runs `step` unless one before failed; its value when it passed.
    fn run<T>(
        &mut self,
        step: Step,
        work: impl FnOnce() -> Result<(T, String), String>,
    ) -> Option<T> {
        if let Some(failed) = self.results.iter().find(|s| s.verdict != Verdict::Pass) {
            let reason = format!("`{}` did not pass", failed.step.name());
            self.record(step, Verdict::Skipped, None, reason);
            return None;
        }
        self.run_always(step, work)
    }

    fn run_always<T>(
        &mut self,
        step: Step,
        work: impl FnOnce() -> Result<(T, String), String>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = work();
        let seconds = Some(millis(started.elapsed()));
        match result {
            Ok((value, detail)) => {
                self.record(step, Verdict::Pass, seconds, detail);
                Some(value)
            }
            Err(detail) => {
                self.record(step, Verdict::Fail, seconds, detail);
                None
            }
        }
    }

    /// Every step not run yet, skipped for `reason`.
    fn skip_rest(&mut self, reason: &str) {
        for step in Step::ALL {
            if !self.results.iter().any(|s| s.step == step) {
                self.record(step, Verdict::Skipped, None, reason.to_string());
            }
        }
    }

    fn record(&mut self, step: Step, verdict: Verdict, seconds: Option<f64>, detail: String) {
        let result = StepResult {
            step,
            verdict,
            seconds,
            detail,
        };
        self.reporter.finished(&result);
        self.results.push(result);
    }
}

/// Seconds to the millisecond: what a report needs, without float noise.
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_millis() as f64 / 1000.0
}

/// What libvirt offers on the lab's host, after the KVM probe where KVM is
/// offered and no answer for this kernel and QEMU is kept.
fn host_detail(lab: &Lab) -> Result<String, String> {
    use crate::kvm_probe;
    let host = lab
        .hosts
        .iter()
        .next()
        .ok_or("the lab has no reachable host")?;
    let uri = host.uri();
    let caps = crate::observe::capabilities::read(&host.connection()).map_err(|e| e.to_string())?;
    if caps.driver.eq_ignore_ascii_case("test") {
        return Err(format!(
            "{uri} is libvirt's test driver, which runs no guests\n  hint: give a QEMU URI, \
             e.g. --connect qemu:///session"
        ));
    }
    let version = caps.hypervisor_version.as_deref();
    let hypervisor = format!("{uri}: {} {}", caps.driver, version.unwrap_or(""));
    if !caps.kvm {
        return Ok(format!("{}; no KVM offered: TCG", hypervisor.trim_end()));
    }
    let kept = kvm_probe::cache::cached(&host.connection(), version);
    let (probe, when) = match kept {
        Some(record) => (record, "kept probe answer"),
        None => (
            kvm_probe::run::probe_and_store(host, &caps).map_err(|e| e.to_string())?,
            "probed now",
        ),
    };
    let accelerator = if probe.kvm_runs {
        "KVM runs guests: KVM"
    } else {
        "KVM is offered but does not run guests: TCG"
    };
    Ok(format!("{}; {accelerator} ({when})", hypervisor.trim_end()))
}

/// The lab, once libvirt answered.
struct Run<'a> {
    lab: &'a Lab<'a>,
    smoke: &'a SmokeLab,
    reporter: &'a dyn SmokeReporter,
}

impl Run<'_> {
    /// Every step from `image` to `down`; each one after a failure is
    /// skipped.
    fn create_and_check(&self, steps: &mut Steps, wait: Duration, interrupt: &AtomicBool) {
        let images_only = Selection {
            images_only: true,
            ..Selection::default()
        };
        steps.run(Step::Image, || {
            let done = self.operate(Operation::new(Target::Running, images_only), interrupt)?;
            let key = &self.machine().os;
            let verified = self.smoke.desired.images[key].checksum.is_some();
            let detail = match (done.image_steps, verified) {
                (0, _) => format!("{key}: in the cache"),
                (_, true) => format!("{key}: fetched and verified"),
                (_, false) => format!("{key}: fetched, unverified (it has no checksum_url)"),
            };
            Ok(((), detail))
        });
        steps.run(Step::Up, || {
            let done = self.operate(
                Operation::new(Target::Running, Selection::default()),
                interrupt,
            )?;
            let domain = &self.machine().domain_name;
            let how = done
                .domain_type
                .map_or(String::new(), |t| format!(" (domain type {t})"));
            Ok(((), format!("{domain} defined and started{how}")))
        });
        steps.run(Step::Ssh, || {
            let operation = Operation {
                wait: Some(wait),
                ..Operation::new(Target::Running, Selection::default())
            };
            let done = self.operate(operation, interrupt)?;
            if !done.nothing_to_do {
                return Err("the machine had to be started again after `up`".into());
            }
            match done.ssh_ready {
                Some(connect) => Ok(((), format!("answers: {connect}"))),
                // Not waited for: it has no endpoint lvlab can reach.
                None => Err(done.failures.join("\n")),
            }
        });
        let guest = steps.run(Step::Login, || self.login());
        self.guest_checks(steps, guest.as_ref());
        steps.run(Step::Down, || {
            let operation = Operation {
                shutdown_timeout: DOWN_TIMEOUT,
                ..Operation::new(Target::Stopped, Selection::default())
            };
            self.operate(operation, interrupt)?;
            Ok(((), "shut down by ACPI".to_string()))
        });
    }

    fn machine(&self) -> &crate::desired::MachineSpec {
        &self.smoke.desired.environments[0].machines[0]
    }

    fn login(&self) -> Result<(guest::Guest, String), String> {
        let machine = self.machine();
        let reach = crate::access::gather(self.lab, std::slice::from_ref(&machine.vm_name))
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or("the machine is not in the lab")?;
        let guest = guest::Guest::new(reach)?;
        let detail = guest::judge_login(&guest.run(guest::LOGIN)?, lab::USER)?;
        Ok((guest, detail))
    }

    /// The checks after `login`; without a login (`None`) each is skipped.
    fn guest_checks(&self, steps: &mut Steps, guest: Option<&guest::Guest>) {
        let hostname = &self.machine().hostname;
        let public_key = &self.smoke.public_key;
        let ask = |command: &str| guest.ok_or("no login".to_string())?.run(command);
        steps.run(Step::CloudInit, || {
            guest::judge_cloud_init(&ask(&guest::cloud_init_command())?).map(|d| ((), d))
        });
        steps.run(Step::Hostname, || {
            guest::judge_hostname(&ask(guest::HOSTNAME)?, hostname).map(|d| ((), d))
        });
        steps.run(Step::User, || {
            guest::judge_user(&ask(guest::USER)?, lab::USER).map(|d| ((), d))
        });
        steps.run(Step::Key, || {
            guest::judge_key(&ask(guest::KEY)?, public_key).map(|d| ((), d))
        });
    }

    /// Powers off, undefines and removes the machine's files, then checks
    /// that nothing of it is left.
    fn destroy(&self) -> Result<((), String), String> {
        let cleanup = AtomicBool::new(false);
        self.operate(
            Operation::new(Target::Absent, Selection::default()),
            &cleanup,
        )?;
        let left = self.lab.deployed().map_err(|e| e.to_string())?;
        if !left.is_empty() {
            return Err(format!("still defined after destroy: {}", left.join(", ")));
        }
        let vm_dir = &self.machine().vm_dir;
        if vm_dir.exists() {
            return Err(format!("{} is still there after destroy", vm_dir.display()));
        }
        Ok(((), "domain undefined, its files removed".to_string()))
    }

    /// Runs `operation` on the lab: what it showed, or why it failed.
    fn operate(&self, operation: Operation, interrupt: &AtomicBool) -> Result<Recorded, String> {
        let ui = Recorder::new(self.reporter);
        let ended = operation
            .run(self.lab, &ui, interrupt)
            .map_err(|e| e.to_string())?;
        let recorded = ui.into_recorded();
        match ended {
            Ended::Applied(outcome) if !outcome.succeeded() => {
                Err(if recorded.failures.is_empty() {
                    format!("{} step(s) not run", outcome.not_run.len())
                } else {
                    recorded.failures.join("\n")
                })
            }
            _ => Ok(recorded),
        }
    }
}
