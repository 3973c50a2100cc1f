//! `domain_type: kvm` on a host that offers no KVM at all (libvirt's test
//! driver offers only `test`): the plan stops with the hint to use TCG, as
//! it does where `/dev/kvm` exists but is broken (tests/session_e2e.rs).

#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod tiny;

use run::{lvlab, texts};
use tiny::tiny_image;

#[test]
fn kvm_on_a_host_without_kvm_says_to_set_domain_type_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().display();
    // The image exists, so the domain type is what stops the plan.
    tiny_image(&dir.path().join("source/tiny.qcow2"), "16M");
    std::fs::write(
        dir.path().join("Lvlab.yml"),
        format!(
            "environment:
  - name: nokvm
    libvirt_uri: test:///default
    config_defaults:
      os: tiny
      domain_type: kvm
      cloud_image_basedir: {base}/cache
      disk_image_basedir: {base}/vms
      cloud_init: {{pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab, password: false}}
    machines:
      - vm_name: fast
        interfaces: []
images:
  tiny:
    image_url: {base}/source/tiny.qcow2
"
        ),
    )
    .unwrap();
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
