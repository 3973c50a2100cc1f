//! A host's connection pool: under parallel work on `qemu:///session` the
//! host opens more connections (no connection carries more than 4 calls
//! at once, below libvirtd's `max_client_requests` of 5), which the daemon
//! itself counts; a `test:` host keeps its one connection, whose state
//! every lease shares.
//!
//! What this shows, and what not: ten threads (the default
//! `--parallelism`) each hold a lease and make a real call at the same
//! time, as ten executor jobs do; the daemon's own client list
//! (`virt-admin client-list`, as root) then names exactly three clients of
//! this process. It does not time a parallel `destroy`.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Barrier, Mutex};

use lvlab::host::{Host, CALLS_PER_CONNECTION};

const PARALLELISM: usize = 10;

/// The daemon's clients that are this process, by `virt-admin`.
fn daemon_clients_of_this_process() -> usize {
    let list = virt_admin(&["client-list", "libvirtd"]);
    let ids: Vec<&str> = list
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let pid = std::process::id().to_string();
    ids.iter()
        .filter(|id| {
            // A client that left meanwhile has no info: not ours now.
            let info = Command::new("virt-admin")
                .args(["client-info", "libvirtd", id])
                .output()
                .unwrap();
            String::from_utf8_lossy(&info.stdout).lines().any(|line| {
                let mut words = line.split(':').map(str::trim);
                words.next() == Some("unix_process_id") && words.next() == Some(pid.as_str())
            })
        })
        .count()
}

fn virt_admin(args: &[&str]) -> String {
    let out = Command::new("virt-admin").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "virt-admin {args:?} (needs root and libvirtd's admin socket): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each of `PARALLELISM` threads takes a lease, makes `call` on it and
/// holds it until all have; `during` runs then. Returns how many leases
/// each connection (by address) carried at once.
fn hold_leases_together(
    host: &Host,
    call: impl Fn(&lvlab::libvirt::Connection) + Sync,
    during: impl FnOnce(),
) -> Vec<usize> {
    let all_held = Barrier::new(PARALLELISM + 1);
    let release = Barrier::new(PARALLELISM + 1);
    let per_connection = Arc::new(Mutex::new(BTreeMap::<usize, usize>::new()));
    std::thread::scope(|scope| {
        for _ in 0..PARALLELISM {
            let (all_held, release, per_connection) = (&all_held, &release, &per_connection);
            let call = &call;
            scope.spawn(move || {
                let lease = host.connection();
                call(&lease);
                let key = &*lease as *const _ as usize;
                *per_connection.lock().unwrap().entry(key).or_default() += 1;
                all_held.wait();
                release.wait();
            });
        }
        all_held.wait();
        during();
        release.wait();
    });
    let counts = per_connection.lock().unwrap().values().copied().collect();
    counts
}

#[test]
fn parallel_calls_on_a_qemu_host_spread_over_connections_the_daemon_sees() {
    let host = Host::open("qemu:///session").unwrap();
    let before = daemon_clients_of_this_process();
    assert_eq!(before, 1, "the host opened one connection");
    let mut seen_by_daemon = 0;
    let carried = hold_leases_together(
        &host,
        |conn| {
            conn.raw().list_all_domains(0).unwrap();
        },
        || seen_by_daemon = daemon_clients_of_this_process(),
    );
    let expected = PARALLELISM.div_ceil(CALLS_PER_CONNECTION);
    assert_eq!(host.connections(), expected);
    assert_eq!(seen_by_daemon, expected, "libvirtd's own client list");
    assert_eq!(carried.iter().sum::<usize>(), PARALLELISM);
    assert!(
        carried.iter().all(|&n| n <= CALLS_PER_CONNECTION),
        "{carried:?}"
    );
    // Leases returned, the pool is reused rather than grown.
    drop(host.connection());
    assert_eq!(host.connections(), expected);
}

#[test]
fn a_test_host_keeps_one_connection_so_every_lease_sees_one_world() {
    let host = Host::open("test:///default").unwrap();
    let carried = hold_leases_together(
        &host,
        |conn| {
            conn.raw().lookup_domain_by_name("test").unwrap();
        },
        || {},
    );
    assert_eq!(carried, [PARALLELISM]);
    assert_eq!(host.connections(), 1);
    // What one lease does, another sees: the test driver's state lives in
    // its connection.
    let domain = host
        .connection()
        .raw()
        .lookup_domain_by_name("test")
        .unwrap();
    domain.destroy().unwrap();
    let again = host
        .connection()
        .raw()
        .lookup_domain_by_name("test")
        .unwrap();
    assert!(!again.is_active().unwrap());
}
