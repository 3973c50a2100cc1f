//! The manifest as written: serde structs that mirror `Lvlab.yml` key for
//! key. Every key is optional here so that resolution, not serde, reports
//! what is missing, with a hint. Unknown keys are rejected.
//!
//! Values are read leniently where the original lvlab (Python, YAML 1.1)
//! accepted more than YAML 1.2 does: `yes`/`no`/`on`/`off` booleans, numbers
//! written as strings, a single string where a list is expected.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub environment: Option<Vec<RawEnvironment>>,
    pub images: Option<BTreeMap<String, RawImage>>,
    /// Host-wide settings, also accepted in the manifest (see
    /// [`super::layers`]).
    pub networks: Option<BTreeMap<String, Option<RawNetwork>>>,
    pub default_network: Option<String>,
    pub default_vm_username: Option<String>,
    pub runcmd: Option<Vec<OneOrMany<Scalar>>>,
    pub user_data: Option<serde_yaml::Mapping>,
}

/// What libvirt does not tell about a network (a bridge): the gateway and
/// DNS of static addresses on it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub gateway: Option<String>,
    pub dns: Option<OneOrMany<String>>,
    pub search: Option<OneOrMany<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    pub name: Option<String>,
    pub libvirt_uri: Option<String>,
    pub lab_id: Option<String>,
    pub config_defaults: Option<RawMachine>,
    pub machines: Option<Vec<RawMachine>>,
}

/// A machine, or `config_defaults` (the same keys; resolution rejects the
/// ones that only make sense on a machine).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMachine {
    pub vm_name: Option<String>,
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    pub domain: Option<String>,
    pub os: Option<String>,
    pub cpu: Option<Number>,
    /// MiB, or a size with a binary unit (`4G`).
    pub memory: Option<Scalar>,
    pub disks: Option<Vec<RawDisk>>,
    pub interfaces: Option<OneOrMany<RawInterface>>,
    pub nameservers: Option<RawNameservers>,
    pub shared_directories: Option<Vec<RawSharedDirectory>>,
    pub cloud_init: Option<RawCloudInit>,
    pub cloud_image_basedir: Option<String>,
    pub disk_image_basedir: Option<String>,
    pub disk_strategy: Option<String>,
    pub domain_type: Option<String>,
    pub graphics: Option<String>,
    pub autostart: Option<Flag>,
    pub provision: Option<Vec<RawProvisionStep>>,
}

/// A `provision:` entry: a command line, or `{script: PATH}` for a local
/// script file.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a command line, or `script: PATH` for a local script file"
)]
pub enum RawProvisionStep {
    Command(String),
    Script(RawProvisionScript),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvisionScript {
    pub script: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDisk {
    pub name: Option<String>,
    pub size: Option<Scalar>,
    pub strategy: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterface {
    pub name: Option<String>,
    pub network: Option<String>,
    pub network_type: Option<String>,
    pub ip4: Option<String>,
    pub ip6: Option<String>,
    pub ip4gw: Option<String>,
    pub ip6gw: Option<String>,
    pub macaddress: Option<String>,
    pub ssh_port: Option<Scalar>,
    /// Only in `config_defaults.interfaces`, where the original's released
    /// manifests put the machine's nameservers.
    pub nameservers: Option<RawNameservers>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNameservers {
    pub addresses: Option<OneOrMany<String>>,
    pub search: Option<OneOrMany<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSharedDirectory {
    pub source: Option<String>,
    pub mount_tag: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloudInit {
    pub user: Option<String>,
    pub pubkey: Option<String>,
    pub sudo: Option<OneOrMany<String>>,
    pub shell: Option<String>,
    pub passwd: Option<String>,
    pub password: Option<Flag>,
    /// The original's spelling of `password`.
    pub generate_password: Option<Flag>,
    pub runcmd: Option<Vec<OneOrMany<Scalar>>>,
    pub runcmd_ignore_defaults: Option<Flag>,
    pub mounts: Option<Vec<Vec<Scalar>>>,
    pub manage_etc_hosts: Option<Flag>,
    pub user_data: Option<serde_yaml::Mapping>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    pub image_url: Option<String>,
    pub checksum_url: Option<String>,
    pub checksum_type: Option<String>,
    pub checksum_url_gpg: Option<String>,
    pub checksum_sig_url: Option<String>,
    pub network_version: Option<Number>,
    pub os_variant: Option<String>,
    pub username: Option<String>,
}

/// A boolean, also written the YAML 1.1 way (`yes`, `no`, `on`, `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

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
                match v.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "y" => Ok(Flag(true)),
                    "false" | "no" | "off" | "n" => Ok(Flag(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
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
