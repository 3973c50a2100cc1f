//! How each planned step is carried out. [`job`] turns a [`Step`] into a
//! [`Job`] the executor can run; this is the one place that knows every
//! action kind. The work itself is in one module per area.

mod domain;
mod files;
pub mod image;

/// What the KVM probe shares with a KVM guest's start.
pub(crate) use domain::{qemu_log, KVM_WATCH};

use std::collections::BTreeMap;
use std::time::Duration;

use crate::apply::Job;
use crate::cloudinit::password::{OneTimePassword, PasswordReporter};
use crate::desired::{Desired, EnvironmentSpec, MachineSpec};
use crate::images::{EnsureOptions, Fetcher, Reporter};
use crate::libvirt::{Connection, Hypervisors};
use crate::plan::{Action, Address, RenderedMachine, Step};

/// Everything jobs need besides their step.
pub struct ApplyContext<'a> {
    pub desired: &'a Desired,
    pub hypervisors: &'a Hypervisors,
    /// Rendered machines by domain name (definition and seed documents).
    pub rendered: &'a BTreeMap<String, RenderedMachine>,
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
}

pub struct StepJob<'a> {
    step: &'a Step,
    context: &'a ApplyContext<'a>,
}

/// The job for one step of a plan.
pub fn job<'a>(step: &'a Step, context: &'a ApplyContext<'a>) -> StepJob<'a> {
    StepJob { step, context }
}

impl Job for StepJob<'_> {
    fn describe(&self) -> String {
        format!("{}: {}", self.step.address, self.step.action.describe())
    }

    fn run(&self) -> Result<(), String> {
        let ctx = self.context;
        match (&self.step.address, &self.step.action) {
            (Address::Image { key, path }, _) => {
                let spec = &ctx.desired.images[key];
                let cache_dir = path.parent().unwrap_or(std::path::Path::new("/"));
                let options = ctx.image_options;
                image::ImageJob::new(spec, cache_dir, ctx.fetcher, options, ctx.image_reporter)
                    .run()
            }
            (
                Address::Machine {
                    environment,
                    vm_name,
                    domain,
                },
                action,
            ) => {
                let env = environment_spec(ctx, environment)?;
                let conn = ctx.hypervisors.get(&env.libvirt_uri);
                let machine = env.machines.iter().find(|m| &m.vm_name == vm_name);
                let rendered = ctx.rendered.get(domain.as_str());
                run_machine_action(conn, domain, machine, rendered, action, ctx)
            }
        }
    }
}

fn run_machine_action(
    conn: &Connection,
    domain: &str,
    machine: Option<&MachineSpec>,
    rendered: Option<&RenderedMachine>,
    action: &Action,
    ctx: &ApplyContext,
) -> Result<(), String> {
    let needs = |what: &str| format!("{domain}: {what} needs the machine in the manifest");
    match action {
        Action::CreateDisk { index, .. } => {
            let machine = machine.ok_or_else(|| needs("a disk"))?;
            files::create_disk(machine, &boot_image(ctx, machine), *index)
        }
        Action::BuildSeed => {
            let machine = machine.ok_or_else(|| needs("a seed"))?;
            let rendered = rendered.ok_or_else(|| needs("a seed"))?;
            files::write_seed(machine, rendered)?;
            if let Some(password) = ctx.new_passwords.get(domain) {
                let user = &machine.cloud_init.user;
                ctx.password_reporter
                    .seed_written(&machine.vm_name, user, password);
            }
            Ok(())
        }
        Action::DefineDomain | Action::RedefineDomain => {
            let machine = machine.ok_or_else(|| needs("a definition"))?;
            let rendered = rendered.ok_or_else(|| needs("a definition"))?;
            files::record_definition(machine, rendered)?;
            let digest =
                crate::images::record::verified_digest(machine, &ctx.desired.images[&machine.os]);
            let xml = crate::domain::with_image_digest(&rendered.definition, digest.as_deref());
            domain::define(conn, domain, &xml, machine.autostart)
        }
        Action::StartDomain => {
            let kvm = rendered
                .and_then(|r| r.fields.0.get("domain_type"))
                .is_some_and(|t| t == "kvm");
            domain::start(conn, domain, kvm)
        }
        Action::ResumeDomain => domain::resume(conn, domain),
        Action::ShutdownDomain => domain::shutdown(conn, domain, ctx.shutdown_timeout, ctx.force),
        Action::PowerOffDomain => domain::power_off(conn, domain),
        Action::UndefineDomain => domain::undefine(conn, domain),
        Action::RemoveFiles { dir } => files::remove_machine_files(dir, machine),
        Action::DownloadImage { .. } => Err(format!("{domain}: image actions belong to an image")),
    }
}

/// The file the machine's image key means now (a `--refresh` may have
/// brought a newer one beside the URL's own name).
fn boot_image(ctx: &ApplyContext, machine: &MachineSpec) -> std::path::PathBuf {
    let cache_dir = machine
        .image_path
        .parent()
        .unwrap_or(std::path::Path::new("/"));
    crate::images::actions::current_path(cache_dir, &ctx.desired.images[&machine.os])
}

fn environment_spec<'a>(
    ctx: &'a ApplyContext,
    environment: &str,
) -> Result<&'a EnvironmentSpec, String> {
    ctx.desired
        .environments
        .iter()
        .find(|e| e.name == environment)
        .ok_or_else(|| format!("environment {environment} is not in the manifest"))
}
