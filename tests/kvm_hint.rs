//! `domain_type: kvm` on a host that offers no KVM at all (libvirt's test
//! driver offers only `test`): the plan stops with the hint to use TCG, as
//! it does where `/dev/kvm` exists but is broken (tests/session_e2e.rs).

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod tiny;

use lab_manifest::LabManifest;
use run::{lvlab, texts};
use tiny::tiny_image;

#[test]
fn kvm_on_a_host_without_kvm_says_to_set_domain_type_qemu() {
    let dir = tempfile::tempdir().unwrap();
    // The image exists, so the domain type is what stops the plan.
    tiny_image(&dir.path().join("source/tiny.qcow2"), "16M");
    LabManifest::tiny("nokvm", "test:///default", dir.path())
        .defaults(|d| d.domain_type("kvm").no_password())
        .machine("fast", |m| m.no_interfaces())
        .write(dir.path());
    for command in [&["plan"][..], &["up", "--all"]] {
        let out = lvlab(dir.path()).args(command).output().unwrap();
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains(
                "fast: domain_type kvm is not offered by test:///default (it offers: test)\n  \
                 hint: this host offers no KVM: set `domain_type: qemu`"
            ),
            "{command:?}: {stderr}"
        );
    }
    assert!(
        !dir.path().join("vms/nokvm").exists(),
        "nothing was made for the environment"
    );
}
