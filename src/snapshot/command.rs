//! The snapshot commands on an open [`Lab`]: a change (create, revert,
//! delete) under the environments' locks, decided on one observation and
//! carried out by the executor; and the list of each machine's snapshots.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use super::{plan, run, select, Problems, Request, Step};
use crate::apply::{ExecutionObserver, LockError, Outcome};
use crate::libvirt::LibvirtError;
use crate::observe::snapshots::created_rfc3339;
use crate::reconcile::Lab;

/// Why a snapshot command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    /// The request was refused whole, with every reason.
    #[error(transparent)]
    Refused(#[from] Problems),
}

/// How a change is carried out.
pub struct ChangeOptions<'a> {
    /// How long to wait for another lvlab working on the same environment.
    pub lock_timeout: Duration,
    /// Steps at most at once.
    pub parallelism: usize,
    pub observer: &'a dyn ExecutionObserver,
    pub interrupt: &'a AtomicBool,
}

/// Takes the locks, observes, decides every machine's step (or refuses
/// `request` whole) and runs the steps; the steps and what became of them.
pub fn change(
    lab: &Lab,
    request: &Request,
    options: &ChangeOptions,
) -> Result<(Vec<Step>, Outcome), SnapshotError> {
    let _locks = lab.lock(options.lock_timeout)?;
    let observed = lab.observe()?;
    let steps = plan(lab.desired, &lab.environments, &observed, request)?;
    let outcome = run::execute(
        &steps,
        &lab.hosts,
        options.parallelism,
        options.observer,
        options.interrupt,
    );
    Ok((steps, outcome))
}

/// One snapshot of one machine, as `snapshot list` shows it.
#[derive(Debug, Serialize)]
pub struct SnapshotRow {
    pub environment: String,
    pub machine: String,
    pub domain: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The machine's state when it was taken, as libvirt names it.
    pub state: String,
    pub description: Option<String>,
}

/// The snapshots of the `named` machines (every deployed one of this lab
/// when empty), in manifest order.
pub fn list(lab: &Lab, named: &[String]) -> Result<Vec<SnapshotRow>, SnapshotError> {
    let observed = lab.observe()?;
    let machines = select::owned_machines(&lab.environments, &observed, named)?;
    Ok(machines
        .iter()
        .flat_map(|(machine, domain)| {
            domain.snapshots.iter().map(|snapshot| SnapshotRow {
                environment: machine.environment.clone(),
                machine: machine.vm_name.clone(),
                domain: domain.name.clone(),
                name: snapshot.name.clone(),
                created: created_rfc3339(snapshot),
                state: snapshot.state.clone(),
                description: snapshot.description.clone(),
            })
        })
        .collect())
}
