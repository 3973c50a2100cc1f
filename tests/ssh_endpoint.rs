//! The one SSH endpoint rule (`Host::ssh_endpoint`), used by `status` and
//! `up --wait`: a passt forward recorded in the machine's definition is on
//! the host's loopback (127.0.0.1 for this machine), else port 22 of the
//! first static IPv4 address, else none. Machines come from a real
//! manifest; the host is the test driver's. And the library's wait
//! (`observe::ssh_wait`), through its reporter, against an SSH banner
//! server on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lvlab::desired::MachineSpec;
use lvlab::host::{Host, Route, SshEndpoint};
use lvlab::manifest::load_str;
use lvlab::observe::ssh_wait::{wait_for_ssh, WaitReporter};
use lvlab::observe::MachineFiles;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab";

fn machines(dir: &Path) -> Vec<MachineSpec> {
    let yaml = format!(
        "
environment:
  - name: lab
    libvirt_uri: test:///default
    config_defaults:
      os: tiny
      cloud_image_basedir: {base}/cache
      disk_image_basedir: {base}/vms
      cloud_init: {{pubkey: {KEY}, user: admin}}
    machines:
      - vm_name: forwarded
        interfaces:
          - {{network_type: passt, ssh_port: 2222}}
          - {{network: default, ip4: 192.0.2.5/24}}
      - vm_name: fixed
        interfaces: [{{network: default, ip4: 192.0.2.10/24}}]
      - vm_name: leased
        interfaces: [{{network: default}}]
images:
  tiny:
    image_url: {base}/tiny.qcow2
",
        base = dir.display()
    );
    let desired =
        load_str(&yaml, &dir.join("Lvlab.yml")).unwrap_or_else(|e| panic!("{}", e.render(false)));
    desired.environments[0].machines.clone()
}

/// A recorded definition that forwards `port` through passt.
fn forward_definition(port: u16) -> String {
    format!(
        "<domain><devices><interface type='user'><backend type='passt'/>\
         <portForward proto='tcp' address='127.0.0.1'><range start='{port}' to='22'/>\
         </portForward></interface></devices></domain>"
    )
}

/// What observe finds for a machine whose recorded definition forwards
/// `port` through passt.
fn recorded_forward(port: u16) -> MachineFiles {
    MachineFiles {
        recorded: BTreeMap::from([("domain.xml".to_string(), forward_definition(port))]),
        ..MachineFiles::default()
    }
}

#[test]
fn a_forward_is_on_the_hosts_loopback_else_a_static_address_else_none() {
    let dir = tempfile::tempdir().unwrap();
    let machines = machines(dir.path());
    let host = Host::open("test:///default").unwrap();
    let [forwarded, fixed, leased] = [0, 1, 2].map(|i| &machines[i]);

    // The forward wins over the static address of the second NIC.
    let endpoint = host
        .ssh_endpoint(forwarded, &recorded_forward(2222))
        .unwrap();
    assert_eq!(endpoint.address.to_string(), "127.0.0.1:2222");
    assert_eq!(endpoint.route, Route::Direct);
    assert!(endpoint.forwarded);
    assert_eq!(endpoint.command("admin"), "ssh -p 2222 admin@127.0.0.1");

    // Before anything is recorded, the forward is unknown: the static
    // address is what lvlab knows.
    let before = host
        .ssh_endpoint(forwarded, &MachineFiles::default())
        .unwrap();
    assert_eq!(before.address.to_string(), "192.0.2.5:22");

    let endpoint = host.ssh_endpoint(fixed, &MachineFiles::default()).unwrap();
    assert_eq!(endpoint.address.to_string(), "192.0.2.10:22");
    assert!(!endpoint.forwarded);
    assert_eq!(endpoint.command("admin"), "ssh admin@192.0.2.10");

    assert_eq!(host.ssh_endpoint(leased, &MachineFiles::default()), None);
}

/// What the wait told, in order.
#[derive(Default)]
struct Told(Mutex<Vec<String>>);

impl WaitReporter for Told {
    fn no_endpoint(&self, machine: &MachineSpec) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} none", machine.vm_name));
    }
    fn answered(&self, machine: &MachineSpec, endpoint: &SshEndpoint, _: Duration) {
        let told = format!("{} answered at {}", machine.vm_name, endpoint.address);
        self.0.lock().unwrap().push(told);
    }
    fn still_waiting(&self, _: &[&str], _: Duration) {}
}

/// A server on 127.0.0.1 that greets every connection with an SSH banner.
fn banner_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2p1 test\r\n");
        }
    });
    port
}

#[test]
fn the_wait_reports_who_answers_and_names_who_did_not() {
    let dir = tempfile::tempdir().unwrap();
    let machines = machines(dir.path());
    let host = Host::open("test:///default").unwrap();
    let [forwarded, fixed, leased] = [0, 1, 2].map(|i| &machines[i]);
    // `forwarded` runs (the test driver's agent reports its NIC's address,
    // so the wait probes at once) and its recorded forward reaches a
    // server that answers.
    let record = |machine: &MachineSpec, port: u16| {
        let xml = forward_definition(port);
        let path = machine.vm_dir.join("domain.xml");
        lvlab::storage::write_file(&path, xml.as_bytes(), 0o644).unwrap();
    };
    record(forwarded, banner_server());
    let conn = host.connection();
    let domain = conn
        .raw()
        .define_domain_xml(&format!(
            "<domain type='test'><name>{}</name><memory>65536</memory>\
             <os><type>hvm</type></os><devices><interface type='network'>\
             <source network='default'/></interface></devices></domain>",
            forwarded.domain_name
        ))
        .unwrap();
    domain.create().unwrap();
    drop(conn);
    // `fixed` gets a forward too, to a port nothing listens on, and has no
    // domain: with no word from an agent its first probe would wait 120 s.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    record(fixed, closed_port);

    let told = Told::default();
    let started = Instant::now();
    let err = wait_for_ssh(
        &[(&host, forwarded), (&host, fixed), (&host, leased)],
        Duration::from_secs(4),
        &told,
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let told = told.0.into_inner().unwrap();
    let server = forwarded.vm_dir.join("domain.xml");
    let port = lvlab::domain::forwarded_ssh_ports(&std::fs::read_to_string(server).unwrap())[0];
    assert_eq!(
        told,
        [
            "leased none".to_string(),
            format!("forwarded answered at 127.0.0.1:{port}")
        ]
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "not reachable on SSH within 4s: fixed (127.0.0.1:{closed_port})"
        )),
        "{message}"
    );
    assert!(message.contains("raise --wait-timeout"), "{message}");
}
