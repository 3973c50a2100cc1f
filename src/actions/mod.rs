//! How each planned step is carried out. [`job`] turns a [`Step`] into a
//! [`Job`] the executor can run; this is the one place that knows every
//! action kind. The work itself is in one module per area.

mod domain;
mod files;
pub mod image;
mod start;
mod upload;

/// What the KVM probe shares with a KVM guest's start.
pub(crate) use domain::KVM_WATCH;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::apply::{ActionError, Job, JobInfo};
use crate::cloudinit::password::{OneTimePassword, PasswordReporter};
use crate::desired::{Desired, EnvironmentSpec, MachineSpec, StorageKind};
use crate::host::{Host, Hosts, PoolMark};
use crate::images::{EnsureOptions, Fetcher, Reporter};
use crate::plan::{Action, Address, Step};
use crate::provision::ProvisionReporter;

/// Everything jobs need besides their step.
pub struct ApplyContext<'a> {
    pub desired: &'a Desired,
    pub hosts: &'a Hosts,
    /// How long `down` waits for a guest to stop after the ACPI request.
    pub shutdown_timeout: Duration,
    /// Power off a guest that did not stop within the timeout.
    pub force: bool,
    pub fetcher: &'a Fetcher,
    /// One for the run: image jobs share it (see [`crate::images::shared`]).
    pub image_options: &'a EnsureOptions,
    pub image_reporter: &'a dyn Reporter,
    /// Console passwords generated for this plan, by domain name.
    pub new_passwords: &'a BTreeMap<String, OneTimePassword>,
    pub password_reporter: &'a dyn PasswordReporter,
    /// How long a provisioning waits for the machine's SSH.
    pub provision_timeout: Duration,
    /// Hears the lines provisioning commands print.
    pub provision_reporter: &'a dyn ProvisionReporter,
}

pub struct StepJob<'a> {
    step: &'a Step,
    context: &'a ApplyContext<'a>,
}

/// The job for one step of a plan.
pub fn job<'a>(step: &'a Step, context: &'a ApplyContext<'a>) -> StepJob<'a> {
    StepJob { step, context }
}

/// Which step `step` is, as the executor reports it.
pub fn info(step: &Step) -> JobInfo {
    JobInfo {
        address: step.address.to_string(),
        action: step.action.describe(),
    }
}

impl Job for StepJob<'_> {
    fn info(&self) -> JobInfo {
        info(self.step)
    }

    fn run(&self) -> Result<(), ActionError> {
        let ctx = self.context;
        match (&self.step.address, &self.step.action) {
            (Address::Image { key, path }, _) => {
                let spec = &ctx.desired.images[key];
                let options = ctx.image_options;
                image::ImageJob::new(spec, path, ctx.fetcher, options, ctx.image_reporter).run()
            }
            (Address::HostImage { key, path, uri }, Action::UploadImage { dir }) => {
                let spec = &ctx.desired.images[key];
                upload::upload_image(ctx.hosts.get(uri), spec, path, dir, ctx.image_reporter)
            }
            (Address::HostImage { .. }, _) => Err(ActionError::Precondition {
                address: self.step.address.to_string(),
                message: format!("{}: only an upload belongs to it", self.step.address),
            }),
            (
                Address::Machine {
                    environment,
                    domain,
                    uri,
                    ..
                },
                Action::Provision { digest, machine },
            ) => {
                let env = environment_spec(ctx, environment)?;
                let host = ctx.hosts.get(uri);
                let output = |line: &str| ctx.provision_reporter.provision_output(self.step, line);
                crate::provision::run::provision(
                    host,
                    env,
                    &machine.machine,
                    ctx.provision_timeout,
                    &output,
                )
                .map_err(|source| ActionError::Provision {
                    machine: machine.machine.vm_name.clone(),
                    source,
                })?;
                domain::record_provision(&host.connection(), domain, digest)
                    .map_err(ActionError::libvirt(domain))
            }
            (
                Address::Machine {
                    environment,
                    vm_name,
                    uri,
                    ..
                },
                Action::RemoveFiles {
                    dir,
                    disks,
                    volume_dir,
                    storage,
                },
            ) => {
                let env = environment_spec(ctx, environment)?;
                let host = ctx.hosts.get(uri);
                // The pool's mark names the machine of the address, in its lab.
                let lab = crate::domain::LabIdentity::of(env.lab_id.as_deref(), dir);
                let mark = PoolMark::machine(environment, vm_name, &lab, dir);
                let kind = storage.unwrap_or_else(|| storage_in(host, volume_dir));
                let volumes = host.storage(kind, mark);
                files::remove_machine_files(volumes.as_ref(), dir, volume_dir, disks.as_deref())
            }
            (
                Address::Machine {
                    environment,
                    domain,
                    vm_name,
                    uri,
                },
                Action::StartDomain { watch },
            ) => {
                let host = ctx.hosts.get(uri);
                let machine = environment_spec(ctx, environment)
                    .ok()
                    .and_then(|env| env.machines.iter().find(|m| &m.vm_name == vm_name));
                start::start(host, &host.connection(), machine, domain, *watch)
            }
            // The step names its host: an orphan's has no machine spec.
            (Address::Machine { domain, uri, .. }, action) => {
                run_machine_action(ctx.hosts.get(uri), domain, action, ctx)
            }
        }
    }
}

/// Carries out a machine's step: the machine and its rendering come with
/// the step when it makes the machine.
fn run_machine_action(
    host: &Host,
    domain: &str,
    action: &Action,
    ctx: &ApplyContext,
) -> Result<(), ActionError> {
    // Leased only by the steps that call libvirt, for as long as they run.
    let conn = || host.connection();
    let libvirt = ActionError::libvirt(domain);
    match action {
        Action::CreateDisk { index, machine, .. } => {
            let machine = &machine.machine;
            let volumes = host.storage_for(machine);
            files::create_disk(volumes.as_ref(), machine, &boot_image(ctx, machine), *index)
        }
        Action::BuildSeed { machine: rendered } => {
            let machine = &rendered.machine;
            let volumes = host.storage_for(machine);
            files::write_seed(volumes.as_ref(), rendered).map_err(|source| ActionError::Seed {
                machine: machine.vm_name.clone(),
                source,
            })?;
            if let Some(password) = ctx.new_passwords.get(domain) {
                let user = &machine.cloud_init.user;
                ctx.password_reporter
                    .seed_written(&machine.vm_name, user, password);
            }
            Ok(())
        }
        Action::DefineDomain {
            machine: rendered, ..
        }
        | Action::RedefineDomain {
            machine: rendered, ..
        } => {
            let machine = &rendered.machine;
            files::record_definition(rendered)?;
            let digest =
                crate::images::record::verified_digest(machine, &ctx.desired.images[&machine.os]);
            let xml = crate::domain::with_image_digest(&rendered.definition, digest.as_deref());
            domain::define(&conn(), domain, &xml, machine.autostart).map_err(libvirt)
        }
        Action::StartDomain { .. } => Err(ActionError::Precondition {
            address: domain.to_string(),
            message: format!("{domain}: a start is its step's own job"),
        }),
        Action::ResumeDomain => domain::resume(&conn(), domain).map_err(libvirt),
        Action::ShutdownDomain => {
            domain::shutdown(&conn(), domain, ctx.shutdown_timeout, ctx.force).map_err(libvirt)
        }
        Action::PowerOffDomain => domain::power_off(&conn(), domain).map_err(libvirt),
        Action::UndefineDomain => domain::undefine(&conn(), domain).map_err(libvirt),
        Action::RemoveFiles { .. } => Err(ActionError::Precondition {
            address: domain.to_string(),
            message: format!("{domain}: removing files is its step's own job"),
        }),
        Action::Provision { .. } => Err(ActionError::Precondition {
            address: domain.to_string(),
            message: format!("{domain}: a provisioning is its step's own job"),
        }),
        Action::DownloadImage { .. } | Action::UploadImage { .. } => {
            Err(ActionError::Precondition {
                address: domain.to_string(),
                message: format!("{domain}: image actions belong to an image"),
            })
        }
    }
}

/// How the volumes in `dir` of a machine no longer in the manifest are
/// kept: a pool's when the host has one there, else files.
fn storage_in(host: &Host, dir: &std::path::Path) -> StorageKind {
    match crate::host::pools::pool_of_dir(&host.connection(), dir) {
        Some(_) => StorageKind::Pool,
        None => StorageKind::Files,
    }
}

/// The file the machine's image key means now (a `--refresh` may have
/// brought a newer one beside the URL's own name).
fn boot_image(ctx: &ApplyContext, machine: &MachineSpec) -> std::path::PathBuf {
    let cache_dir = machine
        .image_path
        .parent()
        .unwrap_or(std::path::Path::new("/"));
    crate::images::ensure::current_path(cache_dir, &ctx.desired.images[&machine.os])
}

fn environment_spec<'a>(
    ctx: &'a ApplyContext,
    environment: &str,
) -> Result<&'a EnvironmentSpec, ActionError> {
    ctx.desired
        .environments
        .iter()
        .find(|e| e.name == environment)
        .ok_or_else(|| ActionError::Precondition {
            address: environment.to_string(),
            message: format!("environment {environment} is not in the manifest"),
        })
}
