//! `Lvlab.yml` text for the tests whose manifest is a means, not the point:
//! environments with their `config_defaults` and machines, and the images
//! they use, said in code instead of written out again in each test file.
//! Tests whose YAML is the point (the original's format, error positions
//! file:line:col) keep their literal text.
//!
//! ```ignore
//! LabManifest::tiny("lab", "test:///default", dir)
//!     .defaults(|d| d.tcg(256).user_network())
//!     .machine("web", |m| m.set("disks", "[{name: root}, {name: data, size: 8M}]"))
//!     .write(dir);
//! ```

// Each test file uses only some of these.
#![allow(dead_code)]

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// A valid public key (lvlab parses keys: a made-up one fails).
pub const PUBKEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab";

/// The keys of `config_defaults` or of one machine, each value YAML text,
/// in the order first set (setting a key again replaces its value).
#[derive(Clone, Default)]
pub struct Settings {
    entries: Vec<(String, String)>,
    /// `cloud_init`'s keys, written as one flow mapping after the others.
    cloud_init: Vec<(String, String)>,
}

impl Settings {
    /// `key: value`, the value as YAML text (`[]`, `{network_type: user}`).
    pub fn set(mut self, key: &str, value: impl Display) -> Self {
        put(&mut self.entries, key, value.to_string());
        self
    }

    /// `cloud_init: {key: value}`, with the other `cloud_init` keys.
    pub fn cloud_init(mut self, key: &str, value: impl Display) -> Self {
        put(&mut self.cloud_init, key, value.to_string());
        self
    }

    pub fn os(self, os: &str) -> Self {
        self.set("os", os)
    }

    /// MiB.
    pub fn memory(self, mib: u32) -> Self {
        self.set("memory", mib)
    }

    pub fn cpu(self, cpus: u32) -> Self {
        self.set("cpu", cpus)
    }

    /// `mib` MiB, one vCPU, TCG (`domain_type: qemu`): a test domain.
    pub fn tcg(self, mib: u32) -> Self {
        self.memory(mib).cpu(1).domain_type("qemu")
    }

    /// `qemu` (TCG) or `kvm`.
    pub fn domain_type(self, kind: &str) -> Self {
        self.set("domain_type", kind)
    }

    pub fn cloud_image_basedir(self, dir: impl AsRef<Path>) -> Self {
        self.set("cloud_image_basedir", dir.as_ref().display())
    }

    pub fn disk_image_basedir(self, dir: impl AsRef<Path>) -> Self {
        self.set("disk_image_basedir", dir.as_ref().display())
    }

    /// One NIC on QEMU's user network: no libvirt network needed (the
    /// `config_defaults` form; a machine lists its NICs:
    /// `set("interfaces", "[{network_type: user}]")`).
    pub fn user_network(self) -> Self {
        self.set("interfaces", "{network_type: user}")
    }

    /// No NIC at all.
    pub fn no_interfaces(self) -> Self {
        self.set("interfaces", "[]")
    }

    pub fn pubkey(self, key: &str) -> Self {
        self.cloud_init("pubkey", key)
    }

    /// No console password (none generated, none hashed).
    pub fn no_password(self) -> Self {
        self.cloud_init("password", "false")
    }

    /// The keys as the inside of a flow mapping: `a: 1, b: {c: 2}`.
    fn flow(&self) -> String {
        let mut text = flow(&self.entries);
        if !self.cloud_init.is_empty() {
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str(&format!("cloud_init: {{{}}}", flow(&self.cloud_init)));
        }
        text
    }

    /// The keys as block lines indented by `indent`.
    fn block(&self, indent: &str) -> String {
        let mut text: String = self
            .entries
            .iter()
            .map(|(k, v)| format!("{indent}{k}: {v}\n"))
            .collect();
        if !self.cloud_init.is_empty() {
            text.push_str(&format!(
                "{indent}cloud_init: {{{}}}\n",
                flow(&self.cloud_init)
            ));
        }
        text
    }
}

/// An `images:` entry.
#[derive(Clone, Default)]
pub struct Image(Settings);

impl Image {
    pub fn set(self, key: &str, value: impl Display) -> Self {
        Self(self.0.set(key, value))
    }

    pub fn url(self, url: impl Display) -> Self {
        self.set("image_url", url)
    }

    /// `checksum_url` and its `checksum_type` (`sha256`, `sha512`).
    pub fn checksum(self, url: impl Display, kind: &str) -> Self {
        self.set("checksum_url", url).set("checksum_type", kind)
    }
}

struct Environment {
    name: String,
    uri: String,
    lab_id: Option<String>,
    defaults: Settings,
    /// `- ...` lines under `machines:`, indented.
    machines: String,
}

/// A whole manifest. Methods that set defaults, `lab_id` or machines act
/// on the environment added last.
pub struct LabManifest {
    environments: Vec<Environment>,
    images: Vec<(String, Image)>,
    /// `images:` lines the test wrote out, after those of `images`.
    images_yaml: String,
}

impl LabManifest {
    /// Environment `name` on libvirt `uri`, with no defaults, machines or
    /// images yet.
    pub fn new(name: &str, uri: &str) -> Self {
        Self {
            environments: vec![Environment {
                name: name.into(),
                uri: uri.into(),
                lab_id: None,
                defaults: Settings::default(),
                machines: String::new(),
            }],
            images: Vec::new(),
            images_yaml: String::new(),
        }
    }

    /// Environment `name` on `uri` with its image cache under `base/cache`
    /// (images in `base/cache/cloud-images`), its VM directories under
    /// `base/vms` and the test key: what any lab needs.
    pub fn lab(name: &str, uri: &str, base: &Path) -> Self {
        Self::new(name, uri).defaults(|d| {
            d.cloud_image_basedir(base.join("cache"))
                .disk_image_basedir(base.join("vms"))
                .pubkey(PUBKEY)
        })
    }

    /// The tiny lab: [`LabManifest::lab`] with `os: tiny` and image `tiny`
    /// at `base/source/tiny.qcow2` (with `support::tiny_image` at
    /// `base/cache/cloud-images/tiny.qcow2` nothing is downloaded).
    pub fn tiny(name: &str, uri: &str, base: &Path) -> Self {
        Self::lab(name, uri, base)
            .defaults(|d| d.os("tiny"))
            .image("tiny", |i| i.url(base.join("source/tiny.qcow2").display()))
    }

    /// Another environment, `name` on `uri`, with the defaults of the one
    /// before it and no machines yet.
    pub fn environment(mut self, name: &str, uri: &str) -> Self {
        let defaults = self.last().defaults.clone();
        self.environments.push(Environment {
            name: name.into(),
            uri: uri.into(),
            lab_id: None,
            defaults,
            machines: String::new(),
        });
        self
    }

    pub fn lab_id(mut self, id: &str) -> Self {
        self.last().lab_id = Some(id.into());
        self
    }

    /// Changes `config_defaults`.
    pub fn defaults(mut self, change: impl FnOnce(Settings) -> Settings) -> Self {
        let env = self.last();
        env.defaults = change(std::mem::take(&mut env.defaults));
        self
    }

    /// Machine `vm_name` with the keys `settings` gives it:
    /// `- {vm_name: NAME, KEY: VALUE...}`.
    pub fn machine(mut self, vm_name: &str, settings: impl FnOnce(Settings) -> Settings) -> Self {
        let keys = settings(Settings::default().set("vm_name", vm_name)).flow();
        self.last()
            .machines
            .push_str(&format!("      - {{{keys}}}\n"));
        self
    }

    /// Machines written out by the test, as lines under `machines:`
    /// (`      - vm_name: web\n        disks: ...\n`), where their YAML is
    /// what the test varies.
    pub fn machines_yaml(mut self, lines: &str) -> Self {
        let machines = &mut self.last().machines;
        machines.push_str(lines);
        if !machines.ends_with('\n') {
            machines.push('\n');
        }
        self
    }

    /// Adds image `key`, or changes it: `change` gets its keys so far.
    pub fn image(mut self, key: &str, change: impl FnOnce(Image) -> Image) -> Self {
        match self.images.iter_mut().find(|(k, _)| k == key) {
            Some((_, image)) => *image = change(std::mem::take(image)),
            None => self.images.push((key.into(), change(Image::default()))),
        }
        self
    }

    /// `images:` entries written out by the test, as lines under `images:`.
    pub fn images_yaml(mut self, lines: &str) -> Self {
        self.images_yaml.push_str(lines);
        self
    }

    pub fn to_yaml(&self) -> String {
        let mut text = String::from("environment:\n");
        for env in &self.environments {
            text.push_str(&format!(
                "  - name: {}\n    libvirt_uri: {}\n",
                env.name, env.uri
            ));
            if let Some(id) = &env.lab_id {
                text.push_str(&format!("    lab_id: {id}\n"));
            }
            let defaults = env.defaults.block("      ");
            if !defaults.is_empty() {
                text.push_str(&format!("    config_defaults:\n{defaults}"));
            }
            if env.machines.is_empty() {
                text.push_str("    machines: []\n");
            } else {
                text.push_str(&format!("    machines:\n{}", env.machines));
            }
        }
        if self.images.is_empty() && self.images_yaml.is_empty() {
            text.push_str("images: {}\n");
            return text;
        }
        text.push_str("images:\n");
        for (key, Image(keys)) in &self.images {
            text.push_str(&format!("  {key}:\n{}", keys.block("    ")));
        }
        text.push_str(&self.images_yaml);
        text
    }

    /// Writes `dir/Lvlab.yml`; its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("Lvlab.yml");
        std::fs::write(&path, self.to_yaml()).unwrap();
        path
    }

    fn last(&mut self) -> &mut Environment {
        self.environments
            .last_mut()
            .expect("one environment at least")
    }
}

fn put(entries: &mut Vec<(String, String)>, key: &str, value: String) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.into(), value)),
    }
}

fn flow(entries: &[(String, String)]) -> String {
    entries
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
