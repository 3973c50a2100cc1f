//! The manifest as written: serde structs that mirror `Lvlab.yml` key for
//! key. Every key is optional here so that resolution, not serde, reports
//! what is missing, with a hint. Unknown keys are rejected.
//!
//! Values are read leniently where the original lvlab (Python, YAML 1.1)
//! accepted more than YAML 1.2 does: `yes`/`no`/`on`/`off` booleans, numbers
//! written as strings, a single string where a list is expected.
//!
//! The same structs give `lvlab schema` its JSON Schema ([`super::schema`]):
//! doc comments on keys are what an editor shows for them.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::schema;

/// An `Lvlab.yml` manifest: environments of libvirt lab machines and the
/// images they boot. The host-wide settings keys (`networks`,
/// `default_network`, `default_vm_username`, `runcmd`, `user_data`,
/// `images`) are also what `/etc/Lvlab.yml` and `~/.Lvlab.yml` hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Lvlab.yml")]
pub struct RawManifest {
    /// The environments: each a set of machines on one libvirt host.
    pub environment: Option<Vec<RawEnvironment>>,
    /// Image key -> where to get the image and how to verify it.
    pub images: Option<BTreeMap<String, RawImage>>,
    /// Per libvirt network, what libvirt does not know (bridges): gateway
    /// and DNS for static addresses on it.
    // Host-wide settings, also accepted in the manifest (see
    // [`super::layers`]).
    pub networks: Option<BTreeMap<String, Option<RawNetwork>>>,
    /// The libvirt network of interfaces that name none (default: `default`).
    pub default_network: Option<String>,
    /// The login user of images without `username`, before the OS family's.
    pub default_vm_username: Option<String>,
    /// Commands run first in every machine's runcmd.
    pub runcmd: Option<Vec<OneOrMany<Scalar>>>,
    /// The cloud-config of machines whose `cloud_init` sets no `user_data`.
    #[schemars(with = "Option<schema::CloudConfig>")]
    pub user_data: Option<serde_yaml::Mapping>,
}

/// What libvirt does not tell about a network (a bridge): the gateway and
/// DNS of static addresses on it.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Network")]
pub struct RawNetwork {
    /// The gateway of static addresses without `ip4gw`/`ip6gw` (by family).
    pub gateway: Option<String>,
    /// Nameservers of machines that set none.
    pub dns: Option<OneOrMany<String>>,
    /// DNS search domains of machines that set none.
    pub search: Option<OneOrMany<String>>,
}

/// One environment: machines on one libvirt host.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Environment")]
pub struct RawEnvironment {
    /// The environment's name (domains are named `<vm_name>_<name>`).
    #[schemars(with = "Option<schema::Name>")]
    pub name: Option<String>,
    /// The libvirt host (default `qemu:///session`).
    pub libvirt_uri: Option<String>,
    /// Which lab owns the environment's domains, instead of its VM
    /// directories (CI runners, remote hosts).
    #[schemars(with = "Option<schema::Name>")]
    pub lab_id: Option<String>,
    /// Where the machines' volumes live (default `pool` on a remote host,
    /// else `files`); a machine's or `config_defaults`' own wins.
    #[schemars(with = "Option<schema::StorageKind>")]
    pub storage: Option<String>,
    /// Defaults for every machine (the machine keys; `interfaces` is one
    /// mapping here).
    pub config_defaults: Option<RawMachine>,
    /// The machines.
    pub machines: Option<Vec<RawMachine>>,
}

/// A machine, or `config_defaults` (the same keys; resolution rejects the
/// ones that only make sense on a machine).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Machine")]
pub struct RawMachine {
    /// The machine's name, unique in its environment (machine only).
    #[schemars(with = "Option<schema::Name>")]
    pub vm_name: Option<String>,
    /// The libvirt host this machine runs on, instead of its environment's
    /// `libvirt_uri` (machine only: a lab may span several hosts).
    pub libvirt_uri: Option<String>,
    /// The guest's short hostname (default: `vm_name` up to the first `.`).
    #[schemars(with = "Option<schema::Hostname>")]
    pub hostname: Option<String>,
    /// The guest's FQDN (default: `hostname.domain`).
    pub fqdn: Option<String>,
    /// The guest's DNS domain.
    pub domain: Option<String>,
    /// The image key the machine boots.
    pub os: Option<String>,
    /// vCPUs (default 2).
    #[schemars(with = "Option<schema::Cpu>")]
    pub cpu: Option<Number>,
    /// MiB, or a size with a binary unit (`4G`).
    #[schemars(with = "Option<schema::Memory>")]
    pub memory: Option<Scalar>,
    /// The disks, the boot disk first (default: one boot disk the image's
    /// size).
    pub disks: Option<Vec<RawDisk>>,
    /// The NICs: a list on a machine, one mapping of defaults in
    /// `config_defaults`.
    pub interfaces: Option<OneOrMany<RawInterface>>,
    /// Nameservers and search domains for the machine's NICs.
    pub nameservers: Option<RawNameservers>,
    /// Host directories shared with the guest over virtiofs.
    pub shared_directories: Option<Vec<RawSharedDirectory>>,
    /// The cloud-init seed: user, key, password, commands.
    pub cloud_init: Option<RawCloudInit>,
    /// Where the image cache is (`<dir>/cloud-images`).
    pub cloud_image_basedir: Option<String>,
    /// Where the VM directories are (`<dir>/<environment>/<vm_name>`).
    pub disk_image_basedir: Option<String>,
    /// Where the machine's volumes live: `files` in its VM directory, or
    /// `pool`, volumes of a libvirt storage pool (default `pool` on a
    /// remote host, else `files`).
    #[schemars(with = "Option<schema::StorageKind>")]
    pub storage: Option<String>,
    /// `storage: pool` on a remote host: where the hypervisor host keeps
    /// lvlab's pools (`<dir>/<environment>/<vm_name>`, images in
    /// `<dir>/images`; default `/var/lib/libvirt/lvlab`).
    pub pool_basedir: Option<String>,
    /// The boot disk's default strategy.
    #[schemars(with = "Option<schema::DiskStrategy>")]
    pub disk_strategy: Option<String>,
    /// How the guest runs (default `auto`: KVM when libvirt offers it).
    #[schemars(with = "Option<schema::DomainType>")]
    pub domain_type: Option<String>,
    /// A graphical console (default `none`).
    #[schemars(with = "Option<schema::Graphics>")]
    pub graphics: Option<String>,
    /// Start the domain when libvirt starts (default false).
    pub autostart: Option<Flag>,
    /// Provisioning steps, run over SSH after the machine's first boot (and
    /// again with `--reprovision`): shell command lines, or `{script: PATH}`
    /// for a local script file.
    pub provision: Option<Vec<RawProvisionStep>>,
}

/// A `provision:` entry: a command line, or `{script: PATH}` for a local
/// script file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a command line, or `script: PATH` for a local script file"
)]
#[schemars(rename = "ProvisionStep")]
pub enum RawProvisionStep {
    /// A shell command line, run by the user's login shell over SSH.
    Command(String),
    /// A local script file, sent to `sh -s` on the machine.
    Script(RawProvisionScript),
}

/// A local script file to run on the machine.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProvisionScript")]
pub struct RawProvisionScript {
    /// Path of the script, relative to the manifest's directory.
    pub script: String,
}

/// A disk.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Disk")]
pub struct RawDisk {
    /// Keys the disk when a machine's disks are merged over the defaults'
    /// (default `disk0`, `disk1`, ... by position).
    pub name: Option<String>,
    /// The size: the boot disk grows to it, other disks need one.
    #[schemars(with = "Option<schema::DiskSize>")]
    pub size: Option<Scalar>,
    /// Boot disk only.
    #[schemars(with = "Option<schema::DiskStrategy>")]
    pub strategy: Option<String>,
}

/// A NIC.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Interface")]
pub struct RawInterface {
    /// The NIC's label in network-config (default `eth0`, `eth1`, ...).
    pub name: Option<String>,
    /// The libvirt network (default: `default_network`, else `default`).
    pub network: Option<String>,
    /// How the NIC is attached (default `network`).
    #[schemars(with = "Option<schema::NetworkType>")]
    pub network_type: Option<String>,
    /// A static IPv4 address with prefix length (`10.0.0.5/24`).
    pub ip4: Option<String>,
    /// A static IPv6 address with prefix length.
    pub ip6: Option<String>,
    /// The IPv4 default gateway.
    pub ip4gw: Option<String>,
    /// The IPv6 default gateway.
    pub ip6gw: Option<String>,
    /// A unicast MAC (default: derived from environment, machine and label).
    pub macaddress: Option<String>,
    /// passt only: the port on 127.0.0.1 forwarded to the guest's port 22.
    #[schemars(with = "Option<schema::SshPort>")]
    pub ssh_port: Option<Scalar>,
    /// Only in `config_defaults.interfaces`, where the original's released
    /// manifests put the machine's nameservers.
    pub nameservers: Option<RawNameservers>,
}

/// Nameservers and search domains.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Nameservers")]
pub struct RawNameservers {
    /// Nameserver addresses.
    pub addresses: Option<OneOrMany<String>>,
    /// DNS search domains.
    pub search: Option<OneOrMany<String>>,
}

/// A host directory shared with the guest (virtiofs).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SharedDirectory")]
pub struct RawSharedDirectory {
    /// The host directory.
    pub source: Option<String>,
    /// The tag the guest mounts it by (at most 36 bytes).
    pub mount_tag: Option<String>,
}

/// The machine's cloud-init seed.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CloudInit")]
pub struct RawCloudInit {
    /// The login created in the guest (default: the image's `username`).
    pub user: Option<String>,
    /// An SSH public key, or the path of a file of them.
    pub pubkey: Option<String>,
    /// One sudo rule or a list (default `ALL=(ALL) NOPASSWD:ALL`).
    pub sudo: Option<OneOrMany<String>>,
    /// The login shell (default `/bin/bash`).
    pub shell: Option<String>,
    /// A crypt hash for the console password.
    pub passwd: Option<String>,
    /// `false`: no console password (default: one is generated).
    pub password: Option<Flag>,
    /// The original's spelling of `password`.
    pub generate_password: Option<Flag>,
    /// Commands: shell strings or argument lists.
    pub runcmd: Option<Vec<OneOrMany<Scalar>>>,
    /// Machine only: drop the defaults' `runcmd`.
    pub runcmd_ignore_defaults: Option<Flag>,
    /// cloud-init `mounts` entries.
    pub mounts: Option<Vec<Vec<Scalar>>>,
    /// Write the environment's `/etc/hosts` snippet (default true).
    pub manage_etc_hosts: Option<Flag>,
    /// A complete cloud-config that replaces the generated user-data.
    #[schemars(with = "Option<schema::CloudConfig>")]
    pub user_data: Option<serde_yaml::Mapping>,
}

/// An image: where it comes from and how it is verified.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Image")]
pub struct RawImage {
    /// `https://`, `http://`, `file:///...` or a path.
    pub image_url: Option<String>,
    /// A checksum file (`SHA256SUMS`) listing the image.
    pub checksum_url: Option<String>,
    /// Required with `checksum_url`.
    #[schemars(with = "Option<schema::ChecksumType>")]
    pub checksum_type: Option<String>,
    /// The OpenPGP keys that sign the checksum file.
    pub checksum_url_gpg: Option<String>,
    /// A detached signature of the checksum file.
    pub checksum_sig_url: Option<String>,
    /// The network-config version (default 2).
    #[schemars(with = "Option<schema::NetworkVersion>")]
    pub network_version: Option<Number>,
    /// The osinfo short id (default: the key up to the first `-`).
    pub os_variant: Option<String>,
    /// The image's login user.
    pub username: Option<String>,
}

/// A boolean, also written the YAML 1.1 way (`yes`, `no`, `on`, `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl Flag {
    /// The words read as true and false, in any case.
    pub const TRUE_WORDS: &[&str] = &["true", "yes", "on", "y"];
    pub const FALSE_WORDS: &[&str] = &["false", "no", "off", "n"];
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                let word = v.to_ascii_lowercase();
                if Flag::TRUE_WORDS.contains(&word.as_str()) {
                    Ok(Flag(true))
                } else if Flag::FALSE_WORDS.contains(&word.as_str()) {
                    Ok(Flag(false))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

/// A whole number, also written as a string (`"2048"`). Negative numbers
/// are kept, so that resolution reports them as out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number(pub i64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                i64::try_from(v)
                    .map(Number)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"a smaller number"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                v.trim()
                    .parse()
                    .map(Number)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

/// A scalar of any kind, kept as its text (`25G`, `2222`, `true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// One value or a list of them. `config_defaults.interfaces` is a single
/// mapping while a machine's is a list; `sudo` may be one rule or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Delegating through the access objects keeps serde_path_to_error's
        // key tracking intact inside the value.
        struct OneOrManyVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::new(v)).map(OneOrMany::One)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(de::value::U64Deserializer::new(v)).map(OneOrMany::One)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(de::value::I64Deserializer::new(v)).map(OneOrMany::One)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                T::deserialize(de::value::F64Deserializer::new(v)).map(OneOrMany::One)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(de::value::BoolDeserializer::new(v)).map(OneOrMany::One)
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}
