//! Carries snapshot steps out: one job per machine, run by the executor
//! with its bounded parallelism, failure isolation and interrupt handling;
//! each job is one or two libvirt calls.

use std::sync::atomic::AtomicBool;

use petgraph::graph::DiGraph;
use virt::domain::Domain;
use virt::domain_snapshot::DomainSnapshot;

use super::{snapshot_xml, Step, Verb};
use crate::apply::{self, ActionError, ExecutionObserver, Job, JobInfo, Outcome};
use crate::host::{Host, Hosts};
use crate::libvirt::{Connection, LibvirtError};

/// Runs every step (independent of each other) at most `parallelism` at
/// once; `hosts` holds the host of each step's URI.
pub fn execute(
    steps: &[Step],
    hosts: &Hosts,
    parallelism: usize,
    observer: &dyn ExecutionObserver,
    interrupt: &AtomicBool,
) -> Outcome {
    let mut graph = DiGraph::new();
    for step in steps {
        graph.add_node(SnapshotJob {
            step,
            host: hosts.get(&step.uri),
        });
    }
    apply::execute(&graph, parallelism, observer, interrupt)
}

struct SnapshotJob<'a> {
    step: &'a Step,
    host: &'a Host,
}

impl Job for SnapshotJob<'_> {
    fn info(&self) -> JobInfo {
        let step = self.step;
        let memory = match step.verb {
            Verb::Create { .. } if step.with_memory => " (running: with its memory)",
            _ => "",
        };
        JobInfo {
            address: step.address.to_string(),
            action: format!("{} {}{memory}", step.verb.describe(), step.name),
        }
    }

    fn run(&self) -> Result<(), ActionError> {
        self.call()
            .map_err(|err| ActionError::libvirt(&self.step.domain)(err.into()))
    }
}

impl SnapshotJob<'_> {
    fn call(&self) -> Result<(), LibvirtError> {
        let (lease, step) = (self.host.connection(), self.step);
        let conn: &Connection = &lease;
        let domain = conn
            .raw()
            .lookup_domain_by_name(&step.domain)
            .map_err(|e| conn.error("find the domain", e))?;
        match step.verb {
            Verb::Create { replace } => {
                if replace {
                    delete(conn, &domain, step)?;
                }
                create(conn, &domain, step)
            }
            Verb::Revert => lookup(conn, &domain, step)?
                .revert(0)
                .map_err(|e| conn.error("revert to the snapshot", e)),
            Verb::Delete => delete(conn, &domain, step),
        }
    }
}

/// Atomic: libvirt leaves no partial snapshot behind when one disk fails.
fn create(conn: &Connection, domain: &Domain, step: &Step) -> Result<(), LibvirtError> {
    let xml = snapshot_xml(&step.name, &step.description, step.with_memory);
    domain
        .create_snapshot_xml(&xml, virt::sys::VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)
        .map(drop)
        .map_err(|e| conn.error("create the snapshot", e))
}

/// The snapshot alone: its children, if any, keep their state and hang
/// from its parent.
fn delete(conn: &Connection, domain: &Domain, step: &Step) -> Result<(), LibvirtError> {
    lookup(conn, domain, step)?
        .delete(0)
        .map_err(|e| conn.error("delete the snapshot", e))
}

fn lookup(conn: &Connection, domain: &Domain, step: &Step) -> Result<DomainSnapshot, LibvirtError> {
    Domain::lookup_snapshot_by_name(domain, step.name.as_str(), 0)
        .map_err(|e| conn.error("find the snapshot", e))
}
