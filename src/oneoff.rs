//! One-off machines without a manifest (`createvm NAME DISTRO`, `deletevm
//! NAME`), as the original's scripts of the same names: the command line
//! becomes a one-machine manifest, resolved with the settings files and the
//! built-in image catalog under them, whose one environment
//! ([`ONE_OFF_ENVIRONMENT`]) is planned and applied by the same engine as
//! any other. Its domain is named exactly NAME, its files live in
//! `<basedir>/oneoff/NAME/`, and its lab is that directory.
//!
//! Owns the generated document and what `deletevm` refuses; the command
//! line parses and prints, the engine plans and applies.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::desired::{Desired, DomainType, ONE_OFF_ENVIRONMENT};
use crate::domain::OwnershipMark;
use crate::images::catalog::CATALOG;
use crate::manifest::{self, HostSettings, ManifestError};
use crate::reconcile::Lab;

/// The libvirt a one-off machine goes to unless `--connect` says otherwise,
/// as the original's scripts.
pub const DEFAULT_URI: &str = "qemu:///system";
/// The boot disk's size unless `--disk-size` says otherwise, as the
/// original's `createvm`.
pub const DEFAULT_DISK_SIZE: &str = "35G";
/// The public keys looked for in `~/.ssh` without `--public-key`, in order.
const DEFAULT_KEYS: &[&str] = &["id_ed25519.pub", "id_rsa.pub"];
/// What names the generated manifest in reports and in the domain's mark.
const LABEL: &str = "createvm";

/// How a one-off machine's NIC is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkType {
    /// A libvirt network (`--network`, default `default`).
    #[default]
    Network,
    /// QEMU user-mode networking: no host setup, no inbound connections.
    User,
    /// passt, with SSH forwarded from a free port on 127.0.0.1.
    Passt,
}

impl NetworkType {
    fn manifest_name(self) -> &'static str {
        match self {
            NetworkType::Network => "network",
            NetworkType::User => "user",
            NetworkType::Passt => "passt",
        }
    }
}

/// What `createvm` asks for; `None` takes the manifest's default.
#[derive(Debug, Clone, Default)]
pub struct OneOffMachine {
    /// The domain name, and the guest's FQDN when it holds a `.`.
    pub name: String,
    /// An image key of the catalog or the settings files' `images:`,
    /// matched without regard to case.
    pub distro: String,
    pub libvirt_uri: String,
    /// Holds `cloud-images/` and `oneoff/NAME/` (default: the manifest's
    /// default base).
    pub basedir: Option<PathBuf>,
    pub cpu: Option<u32>,
    /// As the manifest's `domain_type` (default `auto`).
    pub domain_type: Option<DomainType>,
    /// MiB, or with a binary unit (`2G`), as the manifest's `memory`.
    pub memory: Option<String>,
    /// The boot disk's size, as the manifest's disk `size`.
    pub disk_size: Option<String>,
    /// The libvirt network (default: `default_network` of the settings,
    /// else `default`).
    pub network: Option<String>,
    pub network_type: NetworkType,
    /// `IP[/PREFIX]` (prefix 24 when left out) or `NETWORK,IP[/PREFIX]`.
    pub ip4: Option<String>,
    /// `IP[/PREFIX]` (prefix 64 when left out).
    pub ip6: Option<String>,
    /// A `.pub` file (default: the first of `~/.ssh/id_ed25519.pub`,
    /// `~/.ssh/id_rsa.pub`).
    pub public_key: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum OneOffError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Libvirt(#[from] crate::libvirt::LibvirtError),
    #[error("{0}")]
    Argument(String),
    #[error(
        "no domain {name} on {uri}, and no one-off VM directory {}\n  hint: `lvlab createvm` \
         names a one-off machine's domain exactly as given; check the name and --connect",
        vm_dir.display()
    )]
    NotFound {
        name: String,
        uri: String,
        vm_dir: PathBuf,
    },
    #[error(
        "domain {name} on {uri} was not made by lvlab (it has no lvlab mark): deletevm \
         deletes only lvlab's one-off machines\n  hint: remove it with virsh -c {uri} \
         undefine {name}, if that is what you want"
    )]
    NotLvlabs { name: String, uri: String },
    #[error(
        "domain {name} on {uri} is not this one-off machine: it is lvlab's {owner}\n  hint: {hint}"
    )]
    OtherLab {
        name: String,
        uri: String,
        owner: String,
        hint: String,
    },
}

/// The one-off machine `machine` as a resolved one-machine manifest, with
/// the settings files `host` names: the catalog's images under theirs (a
/// settings file's entry replaces the catalog's of the same key whole).
pub fn desired(machine: &OneOffMachine, host: &HostSettings) -> Result<Desired, OneOffError> {
    check_name(&machine.name)?;
    let overridden = manifest::settings_image_keys(host)?;
    let distro = known_distro(&machine.distro, &overridden)?;
    let mut document = document(machine, &distro, &overridden)?;
    let cloud_init = cloud_init(machine.public_key.as_deref())?;
    first_machine(&mut document).insert("cloud_init".into(), Value::Mapping(cloud_init));
    load(&document, host)
}

/// The one-off machine `name` as far as deleting it needs: its domain name
/// and VM directory. Nothing is rendered for a machine to remove, so no
/// key or image is needed; the distro is any catalog key. A name
/// `createvm` never gives (a manifest's `web_lab`) is refused here, by what
/// its domain is.
pub fn to_delete(
    name: &str,
    libvirt_uri: &str,
    basedir: Option<PathBuf>,
    host: &HostSettings,
) -> Result<Desired, OneOffError> {
    if let Err(invalid) = check_name(name) {
        let hosts = crate::host::Hosts::open([libvirt_uri])?;
        let found = crate::observe::domains::find(&hosts.get(libvirt_uri).connection(), name)?;
        return Err(match found {
            Some(domain) => refusal(name, libvirt_uri, domain.mark.as_ref()),
            None => invalid,
        });
    }
    let machine = OneOffMachine {
        name: name.to_string(),
        libvirt_uri: libvirt_uri.to_string(),
        basedir,
        ..OneOffMachine::default()
    };
    let overridden = manifest::settings_image_keys(host)?;
    let mut document = document(&machine, CATALOG[0].key, &overridden)?;
    // A cloud-config that replaces the generated one needs no key.
    let cloud_init: Mapping = [("user_data".into(), Value::Mapping(Mapping::new()))]
        .into_iter()
        .collect();
    first_machine(&mut document).insert("cloud_init".into(), Value::Mapping(cloud_init));
    load(&document, host)
}

/// `deletevm`'s refusals, before any plan: a name with neither a domain
/// nor a VM directory, a domain without lvlab's mark, and a domain that is
/// not this one-off machine (a manifest's, or one made with another
/// basedir).
pub fn check_deletable(lab: &Lab) -> Result<(), OneOffError> {
    let observed = lab.observe()?;
    for env in &lab.environments {
        for machine in &env.machines {
            let Some(seen) = observed.of(machine) else {
                continue;
            };
            let (name, uri) = (&machine.domain_name, &machine.libvirt_uri);
            match seen.domain(name) {
                Some(domain) => match &domain.mark {
                    Some(mark) if env.owns_machine(mark, machine) => {}
                    mark => return Err(refusal(name, uri, mark.as_ref())),
                },
                None if !seen.files(&machine.vm_name).dir_exists => {
                    return Err(OneOffError::NotFound {
                        name: name.clone(),
                        uri: uri.clone(),
                        vm_dir: machine.vm_dir.clone(),
                    });
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// Why `deletevm` refuses the domain `name` on `uri`, whose mark is `mark`
/// (`None`: it has none) and which is not the one-off machine asked for.
fn refusal(name: &str, uri: &str, mark: Option<&OwnershipMark>) -> OneOffError {
    let (name, uri) = (name.to_string(), uri.to_string());
    let Some(mark) = mark else {
        return OneOffError::NotLvlabs { name, uri };
    };
    let hint = if mark.one_off {
        format!(
            "its files are in {}: pass the --basedir it was made with",
            mark.vm_dir
        )
    } else {
        format!(
            "destroy it where its manifest is: lvlab destroy {} --env {}",
            mark.vm_name, mark.environment
        )
    };
    OneOffError::OtherLab {
        name,
        uri,
        owner: mark.owner(),
        hint,
    }
}

/// A hostname or FQDN: dot-separated DNS labels, as a domain name and a
/// directory name may hold.
fn check_name(name: &str) -> Result<(), OneOffError> {
    let labels_ok = name.split('.').all(|l| manifest::check_hostname(l).is_ok());
    match manifest::check_name(name) {
        Ok(()) if labels_ok => Ok(()),
        _ => Err(OneOffError::Argument(format!(
            "`{name}` is not a valid one-off machine name: give a hostname or FQDN \
             (letters, digits and `-` in dot-separated labels, at most 64 characters), \
             e.g. scratch or scratch.lab.example"
        ))),
    }
}

/// `distro` as a key of the catalog or the settings files' `images:`
/// (`overridden`), matched without regard to case.
fn known_distro(distro: &str, overridden: &[String]) -> Result<String, OneOffError> {
    let mut known: Vec<&str> = CATALOG.iter().map(|e| e.key).collect();
    known.extend(overridden.iter().map(String::as_str));
    known.sort_unstable();
    known.dedup();
    if let Some(key) = known.iter().find(|k| k.eq_ignore_ascii_case(distro)) {
        return Ok(key.to_string());
    }
    let suggestion = manifest::did_you_mean(&distro.to_ascii_lowercase(), &known)
        .map(|best| format!("; did you mean `{best}`?"))
        .unwrap_or_default();
    Err(OneOffError::Argument(format!(
        "no image `{distro}`{suggestion}\n  hint: images: {} (the built-in catalog, and \
         `images:` of /etc/Lvlab.yml, ~/.Lvlab.yml and --config)",
        known.join(", ")
    )))
}

/// The generated manifest, without `cloud_init`.
fn document(
    machine: &OneOffMachine,
    distro: &str,
    overridden: &[String],
) -> Result<Mapping, OneOffError> {
    let mut vm = Mapping::new();
    vm.insert("vm_name".into(), machine.name.as_str().into());
    if machine.name.contains('.') {
        vm.insert("fqdn".into(), machine.name.as_str().into());
    }
    vm.insert("os".into(), distro.into());
    if let Some(cpu) = machine.cpu {
        vm.insert("cpu".into(), u64::from(cpu).into());
    }
    if let Some(domain_type) = machine.domain_type {
        let name = match domain_type {
            DomainType::Auto => "auto",
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        };
        vm.insert("domain_type".into(), name.into());
    }
    if let Some(memory) = &machine.memory {
        let mib = manifest::parse_memory_mib(memory)
            .map_err(|e| OneOffError::Argument(format!("--memory: {e}")))?;
        vm.insert("memory".into(), mib.into());
    }
    let size = machine.disk_size.as_deref().unwrap_or(DEFAULT_DISK_SIZE);
    manifest::parse_size(size).map_err(|e| OneOffError::Argument(format!("--disk-size: {e}")))?;
    let disk: Mapping = [
        ("name".into(), "disk0".into()),
        ("size".into(), size.into()),
    ]
    .into_iter()
    .collect();
    vm.insert("disks".into(), vec![Value::Mapping(disk)].into());
    vm.insert(
        "interfaces".into(),
        vec![Value::Mapping(interface(machine)?)].into(),
    );

    let mut defaults = Mapping::new();
    if let Some(base) = &machine.basedir {
        let base = std::path::absolute(base).unwrap_or_else(|_| base.clone());
        let base = Value::from(base.display().to_string());
        defaults.insert("cloud_image_basedir".into(), base.clone());
        defaults.insert("disk_image_basedir".into(), base);
    }
    let mut environment = Mapping::new();
    environment.insert("name".into(), ONE_OFF_ENVIRONMENT.into());
    environment.insert("libvirt_uri".into(), machine.libvirt_uri.as_str().into());
    environment.insert("config_defaults".into(), Value::Mapping(defaults));
    environment.insert("machines".into(), vec![Value::Mapping(vm)].into());

    // A settings file's entry replaces the catalog's whole: merged key by
    // key, a local `image_url` would keep the catalog's checksum URL.
    let images: Mapping = CATALOG
        .iter()
        .filter(|e| !overridden.iter().any(|k| k == e.key))
        .map(|e| (e.key.into(), Value::Mapping(e.manifest_image())))
        .collect();
    let mut document = Mapping::new();
    document.insert(
        "environment".into(),
        vec![Value::Mapping(environment)].into(),
    );
    document.insert("images".into(), Value::Mapping(images));
    Ok(document)
}

/// The one NIC: its network, type and static addresses.
fn interface(machine: &OneOffMachine) -> Result<Mapping, OneOffError> {
    let mut nic = Mapping::new();
    let mut network = machine.network.clone();
    let mut put = |key: &str, value: Value| {
        nic.insert(key.into(), value);
    };
    if let Some(ip4) = machine.ip4.as_deref().filter(|ip| !is_dhcp(ip)) {
        let address = match ip4.split_once(',') {
            Some((net, ip)) => {
                network = Some(net.to_string());
                ip
            }
            None => ip4,
        };
        put("ip4", with_prefix(address, 24).into());
    }
    if let Some(ip6) = machine.ip6.as_deref().filter(|ip| !is_dhcp(ip)) {
        put("ip6", with_prefix(ip6, 64).into());
    }
    if let Some(network) = network {
        put("network", network.into());
    }
    if machine.network_type != NetworkType::Network {
        put("network_type", machine.network_type.manifest_name().into());
    }
    if machine.network_type == NetworkType::Passt {
        put("ssh_port", "auto".into());
    }
    Ok(nic)
}

/// The original's spellings of "no static address".
fn is_dhcp(ip: &str) -> bool {
    matches!(
        ip.to_ascii_lowercase().as_str(),
        "dhcp" | "default" | "auto"
    )
}

fn with_prefix(address: &str, prefix: u8) -> String {
    if address.contains('/') {
        address.to_string()
    } else {
        format!("{address}/{prefix}")
    }
}

/// `cloud_init:` with the public key file: `--public-key`, else the
/// first default key of `~/.ssh` that exists.
fn cloud_init(public_key: Option<&Path>) -> Result<Mapping, OneOffError> {
    let path = match public_key {
        Some(path) => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        None => default_key()?,
    };
    let mut cloud_init = Mapping::new();
    cloud_init.insert("pubkey".into(), path.display().to_string().into());
    Ok(cloud_init)
}

fn default_key() -> Result<PathBuf, OneOffError> {
    let ssh = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ssh"));
    ssh.iter()
        .flat_map(|dir| DEFAULT_KEYS.iter().map(move |name| dir.join(name)))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            OneOffError::Argument(
                "no SSH public key to log in with: none of ~/.ssh/id_ed25519.pub, \
                 ~/.ssh/id_rsa.pub exists\n  hint: pass --public-key FILE.pub, or make a key \
                 with ssh-keygen -t ed25519"
                    .to_string(),
            )
        })
}

fn first_machine(document: &mut Mapping) -> &mut Mapping {
    let machine = document
        .get_mut("environment")
        .and_then(|e| e.get_mut(0))
        .and_then(|e| e.get_mut("machines"))
        .and_then(|m| m.get_mut(0))
        .and_then(Value::as_mapping_mut);
    machine.expect("document() makes one environment with one machine")
}

/// Resolves the generated `document`, named [`LABEL`] in the working
/// directory (where relative paths in it are taken from).
fn load(document: &Mapping, host: &HostSettings) -> Result<Desired, OneOffError> {
    let text = serde_yaml::to_string(document).expect("a mapping of plain values serializes");
    Ok(manifest::load_one_off(&text, Path::new(LABEL), host)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab";

    fn machine(dir: &Path) -> OneOffMachine {
        let key = dir.join("id.pub");
        std::fs::write(&key, KEY).unwrap();
        OneOffMachine {
            name: "scratch.lab.example".into(),
            distro: "Debian12".into(),
            libvirt_uri: "test:///default".into(),
            basedir: Some(dir.join("base")),
            memory: Some("1G".into()),
            public_key: Some(key),
            ..OneOffMachine::default()
        }
    }

    #[test]
    fn a_one_off_machine_is_one_environment_with_its_domain_named_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let desired = desired(&machine(dir.path()), &HostSettings::none()).unwrap();
        let [env] = desired.environments.as_slice() else {
            panic!("one environment")
        };
        assert!(env.one_off);
        assert_eq!(env.name, ONE_OFF_ENVIRONMENT);
        let [vm] = env.machines.as_slice() else {
            panic!("one machine")
        };
        assert_eq!(vm.domain_name, "scratch.lab.example");
        assert_eq!(vm.fqdn, "scratch.lab.example");
        assert_eq!(vm.hostname, "scratch");
        assert_eq!(vm.os, "debian12");
        assert_eq!(vm.memory_mib, 1024);
        assert_eq!(
            vm.vm_dir,
            dir.path().join("base/oneoff/scratch.lab.example")
        );
        assert_eq!(
            vm.disks[0].size,
            crate::desired::DiskSize::Bytes(35 << 30),
            "the original's 35G"
        );
    }

    #[test]
    fn names_distros_and_sizes_are_checked_before_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let err = |change: fn(&mut OneOffMachine)| {
            let mut one = machine(dir.path());
            change(&mut one);
            desired(&one, &HostSettings::none())
                .unwrap_err()
                .to_string()
        };
        assert!(err(|m| m.name = "bad_name".into()).contains("not a valid one-off machine name"));
        assert!(err(|m| m.name = "-x".into()).contains("not a valid"));
        let distro = err(|m| m.distro = "debain12".into());
        assert!(distro.contains("did you mean `debian12`?"), "{distro}");
        assert!(err(|m| m.memory = Some("2X".into())).starts_with("--memory: "));
        assert!(err(|m| m.disk_size = Some("12".into())).starts_with("--disk-size: "));
    }

    #[test]
    fn addresses_take_a_network_and_a_default_prefix() {
        let one = OneOffMachine {
            ip4: Some("vlan10,100.64.10.5".into()),
            ip6: Some("fd00::5".into()),
            network_type: NetworkType::Network,
            ..OneOffMachine::default()
        };
        let nic = interface(&one).unwrap();
        assert_eq!(nic["ip4"], Value::from("100.64.10.5/24"));
        assert_eq!(nic["ip6"], Value::from("fd00::5/64"));
        assert_eq!(nic["network"], Value::from("vlan10"));
        let passt = OneOffMachine {
            ip4: Some("dhcp".into()),
            network_type: NetworkType::Passt,
            ..OneOffMachine::default()
        };
        let nic = interface(&passt).unwrap();
        assert_eq!(nic.get("ip4"), None);
        assert_eq!(nic["network_type"], Value::from("passt"));
        assert_eq!(nic["ssh_port"], Value::from("auto"));
    }
}
