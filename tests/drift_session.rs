//! Drift made behind lvlab's back with `virsh` on a real QEMU through
//! `qemu:///session` (TCG, a tiny blank image, one user-mode NIC): each
//! edit of the persistent definition, and a suspend, makes
//! `plan --detailed-exitcode` exit 2 with the reason; `apply` fixes it and
//! the next plan exits 0. One lab for every case, destroyed even when a
//! case fails.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/session_lab.rs"]
mod session_lab;
#[path = "support/tiny_image.rs"]
mod support;

use session_lab::SessionLab;

use std::process::Command;

impl SessionLab {
    /// One machine with a user-mode NIC.
    fn drift() -> Self {
        let lab = SessionLab::empty("drift");
        lab.cache_tiny_image();
        lab.manifest()
            .defaults(|d| d.no_password())
            .machine("one", |m| m.set("interfaces", "[{network_type: user}]"))
            .write(lab.dir.path());
        lab
    }

    fn domain(&self) -> String {
        format!("one_{}", self.env)
    }

    /// `virsh -c qemu:///session ARGS`, which must succeed.
    #[track_caller]
    fn virsh(&self, args: &[&str]) -> String {
        let out = Command::new("virsh")
            .args(["-c", "qemu:///session"])
            .args(args)
            .output()
            .expect("virsh (libvirt-clients) is installed by scripts/setup.sh");
        let (stdout, stderr) = run::texts(&out);
        assert!(out.status.success(), "virsh {args:?}: {stderr}");
        stdout
    }

    /// The plan exits 2 and gives `reason`; apply fixes it; the plan
    /// exits 0 again.
    #[track_caller]
    fn assert_found_and_fixed(&self, case: &str, reason: &str) {
        let out = self.run(&["plan", "--detailed-exitcode"]);
        let (stdout, stderr) = run::texts(&out);
        assert_eq!(out.status.code(), Some(2), "{case}:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(reason),
            "{case}: no {reason:?} in\n{stdout}"
        );
        self.ok(&["apply", "--auto-approve"]);
        let out = self.run(&["plan", "--detailed-exitcode"]);
        let (stdout, stderr) = run::texts(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case} after apply:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn drift_behind_lvlabs_back_is_planned_and_applied_away() {
    let lab = SessionLab::drift();
    lab.ok(&["apply", "--auto-approve"]);
    let out = lab.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", run::texts(&out));
    let domain = lab.domain();
    let dom = domain.as_str();

    lab.virsh(&["setmaxmem", dom, "256M", "--config"]);
    lab.assert_found_and_fixed(
        "setmaxmem --config",
        "max memory: 256 MiB in the live definition, 128 MiB wanted (changed outside lvlab)",
    );

    lab.virsh(&["setmem", dom, "64M", "--config"]);
    lab.assert_found_and_fixed(
        "setmem --config",
        "memory: 64 MiB in the live definition, 128 MiB wanted (changed outside lvlab)",
    );

    lab.virsh(&["setvcpus", dom, "2", "--config", "--maximum"]);
    lab.assert_found_and_fixed(
        "setvcpus --config --maximum",
        "max vcpus: 2 in the live definition, 1 wanted (changed outside lvlab)",
    );

    lab.virsh(&["detach-interface", dom, "user", "--config"]);
    lab.assert_found_and_fixed(
        "detach-interface --config",
        "absent from the live definition, user-mode wanted (changed outside lvlab)",
    );

    let xml = lab.virsh(&["dumpxml", dom, "--inactive"]);
    let disk = lab
        .dir
        .path()
        .join(format!("vms/{}/one/disk0.qcow2", lab.env));
    let other = lab.dir.path().join("other.qcow2");
    let swapped = xml.replace(&disk.display().to_string(), &other.display().to_string());
    assert_ne!(swapped, xml, "the definition names {}", disk.display());
    let file = lab.dir.path().join("swapped.xml");
    std::fs::write(&file, swapped).unwrap();
    lab.virsh(&["define", file.to_str().unwrap()]);
    lab.assert_found_and_fixed(
        "a disk path swapped with virsh define",
        &format!(
            "disk vda: {} in the live definition, {} wanted (changed outside lvlab)",
            other.display(),
            disk.display()
        ),
    );

    lab.virsh(&["suspend", dom]);
    lab.assert_found_and_fixed(
        "suspend",
        &format!(
            "> {}.one\n      # (because it is paused (suspended outside lvlab))",
            lab.env
        ),
    );
    assert_eq!(lab.virsh(&["domstate", dom]).trim(), "running");
}
