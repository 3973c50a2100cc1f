//! The operation for a script (`--json`): one JSON object per line on
//! stdout, in the shape of terraform's machine-readable UI (docs/apply-json.md).
//! Every line has `@level`, `@message`, `@module`, `@timestamp` and `type`;
//! the first is the `version` line. Nothing else goes to stdout.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::Printer;
use crate::apply::{ActionError, Outcome};
use crate::cloudinit::password::{OneTimePassword, PasswordReporter};
use crate::images::Reporter;
use crate::plan::{Action, Address, Change, Plan, Step, Summary, Target};
use crate::provision::ProvisionReporter;
use crate::reconcile::{Confirm, OperationError, Ui};

/// The stream's version: the minor part grows with added fields or types,
/// the major part with changed ones (as terraform's `ui`).
pub const UI_VERSION: &str = "1.0";

/// Where the lines go. Starting one writes the `version` line.
pub struct JsonStream<'p> {
    printer: &'p Printer,
}

impl<'p> JsonStream<'p> {
    pub fn start(printer: &'p Printer) -> Self {
        let stream = Self { printer };
        let version = env!("CARGO_PKG_VERSION");
        stream.line(
            "info",
            &format!("lvlab {version}"),
            "version",
            fields(json!({"lvlab": version, "ui": UI_VERSION})),
        );
        stream
    }

    /// One line: the four keys every line has, `type`, and `extra`.
    fn line(&self, level: &str, message: &str, kind: &str, extra: Map<String, Value>) {
        let mut line = extra;
        line.insert("@level".into(), level.into());
        line.insert("@message".into(), message.into());
        line.insert("@module".into(), "lvlab.ui".into());
        line.insert(
            "@timestamp".into(),
            crate::images::record::now_rfc3339().into(),
        );
        line.insert("type".into(), kind.into());
        self.printer.out(&Value::Object(line).to_string());
    }

    /// A `diagnostic` line: `severity` is `error`, `warning` or `note`.
    pub fn diagnostic(&self, severity: &str, summary: &str, detail: Map<String, Value>) {
        let level = match severity {
            "error" => "error",
            "warning" => "warn",
            _ => "info",
        };
        let mut diagnostic = detail;
        diagnostic.insert("severity".into(), severity.into());
        diagnostic.insert("summary".into(), summary.into());
        let mut extra = Map::new();
        extra.insert("diagnostic".into(), Value::Object(diagnostic));
        self.line(level, summary, "diagnostic", extra);
    }

    /// The error a command ends with.
    pub fn error(&self, text: &str) {
        self.diagnostic("error", text.trim_end(), Map::new());
    }
}

pub struct JsonUi<'s, 'p> {
    stream: &'s JsonStream<'p>,
    /// `--show-passwords`: a console password's value is in its line.
    show_passwords: bool,
}

impl<'s, 'p> JsonUi<'s, 'p> {
    pub fn new(stream: &'s JsonStream<'p>, show_passwords: bool) -> Self {
        Self {
            stream,
            show_passwords,
        }
    }

    /// A line about one step: its `hook` (resource, action) and `extra`.
    fn hook_line(&self, level: &str, message: &str, kind: &str, step: &Step, extra: Value) {
        let mut hook = fields(extra);
        hook.insert("resource".into(), resource(&step.address));
        hook.insert("action".into(), action_kind(&step.action));
        hook.insert("description".into(), step.action.describe().into());
        let mut line = Map::new();
        line.insert("hook".into(), Value::Object(hook));
        self.stream.line(level, message, kind, line);
    }

    fn change_summary(&self, message: &str, target: Target, summary: Summary) {
        let operation = if target == Target::Absent {
            "destroy"
        } else {
            "apply"
        };
        self.stream.line(
            "info",
            message,
            "change_summary",
            fields(json!({"changes": {
                "add": summary.add,
                "change": summary.change,
                "destroy": summary.destroy,
                "operation": operation,
            }})),
        );
    }
}

/// `provision_progress`: one line a provisioning command printed.
impl ProvisionReporter for JsonUi<'_, '_> {
    fn provision_output(&self, step: &Step, line: &str) {
        let message = format!("{}: (ssh): {line}", step.address);
        let output = json!({"output": line});
        self.hook_line("info", &message, "provision_progress", step, output);
    }
}

impl JsonUi<'_, '_> {
    /// `provision_complete` or `provision_errored`, before the step's own
    /// `apply_complete` or `apply_errored` (terraform's order).
    fn provision_finished(&self, step: &Step, result: &Result<(), ActionError>) {
        let what = format!("{}: Provisioning with ssh", step.address);
        match result {
            Ok(()) => {
                let message = format!("{what} complete");
                self.hook_line("info", &message, "provision_complete", step, json!({}));
            }
            Err(error) => {
                let message = format!("{what} errored: {error}");
                let error = json!({"error": {"kind": error.kind(), "message": error.to_string()}});
                self.hook_line("error", &message, "provision_errored", step, error);
            }
        }
    }
}

fn is_provision(step: &Step) -> bool {
    matches!(step.action, Action::Provision { .. })
}

impl PasswordReporter for JsonUi<'_, '_> {
    fn seed_written(&self, vm_name: &str, user: &str, password: &OneTimePassword) {
        let mut detail = fields(json!({"vm_name": vm_name, "user": user}));
        let summary = format!("Console password for {vm_name} (user {user})");
        if self.show_passwords {
            detail.insert("password".into(), password.reveal().into());
            detail.insert(
                "detail".into(),
                "shown once; lvlab keeps only its hash".into(),
            );
        } else {
            detail.insert(
                "detail".into(),
                "set and not shown: only its hash is kept; run with --show-passwords to include it"
                    .into(),
            );
        }
        let mut diagnostic = detail;
        diagnostic.insert("severity".into(), "note".into());
        diagnostic.insert("summary".into(), summary.clone().into());
        self.stream.line(
            "info",
            &summary,
            "diagnostic",
            fields(json!({"sensitive": true, "diagnostic": diagnostic})),
        );
    }
}

impl Ui for JsonUi<'_, '_> {
    fn show_plan(&self, plan: &Plan) {
        for (_, step) in plan.steps() {
            // A resource may also have a replacement not asked for: the
            // block the step carries out is the other one.
            let block = plan
                .blocks
                .iter()
                .filter(|b| b.address == step.address)
                .min_by_key(|b| b.change == Change::ReplaceNotRequested);
            let reason = block
                .and_then(|b| b.reasons.first())
                .and_then(|r| serde_json::to_value(r).ok())
                .and_then(|r| r.get("reason").cloned())
                .unwrap_or(Value::Null);
            let change = block
                .and_then(|b| serde_json::to_value(b.change).ok())
                .unwrap_or(Value::Null);
            self.stream.line(
                "info",
                &format!("{}: Plan to {}", step.address, step.action.describe()),
                "planned_change",
                fields(json!({"change": {
                    "resource": resource(&step.address),
                    "action": action_kind(&step.action),
                    "description": step.action.describe(),
                    "change": change,
                    "reason": reason,
                }})),
            );
        }
        for note in &plan.notes {
            self.stream.diagnostic("note", note, Map::new());
        }
        if plan.is_empty() {
            self.change_summary("No changes.", plan.target, Summary::default());
        }
    }

    fn confirm(&self, confirm: &Confirm) -> Result<bool, OperationError> {
        // The command refuses --json without a way past the question.
        Err(OperationError::NobodyToAsk(*confirm))
    }

    fn cancelled(&self) {}

    fn apply_starting(&self, _: &Plan) {}

    fn download_reporter(&self) -> Box<dyn Reporter> {
        Box::new(crate::images::progress::Silent)
    }

    fn step_started(&self, step: &Step) {
        self.hook_line(
            "info",
            &format!("{}: {}...", step.address, step.action.describe()),
            "apply_start",
            step,
            json!({}),
        );
        if is_provision(step) {
            let message = format!("{}: Provisioning with ssh...", step.address);
            self.hook_line("info", &message, "provision_start", step, json!({}));
        }
    }

    fn step_still_running(&self, step: &Step, elapsed: Duration) {
        self.hook_line(
            "info",
            &format!(
                "{}: {}: Still {}... [{}s elapsed]",
                step.address,
                step.action.describe(),
                super::human_ui::progress_verb(&step.action),
                elapsed.as_secs()
            ),
            "apply_progress",
            step,
            json!({"elapsed_seconds": elapsed.as_secs()}),
        );
    }

    fn step_finished(&self, step: &Step, elapsed: Duration, result: &Result<(), ActionError>) {
        let what = format!("{}: {}", step.address, step.action.describe());
        // To the millisecond: the precision that means something here.
        let seconds = elapsed.as_millis() as f64 / 1000.0;
        if is_provision(step) {
            self.provision_finished(step, result);
        }
        match result {
            Ok(()) => self.hook_line(
                "info",
                &format!("{what}: done after {seconds:.1}s"),
                "apply_complete",
                step,
                json!({"elapsed_seconds": seconds}),
            ),
            Err(error) => self.hook_line(
                "error",
                &format!("{what}: FAILED after {seconds:.1}s: {error}"),
                "apply_errored",
                step,
                json!({
                    "elapsed_seconds": seconds,
                    "error": {"kind": error.kind(), "message": error.to_string()},
                }),
            ),
        }
    }

    fn applied(&self, plan: &Plan, outcome: &Outcome) {
        for (node, error) in &outcome.failed {
            let step = &plan.graph[*node];
            self.stream.diagnostic(
                "error",
                &format!("{}: {} failed", step.address, step.action.describe()),
                fields(json!({
                    "detail": error.to_string(),
                    "address": step.address.to_string(),
                    "kind": error.kind(),
                })),
            );
        }
        if outcome.succeeded() {
            let s = plan.summary;
            let message = format!(
                "Apply complete! Resources: {} added, {} changed, {} destroyed.",
                s.add, s.change, s.destroy
            );
            return self.change_summary(&message, plan.target, s);
        }
        let done = completed(plan, outcome);
        let message = if outcome.interrupted {
            format!(
                "Interrupted: {} actions not started. Run the same command again to continue.",
                outcome.not_run.len()
            )
        } else {
            format!(
                "Apply failed: {} action(s) failed, {} not run because they depend on them. \
                 Fix the cause and apply again: lvlab continues from what exists.",
                outcome.failed.len(),
                outcome.not_run.len()
            )
        };
        self.stream.diagnostic("error", &message, Map::new());
        let summary = format!(
            "Apply failed! Resources: {} added, {} changed, {} destroyed.",
            done.add, done.change, done.destroy
        );
        self.change_summary(&summary, plan.target, done);
    }

    fn ssh_no_endpoint(&self, vm_name: &str) {
        self.stream.diagnostic(
            "warning",
            &format!("{vm_name}: no SSH endpoint lvlab can reach; not waiting"),
            fields(json!({
                "detail": "use a passt NIC with ssh_port, or a static address",
                "vm_name": vm_name,
            })),
        );
    }

    fn ssh_waiting(&self, vm_names: &[&str], elapsed: Duration) {
        self.stream.line(
            "info",
            &format!(
                "waiting for SSH on {}... [{}s elapsed]",
                vm_names.join(", "),
                elapsed.as_secs()
            ),
            "ssh_waiting",
            fields(json!({"machines": vm_names, "elapsed_seconds": elapsed.as_secs()})),
        );
    }

    fn ssh_ready(&self, vm_name: &str, elapsed: Duration, connect: &str) {
        self.stream.line(
            "info",
            &format!(
                "{vm_name} answers on SSH after {}s: {connect}",
                elapsed.as_secs()
            ),
            "ssh_ready",
            fields(json!({
                "vm_name": vm_name,
                "connect": connect,
                "elapsed_seconds": elapsed.as_secs(),
            })),
        );
    }
}

/// What the finished steps amount to: a change counts once every step of
/// its address completed.
fn completed(plan: &Plan, outcome: &Outcome) -> Summary {
    let done: Vec<_> = plan
        .blocks
        .iter()
        .filter(|block| {
            plan.steps()
                .filter(|(_, step)| step.address == block.address)
                .all(|(node, _)| outcome.completed.contains(&node))
        })
        .cloned()
        .collect();
    crate::plan::summarize(&done)
}

/// The resource as plan --json's `resource`, with its text as `addr`.
fn resource(address: &Address) -> Value {
    let mut value = serde_json::to_value(address).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("addr".into(), address.to_string().into());
    }
    value
}

/// The action's name as plan --json's `action` (`define_domain`).
fn action_kind(action: &Action) -> Value {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.get("action").cloned())
        .unwrap_or(Value::Null)
}

/// The object `value` is (`json!` of an object literal).
fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
