//! Ties the stages together for one command: open the environments'
//! hypervisors, observe them, render every selected machine
//! ([`crate::rendering`]), plan, and carry the plan out. Each stage stays a
//! module of its own; this one only calls them in order. [`Operation`] is
//! one command's run of them, from plan to report, through a [`Ui`].

pub mod init;
mod operation;

pub use operation::{Confirm, Ended, Operation, OperationError, Ui, PROGRESS_EVERY};

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::actions::{self, ApplyContext};
use crate::apply::{self, EnvironmentLock, ExecutionObserver, LockError, Outcome};
use crate::cloudinit::password::{PasswordReporter, Unshown};
use crate::desired::{Desired, EnvironmentSpec};
use crate::host::Hosts;
use crate::images::{progress::Silent, EnsureOptions, FetchOptions, Fetcher, Reporter};
use crate::libvirt::LibvirtError;
use crate::observe::status::MachineStatus;
use crate::observe::{self, Observed};
use crate::plan::{self, CheckInput, Plan, PlanError, PlanInput, Selection, Target};
use crate::provision::{self, ProvisionReporter};
use crate::rendering::{self, RenderError, Rendered};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot set up downloads: {0}")]
    Fetcher(crate::images::FetchError),
}

/// Why machines named for `down` or `destroy` cannot be acted on.
#[derive(Debug, thiserror::Error)]
pub enum DeployedError {
    /// Not a machine of the selected environments (with a suggestion).
    #[error("{0}")]
    Unknown(String),
    #[error("{vm} is not deployed (lvlab up {vm} creates it)")]
    NotDeployed { vm: String },
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
}

/// The selected environments with their connections open.
pub struct Lab<'d> {
    pub desired: &'d Desired,
    pub environments: Vec<&'d EnvironmentSpec>,
    /// One host per libvirt URI of the selected environments.
    pub hosts: Hosts,
}

impl<'d> Lab<'d> {
    pub fn open(
        desired: &'d Desired,
        environments: Vec<&'d EnvironmentSpec>,
    ) -> Result<Self, LibvirtError> {
        let uris = crate::desired::libvirt_uris(environments.iter().copied());
        let hosts = Hosts::open(uris.iter().map(String::as_str))?;
        Ok(Self {
            desired,
            environments,
            hosts,
        })
    }

    pub fn observe(&self) -> Result<Observed, LibvirtError> {
        observe::observe(self.desired, &self.environments, &self.hosts)
    }

    /// One lock per (canonical URI, environment) on every reachable host
    /// the environments are placed on, whichever manifest names them: two
    /// manifests with one environment name serialize.
    pub fn lock(&self, timeout: Duration) -> Result<Vec<EnvironmentLock>, LockError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for env in &self.environments {
            for uri in crate::desired::libvirt_uris([*env]) {
                let Some(host) = self.hosts.find(&uri) else {
                    continue;
                };
                let pair = (host.canonical_uri().to_string(), env.name.clone());
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
        }
        EnvironmentLock::acquire_all(&apply::state_dir()?, pairs, timeout)
    }

    /// Each selected machine's state and how to reach it, as seen now.
    pub fn status(&self) -> Result<Vec<MachineStatus>, LibvirtError> {
        let observed = self.observe()?;
        Ok(observe::status::machines(
            &self.environments,
            &observed,
            &self.hosts,
        ))
    }

    /// The names of the machines whose domain exists, in manifest order.
    pub fn deployed(&self) -> Result<Vec<String>, LibvirtError> {
        let observed = self.observe()?;
        Ok(self
            .environments
            .iter()
            .flat_map(|env| {
                env.machines
                    .iter()
                    .filter(|m| {
                        observed
                            .of(m)
                            .is_some_and(|s| s.domain(&m.domain_name).is_some())
                    })
                    .map(|m| m.vm_name.clone())
            })
            .collect())
    }

    /// The deployed machines among `named` (every deployed one when none
    /// is named), in manifest order. Each named one must be a machine of
    /// the environments `env` selects, and deployed.
    pub fn deployed_among(
        &self,
        named: &[String],
        env: Option<&str>,
    ) -> Result<Vec<String>, DeployedError> {
        let deployed = self.deployed()?;
        for vm in named {
            self.desired
                .machine(vm, env)
                .map_err(DeployedError::Unknown)?;
            if !deployed.contains(vm) {
                return Err(DeployedError::NotDeployed { vm: vm.clone() });
            }
        }
        Ok(deployed
            .into_iter()
            .filter(|name| named.is_empty() || named.contains(name))
            .collect())
    }

    /// Observes, checks, renders and plans. The checks come before
    /// rendering so that every problem is reported, not the first one
    /// rendering trips over.
    pub fn plan(&self, target: Target, selection: &Selection) -> Result<Planned, ReconcileError> {
        let observed = self.observe()?;
        let feasible = plan::check(&CheckInput {
            desired: self.desired,
            environments: &self.environments,
            observed: &observed,
            target,
            selection,
        })?;
        // Removing a machine makes nothing from its spec: a seed it cannot
        // render (a deleted key file) must not keep it from going.
        let rendered = if target == Target::Absent {
            Rendered::default()
        } else {
            rendering::render(self.desired, &self.environments, &observed, &self.hosts)?
        };
        let plan = plan::build(&PlanInput {
            desired: self.desired,
            environments: &self.environments,
            observed: &observed,
            rendered: &rendered.machines,
            target,
            selection,
            feasible: &feasible,
        })?;
        Ok(Planned {
            observed,
            rendered,
            plan,
        })
    }

    /// Carries `planned` out.
    pub fn apply(
        &self,
        planned: &Planned,
        options: &ApplyOptions,
        observer: &dyn ExecutionObserver,
        interrupt: &AtomicBool,
    ) -> Result<Outcome, ReconcileError> {
        let fetcher = Fetcher::new(FetchOptions::from_env()).map_err(ReconcileError::Fetcher)?;
        let image_options = EnsureOptions::default();
        let context = ApplyContext {
            desired: self.desired,
            hosts: &self.hosts,
            shutdown_timeout: options.shutdown_timeout,
            force: options.force,
            fetcher: &fetcher,
            image_options: &image_options,
            image_reporter: options.image_reporter.as_ref(),
            new_passwords: &planned.rendered.new_passwords,
            password_reporter: options.password_reporter,
            provision_timeout: options.provision_timeout,
            provision_reporter: options.provision_reporter,
        };
        let jobs = planned
            .plan
            .graph
            .map(|_, step| actions::job(step, &context), |_, _| ());
        Ok(apply::execute(
            &jobs,
            options.parallelism,
            observer,
            interrupt,
        ))
    }
}

/// A plan with what it was made from.
pub struct Planned {
    pub observed: Observed,
    pub rendered: Rendered,
    pub plan: Plan,
}

pub struct ApplyOptions<'a> {
    pub parallelism: usize,
    pub shutdown_timeout: Duration,
    pub force: bool,
    /// Hears about image downloads (bars on a terminal, or nothing).
    pub image_reporter: Box<dyn Reporter>,
    /// Hears about each generated console password as its seed is written.
    pub password_reporter: &'a dyn PasswordReporter,
    /// How long a provisioning waits for its machine's SSH.
    pub provision_timeout: Duration,
    /// Hears what provisioning commands print.
    pub provision_reporter: &'a dyn ProvisionReporter,
}

impl Default for ApplyOptions<'_> {
    fn default() -> Self {
        Self {
            parallelism: 10,
            shutdown_timeout: Duration::from_secs(120),
            force: false,
            image_reporter: Box::new(Silent),
            password_reporter: &Unshown,
            provision_timeout: Duration::from_secs(600),
            provision_reporter: &provision::Unheard,
        }
    }
}
