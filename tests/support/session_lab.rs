//! A lab on `qemu:///session` in a temporary directory, for the tests that
//! define real QEMU domains: TCG, 128 MiB, one vCPU, a tiny blank image,
//! an environment named for the test and its PID (so runs never collide),
//! and `destroy --force` on drop, so the shared session daemon is left
//! clean even when a test fails. Test files add their own methods in
//! their own `impl SessionLab` blocks.
//!
//! Needs the test file to include `support/lab_manifest.rs` as
//! `lab_manifest`, `support/lvlab_run.rs` as `run` and
//! `support/tiny_image.rs` as `support`.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::process::Output;

use crate::lab_manifest::LabManifest;

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

    /// The lab's manifest to build on: the tiny lab under the lab's name
    /// on `qemu:///session`, TCG, 128 MiB, one vCPU, no machines yet.
    pub fn manifest(&self) -> LabManifest {
        LabManifest::tiny(&self.env, "qemu:///session", self.dir.path()).defaults(|d| d.tcg(128))
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
