//! `lvlab capabilities --probe` for real on `qemu:///session`: a throwaway
//! KVM guest tells whether KVM runs guests here (on lvlab's nested build
//! hosts QEMU aborts on an MSR write), the answer is kept in the state
//! directory for this kernel and QEMU, `capabilities` shows it, and a plan
//! of a `domain_type: auto` machine uses TCG with a note where it says KVM
//! is broken. Plans themselves never probe.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/session_lab.rs"]
mod session_lab;
#[path = "support/tiny_image.rs"]
mod support;

use std::process::Command;

use run::{lvlab, texts};
use session_lab::SessionLab;

const SESSION: &str = "qemu:///session";

/// One probe at a time: the probe's guest has one name per host.
static PROBES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_probe_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    PROBES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// lvlab with its state (locks, probe answers) in `state`.
fn lvlab_in(
    dir: &std::path::Path,
    state: &std::path::Path,
    args: &[&str],
) -> (bool, String, String) {
    let out = lvlab(dir)
        .env(lvlab::apply::STATE_DIR_VAR, state)
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    (out.status.success(), stdout, stderr)
}

fn probe_domains() -> String {
    let out = Command::new("virsh")
        .args(["-c", SESSION, "list", "--all", "--name"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|name| name.starts_with("lvlab-kvm-probe"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The type of the domain `name` on the session host.
fn domain_type(name: &str) -> String {
    let out = Command::new("virsh")
        .args(["-c", SESSION, "dumpxml", name])
        .output()
        .unwrap();
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    doc.root_element().attribute("type").unwrap().to_string()
}

/// The note a plan gives where a probe found KVM broken.
const TCG_NOTE: &str = "but does not run guests here (probed ";

#[test]
fn the_probe_runs_a_kvm_guest_keeps_its_answer_and_auto_follows_it() {
    let _probe = one_probe_at_a_time();
    let lab = SessionLab::empty("probe");
    lab.cache_tiny_image();
    lab.manifest()
        .defaults(|d| d.no_password())
        .machine("auto", |m| m.domain_type("auto").no_interfaces())
        .write(lab.dir.path());
    let state = lab.dir.path().join("state");
    let dir = lab.dir.path();

    // Nothing probed yet: capabilities says how, and auto trusts libvirt.
    let (ok, before, err) = lvlab_in(dir, &state, &["capabilities", "--connect", SESSION]);
    assert!(ok, "{err}");
    assert!(
        before.contains("kvm probe    not probed for this kernel and QEMU"),
        "{before}"
    );
    let (ok, plan, err) = lvlab_in(dir, &state, &["plan"]);
    assert!(ok, "{err}");
    assert!(!plan.contains(TCG_NOTE), "{plan}");
    assert!(
        !state.join("kvm-probe.json").exists(),
        "a plan never probes"
    );

    let (ok, probed, err) = lvlab_in(
        dir,
        &state,
        &["capabilities", "--probe", "--connect", SESSION],
    );
    assert!(ok, "{probed}\n{err}");
    assert_eq!(probe_domains(), "", "the probe's guest is gone");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("kvm-probe.json")).unwrap())
            .unwrap();
    let record = &record[SESSION];
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(record["kernel"], kernel.trim());
    let runs = record["kvm_runs"].as_bool().unwrap();
    let probe_row = probed
        .lines()
        .find(|l| l.starts_with("kvm probe"))
        .unwrap()
        .to_string();

    // capabilities without --probe shows the kept answer.
    let (ok, after, err) = lvlab_in(dir, &state, &["capabilities", "--connect", SESSION]);
    assert!(ok, "{err}");
    assert!(after.contains(&probe_row), "{after}");

    let (ok, plan_text, err) = lvlab_in(dir, &state, &["plan"]);
    assert!(ok, "{err}");
    if runs {
        assert!(
            probe_row.contains("KVM runs guests (probed "),
            "{probe_row}"
        );
        assert!(!plan_text.contains(TCG_NOTE), "{plan_text}");
    } else {
        // lvlab's build hosts: QEMU aborts on the MSR write.
        assert!(
            probe_row.contains("KVM is offered but does not run guests (probed "),
            "{probe_row}"
        );
        assert!(
            plan_text.contains(&format!(
                "Note: KVM is offered on {SESSION} but does not run guests here (probed {}): \
                 using TCG for domain_type auto",
                record["probed_at"].as_str().unwrap()
            )),
            "{plan_text}"
        );
        // And the machine starts, under TCG, with no domain_type in the
        // manifest.
        let (ok, up, err) = lvlab_in(dir, &state, &["up", "--all"]);
        assert!(ok, "{up}\n{err}");
        assert_eq!(domain_type(&format!("auto_{}", lab.env)), "qemu");
    }

    // Another QEMU (or kernel) makes the answer a miss: auto trusts libvirt.
    let mut stale = std::fs::read_to_string(state.join("kvm-probe.json")).unwrap();
    stale = stale.replace(record["qemu"].as_str().unwrap(), "0.0.1");
    std::fs::write(state.join("kvm-probe.json"), stale).unwrap();
    let (_, plan, _) = lvlab_in(dir, &state, &["plan"]);
    assert!(!plan.contains(TCG_NOTE), "{plan}");
    let (_, shown, _) = lvlab_in(dir, &state, &["capabilities", "--connect", SESSION]);
    assert!(
        shown.contains("not probed for this kernel and QEMU"),
        "{shown}"
    );
}

#[test]
fn the_test_driver_cannot_be_probed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (ok, out, err) = lvlab_in(
        dir.path(),
        &state,
        &["capabilities", "--probe", "--connect", "test:///default"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("kvm probe    cannot probe KVM on test:///default: libvirt's test driver runs no guests"),
        "{out}"
    );
    assert!(!state.join("kvm-probe.json").exists());
    let (_, json, _) = lvlab_in(
        dir.path(),
        &state,
        &[
            "capabilities",
            "--probe",
            "--json",
            "--connect",
            "test:///default",
        ],
    );
    let hosts: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(hosts[0]["kvm_probe"], serde_json::Value::Null);
    assert!(hosts[0]["kvm_probe_skipped"]
        .as_str()
        .unwrap()
        .contains("test driver"));
}

#[test]
fn ctrl_c_during_a_probe_leaves_no_guest() {
    let _probe = one_probe_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = lvlab(dir.path())
        .env(lvlab::apply::STATE_DIR_VAR, &state)
        .args(["capabilities", "--probe", "--connect", SESSION])
        .spawn()
        .unwrap();
    // Mid-probe: the capabilities take some 0.3 s, the guest some 2 s.
    std::thread::sleep(std::time::Duration::from_millis(900));
    // SAFETY: signals our own child by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !probe_domains().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        probe_domains(),
        "",
        "libvirt destroyed the interrupted probe's guest"
    );
}
