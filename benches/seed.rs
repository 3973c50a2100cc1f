//! Rendering plus ISO creation for one machine (the budget: under 5 ms).
//! Run with `cargo bench --bench seed`; prints median, 99th percentile and
//! mean over many runs of each step. Needs no libvirt and no I/O.

use std::path::Path;
use std::time::{Duration, Instant};

use lvlab::cloudinit::{self, SeedInput};

const MANIFEST: &str = r#"
environment:
  - name: bench
    config_defaults:
      os: debian12
      domain: bench.example
      interfaces: {network: default, ip4gw: 192.168.122.1}
      nameservers: {addresses: [192.168.122.1], search: [bench.example]}
      cloud_init:
        pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab@example
        runcmd:
          - apt-get update
          - [systemctl, enable, --now, qemu-guest-agent]
    machines:
      - vm_name: web
        interfaces:
          - {name: lan, ip4: 192.168.122.10/24, ip6: "fd00::10/64", ip6gw: "fd00::1"}
          - {name: backend, network: isolated}
      - {vm_name: db, interfaces: [{ip4: 192.168.122.11/24}]}
      - {vm_name: cache, interfaces: [{ip4: 192.168.122.12/24}]}
images:
  debian12:
    image_url: https://example.org/debian-12-genericcloud-amd64.qcow2
"#;

const RUNS: usize = 2000;

fn measure(name: &str, mut step: impl FnMut()) {
    for _ in 0..50 {
        step();
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed()
        })
        .collect();
    times.sort();
    let mean = times.iter().sum::<Duration>() / RUNS as u32;
    println!(
        "{name:<22} median {:>9.1?}  p99 {:>9.1?}  mean {:>9.1?}  ({RUNS} runs)",
        times[RUNS / 2],
        times[RUNS * 99 / 100],
        mean
    );
}

fn main() {
    let desired = lvlab::manifest::load_str(MANIFEST, Path::new("/srv/bench/Lvlab.yml"))
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let machine = desired.machine("web", None).unwrap();
    let keys = vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab@example".to_string()];
    let hash = cloudinit::password::sha512_crypt("bench", b"bench-salt12").unwrap();
    let input = SeedInput {
        machine,
        environment: &desired.environments[0],
        image: &desired.images["debian12"],
        authorized_keys: &keys,
        password_hash: Some(&hash),
    };
    let seed = cloudinit::render(&input).unwrap();
    measure("render", || {
        std::hint::black_box(cloudinit::render(&input).unwrap());
    });
    measure("iso", || {
        std::hint::black_box(cloudinit::iso::build(&seed).unwrap());
    });
    measure("render + iso", || {
        let seed = cloudinit::render(&input).unwrap();
        std::hint::black_box(cloudinit::iso::build(&seed).unwrap());
    });
    measure("digest", || {
        std::hint::black_box(seed.digest());
    });
}
