//! Which machines a snapshot request acts on, decided from the observed
//! lab without touching libvirt. Every problem is found before anything
//! is done: a request that cannot be carried out on one machine is not
//! carried out on any (a lab half reverted is worse than none).

use super::{SnapshotName, Verb};
use crate::desired::{Desired, EnvironmentSpec, MachineSpec};
use crate::observe::{Observed, ObservedDomain};
use crate::plan::Address;

/// A snapshot command, as asked.
pub struct Request<'a> {
    pub verb: Verb,
    pub name: &'a SnapshotName,
    /// Machines by vm_name; empty means every deployed machine of the
    /// selected environments.
    pub machines: &'a [String],
}

/// One machine's part of the request, with every fact its job needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub address: Address,
    /// The libvirt URI of the machine's environment.
    pub uri: String,
    pub domain: String,
    /// For a create, `replace` only when the machine has the snapshot.
    pub verb: Verb,
    pub name: SnapshotName,
    /// The domain runs (or is paused): a create saves its memory too.
    pub with_memory: bool,
    /// What a create records as the snapshot's description.
    pub description: String,
}

/// Why a request cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("machine {machine} is not deployed (lvlab up {machine} creates it)")]
    NotDeployed { machine: String },
    #[error(
        "domain {domain} (machine {machine}) was not made by this lab{}; lvlab never \
         snapshots, reverts or deletes another's domain",
        .owner.as_ref().map_or(String::new(), |o| format!(" but by another lab ({o})"))
    )]
    NotOurs {
        machine: String,
        domain: String,
        owner: Option<String>,
    },
    #[error(
        "machine {machine} already has a snapshot {name}\n  hint: pick another name, delete \
         it first (lvlab snapshot delete {name} {machine}), or pass --replace"
    )]
    Exists { machine: String, name: String },
    #[error("machine {machine} has no snapshot {name} ({})", existing_names(.existing))]
    Missing {
        machine: String,
        name: String,
        existing: Vec<String>,
    },
    #[error("no machine of the selected environments is deployed: nothing to snapshot")]
    NothingDeployed,
}

fn existing_names(names: &[String]) -> String {
    if names.is_empty() {
        "it has none".into()
    } else {
        format!("it has: {}", names.join(", "))
    }
}

/// Every problem of one request, in machine order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let [one] = self.0.as_slice() {
            return write!(f, "{one}");
        }
        write!(f, "{} problems; nothing was done:", self.0.len())?;
        for problem in &self.0 {
            write!(f, "\n  - {}", problem.to_string().replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// The steps of `request` on the machines of `environments`, or every
/// reason it cannot be carried out. Named machines must be deployed;
/// without names, machines that are not are left out.
pub fn plan(
    desired: &Desired,
    environments: &[&EnvironmentSpec],
    observed: &Observed,
    request: &Request,
) -> Result<Vec<Step>, Problems> {
    let (deployed, mut problems) = deployed(environments, observed, request.machines);
    let mut steps = Vec::new();
    for (env, machine, domain) in deployed {
        match step(desired, env, machine, domain, request) {
            Ok(step) => steps.push(step),
            Err(problem) => problems.push(problem),
        }
    }
    if steps.is_empty() && problems.is_empty() {
        problems.push(Problem::NothingDeployed);
    }
    if problems.is_empty() {
        Ok(steps)
    } else {
        Err(Problems(problems))
    }
}

/// The deployed machines of `environments` that are this lab's, with
/// their domains, in manifest order; `named` ones (all when empty) must
/// be among them.
pub fn owned_machines<'a>(
    environments: &[&'a EnvironmentSpec],
    observed: &'a Observed,
    named: &[String],
) -> Result<Vec<(&'a MachineSpec, &'a ObservedDomain)>, Problems> {
    let (deployed, problems) = deployed(environments, observed, named);
    if problems.is_empty() {
        Ok(deployed.into_iter().map(|(_, m, d)| (m, d)).collect())
    } else {
        Err(Problems(problems))
    }
}

type Deployed<'a> = (&'a EnvironmentSpec, &'a MachineSpec, &'a ObservedDomain);

/// The selected machines whose domain exists and is this lab's, and the
/// problems of the others: a named machine without a domain, a domain
/// that is not this lab's.
fn deployed<'a>(
    environments: &[&'a EnvironmentSpec],
    observed: &'a Observed,
    named: &[String],
) -> (Vec<Deployed<'a>>, Vec<Problem>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for env in environments {
        for machine in &env.machines {
            let seen = observed.of(machine);
            let is_named = named.contains(&machine.vm_name);
            if !named.is_empty() && !is_named {
                continue;
            }
            match seen.and_then(|s| s.domain(&machine.domain_name)) {
                Some(domain) => match ownership(env, machine, domain) {
                    Ok(()) => found.push((*env, machine, domain)),
                    Err(problem) => problems.push(problem),
                },
                None if is_named => problems.push(Problem::NotDeployed {
                    machine: machine.vm_name.clone(),
                }),
                None => {}
            }
        }
    }
    (found, problems)
}

/// The domain carries this lab's mark for `machine`.
fn ownership(
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    domain: &ObservedDomain,
) -> Result<(), Problem> {
    match &domain.mark {
        Some(mark) if env.owns_machine(mark, machine) => Ok(()),
        mark => Err(Problem::NotOurs {
            machine: machine.vm_name.clone(),
            domain: domain.name.clone(),
            owner: mark.as_ref().map(|m| m.owner()),
        }),
    }
}

fn step(
    desired: &Desired,
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    domain: &ObservedDomain,
    request: &Request,
) -> Result<Step, Problem> {
    let name = request.name.as_str();
    let has = domain.snapshots.iter().any(|s| s.name == name);
    let verb = match (request.verb, has) {
        (Verb::Create { replace: false }, true) => {
            return Err(Problem::Exists {
                machine: machine.vm_name.clone(),
                name: name.to_string(),
            })
        }
        (Verb::Create { replace }, has) => Verb::Create {
            replace: replace && has,
        },
        (Verb::Revert | Verb::Delete, false) => {
            return Err(Problem::Missing {
                machine: machine.vm_name.clone(),
                name: name.to_string(),
                existing: domain.snapshots.iter().map(|s| s.name.clone()).collect(),
            })
        }
        (verb, true) => verb,
    };
    Ok(Step {
        address: Address::Machine {
            environment: env.name.clone(),
            vm_name: machine.vm_name.clone(),
            domain: domain.name.clone(),
            uri: machine.libvirt_uri.clone(),
        },
        uri: machine.libvirt_uri.clone(),
        domain: domain.name.clone(),
        verb,
        name: request.name.clone(),
        with_memory: domain.state.is_active(),
        description: format!(
            "made by lvlab for machine {} of environment {} ({})",
            machine.vm_name,
            env.name,
            desired.manifest_path.display()
        ),
    })
}
