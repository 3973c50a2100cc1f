//! Applies the merge rules and defaults of manifest.md to the raw manifest,
//! producing the desired state, or every problem found on the way.

mod cloud_init;
mod images;
mod interfaces;
mod provision;
mod settings;
mod storage;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::error::{did_you_mean, Problem};
use super::names;
use super::raw::{RawEnvironment, RawMachine, RawManifest};
use super::source::KeyPath;
use super::values;
use crate::desired::{
    Desired, DomainType, EnvironmentSpec, Graphics, ImageSpec, MachineSpec, SettingsFile,
};
use settings::Settings;

const DEFAULT_LIBVIRT_URI: &str = "qemu:///session";
const DEFAULT_BASEDIR: &str = "/var/lib/libvirt/images/lvlab";
/// Where lvlab's storage pools live on a remote host.
const DEFAULT_CPU: u64 = 2;
const DEFAULT_MEMORY_MIB: u64 = 2048;

/// Collects problems while resolving, so one run reports them all.
pub(super) struct Resolver {
    /// The manifest's directory: relative paths are taken against it.
    base: PathBuf,
    problems: Vec<Problem>,
    /// Every image key the manifest declares, including ones that failed to
    /// resolve: a machine using one of those has nothing more to report.
    /// `None` when `images` itself is missing.
    declared_images: Option<BTreeSet<String>>,
    /// The host-wide settings keys of the merged document.
    settings: Settings,
    /// A document `createvm` generated: its environment is one-off.
    one_off: bool,
}

impl Resolver {
    pub(super) fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// The value of a `Result`, or `None` after reporting its error at `path`.
    pub(super) fn check<T>(&mut self, path: &KeyPath, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|msg| self.report(Problem::value(path.clone(), msg)))
            .ok()
    }

    pub(super) fn base(&self) -> &Path {
        &self.base
    }
}

/// A value taken from the machine or, failing that, from `config_defaults`,
/// with the path it came from so errors point at the right line.
pub(super) struct Layered<'a> {
    pub machine: &'a RawMachine,
    pub machine_path: &'a KeyPath,
    pub defaults: &'a RawMachine,
    pub defaults_path: &'a KeyPath,
    /// The environment's `storage`, below the machine's and the defaults'.
    pub environment_storage: Option<(&'a String, KeyPath)>,
}

impl<'a> Layered<'a> {
    pub(super) fn pick<T>(
        &self,
        key: &str,
        field: impl Fn(&'a RawMachine) -> Option<&'a T>,
    ) -> Option<(&'a T, KeyPath)> {
        field(self.machine)
            .map(|v| (v, self.machine_path.key(key)))
            .or_else(|| field(self.defaults).map(|v| (v, self.defaults_path.key(key))))
    }
}

/// `one_off`: the document is `createvm`'s, whose environment is one-off
/// ([`crate::desired::EnvironmentSpec::one_off`]).
pub fn resolve(
    mut raw: RawManifest,
    manifest_path: &Path,
    settings_files: Vec<SettingsFile>,
    one_off: bool,
) -> Result<Desired, Vec<Problem>> {
    let base = manifest_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut r = Resolver {
        base,
        problems: Vec::new(),
        declared_images: raw.images.as_ref().map(|i| i.keys().cloned().collect()),
        settings: Settings::default(),
        one_off,
    };
    r.settings = settings::resolve_settings(&mut r, &mut raw);
    let root = KeyPath::root();
    let mut images = match &raw.images {
        Some(raw_images) => images::resolve_images(&mut r, raw_images, &root.key("images")),
        None => {
            r.report(
                Problem::key(root.clone(), "the manifest has no `images`").hint(
                    "add `images:` mapping image keys to `image_url`s (see README.md), \
                     here or in a host-wide settings file (~/.Lvlab.yml, /etc/Lvlab.yml)",
                ),
            );
            BTreeMap::new()
        }
    };
    let mut environments = resolve_environments(&mut r, raw.environment, &images, &root);
    images::name_cache_files(&mut images, &mut environments);
    if r.problems.is_empty() {
        Ok(Desired {
            manifest_path: manifest_path.to_path_buf(),
            environments,
            images,
            settings_files,
        })
    } else {
        Err(r.problems)
    }
}

fn resolve_environments(
    r: &mut Resolver,
    raw: Option<Vec<RawEnvironment>>,
    images: &BTreeMap<String, ImageSpec>,
    root: &KeyPath,
) -> Vec<EnvironmentSpec> {
    let path = root.key("environment");
    let Some(raw) = raw else {
        r.report(
            Problem::key(root.clone(), "the manifest has no `environment`")
                .hint("add `environment:` with a list holding at least one `- name: ...`"),
        );
        return Vec::new();
    };
    if raw.is_empty() {
        r.report(
            Problem::value(path, "`environment` is empty")
                .hint("add at least one environment: `- name: lab` with its `machines:`"),
        );
        return Vec::new();
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut domains = DomainNames::new();
    let mut environments = Vec::new();
    for (i, env) in raw.into_iter().enumerate() {
        let env_path = path.index(i);
        if let Some(spec) = resolve_environment(r, env, images, &env_path, &mut domains) {
            if let Some(first) = seen.insert(spec.name.clone(), i) {
                r.report(
                    Problem::value(
                        env_path.key("name"),
                        format!("environment `{}` is defined twice", spec.name),
                    )
                    .hint(format!(
                        "rename it: environment[{first}] already uses this name"
                    )),
                );
            }
            environments.push(spec);
        }
    }
    environments
}

/// Each domain name in use, with the environment and machine it is for.
type DomainNames = BTreeMap<String, (String, String)>;

/// Two (environment, machine) pairs that map to one domain name (machine
/// `a` of `b_x` and `a_b` of `x` are both `a_b_x`) would take each other's
/// domain: the second one is an error.
fn check_domain_name(
    r: &mut Resolver,
    domains: &mut DomainNames,
    spec: &MachineSpec,
    at: &KeyPath,
) {
    let pair = (spec.environment.clone(), spec.vm_name.clone());
    match domains.get(&spec.domain_name) {
        Some((environment, vm_name)) if (environment, vm_name) != (&pair.0, &pair.1) => {
            let message = format!(
                "machine `{}` of environment `{}` has the domain name {}, which machine \
                 `{vm_name}` of environment `{environment}` already has",
                spec.vm_name, spec.environment, spec.domain_name
            );
            r.report(
                Problem::value(at.key("vm_name"), message)
                    .hint("rename one of the machines or environments (the domain name is `<vm_name>_<environment>`)"),
            );
        }
        Some(_) => {}
        None => {
            domains.insert(spec.domain_name.clone(), pair);
        }
    }
}

fn resolve_environment(
    r: &mut Resolver,
    env: RawEnvironment,
    images: &BTreeMap<String, ImageSpec>,
    path: &KeyPath,
    domains: &mut DomainNames,
) -> Option<EnvironmentSpec> {
    let Some(name) = env.name else {
        r.report(
            Problem::key(path.clone(), "an environment has no `name`")
                .hint("add `name: lab` (it prefixes domain names and directories)"),
        );
        return None;
    };
    r.check(&path.key("name"), values::check_name(&name))?;
    let libvirt_uri = env
        .libvirt_uri
        .unwrap_or_else(|| DEFAULT_LIBVIRT_URI.to_string());
    check_libvirt_uri(r, &libvirt_uri, &path.key("libvirt_uri"));
    if let Some(id) = &env.lab_id {
        r.check(&path.key("lab_id"), values::check_name(id));
    }
    let defaults_path = path.key("config_defaults");
    let defaults = env.config_defaults.unwrap_or_default();
    check_defaults(r, &defaults, &defaults_path);
    let Some(raw_machines) = env.machines else {
        r.report(
            Problem::key(
                path.clone(),
                format!("environment `{name}` has no `machines`"),
            )
            .hint("add `machines:` with a list of `- vm_name: ...` entries"),
        );
        return None;
    };
    let machines_path = path.key("machines");
    let mut machines: Vec<MachineSpec> = Vec::new();
    for (i, machine) in raw_machines.iter().enumerate() {
        let layered = Layered {
            machine,
            machine_path: &machines_path.index(i),
            defaults: &defaults,
            defaults_path: &defaults_path,
            environment_storage: env.storage.as_ref().map(|s| (s, path.key("storage"))),
        };
        if let Some(mut spec) = resolve_machine(r, &name, &libvirt_uri, &layered, images) {
            spec.lab_id = env.lab_id.clone();
            if let Some(first) = machines.iter().position(|m| m.vm_name == spec.vm_name) {
                r.report(
                    Problem::value(
                        layered.machine_path.key("vm_name"),
                        format!("machine `{}` is defined twice in `{name}`", spec.vm_name),
                    )
                    .label("second definition")
                    .hint(format!(
                        "rename one: machines[{first}] already uses this name"
                    )),
                );
                continue;
            }
            check_domain_name(r, domains, &spec, layered.machine_path);
            machines.push(spec);
        }
    }
    interfaces::check_unique_macs(r, &machines, &machines_path);
    // A bad value was reported for each machine that inherits it.
    let cache_base = defaults
        .cloud_image_basedir
        .as_ref()
        .and_then(|text| values::expand_path(text, r.base()).ok())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BASEDIR));
    Some(EnvironmentSpec {
        name,
        libvirt_uri,
        lab_id: env.lab_id,
        one_off: r.one_off,
        machines,
        image_cache_dir: names::image_cache_dir(&cache_base),
    })
}

/// A `libvirt_uri` (an environment's or a machine's) must at least look
/// like a URI; libvirt judges the rest when it connects.
fn check_libvirt_uri(r: &mut Resolver, uri: &str, path: &KeyPath) {
    if !uri.contains(':') {
        r.report(
            Problem::value(path.clone(), format!("`{uri}` is not a libvirt URI"))
                .hint("use e.g. qemu:///system, qemu:///session or qemu+ssh://host/system"),
        );
    }
}

/// Keys that name one machine make no sense as defaults for all.
fn check_defaults(r: &mut Resolver, defaults: &RawMachine, path: &KeyPath) {
    if defaults.libvirt_uri.is_some() {
        r.report(
            Problem::key(path.key("libvirt_uri"), "`libvirt_uri` cannot be a default")
                .label("places machines one by one")
                .hint(
                    "set `libvirt_uri` on the environment, or on each machine that runs elsewhere",
                ),
        );
    }
    let per_machine = [
        ("vm_name", defaults.vm_name.is_some()),
        ("hostname", defaults.hostname.is_some()),
        ("fqdn", defaults.fqdn.is_some()),
    ];
    for (key, present) in per_machine {
        if present {
            r.report(
                Problem::key(path.key(key), format!("`{key}` cannot be a default"))
                    .label("names one machine")
                    .hint(format!("move `{key}` to each machine under `machines:`")),
            );
        }
    }
}

fn resolve_machine(
    r: &mut Resolver,
    environment: &str,
    libvirt_uri: &str,
    m: &Layered,
    images: &BTreeMap<String, ImageSpec>,
) -> Option<MachineSpec> {
    let Some(vm_name) = m.machine.vm_name.clone() else {
        r.report(
            Problem::key(m.machine_path.clone(), "a machine has no `vm_name`")
                .hint("add `vm_name: web01` to the machine"),
        );
        return None;
    };
    r.check(&m.machine_path.key("vm_name"), values::check_name(&vm_name))?;
    let libvirt_uri = match &m.machine.libvirt_uri {
        Some(uri) => {
            check_libvirt_uri(r, uri, &m.machine_path.key("libvirt_uri"));
            uri.as_str()
        }
        None => libvirt_uri,
    };
    // Every key is checked before giving up, so one run reports all of a
    // machine's problems; only values that others need end the machine early.
    let hostname = resolve_hostname(r, m, &vm_name);
    let os_image = resolve_os(r, m, images);
    let cpu = match m.pick("cpu", |x| x.cpu.as_ref()) {
        Some((number, path)) => in_range(r, ("cpu", ""), number.0, 1..=1024, path),
        None => Some(DEFAULT_CPU),
    };
    let memory_mib = match m.pick("memory", |x| x.memory.as_ref()) {
        Some((text, path)) => r
            .check(&path, values::parse_memory_mib(&text.0))
            .and_then(|mib| {
                let mib = i64::try_from(mib).unwrap_or(i64::MAX);
                in_range(r, ("memory", " MiB"), mib, 64..=16 << 20, path)
            }),
        None => Some(DEFAULT_MEMORY_MIB),
    };
    let domain_type = resolve_domain_type(r, m);
    let graphics = resolve_graphics(r, m);
    let cache_base = basedir(r, m, "cloud_image_basedir", DEFAULT_BASEDIR, |x| {
        x.cloud_image_basedir.as_ref()
    });
    let vm_dir = basedir(r, m, "disk_image_basedir", DEFAULT_BASEDIR, |x| {
        x.disk_image_basedir.as_ref()
    })
    .map(|disk_base| names::vm_dir(&disk_base, environment, &vm_name));
    let volumes = vm_dir.as_ref().and_then(|vm_dir| {
        volumes::resolve_volumes(r, m, libvirt_uri, (environment, &vm_name), vm_dir)
    });
    let disks = volumes
        .as_ref()
        .and_then(|(_, volume_dir, _)| storage::resolve_disks(r, m, volume_dir));
    let interfaces = interfaces::resolve_interfaces(r, m, environment, &vm_name);
    let nameservers = interfaces
        .as_ref()
        .and_then(|nics| interfaces::resolve_nameservers(r, m, nics.first()));
    let shared_directories = storage::resolve_shared_directories(r, m);
    let cloud_init = os_image
        .as_ref()
        .and_then(|(_, image)| cloud_init::resolve_cloud_init(r, m, image));
    let (hostname, (os, image), cpu, memory_mib) = (hostname?, os_image?, cpu?, memory_mib?);
    let fqdn = match (&m.machine.fqdn, m.pick("domain", |x| x.domain.as_ref())) {
        (Some(fqdn), _) => fqdn.clone(),
        (None, Some((domain, _))) => format!("{hostname}.{domain}"),
        (None, None) => hostname.clone(),
    };
    let (domain_type, graphics, cache_base, vm_dir) =
        (domain_type?, graphics?, cache_base?, vm_dir?);
    let (disks, interfaces, nameservers) = (disks?, interfaces?, nameservers?);
    let (storage, volume_dir, pool_basedir) = volumes?;
    let provision = provision::resolve_provision(r, m);
    let (shared_directories, cloud_init) = (shared_directories?, cloud_init?);
    let provision = provision?;
    Some(MachineSpec {
        domain_name: names::domain_name(&vm_name, environment, r.one_off),
        environment: environment.to_string(),
        libvirt_uri: libvirt_uri.to_string(),
        lab_id: None,
        image_path: names::image_cache_dir(&cache_base).join(&image.file_name),
        vm_name,
        hostname,
        fqdn,
        os,
        cpu: cpu as u32,
        memory_mib,
        domain_type,
        graphics,
        autostart: m
            .pick("autostart", |x| x.autostart.as_ref())
            .is_some_and(|(flag, _)| flag.0),
        vm_dir,
        storage,
        volume_dir,
        pool_basedir,
        disks,
        interfaces,
        nameservers,
        shared_directories,
        cloud_init,
        provision,
    })
}

/// The machine's `hostname`, or its `vm_name` up to the first `.`.
fn resolve_hostname(r: &mut Resolver, m: &Layered, vm_name: &str) -> Option<String> {
    if let Some(hostname) = &m.machine.hostname {
        return r
            .check(
                &m.machine_path.key("hostname"),
                values::check_hostname(hostname),
            )
            .map(|()| hostname.clone());
    }
    let derived = vm_name.split('.').next().unwrap_or(vm_name);
    match values::check_hostname(derived) {
        Ok(()) => Some(derived.to_string()),
        Err(msg) => {
            r.report(
                Problem::value(
                    m.machine_path.key("vm_name"),
                    format!("the hostname derived from vm_name is invalid: {msg}"),
                )
                .hint("set `hostname:` on this machine to a valid DNS label"),
            );
            None
        }
    }
}

fn resolve_os<'i>(
    r: &mut Resolver,
    m: &Layered,
    images: &'i BTreeMap<String, ImageSpec>,
) -> Option<(String, &'i ImageSpec)> {
    let Some((os, path)) = m.pick("os", |x| x.os.as_ref()) else {
        r.report(
            Problem::key(m.machine_path.clone(), "the machine has no `os`").hint(
                image_choice_hint(images, "add `os:` (here or in config_defaults)"),
            ),
        );
        return None;
    };
    match images.get(os) {
        Some(image) => Some((os.clone(), image)),
        // Declared but broken, or no `images` at all: already reported.
        None if r.declared_images.as_ref().is_none_or(|d| d.contains(os)) => None,
        None => {
            let keys: Vec<&str> = images.keys().map(String::as_str).collect();
            let problem = Problem::value(path, format!("`os: {os}` is not a key in `images`"));
            let problem = match did_you_mean(os, &keys) {
                Some(best) => problem.label(format!("did you mean `{best}`?")),
                None => problem,
            };
            r.report(problem.hint(image_choice_hint(images, "use an image key")));
            None
        }
    }
}

fn image_choice_hint(images: &BTreeMap<String, ImageSpec>, lead: &str) -> String {
    if images.is_empty() {
        format!("{lead}, after defining the image under `images:`")
    } else {
        let keys: Vec<&str> = images.keys().map(String::as_str).collect();
        format!("{lead}: one of {}", keys.join(", "))
    }
}

/// `value` when it is within `range`, else `None` after reporting it with
/// the key and the unit (`("memory", " MiB")`).
fn in_range(
    r: &mut Resolver,
    (key, unit): (&str, &str),
    value: i64,
    range: std::ops::RangeInclusive<u64>,
    path: KeyPath,
) -> Option<u64> {
    match u64::try_from(value) {
        Ok(value) if range.contains(&value) => Some(value),
        _ => {
            r.report(Problem::value(
                path,
                format!(
                    "`{key}: {value}{unit}` is out of range ({}..={}{unit})",
                    range.start(),
                    range.end()
                ),
            ));
            None
        }
    }
}

fn resolve_domain_type(r: &mut Resolver, m: &Layered) -> Option<DomainType> {
    let Some((value, path)) = m.pick("domain_type", |x| x.domain_type.as_ref()) else {
        return Some(DomainType::Auto);
    };
    let parsed = match value.as_str() {
        "auto" => Ok(DomainType::Auto),
        "kvm" => Ok(DomainType::Kvm),
        "qemu" => Ok(DomainType::Qemu),
        other => Err(format!(
            "`domain_type: {other}` is not valid; use auto, kvm or qemu (software emulation)"
        )),
    };
    r.check(&path, parsed)
}

fn resolve_graphics(r: &mut Resolver, m: &Layered) -> Option<Graphics> {
    let Some((value, path)) = m.pick("graphics", |x| x.graphics.as_ref()) else {
        return Some(Graphics::None);
    };
    let parsed = match value.as_str() {
        "none" => Ok(Graphics::None),
        "vnc" => Ok(Graphics::Vnc),
        "spice" => Ok(Graphics::Spice),
        other => Err(format!(
            "`graphics: {other}` is not valid; use none (serial console only), vnc or spice"
        )),
    };
    r.check(&path, parsed)
}

fn basedir<'a>(
    r: &mut Resolver,
    m: &Layered<'a>,
    key: &str,
    default: &str,
    field: impl Fn(&'a RawMachine) -> Option<&'a String>,
) -> Option<PathBuf> {
    match m.pick(key, field) {
        Some((text, path)) => {
            let expanded = values::expand_path(text, r.base());
            r.check(&path, expanded)
        }
        None => Some(PathBuf::from(default)),
    }
}
