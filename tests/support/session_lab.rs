//! A lab on `qemu:///session` in a temporary directory, for the tests that
//! define real QEMU domains: TCG, 128 MiB, one vCPU, a tiny blank image,
//! an environment named for the test and its PID (so runs never collide),
//! and `destroy --force` on drop, so the shared session daemon is left
//! clean even when a test fails. Test files add their own methods in
//! their own `impl SessionLab` blocks.
//!
//! Needs the test file to include `support/lvlab_run.rs` as `run` and
//! `support/tiny_image.rs` as `support`.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::process::Output;

/// The public key every session lab's machines get.
pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab";

pub struct SessionLab {
    pub dir: tempfile::TempDir,
    pub env: String,
}

impl SessionLab {
    /// A lab without manifest, named `name` and the test's PID.
    pub fn empty(name: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: format!("{name}{}", std::process::id()),
        }
    }

    /// Puts the tiny image in the cache by hand.
    pub fn cache_tiny_image(&self) {
        crate::support::tiny_image(
            &self.dir.path().join("cache/cloud-images/tiny.qcow2"),
            "16M",
        );
    }

    /// The `images:` entry of an image placed in the cache by hand.
    pub fn cached_image(&self) -> String {
        format!(
            "  tiny:\n    image_url: {}/source/tiny.qcow2\n",
            self.dir.path().display()
        )
    }

    /// Writes `Lvlab.yml`: the lab's defaults with `cloud_init` (a flow
    /// mapping's inside), then `machines` and `images` as YAML lines.
    pub fn write_lab_manifest(&self, cloud_init: &str, machines: &str, images: &str) {
        let (env, base) = (&self.env, self.dir.path().display());
        std::fs::write(
            self.dir.path().join("Lvlab.yml"),
            format!(
                "environment:
  - name: {env}
    libvirt_uri: qemu:///session
    config_defaults:
      os: tiny
      memory: 128
      cpu: 1
      domain_type: qemu
      cloud_image_basedir: {base}/cache
      disk_image_basedir: {base}/vms
      cloud_init: {{{cloud_init}}}
    machines:
{machines}images:
{images}"
            ),
        )
        .unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Output {
        crate::run::lvlab(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// `lvlab args`, which must succeed: its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = crate::run::texts(&out);
        assert!(out.status.success(), "lvlab {args:?}:\n{stdout}\n{stderr}");
        stdout
    }
}

impl Drop for SessionLab {
    /// Leaves the shared session daemon clean even when a test failed.
    fn drop(&mut self) {
        let _ = self.run(&["destroy", "--force"]);
    }
}
