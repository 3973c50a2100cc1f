//! The desired state: what the manifest asks for, fully resolved. Every
//! default is applied and every name and path is decided here, so later
//! stages (plan, cloud-init, domain) never guess. Built only by
//! [`crate::manifest`]; read by everything after it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    /// The manifest file, absolute.
    pub manifest_path: PathBuf,
    pub environments: Vec<EnvironmentSpec>,
    pub images: BTreeMap<String, ImageSpec>,
    /// The host-wide settings files merged with the manifest, lowest first;
    /// empty without any. Part of a saved plan's fingerprint.
    pub settings_files: Vec<SettingsFile>,
}

/// A settings file merged with the manifest: `/etc/Lvlab.yml`,
/// `~/.Lvlab.yml` (below it) or `--config FILE` (above it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsFile {
    pub path: PathBuf,
    pub layer: SettingsLayer,
    /// `sha256:<hex>` of the file's text, so an edit that changes no
    /// resolved value still makes a saved plan stale.
    pub sha256: String,
    /// Key paths in the merged document (`networks.vlan10.gateway`) whose
    /// value this file supplied; every other value is the manifest's.
    pub supplies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingsLayer {
    /// `/etc/Lvlab.yml` (or `$LVLAB_CONFIG_ROOT/Lvlab.yml`).
    System,
    /// `~/.Lvlab.yml`.
    User,
    /// `--config FILE`, above the manifest.
    Config,
}

impl SettingsLayer {
    /// How a person names the layer.
    pub fn describe(self) -> &'static str {
        match self {
            SettingsLayer::System => "host-wide",
            SettingsLayer::User => "per user",
            SettingsLayer::Config => "--config",
        }
    }
}

/// The environment `createvm` generates for a one-off machine: it names
/// the VM directory (`<basedir>/oneoff/NAME/`) and the lock.
pub const ONE_OFF_ENVIRONMENT: &str = "oneoff";

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentSpec {
    pub name: String,
    pub libvirt_uri: String,
    /// Which lab this environment's domains belong to, when the manifest
    /// says (`lab_id`); else each machine's canonical VM directory says.
    pub lab_id: Option<String>,
    /// `createvm`'s generated environment (always named
    /// [`ONE_OFF_ENVIRONMENT`]): its domains are named exactly as its
    /// machines, and their marks say they are one-off machines.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub one_off: bool,
    pub machines: Vec<MachineSpec>,
    /// The image cache of `config_defaults.cloud_image_basedir` (or the
    /// default base): where `init` puts images no machine uses yet.
    pub image_cache_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct MachineSpec {
    pub vm_name: String,
    /// The libvirt domain name: `<vm_name>_<environment>`, or exactly
    /// `vm_name` for a one-off machine.
    pub domain_name: String,
    pub environment: String,
    /// The libvirt host the machine runs on: its own `libvirt_uri` key,
    /// else its environment's.
    pub libvirt_uri: String,
    /// Its environment's `lab_id`: with the VM directory, which lab the
    /// machine's domain and pool belong to ([`MachineSpec::lab`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lab_id: Option<String>,
    pub hostname: String,
    pub fqdn: String,
    /// Image key in [`Desired::images`].
    pub os: String,
    pub cpu: u32,
    pub memory_mib: u64,
    pub domain_type: DomainType,
    pub graphics: Graphics,
    /// Start the domain when libvirt starts.
    pub autostart: bool,
    /// Where this machine's image lives in the cache.
    pub image_path: PathBuf,
    /// `<disk_image_basedir>/<environment>/<vm_name>/` on the machine
    /// lvlab runs on: what lvlab keeps between runs (recorded definition
    /// and seed documents, seed inputs, password hashes, host keys).
    pub vm_dir: PathBuf,
    /// Where the host keeps the machine's volumes (`storage:`).
    pub storage: StorageKind,
    /// The directory on the hypervisor host holding the machine's disks
    /// and seed ISO: `vm_dir` itself, except for `storage: pool` on a
    /// remote host (`<pool_basedir>/<environment>/<vm_name>`).
    pub volume_dir: PathBuf,
    /// `pool_basedir`: where lvlab's storage pools live on a remote host
    /// (the images pool is `<pool_basedir>/images`).
    pub pool_basedir: PathBuf,
    pub disks: Vec<DiskSpec>,
    pub interfaces: Vec<InterfaceSpec>,
    pub nameservers: Nameservers,
    pub shared_directories: Vec<SharedDirectory>,
    pub cloud_init: CloudInitSpec,
    /// `provision:`: run over SSH once the machine first answers, the
    /// defaults' entries before the machine's (see [`crate::provision`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provision: Vec<ProvisionStep>,
}

/// One entry of a machine's `provision:` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionStep {
    /// A command line, run by the remote user's shell.
    Command(String),
    /// A local script file, read when the manifest is loaded (so a plan
    /// sees its text change) and fed to `sh -s` on the machine.
    Script { path: PathBuf, text: String },
}

impl MachineSpec {
    /// The lab the machine belongs to: its environment's `lab_id`, else
    /// its canonical VM directory.
    pub fn lab(&self) -> crate::domain::LabIdentity {
        crate::domain::LabIdentity::of(self.lab_id.as_deref(), &self.vm_dir)
    }
}

impl EnvironmentSpec {
    /// Whether `mark` is this lab's `machine` (one of this environment's):
    /// it names the environment and the machine, and records the
    /// environment's `lab_id` or, without one, the machine's VM directory.
    pub fn owns_machine(&self, mark: &crate::domain::OwnershipMark, machine: &MachineSpec) -> bool {
        let lab = crate::domain::LabIdentity::of(self.lab_id.as_deref(), &machine.vm_dir);
        mark.one_off == self.one_off
            && mark.is_machine_of(&machine.environment, &machine.vm_name, &lab)
    }

    /// Whether `mark` is of a machine of this lab's environment, named in
    /// the manifest or not: it names this environment, and records its
    /// `lab_id` or, without one, a VM directory in one of the environment's
    /// directories (`<disk_image_basedir>/<environment>/`).
    pub fn owns(&self, mark: &crate::domain::OwnershipMark) -> bool {
        use crate::domain::LabIdentity;
        if mark.environment != self.name || mark.one_off != self.one_off {
            return false;
        }
        match mark.lab() {
            LabIdentity::LabId(id) => self.lab_id.as_ref() == Some(&id),
            LabIdentity::VmDir(dir) => {
                self.lab_id.is_none()
                    && self.machines.iter().any(|m| {
                        let env_dir = m.vm_dir.parent().map(crate::domain::canonical_dir);
                        env_dir.as_deref() == dir.parent()
                    })
            }
        }
    }
}

/// How a host keeps a machine's volumes (`storage: files | pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Files lvlab writes itself, on the machine it runs on.
    Files,
    /// Volumes of a libvirt `dir` pool per VM directory, made through
    /// libvirt (the only way on a remote host).
    Pool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    /// KVM when libvirt offers it, otherwise TCG.
    Auto,
    Kvm,
    /// QEMU's TCG: software emulation, no hardware acceleration.
    Qemu,
}

/// A graphical console, listening on 127.0.0.1 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Graphics {
    /// Serial console only (`virsh console`).
    None,
    Vnc,
    Spice,
}

impl Graphics {
    /// libvirt's name for the console type; `None` for no graphics.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Graphics::None => None,
            Graphics::Vnc => Some("vnc"),
            Graphics::Spice => Some("spice"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskSpec {
    /// The manifest's label for the disk.
    pub name: String,
    /// `disk<N>.qcow2` in the machine's directory.
    pub path: PathBuf,
    pub size: DiskSize,
    pub role: DiskRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum DiskSize {
    /// The boot disk keeps the image's own virtual size.
    #[serde(serialize_with = "image_size")]
    ImageSize,
    Bytes(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DiskRole {
    /// The first disk: made from the image.
    Boot { strategy: DiskStrategy },
    /// Every further disk: blank qcow2.
    Blank,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskStrategy {
    /// A standalone copy of the cached image.
    Copy,
    /// A qcow2 overlay whose backing file is the cached image.
    Backing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceSpec {
    /// The manifest's label (`eth0`, `eth1`, ... by default); keys the
    /// interface in network-config. Not the guest's device name.
    pub name: String,
    pub mac: MacAddress,
    pub attachment: Attachment,
    pub addressing: Addressing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Attachment {
    /// A libvirt virtual network.
    Network { network: String },
    /// QEMU's user-mode (slirp) networking.
    User,
    /// passt user-mode networking, optionally forwarding SSH from 127.0.0.1.
    Passt { ssh_port: Option<SshPort> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum SshPort {
    /// A free port is picked at define time and recorded on the domain.
    #[serde(serialize_with = "auto")]
    Auto,
    Fixed(u16),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Addressing {
    /// DHCP for IPv4 and IPv6.
    Dhcp,
    /// Static addresses; a family without an address gets none.
    Static {
        ipv4: Option<StaticV4>,
        ipv6: Option<StaticV6>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticV4 {
    pub address: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticV6 {
    pub address: Ipv6Net,
    pub gateway: Option<Ipv6Addr>,
}

/// A unicast MAC address, printed lowercase with colons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for MacAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Nameservers {
    pub addresses: Vec<IpAddr>,
    pub search: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedDirectory {
    /// Host directory, with `~` and `$VAR` expanded, absolute.
    pub source: PathBuf,
    /// virtiofs tag the guest mounts by.
    pub mount_tag: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloudInitSpec {
    pub user: String,
    /// Absent only when `user_data` replaces the generated user-data.
    pub pubkey: Option<PublicKey>,
    pub sudo: Vec<String>,
    pub shell: String,
    pub password: ConsolePassword,
    /// The settings' top-level `runcmd` (host layers or the manifest's own
    /// top level): runs before `runcmd` and before a `user_data` override's
    /// own. Empty when the machine sets `runcmd_ignore_defaults`.
    pub host_runcmd: Vec<RunCommand>,
    /// Defaults' commands then the machine's, unless the machine opted out.
    pub runcmd: Vec<RunCommand>,
    pub mounts: Vec<Vec<String>>,
    pub manage_etc_hosts: bool,
    /// A complete cloud-config that replaces the generated user-data. Its
    /// strings may hold the placeholders in [`USER_DATA_PLACEHOLDERS`].
    pub user_data: Option<serde_yaml::Value>,
}

/// Placeholders that `user_data` strings may use, as `{name}`.
pub const USER_DATA_PLACEHOLDERS: &[&str] = &[
    "vm_name",
    "vm_hostname",
    "fqdn",
    "default_vm_username",
    "password_hash",
    "environment",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum PublicKey {
    /// The key text itself.
    Literal(String),
    /// A file holding the key, `~` expanded; read when the seed is rendered.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum ConsolePassword {
    /// A one-time password is generated on first creation.
    Generate,
    /// The manifest's crypt hash.
    Hash(String),
    /// No console password (`password: false`).
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RunCommand {
    /// Run by a shell; may span several lines.
    Shell(String),
    /// Run directly as an argument vector.
    Argv(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSpec {
    pub key: String,
    pub source: Source,
    /// The cache's name for the image: the URL's last path segment, or,
    /// when another source in the same cache directory has that segment
    /// too, the segment tagged with this source's digest
    /// ([`crate::manifest::name_for_source`]).
    pub file_name: String,
    /// The URL's last path segment: the name checksum files list it under.
    /// Derived from `source`, so left out of the desired state's JSON (and
    /// of saved plans' fingerprints, which stay valid across this field).
    #[serde(skip)]
    pub published_name: String,
    pub checksum: Option<ChecksumSpec>,
    pub signature: Option<SignatureSpec>,
    pub network_version: NetworkVersion,
    pub os_variant: String,
    pub family: OsFamily,
    pub username: String,
}

/// Where something is fetched from. Serialized as the URL or path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `http://` or `https://`.
    Http(String),
    /// `file://` or a path (relative ones against the manifest's directory).
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http(url) => f.write_str(url),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn image_size<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("image")
}

fn auto<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("auto")
}

impl Source {
    pub fn as_file(&self) -> Option<&Path> {
        match self {
            Source::File(path) => Some(path),
            Source::Http(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecksumSpec {
    pub source: Source,
    pub algorithm: ChecksumAlgorithm,
    /// `<image file>.<checksum file name>`, so releases never share one.
    pub file_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureSpec {
    /// OpenPGP keys that may sign the checksum file.
    pub keys: Source,
    pub keys_file_name: String,
    /// A detached signature; when absent the checksum file must be
    /// clearsigned, or one of the conventional suffixes must exist.
    pub detached: Option<Source>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u8")]
pub enum NetworkVersion {
    V1,
    V2,
}

impl From<NetworkVersion> for u8 {
    fn from(version: NetworkVersion) -> u8 {
        match version {
            NetworkVersion::V1 => 1,
            NetworkVersion::V2 => 2,
        }
    }
}

/// Distribution family: decides the default user and the cloud-init hosts
/// template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsFamily {
    Debian,
    Ubuntu,
    Fedora,
    AlmaLinux,
    Rocky,
    CentOS,
    Rhel,
    Other(String),
}

impl fmt::Display for OsFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OsFamily::Debian => "debian",
            OsFamily::Ubuntu => "ubuntu",
            OsFamily::Fedora => "fedora",
            OsFamily::AlmaLinux => "almalinux",
            OsFamily::Rocky => "rocky",
            OsFamily::CentOS => "centos",
            OsFamily::Rhel => "rhel",
            OsFamily::Other(name) => name,
        })
    }
}

impl Serialize for OsFamily {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An image in one cache: the key and the file it goes to (what a plan's
/// image address names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct ImageAddress {
    pub key: String,
    /// The image's file in its cache directory.
    pub path: PathBuf,
}

/// The libvirt URIs the environments' machines are placed on, each once,
/// in order (an environment's own first, so that one without machines
/// still names its host).
pub fn libvirt_uris<'a>(
    environments: impl IntoIterator<Item = &'a EnvironmentSpec>,
) -> Vec<String> {
    let mut uris: Vec<String> = Vec::new();
    for env in environments {
        let placed = env.machines.iter().map(|m| &m.libvirt_uri);
        for uri in std::iter::once(&env.libvirt_uri).chain(placed) {
            if !uris.contains(uri) {
                uris.push(uri.clone());
            }
        }
    }
    uris
}

/// Image key -> the cache directories it goes to -> the machines
/// (`env/vm`) that use it there. An image no machine uses yet goes to each
/// environment's default image cache, with no machines. The one placement
/// rule for cache names (resolve) and `init`/`images` alike.
pub fn image_placements<'a>(
    images: &'a BTreeMap<String, ImageSpec>,
    environments: &'a [EnvironmentSpec],
) -> BTreeMap<&'a str, BTreeMap<PathBuf, Vec<String>>> {
    let mut placements: BTreeMap<&str, BTreeMap<PathBuf, Vec<String>>> = BTreeMap::new();
    for env in environments {
        for machine in &env.machines {
            let dir = machine.image_path.parent().unwrap_or(Path::new("/"));
            placements
                .entry(machine.os.as_str())
                .or_default()
                .entry(dir.to_path_buf())
                .or_default()
                .push(format!("{}/{}", env.name, machine.vm_name));
        }
    }
    for key in images.keys() {
        if !placements.contains_key(key.as_str()) {
            let unused = placements.entry(key.as_str()).or_default();
            for env in environments {
                unused.entry(env.image_cache_dir.clone()).or_default();
            }
        }
    }
    placements
}

impl Desired {
    /// The environments `selector` names (all of them for `None`).
    pub fn environments(&self, selector: Option<&str>) -> Result<Vec<&EnvironmentSpec>, String> {
        let Some(name) = selector else {
            return Ok(self.environments.iter().collect());
        };
        match self.environments.iter().find(|e| e.name == name) {
            Some(env) => Ok(vec![env]),
            None => Err(format!(
                "no environment `{name}` in {}; environments: {}",
                self.manifest_path.display(),
                self.environment_names().join(", ")
            )),
        }
    }

    /// The images the machines of `environments` use, in key order.
    pub fn used_images(&self, environments: &[&EnvironmentSpec]) -> Vec<&ImageSpec> {
        let keys: std::collections::BTreeSet<&str> = environments
            .iter()
            .flat_map(|e| e.machines.iter().map(|m| m.os.as_str()))
            .collect();
        self.images
            .values()
            .filter(|image| keys.contains(image.key.as_str()))
            .collect()
    }

    /// The machine called `vm_name` in the selected environments; a name
    /// that several environments use must be narrowed with `--env`.
    pub fn machine(&self, vm_name: &str, env: Option<&str>) -> Result<&MachineSpec, String> {
        let environments = self.environments(env)?;
        let found: Vec<&MachineSpec> = environments
            .iter()
            .flat_map(|e| e.machines.iter().filter(|m| m.vm_name == vm_name))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(self.no_machine(vm_name, &environments)),
            many => Err(format!(
                "machine `{vm_name}` is in several environments ({}); choose one with --env",
                many.iter()
                    .map(|m| m.environment.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Each of `names` must be a machine of the selected environments.
    pub fn check_machine_names(&self, names: &[String], env: Option<&str>) -> Result<(), String> {
        let environments = self.environments(env)?;
        let unknown = names.iter().find(|name| {
            !environments
                .iter()
                .any(|e| e.machines.iter().any(|m| &m.vm_name == *name))
        });
        match unknown {
            Some(name) => Err(self.no_machine(name, &environments)),
            None => Ok(()),
        }
    }

    /// "no machine `salt` in Lvlab.yml; did you mean `salt.local`?"
    fn no_machine(&self, vm_name: &str, environments: &[&EnvironmentSpec]) -> String {
        let known: Vec<&str> = environments
            .iter()
            .flat_map(|e| e.machines.iter().map(|m| m.vm_name.as_str()))
            .collect();
        let mut message = format!("no machine `{vm_name}` in {}", self.manifest_path.display());
        match crate::manifest::did_you_mean(vm_name, &known) {
            Some(best) => message.push_str(&format!("; did you mean `{best}`?")),
            None => message.push_str(&format!("; machines: {}", known.join(", "))),
        }
        message
    }

    fn environment_names(&self) -> Vec<&str> {
        self.environments.iter().map(|e| e.name.as_str()).collect()
    }
}

/// Replaces each `{name}` placeholder in a `user_data` string with
/// `value(name)`. `{{` and `}}` stand for literal braces, and shell
/// variables (`${HOME}`) are left alone. An unknown name is an error that
/// lists the known ones.
pub fn expand_placeholders(
    text: &str,
    value: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' if !text[..i].ends_with('$') => {
                let rest = &text[i + 1..];
                let Some(end) = rest.find('}') else {
                    out.push(c);
                    continue;
                };
                let name = &rest[..end];
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
                    out.push(c);
                    continue;
                }
                let replacement = value(name).ok_or_else(|| {
                    format!(
                        "unknown placeholder `{{{name}}}`; known: {}",
                        USER_DATA_PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                })?;
                out.push_str(&replacement);
                for _ in 0..=name.chars().count() {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        USER_DATA_PLACEHOLDERS
            .contains(&name)
            .then(|| format!("<{name}>"))
    }

    #[test]
    fn placeholders_expand_and_braces_escape() {
        assert_eq!(
            expand_placeholders("{vm_name}.{environment}", lookup).unwrap(),
            "<vm_name>.<environment>"
        );
        assert_eq!(
            expand_placeholders("{{literal}}", lookup).unwrap(),
            "{literal}"
        );
        assert_eq!(
            expand_placeholders("echo ${HOME}", lookup).unwrap(),
            "echo ${HOME}"
        );
        assert_eq!(
            expand_placeholders(r#"{"a": 1}"#, lookup).unwrap(),
            r#"{"a": 1}"#
        );
        assert_eq!(expand_placeholders("é{fqdn}é", lookup).unwrap(), "é<fqdn>é");
    }

    #[test]
    fn unknown_placeholders_list_the_known_ones() {
        let err = expand_placeholders("{hostname}", lookup).unwrap_err();
        assert!(err.contains("`{hostname}`"), "{err}");
        assert!(err.contains("{vm_hostname}"), "{err}");
    }
}
