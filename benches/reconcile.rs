//! Reconciler timings against a live libvirt (`qemu:///session`), printed
//! as figures for the README:
//! - `plan` for an environment of 50 deployed machines (load the manifest,
//!   connect, observe, render every seed and definition, plan);
//! - host-side work of bringing up 10 machines with `disk_strategy:
//!   backing` (disks, seeds, definitions; target stopped, so QEMU's own
//!   start is not counted).
//!
//! Run: `cargo bench --bench reconcile`. Needs scripts/setup.sh's packages.

#[path = "../tests/support/tiny_image.rs"]
mod support;
use support::tiny_image;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lvlab::apply::ExecutionObserver;
use lvlab::plan::{Selection, Target};
use lvlab::reconcile::{ApplyOptions, Lab};

struct Quiet;
impl ExecutionObserver for Quiet {
    fn started(&self, _: &str) {}
    fn finished(&self, _: &str, _: Duration, result: &Result<(), String>) {
        if let Err(e) = result {
            eprintln!("failed: {e}");
        }
    }
}

fn manifest(dir: &Path, env: &str, machines: usize) -> std::path::PathBuf {
    let base = dir.display();
    let list: String = (0..machines)
        .map(|i| format!("      - vm_name: m{i:02}\n"))
        .collect();
    let path = dir.join(format!("{env}.yml"));
    std::fs::write(
        &path,
        format!(
            "environment:
  - name: {env}
    libvirt_uri: qemu:///session
    config_defaults:
      os: tiny
      memory: 128
      cpu: 1
      domain_type: qemu
      disk_strategy: backing
      cloud_image_basedir: {base}/cache
      disk_image_basedir: {base}/vms
      interfaces: {{network_type: user}}
      cloud_init: {{pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench}}
    machines:
{list}images:
  tiny:
    image_url: {base}/tiny.qcow2
"
        ),
    )
    .unwrap();
    path
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn apply(path: &Path, target: Target) -> Duration {
    let desired = lvlab::manifest::load(path, &lvlab::manifest::HostSettings::none()).unwrap();
    let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
    let start = Instant::now();
    let planned = lab.plan(target, &Selection::default()).unwrap();
    let outcome = lab
        .apply(
            &planned,
            &ApplyOptions::default(),
            &Quiet,
            &AtomicBool::new(false),
        )
        .unwrap();
    assert!(outcome.succeeded(), "{:?}", outcome.failed);
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

    let ten = manifest(dir.path(), &format!("benchup{tag}"), 10);
    let up = apply(&ten, Target::Stopped);
    println!(
        "up, 10 machines, backing, host-side work: {:.0} ms",
        up.as_secs_f64() * 1e3
    );
    apply(&ten, Target::Absent);

    let fifty = manifest(dir.path(), &format!("benchplan{tag}"), 50);
    apply(&fifty, Target::Stopped);
    let samples: Vec<Duration> = (0..10)
        .map(|_| {
            let start = Instant::now();
            let desired =
                lvlab::manifest::load(&fifty, &lvlab::manifest::HostSettings::none()).unwrap();
            let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
            let planned = lab.plan(Target::Stopped, &Selection::default()).unwrap();
            assert!(planned.plan.blocks.is_empty(), "all 50 are deployed");
            start.elapsed()
        })
        .collect();
    println!(
        "plan, 50 deployed machines, live libvirt: median {:.0} ms (min {:.0} ms, 10 runs)",
        median(samples.clone()).as_secs_f64() * 1e3,
        samples.iter().min().unwrap().as_secs_f64() * 1e3
    );
    apply(&fifty, Target::Absent);
}
