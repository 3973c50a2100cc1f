//! `--wait`: after an apply, wait until each started machine answers on
//! SSH, then say how to connect.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;

use super::{CliError, Printer};
use crate::desired::{Addressing, MachineSpec};
use crate::observe::ssh;
use crate::reconcile::Lab;

#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// After applying, wait until every started machine answers on SSH
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits (software emulation boots slowly)
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait_timeout: u64,
}

impl WaitArgs {
    /// These arguments when `--wait` was given.
    pub fn requested(&self) -> Option<WaitArgs> {
        self.wait.then(|| self.clone())
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Between two probes of one machine whose network is not known to be up.
const RETRY: Duration = Duration::from_secs(5);
/// Between two probes once the guest agent reported the guest's address:
/// its SSH server is seconds away, and a probe then costs nothing.
const RETRY_NETWORK_UP: Duration = Duration::from_secs(1);
/// How often the loop looks at the machines (agent, due probes, progress).
const TICK: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// Before the first SSH probe through a passt forward: a connection that
/// arrives before the guest's network is up makes bookworm's passt spin a
/// whole core until the guest answers, which slows TCG guests on 2 cores
/// (measured: two Debian 12 guests probed from 45 s on reached SSH at 87
/// and 90 s, their passts having used 10 s of CPU each; probed only once
/// the agent reported the network, at 55 and 59 s, passt using none). So
/// the first probe waits until the guest agent reports an address (the
/// network is up; lvlab gives every domain the agent's channel), or, for a
/// guest without an agent, this long: more than a TCG guest takes to bring
/// its network up on a busy host, because an early probe costs more than a
/// late one. KVM guests' networks are up in seconds.
const FIRST_PROBE_TCG: Duration = Duration::from_secs(120);
const FIRST_PROBE_KVM: Duration = Duration::from_secs(5);

/// One machine --wait still waits for.
struct Pending<'a> {
    machine: &'a MachineSpec,
    address: SocketAddr,
    /// No probe before this (passt forwards only), unless the network is up.
    first_probe: Duration,
    /// The guest agent reported an address (stays true once seen).
    network_up: bool,
    last_probe: Option<Instant>,
    /// A probe runs (on its own thread) and has not answered yet.
    in_flight: bool,
    id: usize,
}

/// Waits for the given machines' SSH; an error lists those not ready.
/// Each probe runs on its own thread, so a guest that keeps a probe waiting
/// delays no other.
pub fn wait_for_ssh(
    lab: &Lab,
    vm_names: &[String],
    args: &WaitArgs,
    printer: &Printer,
) -> Result<(), CliError> {
    let mut pending: Vec<Pending> = Vec::new();
    for machine in lab.environments.iter().flat_map(|e| e.machines.iter()) {
        if !vm_names.is_empty() && !vm_names.contains(&machine.vm_name) {
            continue;
        }
        match endpoint(machine) {
            Some(address) => pending.push(Pending {
                machine,
                address,
                first_probe: if address.ip().is_loopback() {
                    first_probe(lab, machine)
                } else {
                    Duration::ZERO
                },
                network_up: false,
                last_probe: None,
                in_flight: false,
                id: pending.len(),
            }),
            None => printer.out(&format!(
                "{}: no SSH endpoint lvlab can reach (use a passt NIC with ssh_port, or a static address); not waiting",
                machine.vm_name
            )),
        }
    }
    let (send, answers) = std::sync::mpsc::channel::<(usize, bool)>();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.wait_timeout);
    let mut last_progress = start;
    while !pending.is_empty() && Instant::now() < deadline {
        for p in pending.iter_mut().filter(|p| !p.network_up) {
            p.network_up = connection(lab, p.machine).is_some_and(|c| {
                crate::observe::runtime::agent_reports_network(c, &p.machine.domain_name)
            });
        }
        // Answers of the probes sent before.
        while let Ok((id, ok)) = answers.try_recv() {
            let Some(i) = pending.iter().position(|p| p.id == id) else {
                continue;
            };
            pending[i].in_flight = false;
            if ok {
                let p = pending.remove(i);
                printer.out(&format!(
                    "{} answers on SSH after {}s: {}",
                    p.machine.vm_name,
                    start.elapsed().as_secs(),
                    connect_hint(p.machine, p.address)
                ));
            }
        }
        let now = Instant::now();
        for p in pending.iter_mut().filter(|p| !p.in_flight) {
            if probe_due(
                now - start,
                p.first_probe,
                p.network_up,
                p.last_probe.map(|t| now - t),
            ) {
                p.in_flight = true;
                p.last_probe = Some(now);
                let (id, address, answers) = (p.id, p.address, send.clone());
                std::thread::spawn(move || {
                    let _ = answers.send((id, ssh::probe(address, PROBE_TIMEOUT).is_ok()));
                });
            }
        }
        if pending.is_empty() {
            break;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let names: Vec<&str> = pending.iter().map(|p| p.machine.vm_name.as_str()).collect();
            printer.out(&format!(
                "waiting for SSH on {}... [{}s elapsed]",
                names.join(", "),
                start.elapsed().as_secs()
            ));
        }
        std::thread::sleep(TICK.min(deadline.saturating_duration_since(Instant::now())));
    }
    if pending.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = pending
        .iter()
        .map(|p| format!("{} ({})", p.machine.vm_name, p.address))
        .collect();
    Err(CliError::Other(format!(
        "not reachable on SSH within {}s: {}\n  hint: look at the console (virsh console DOMAIN) or raise --wait-timeout",
        args.wait_timeout,
        names.join(", ")
    )))
}

/// Whether to probe a machine now: not before `first_probe` unless the
/// guest agent reported its network up; then every [`RETRY`], or every
/// [`RETRY_NETWORK_UP`] once the network is up.
fn probe_due(
    elapsed: Duration,
    first_probe: Duration,
    network_up: bool,
    since_last_probe: Option<Duration>,
) -> bool {
    if !network_up && elapsed < first_probe {
        return false;
    }
    let every = if network_up { RETRY_NETWORK_UP } else { RETRY };
    since_last_probe.is_none_or(|since| since >= every)
}

fn connection<'a>(lab: &'a Lab, machine: &MachineSpec) -> Option<&'a crate::libvirt::Connection> {
    lab.environments
        .iter()
        .find(|e| e.name == machine.environment)
        .map(|e| lab.hypervisors.get(&e.libvirt_uri))
}

/// How long a guest behind passt gets before the first probe without word
/// from its agent: a KVM guest's network is up in seconds, a TCG guest's in
/// about a minute.
fn first_probe(lab: &Lab, machine: &MachineSpec) -> Duration {
    let kvm = connection(lab, machine)
        .and_then(|c| {
            crate::observe::domains::find(c, &machine.domain_name)
                .ok()
                .flatten()
        })
        .and_then(|d| d.mark)
        .is_some_and(|mark| mark.spec.0.get("domain_type").is_some_and(|t| t == "kvm"));
    if kvm {
        FIRST_PROBE_KVM
    } else {
        FIRST_PROBE_TCG
    }
}

/// A passt forward on 127.0.0.1, else the first static IPv4 address.
pub(crate) fn endpoint(machine: &MachineSpec) -> Option<SocketAddr> {
    // Read now: the apply just made may have recorded a new definition.
    if let Some(port) = crate::observe::machine_files(machine).ssh_ports().first() {
        return Some(SocketAddr::from(([127, 0, 0, 1], *port)));
    }
    machine
        .interfaces
        .iter()
        .find_map(|nic| match &nic.addressing {
            Addressing::Static { ipv4: Some(v4), .. } => {
                Some(SocketAddr::from((v4.address.addr(), 22)))
            }
            _ => None,
        })
}

fn connect_hint(machine: &MachineSpec, address: SocketAddr) -> String {
    let user = &machine.cloud_init.user;
    if address.port() == 22 {
        format!("ssh {user}@{}", address.ip())
    } else {
        format!("ssh -p {} {user}@{}", address.port(), address.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn no_probe_through_passt_before_the_network_is_up_or_the_first_delay() {
        // The README's figures: 120 s under TCG, 5 s under KVM.
        assert!(!probe_due(S(0), FIRST_PROBE_TCG, false, None));
        let just_before = S(120) - Duration::from_millis(1);
        assert!(!probe_due(just_before, FIRST_PROBE_TCG, false, None));
        assert!(probe_due(S(120), FIRST_PROBE_TCG, false, None));
        assert!(!probe_due(S(4), FIRST_PROBE_KVM, false, None));
        assert!(probe_due(S(5), FIRST_PROBE_KVM, false, None));
        // A static address has no first delay.
        assert!(probe_due(S(0), Duration::ZERO, false, None));
    }

    #[test]
    fn the_agent_reporting_the_network_up_starts_probing_at_once() {
        assert!(probe_due(S(20), FIRST_PROBE_TCG, true, None));
    }

    #[test]
    fn probes_every_five_seconds_then_every_second_once_the_network_is_up() {
        let later = FIRST_PROBE_TCG + S(10);
        assert!(!probe_due(later, FIRST_PROBE_TCG, false, Some(S(4))));
        assert!(probe_due(later, FIRST_PROBE_TCG, false, Some(S(5))));
        assert!(!probe_due(
            S(50),
            FIRST_PROBE_TCG,
            true,
            Some(Duration::from_millis(900))
        ));
        assert!(probe_due(S(50), FIRST_PROBE_TCG, true, Some(S(1))));
    }
}
