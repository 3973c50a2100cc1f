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

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(5);
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// Before the first SSH probe through a passt forward: a connection that
/// arrives before the guest's network is up makes bookworm's passt spin a
/// whole core until the guest answers, which halved two TCG guests' boot
/// speed on 2 cores (measured). So wait until the guest agent answers, or
/// this long (TCG boots take about a minute; KVM ones seconds).
const FIRST_PROBE_TCG: Duration = Duration::from_secs(45);
const FIRST_PROBE_KVM: Duration = Duration::from_secs(5);

/// Waits for the given machines' SSH; an error lists those not ready.
pub fn wait_for_ssh(
    lab: &Lab,
    vm_names: &[String],
    args: &WaitArgs,
    printer: &Printer,
) -> Result<(), CliError> {
    let mut pending: Vec<(&MachineSpec, SocketAddr)> = Vec::new();
    for machine in lab.environments.iter().flat_map(|e| e.machines.iter()) {
        if !vm_names.is_empty() && !vm_names.contains(&machine.vm_name) {
            continue;
        }
        match endpoint(machine) {
            Some(address) => pending.push((machine, address)),
            None => printer.out(&format!(
                "{}: no SSH endpoint lvlab can reach (use a passt NIC with ssh_port, or a static address); not waiting",
                machine.vm_name
            )),
        }
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.wait_timeout);
    let mut last_progress = start;
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|(machine, address)| {
            let through_passt = address.ip().is_loopback();
            if through_passt && !may_probe(lab, machine, start.elapsed()) {
                return true;
            }
            let Ok(_) = ssh::probe(*address, PROBE_TIMEOUT) else {
                return true;
            };
            printer.out(&format!(
                "{} answers on SSH after {}s: {}",
                machine.vm_name,
                start.elapsed().as_secs(),
                connect_hint(machine, *address)
            ));
            false
        });
        if pending.is_empty() {
            break;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let names: Vec<&str> = pending.iter().map(|(m, _)| m.vm_name.as_str()).collect();
            printer.out(&format!(
                "waiting for SSH on {}... [{}s elapsed]",
                names.join(", "),
                start.elapsed().as_secs()
            ));
        }
        std::thread::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now())));
    }
    if pending.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = pending
        .iter()
        .map(|(m, a)| format!("{} ({a})", m.vm_name))
        .collect();
    Err(CliError::Other(format!(
        "not reachable on SSH within {}s: {}\n  hint: look at the console (virsh console DOMAIN) or raise --wait-timeout",
        args.wait_timeout,
        names.join(", ")
    )))
}

/// Whether probing a passt forward now is safe: the guest agent answers,
/// or the guest has had the time such a guest needs to bring its network up.
fn may_probe(lab: &Lab, machine: &MachineSpec, elapsed: Duration) -> bool {
    let env = lab
        .environments
        .iter()
        .find(|e| e.name == machine.environment);
    let conn = env.map(|e| lab.hypervisors.get(&e.libvirt_uri));
    let kvm = conn
        .and_then(|c| {
            crate::observe::domains::find(c, &machine.domain_name)
                .ok()
                .flatten()
        })
        .and_then(|d| d.mark)
        .is_some_and(|mark| mark.spec.0.get("domain_type").is_some_and(|t| t == "kvm"));
    let first = if kvm {
        FIRST_PROBE_KVM
    } else {
        FIRST_PROBE_TCG
    };
    elapsed >= first
        || conn.is_some_and(|c| crate::observe::runtime::agent_answers(c, &machine.domain_name))
}

/// A passt forward on 127.0.0.1, else the first static IPv4 address.
fn endpoint(machine: &MachineSpec) -> Option<SocketAddr> {
    let recorded = crate::storage::read_text(&machine.vm_dir.join("domain.xml"))?;
    if let Some(port) = crate::domain::forwarded_ssh_ports(&recorded).first() {
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
