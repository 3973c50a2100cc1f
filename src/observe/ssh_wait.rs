//! Waiting until started machines answer on SSH: the probe schedule and
//! the loop, reporting through a [`WaitReporter`] the caller renders. Each
//! machine's endpoint is its host's answer ([`Host::ssh_endpoint`]).

use std::time::{Duration, Instant};

use super::{runtime, ssh};
use crate::desired::MachineSpec;
use crate::host::{Host, Route, SshEndpoint};

/// Hears what the wait finds, as it finds it.
pub trait WaitReporter {
    /// `machine` has no endpoint lvlab can reach: it is not waited for.
    fn no_endpoint(&self, machine: &MachineSpec);
    /// `machine` answered at `endpoint`, `after` the wait began.
    fn answered(&self, machine: &MachineSpec, endpoint: &SshEndpoint, after: Duration);
    /// Every so often: the machines still waited for.
    fn still_waiting(&self, machines: &[&str], elapsed: Duration);
}

/// The machines that did not answer in time, with where they were probed.
#[derive(Debug, thiserror::Error)]
#[error(
    "not reachable on SSH within {}s: {}\n  hint: look at the console (virsh console DOMAIN) or raise --wait-timeout",
    .timeout.as_secs(),
    .machines.iter().map(|(m, e)| format!("{m} ({})", e.describe())).collect::<Vec<_>>().join(", ")
)]
pub struct NotReachable {
    pub timeout: Duration,
    pub machines: Vec<(String, SshEndpoint)>,
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

/// One machine the wait still waits for.
struct Pending<'a> {
    host: &'a Host,
    machine: &'a MachineSpec,
    endpoint: SshEndpoint,
    /// No probe before this (passt forwards only), unless the network is up.
    first_probe: Duration,
    /// The guest agent reported an address (stays true once seen).
    network_up: bool,
    last_probe: Option<Instant>,
    /// A probe runs (on its own thread) and has not answered yet.
    in_flight: bool,
    id: usize,
}

/// Waits up to `timeout` for each machine's SSH on its host; an error
/// names those not ready. Each probe runs on its own thread, so a guest
/// that keeps a probe waiting delays no other.
pub fn wait_for_ssh(
    machines: &[(&Host, &MachineSpec)],
    timeout: Duration,
    reporter: &dyn WaitReporter,
) -> Result<(), NotReachable> {
    let mut pending: Vec<Pending> = Vec::new();
    // Machines of a remote host lvlab has no SSH hop to: not probed.
    let mut out_of_reach = Vec::new();
    for &(host, machine) in machines {
        // Read now: the apply just made may have recorded a new definition.
        let files = super::machine_files(host.storage_for(machine).as_ref(), machine);
        let Some(endpoint) = host.ssh_endpoint(machine, &files) else {
            reporter.no_endpoint(machine);
            continue;
        };
        if let Route::Unreachable(why) = &endpoint.route {
            tracing::warn!("{}: not waited for: {why}", machine.vm_name);
            out_of_reach.push((machine.vm_name.clone(), endpoint));
            continue;
        }
        pending.push(Pending {
            host,
            machine,
            first_probe: if endpoint.forwarded {
                first_probe(host, machine)
            } else {
                Duration::ZERO
            },
            endpoint,
            network_up: false,
            last_probe: None,
            in_flight: false,
            id: pending.len(),
        });
    }
    let (send, answers) = std::sync::mpsc::channel::<(usize, bool)>();
    let start = Instant::now();
    let deadline = start + timeout;
    let mut last_progress = start;
    while !pending.is_empty() && Instant::now() < deadline {
        for p in pending.iter_mut().filter(|p| !p.network_up) {
            p.network_up =
                runtime::agent_reports_network(&p.host.connection(), &p.machine.domain_name);
        }
        // Answers of the probes sent before.
        while let Ok((id, ok)) = answers.try_recv() {
            let Some(i) = pending.iter().position(|p| p.id == id) else {
                continue;
            };
            pending[i].in_flight = false;
            if ok {
                let p = pending.remove(i);
                reporter.answered(p.machine, &p.endpoint, start.elapsed());
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
                let (id, address, answers) = (p.id, p.endpoint.address, send.clone());
                let route = p.endpoint.route.clone();
                std::thread::spawn(move || {
                    let answer = ssh::probe_route(address, &route, PROBE_TIMEOUT);
                    let _ = answers.send((id, answer.is_ok()));
                });
            }
        }
        if pending.is_empty() {
            break;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let names: Vec<&str> = pending.iter().map(|p| p.machine.vm_name.as_str()).collect();
            reporter.still_waiting(&names, start.elapsed());
        }
        std::thread::sleep(TICK.min(deadline.saturating_duration_since(Instant::now())));
    }
    if pending.is_empty() && out_of_reach.is_empty() {
        return Ok(());
    }
    let timed_out = pending
        .into_iter()
        .map(|p| (p.machine.vm_name.clone(), p.endpoint));
    Err(NotReachable {
        timeout,
        machines: timed_out.chain(out_of_reach).collect(),
    })
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

/// How long a guest behind passt gets before the first probe without word
/// from its agent: a KVM guest's network is up in seconds, a TCG guest's in
/// about a minute.
fn first_probe(host: &Host, machine: &MachineSpec) -> Duration {
    let kvm = super::domains::find(&host.connection(), &machine.domain_name)
        .ok()
        .flatten()
        .and_then(|d| d.mark)
        .is_some_and(|mark| mark.spec.domain_type() == Some("kvm"));
    if kvm {
        FIRST_PROBE_KVM
    } else {
        FIRST_PROBE_TCG
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
