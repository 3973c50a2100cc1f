//! Rendering: every selected machine's domain definition and cloud-init
//! seed, made from the desired machine and what was observed of its host and
//! its files, before the plan compares them with what is deployed. Pure but
//! for reading the osinfo database and picking free ports for
//! `ssh_port: auto`; it never touches libvirt.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cloudinit::password::OneTimePassword;
use crate::cloudinit::{self, CloudInitError, Seed, SeedInput};
use crate::desired::{Desired, EnvironmentSpec, ImageSpec, MachineSpec};
use crate::domain::{self, DefinitionInput, DomainError, OwnershipMark, SpecFields};
use crate::host::{Host, Hosts};
use crate::images;
use crate::observe::{osinfo, MachineFiles, Observed, ObservedEnvironment};
use crate::parallel::in_parallel;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
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
}

/// Everything the rendering of a desired machine produced: the plan
/// compares it with what was recorded when the machine was defined, and the
/// steps that make the machine carry it to apply.
#[derive(Debug, Clone)]
pub struct RenderedMachine {
    /// The desired machine it was rendered from.
    pub machine: MachineSpec,
    /// `kvm`, `qemu` or what else the host offers: the manifest's
    /// `domain_type` resolved against the host.
    pub domain_type: String,
    pub fields: SpecFields,
    pub spec_digest: String,
    /// The domain definition, as defined.
    pub definition: String,
    /// The cloud-init seed it boots with.
    pub seed: Seed,
    /// The osinfo variant recorded in the definition.
    pub os_variant: osinfo::OsVariant,
}

/// Every selected machine rendered, and the console passwords generated
/// for machines that get their first seed (shown once, when apply writes
/// that seed).
#[derive(Default)]
pub struct Rendered {
    /// Shared with the plan's steps that make each machine.
    pub machines: BTreeMap<String, Arc<RenderedMachine>>,
    pub new_passwords: BTreeMap<String, OneTimePassword>,
}

/// Renders every machine of the observed environments among `environments`.
pub fn render(
    desired: &Desired,
    environments: &[&EnvironmentSpec],
    observed: &Observed,
    hosts: &Hosts,
) -> Result<Rendered, RenderError> {
    let mut rendered = Rendered::default();
    // Read once per render, not per observe: `status` needs no os ids.
    let os_ids = osinfo::find()
        .map(|db| osinfo::os_ids(&db.path))
        .unwrap_or_default();
    // Once per image, not per machine: a variant the database lacks scans
    // all of it.
    let variants: BTreeMap<&str, osinfo::OsVariant> = desired
        .images
        .iter()
        .map(|(key, image)| {
            (
                key.as_str(),
                osinfo::choose_variant(&image.os_variant, &os_ids),
            )
        })
        .collect();
    // Machines share images: read each image's record once.
    let mut image_digests: BTreeMap<&std::path::Path, String> = BTreeMap::new();
    for env in environments {
        for machine in &env.machines {
            image_digests
                .entry(machine.image_path.as_path())
                .or_insert_with(|| {
                    images::record::verified_digest(machine, &desired.images[&machine.os])
                        .unwrap_or_default()
                });
        }
    }
    for env in environments {
        // Machines on an unreachable host are not planned: nothing renders.
        let reachable: Vec<(&MachineSpec, &ObservedEnvironment)> = env
            .machines
            .iter()
            .filter_map(|m| Some((m, observed.of(m)?)))
            .collect();
        // The machines are independent: rendered on every core (a seed
        // and a definition each, and reads of its host key), in order.
        let each = |(machine, seen): &(&MachineSpec, &ObservedEnvironment)| {
            render_machine(
                desired,
                env,
                machine,
                hosts.of(machine),
                seen,
                &variants[machine.os.as_str()],
                &image_digests[machine.image_path.as_path()],
            )
        };
        for ((machine, _), result) in reachable.iter().zip(in_parallel(&reachable, cores(), each)) {
            let (one, password) = result?;
            rendered
                .machines
                .insert(machine.domain_name.clone(), Arc::new(one));
            if let Some(password) = password {
                rendered
                    .new_passwords
                    .insert(machine.domain_name.clone(), password);
            }
        }
    }
    Ok(rendered)
}

/// How many threads CPU-bound work per machine may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn render_machine(
    desired: &Desired,
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    host: &Host,
    seen: &ObservedEnvironment,
    variant: &osinfo::OsVariant,
    image_digest: &str,
) -> Result<(RenderedMachine, Option<OneTimePassword>), RenderError> {
    let domain_err = |source| RenderError::Domain {
        machine: machine.vm_name.clone(),
        source,
    };
    let seed_err = |source| RenderError::Seed {
        machine: machine.vm_name.clone(),
        source,
    };
    let (facts, files) = (&seen.host, seen.files(&machine.vm_name));
    let image = &desired.images[&machine.os];
    let offered = facts.offered_types();
    let domain_type =
        domain::resolve_domain_type(machine.domain_type, &offered).map_err(domain_err)?;
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
        one_off: env.one_off,
        image_key: machine.os.clone(),
        image_digest: image_digest.to_string(),
        seed_digest,
        renderer: cloudinit::RENDERER_VERSION,
        spec_digest: spec_digest.clone(),
        spec: fields.clone(),
        provisioned: None,
    };
    if !machine.shared_directories.is_empty() && facts.lacks_virtiofsd() {
        return Err(domain_err(domain::DomainError::NoVirtiofsd {
            vm_name: machine.vm_name.clone(),
        }));
    }
    let ports = ssh_ports(host, machine, files);
    let definition = domain::render_definition(&DefinitionInput {
        machine,
        domain_type: &domain_type,
        arch: &facts.arch,
        mark: &mark,
        auto_ssh_ports: &ports,
        virtiofsd: facts.virtiofsd.as_deref(),
        os_id: variant.id.as_deref(),
    })
    .map_err(domain_err)?;
    Ok((
        RenderedMachine {
            machine: machine.clone(),
            domain_type,
            fields,
            spec_digest,
            definition,
            seed,
            os_variant: variant.clone(),
        },
        new_password,
    ))
}

/// Why `lvlab cloudinit` has no seed for a machine.
#[derive(Debug, thiserror::Error)]
pub enum LocalSeedError {
    #[error("no environment `{0}`")]
    NoEnvironment(String),
    #[error("no image `{0}`")]
    NoImage(String),
    #[error(transparent)]
    Seed(#[from] CloudInitError),
}

/// `machine`'s seed as `lvlab cloudinit` makes it: from the files where
/// lvlab runs (it opens no libvirt host), keeping the password hash that
/// was generated when the seed was first written (a fresh password only
/// when there is none).
pub fn local_seed(
    desired: &Desired,
    machine: &MachineSpec,
) -> Result<(Seed, Option<OneTimePassword>), LocalSeedError> {
    let environment = desired
        .environments
        .iter()
        .find(|e| e.name == machine.environment)
        .ok_or_else(|| LocalSeedError::NoEnvironment(machine.environment.clone()))?;
    let image = desired
        .images
        .get(&machine.os)
        .ok_or_else(|| LocalSeedError::NoImage(machine.os.clone()))?;
    let files = crate::observe::machine_files(&crate::host::LocalFiles, machine);
    Ok(render_seed(environment, machine, image, &files)?)
}

/// A machine's cloud-init seed: its authorized keys, and the console
/// password hash recorded in its last user-data (a fresh password only
/// when there is none, returned to be shown once).
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
fn ssh_ports(host: &Host, machine: &MachineSpec, files: &MachineFiles) -> Vec<u16> {
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
    if wanted == 0 {
        return Vec::new();
    }
    let recorded = files.ssh_ports();
    if recorded.len() == wanted {
        return recorded;
    }
    (0..wanted).filter_map(|_| host.free_ssh_port()).collect()
}
