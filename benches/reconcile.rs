//! Reconciler timings against a live libvirt (`qemu:///session`):
//! - `plan` for an environment of 50 machines (load the manifest, connect,
//!   observe, render every seed and definition, plan), before they exist
//!   (each seed's first render: a console password generated and
//!   crypt-hashed per machine) and once they are deployed (hashes reused);
//! - host-side work of bringing up 10 machines with `disk_strategy:
//!   backing` (disks, seeds, definitions; target stopped, so QEMU's own
//!   start is not counted).
//!
//! Run: `cargo bench --bench reconcile [-- --quick]`. Needs
//! scripts/setup.sh's packages. Prints `key = value unit` rows that
//! benches/check.sh compares with the README's targets.

#[path = "support/report.rs"]
mod report;
use report::{quick, row, Samples};

#[path = "../tests/support/lab_manifest.rs"]
mod lab_manifest;
#[path = "../tests/support/plan_apply.rs"]
mod plan_apply;
#[path = "../tests/support/tiny_image.rs"]
mod support;
use lab_manifest::LabManifest;
use plan_apply::converge;
use support::tiny_image;

use std::path::Path;
use std::time::{Duration, Instant};

use lvlab::plan::{Selection, Target};
use lvlab::reconcile::Lab;

fn manifest(dir: &Path, env: &str, machines: usize) -> std::path::PathBuf {
    let mut manifest = LabManifest::tiny(env, "qemu:///session", dir)
        .defaults(|d| d.tcg(128).set("disk_strategy", "backing").user_network())
        .image("tiny", |i| i.url(dir.join("tiny.qcow2").display()));
    for i in 0..machines {
        manifest = manifest.machine(&format!("m{i:02}"), |m| m);
    }
    let path = dir.join(format!("{env}.yml"));
    std::fs::write(&path, manifest.to_yaml()).unwrap();
    path
}

/// The whole `plan` pipeline, `runs` times; `deployed`: whether the 50
/// machines exist (then the plan is empty).
fn plan_runs(path: &Path, runs: usize, deployed: bool) -> Samples {
    let samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let desired =
                lvlab::manifest::load(path, &lvlab::manifest::HostSettings::none()).unwrap();
            let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
            let planned = lab.plan(Target::Stopped, &Selection::default()).unwrap();
            assert_eq!(planned.plan.blocks.is_empty(), deployed);
            start.elapsed()
        })
        .collect();
    Samples::from(samples)
}

fn apply(path: &Path, target: Target) -> Duration {
    let desired = lvlab::manifest::load(path, &lvlab::manifest::HostSettings::none()).unwrap();
    let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
    let start = Instant::now();
    converge(&lab, target, &Selection::default());
    start.elapsed()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache/cloud-images");
    std::fs::create_dir_all(&cache).unwrap();
    for target in [cache.join("tiny.qcow2"), dir.path().join("tiny.qcow2")] {
        tiny_image(&target, "64M");
    }
    let tag = std::process::id();

    let runs = if quick() { 5 } else { 10 };

    let ten = manifest(dir.path(), &format!("benchup{tag}"), 10);
    let up = apply(&ten, Target::Stopped);
    row(
        "up10.host",
        up.as_secs_f64() * 1e3,
        "ms",
        "up, 10 machines, backing, host-side work (QEMU not started)",
    );
    apply(&ten, Target::Absent);

    let fifty = manifest(dir.path(), &format!("benchplan{tag}"), 50);
    plan_runs(&fifty, runs, false).print(
        "plan50.live.new",
        "plan, 50 machines not yet created (50 first renders with the crypt), live libvirt",
    );
    apply(&fifty, Target::Stopped);
    plan_runs(&fifty, runs, true).print(
        "plan50.live.deployed",
        "plan, 50 deployed machines, live libvirt",
    );
    apply(&fifty, Target::Absent);
}
