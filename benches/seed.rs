//! A machine's seed, through the entry point `plan` and `apply` use
//! (`rendering::render_seed`: keys, console password, user-data,
//! network-config), then its ISO, which only `apply` builds. Needs no
//! libvirt and no I/O.
//!
//! The console password's SHA-512 crypt (5000 rounds) runs on a machine's
//! first render only: once user-data is on disk, later renders reuse the
//! hash recorded in it. So each figure comes in a "first" form (no files
//! yet: a fresh password is generated and hashed) and a "later" form.
//!
//! Run: `cargo bench --bench seed [-- --quick]`. Prints `key = value unit`
//! rows that benches/check.sh compares with the README's targets.

#[path = "support/report.rs"]
mod report;
use report::{quick, Samples};

use std::path::Path;
use std::time::Instant;

use lvlab::cloudinit::{self, Seed};
use lvlab::desired::{Desired, EnvironmentSpec, MachineSpec};
use lvlab::observe::MachineFiles;
use lvlab::rendering::render_seed;

const PUBKEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab";

/// One environment: `web` with two NICs, then `extra` more machines.
fn manifest(extra: usize) -> String {
    let more: String = (0..extra)
        .map(|i| {
            format!(
                "      - {{vm_name: m{i:02}, interfaces: [{{ip4: 192.168.122.{}/24}}]}}\n",
                20 + i
            )
        })
        .collect();
    format!(
        r#"
environment:
  - name: bench
    config_defaults:
      os: debian12
      domain: bench.example
      interfaces: {{network: default, ip4gw: 192.168.122.1}}
      nameservers: {{addresses: [192.168.122.1], search: [bench.example]}}
      cloud_init:
        pubkey: {PUBKEY}
        runcmd:
          - apt-get update
          - [systemctl, enable, --now, qemu-guest-agent]
    machines:
      - vm_name: web
        interfaces:
          - {{name: lan, ip4: 192.168.122.10/24, ip6: "fd00::10/64", ip6gw: "fd00::1"}}
          - {{name: backend, network: isolated}}
{more}images:
  debian12:
    image_url: https://example.org/debian-12-genericcloud-amd64.qcow2
"#
    )
}

fn load(extra: usize) -> Desired {
    lvlab::manifest::load_str(&manifest(extra), Path::new("/srv/bench/Lvlab.yml"))
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
}

/// The machine's seed as `plan` renders it, given what is on disk.
fn seed(desired: &Desired, machine: &MachineSpec, files: &MachineFiles) -> Seed {
    let env: &EnvironmentSpec = &desired.environments[0];
    let image = &desired.images[&machine.os];
    render_seed(env, machine, image, files).expect("seed").0
}

/// What a later render finds on disk: the user-data of a first render.
fn recorded(desired: &Desired, machine: &MachineSpec) -> MachineFiles {
    let first = seed(desired, machine, MachineFiles::none());
    assert!(
        first.user_data.contains("$6$"),
        "the first render hashes a password"
    );
    let mut files = MachineFiles::default();
    files.recorded.insert("user-data".into(), first.user_data);
    files
}

fn one_machine(runs: usize) {
    let desired = load(0);
    let web = desired.machine("web", None).unwrap();
    let later = recorded(&desired, web);
    let first = MachineFiles::none();
    let bench = |key: &str, what: &str, step: &mut dyn FnMut()| {
        Samples::measure(runs, step).print(key, what);
    };
    bench(
        "seed.crypt",
        "SHA-512 crypt of the console password",
        &mut || {
            std::hint::black_box(
                cloudinit::password::sha512_crypt("bench", b"bench-salt12").unwrap(),
            );
        },
    );
    bench(
        "seed.render.later",
        "render, password hash recorded",
        &mut || {
            std::hint::black_box(seed(&desired, web, &later));
        },
    );
    bench(
        "seed.render.first",
        "render, first (generates and hashes a password)",
        &mut || {
            std::hint::black_box(seed(&desired, web, first));
        },
    );
    let built = seed(&desired, web, &later);
    bench("seed.iso", "ISO of a rendered seed", &mut || {
        std::hint::black_box(cloudinit::iso::build(&built).unwrap());
    });
    bench(
        "seed.render_iso.later",
        "render + ISO, password hash recorded",
        &mut || {
            std::hint::black_box(cloudinit::iso::build(&seed(&desired, web, &later)).unwrap());
        },
    );
    bench(
        "seed.render_iso.first",
        "render + ISO, first (with the crypt)",
        &mut || {
            std::hint::black_box(cloudinit::iso::build(&seed(&desired, web, first)).unwrap());
        },
    );
    bench("seed.digest", "digest of a rendered seed", &mut || {
        std::hint::black_box(built.digest());
    });
}

/// Every seed of a 50-machine environment, as `plan` renders them (no
/// ISO), and with their ISOs, as a first `up` builds them.
fn fifty_machines(rounds: usize) {
    let desired = load(49);
    let machines = &desired.environments[0].machines;
    assert_eq!(machines.len(), 50);
    let later: Vec<MachineFiles> = machines.iter().map(|m| recorded(&desired, m)).collect();
    let later: Vec<&MachineFiles> = later.iter().collect();
    let first = vec![MachineFiles::none(); machines.len()];
    let all = |files: &[&MachineFiles], iso: bool| {
        let start = Instant::now();
        for (machine, files) in machines.iter().zip(files) {
            let seed = seed(&desired, machine, files);
            if iso {
                std::hint::black_box(cloudinit::iso::build(&seed).unwrap());
            }
            std::hint::black_box(seed);
        }
        start.elapsed()
    };
    let rows = [
        (
            "plan50.seeds.later",
            "50 seeds as plan renders them, hashes recorded",
            &later,
            false,
        ),
        (
            "plan50.seeds.first",
            "50 seeds as plan renders them, first (50 crypts)",
            &first,
            false,
        ),
        (
            "up50.seeds_isos.first",
            "50 seeds and ISOs, first up (50 crypts)",
            &first,
            true,
        ),
    ];
    for (key, what, files, iso) in rows {
        all(files, iso);
        let samples: Vec<_> = (0..rounds).map(|_| all(files, iso)).collect();
        Samples::from(samples).print(key, what);
    }
}

fn main() {
    let (runs, rounds) = if quick() { (200, 5) } else { (2000, 20) };
    one_machine(runs);
    fifty_machines(rounds);
}
