//! A tiny lab for the library tests: a temporary directory with the tiny
//! image cached, and manifests of environment `lab` on the test driver's
//! empty host (`state/empty.xml`), TCG with 256 MiB and a user-mode NIC.
//! Test files add their own methods in their own `impl TinyLab` blocks.
//!
//! Needs the test file to include `support/lab_manifest.rs` as
//! `lab_manifest` and `support/tiny_image.rs` as `support`.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lvlab::desired::Desired;

use crate::lab_manifest::LabManifest;
use crate::support::tiny_image;

pub struct TinyLab {
    pub dir: tempfile::TempDir,
}

impl TinyLab {
    /// The cached image is `image_size` (`16M`) big.
    pub fn new(image_size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        tiny_image(
            &dir.path().join("cache/cloud-images/tiny.qcow2"),
            image_size,
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The manifest with `machines`, lines under `machines:`.
    pub fn manifest_text(&self, machines: &str) -> String {
        let uri = format!("test://{}/state/empty.xml", env!("CARGO_MANIFEST_DIR"));
        LabManifest::tiny("lab", &uri, self.path())
            .defaults(|d| d.tcg(256).user_network())
            .machines_yaml(machines)
            .to_yaml()
    }

    pub fn manifest(&self, machines: &str) -> Desired {
        lvlab::manifest::load_str(
            &self.manifest_text(machines),
            &self.path().join("Lvlab.yml"),
        )
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    pub fn vm_dir(&self, vm: &str) -> PathBuf {
        self.path().join("vms/lab").join(vm)
    }
}
