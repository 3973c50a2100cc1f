//! Ties the stages together for one command: open the environments'
//! hypervisors, observe them, render every selected machine (definition and
//! seed), plan, and carry the plan out. Each stage stays a module of its
//! own; this one only calls them in order.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::actions::{self, ApplyContext};
use crate::apply::{self, ExecutionObserver, Outcome};
use crate::cloudinit::password::{OneTimePassword, PasswordReporter, Unshown};
use crate::cloudinit::{self, CloudInitError, Seed, SeedInput};
use crate::desired::{Desired, EnvironmentSpec, ImageSpec, MachineSpec};
use crate::domain::{self, DefinitionInput, DomainError, HostFacts, OwnershipMark, SpecFields};
use crate::images::{self, progress::Silent, EnsureOptions, FetchOptions, Fetcher, Reporter};
use crate::libvirt::{Hypervisors, LibvirtError};
use crate::observe::{self, osinfo, MachineFiles, Observed};
use crate::plan::{
    self, CheckInput, Plan, PlanError, PlanInput, RenderedMachine, Selection, Target,
};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error("{machine}: {source}")]
    Domain {
        machine: String,
        source: DomainError,
    },
    #[error("{machine}: {source}")]
    Seed {
        machine: String,
        source: CloudInitError,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot set up downloads: {0}")]
    Fetcher(crate::images::FetchError),
}

/// The selected environments with their connections open.
pub struct Lab<'d> {
    pub desired: &'d Desired,
    pub environments: Vec<&'d EnvironmentSpec>,
    pub hypervisors: Hypervisors,
}

impl<'d> Lab<'d> {
    pub fn open(
        desired: &'d Desired,
        environments: Vec<&'d EnvironmentSpec>,
    ) -> Result<Self, LibvirtError> {
        let hypervisors = Hypervisors::open(environments.iter().map(|e| e.libvirt_uri.as_str()))?;
        Ok(Self {
            desired,
            environments,
            hypervisors,
        })
    }

    pub fn observe(&self) -> Result<Observed, LibvirtError> {
        observe::observe(self.desired, &self.environments, &self.hypervisors)
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
        let rendered = render(self.desired, &self.environments, &observed)?;
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
            hypervisors: &self.hypervisors,
            rendered: &planned.rendered.machines,
            shutdown_timeout: options.shutdown_timeout,
            force: options.force,
            fetcher: &fetcher,
            image_options: &image_options,
            image_reporter: options.image_reporter.as_ref(),
            new_passwords: &planned.rendered.new_passwords,
            password_reporter: options.password_reporter.as_ref(),
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

pub struct ApplyOptions {
    pub parallelism: usize,
    pub shutdown_timeout: Duration,
    pub force: bool,
    /// Hears about image downloads (bars on a terminal, or nothing).
    pub image_reporter: Box<dyn Reporter>,
    /// Hears about each generated console password as its seed is written.
    pub password_reporter: Box<dyn PasswordReporter>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallelism: 10,
            shutdown_timeout: Duration::from_secs(120),
            force: false,
            image_reporter: Box::new(Silent),
            password_reporter: Box::new(Unshown),
        }
    }
}

/// Every selected machine rendered, and the console passwords generated
/// for machines that get their first seed (shown once, when apply writes
/// that seed).
#[derive(Default)]
pub struct Rendered {
    pub machines: BTreeMap<String, RenderedMachine>,
    pub new_passwords: BTreeMap<String, OneTimePassword>,
}

pub fn render(
    desired: &Desired,
    environments: &[&EnvironmentSpec],
    observed: &Observed,
) -> Result<Rendered, ReconcileError> {
    let mut rendered = Rendered::default();
    // Read once per render, not per observe: `status` needs no os ids.
    let os_ids = osinfo::find()
        .map(|db| osinfo::os_ids(&db.path))
        .unwrap_or_default();
    for env in environments {
        let Some(seen) = observed.environment(&env.name) else {
            continue;
        };
        for machine in &env.machines {
            let files = seen.files(&machine.vm_name);
            let (one, password) =
                render_machine(desired, env, machine, &seen.host, files, &os_ids)?;
            rendered.machines.insert(machine.domain_name.clone(), one);
            if let Some(password) = password {
                rendered
                    .new_passwords
                    .insert(machine.domain_name.clone(), password);
            }
        }
    }
    Ok(rendered)
}

fn render_machine(
    desired: &Desired,
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    host: &HostFacts,
    files: &MachineFiles,
    os_ids: &BTreeMap<String, String>,
) -> Result<(RenderedMachine, Option<OneTimePassword>), ReconcileError> {
    let domain_err = |source| ReconcileError::Domain {
        machine: machine.vm_name.clone(),
        source,
    };
    let seed_err = |source| ReconcileError::Seed {
        machine: machine.vm_name.clone(),
        source,
    };
    let image = &desired.images[&machine.os];
    let domain_type = domain::resolve_domain_type(machine.domain_type, host).map_err(domain_err)?;
    let (seed, new_password) = render_seed(env, machine, image, files).map_err(seed_err)?;
    let seed_digest = seed.digest();
    let fields = SpecFields::of(machine, &domain_type, &seed_digest);
    let spec_digest = domain::spec_digest(&fields);
    let mark = OwnershipMark {
        environment: machine.environment.clone(),
        vm_name: machine.vm_name.clone(),
        manifest: desired.manifest_path.display().to_string(),
        vm_dir: domain::canonical_dir(&machine.vm_dir).display().to_string(),
        lab_id: env.lab_id.clone(),
        image_key: machine.os.clone(),
        image_digest: images::record::verified_digest(machine, image).unwrap_or_default(),
        seed_digest,
        renderer: cloudinit::RENDERER_VERSION,
        spec_digest: spec_digest.clone(),
        spec: fields.clone(),
    };
    let ports = ssh_ports(machine, files);
    let variant = osinfo::choose_variant(&image.os_variant, os_ids);
    let definition = domain::render_definition(&DefinitionInput {
        machine,
        domain_type: &domain_type,
        arch: &host.arch,
        mark: &mark,
        auto_ssh_ports: &ports,
        virtiofsd: host.virtiofsd.as_deref(),
        os_id: variant.id.as_deref(),
    })
    .map_err(domain_err)?;
    Ok((
        RenderedMachine {
            fields,
            spec_digest,
            definition,
            seed,
            os_variant: variant,
        },
        new_password,
    ))
}

/// A machine's cloud-init seed: its authorized keys, the console
/// password hash recorded in its last user-data (a fresh password only
/// when there is none, returned to be shown once), and its SSH host key
/// (the one kept in its directory, a new one for a first seed).
pub fn render_seed(
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    image: &ImageSpec,
    files: &MachineFiles,
) -> Result<(Seed, Option<OneTimePassword>), CloudInitError> {
    let keys = match &machine.cloud_init.pubkey {
        Some(key) => cloudinit::pubkey::authorized_keys(key)?,
        None => Vec::new(),
    };
    let recorded_hash = files
        .recorded
        .get("user-data")
        .and_then(|text| cloudinit::password::recorded_hash(text));
    let credential = cloudinit::password::console_credential(
        &machine.cloud_init.password,
        recorded_hash.as_deref(),
        cloudinit::needs_password_hash(machine),
    )?;
    let host_key = cloudinit::host_key::for_seed(
        machine,
        cloudinit::host_key::load(&machine.vm_dir)?.as_ref(),
        files.recorded.contains_key("user-data"),
    )?;
    let seed = cloudinit::render(&SeedInput {
        machine,
        environment: env,
        image,
        authorized_keys: &keys,
        password_hash: credential.hash.as_deref(),
        host_key: host_key.as_ref(),
    })?;
    Ok((seed, credential.generated))
}

/// Host ports for `ssh_port: auto`: the ones recorded in the machine's last
/// definition, else free ones picked now.
fn ssh_ports(machine: &MachineSpec, files: &MachineFiles) -> Vec<u16> {
    use crate::desired::{Attachment, SshPort};
    let wanted = machine
        .interfaces
        .iter()
        .filter(|n| {
            matches!(
                n.attachment,
                Attachment::Passt {
                    ssh_port: Some(SshPort::Auto)
                }
            )
        })
        .count();
    let recorded = files.ssh_ports();
    if recorded.len() == wanted {
        return recorded;
    }
    (0..wanted).filter_map(|_| free_port()).collect()
}

/// A port on 127.0.0.1 that nothing listens on now.
fn free_port() -> Option<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
    listener.local_addr().ok().map(|a| a.port())
}
