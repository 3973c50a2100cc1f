//! The NoCloud seed of a machine: `meta-data`, `user-data` and
//! `network-config` rendered from the desired state, the `cidata` ISO that
//! carries them, and the digest the planner compares.
//!
//! [`render`] is pure: keys and the password hash come in as inputs (read
//! them with [`pubkey::authorized_keys`] and decide the hash with
//! [`password::console_credential`]), so an unchanged machine renders an
//! identical seed. Only [`files`] touches the disk. This module never talks
//! to libvirt and never decides whether a seed must be rebuilt: that is the
//! planner's job, with [`seed_digest`].

mod digest;
pub mod files;
pub mod host_key;
pub mod hosts;
pub mod iso;
mod network;
pub mod password;
pub mod pubkey;
mod render;
mod user_data;
pub mod yaml;

use std::path::PathBuf;

pub use digest::seed_digest;
pub use files::{write_seed, write_seed_at};
pub use render::{render, SeedInput};
use user_data::uses_password_hash;
pub use user_data::{own_keys, KeySite};

use crate::desired::{ConsolePassword, MachineSpec};

/// The version of the rendering: bump it whenever a change to lvlab makes
/// the same manifest render a different seed. Each domain's mark records
/// the version its seed was rendered by, so the planner can tell a seed
/// that changed because lvlab did (a note) from one whose manifest input
/// changed (a replacement).
///
/// 1: marks without a version (lvlab before versions were recorded).
/// 2: an override's runcmd keeps the /etc/hosts commands, the host layers'
///    runcmd, dhcp4 on a NIC with only a static IPv6 address.
/// 3: the machine's SSH host key in user-data's `ssh_keys`.
pub const RENDERER_VERSION: u32 = 3;

/// The version a mark without one was rendered by.
pub const UNVERSIONED_RENDERER: u32 = 1;

/// The three documents of a NoCloud seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub meta_data: String,
    pub user_data: String,
    pub network_config: String,
    /// The SSH host key user-data gives the guest, written beside the
    /// seed (see [`host_key`]).
    pub host_key: Option<host_key::HostKey>,
}

impl Seed {
    /// The documents by their file names, in seed order.
    pub fn documents(&self) -> [(&'static str, &str); 3] {
        [
            ("meta-data", &self.meta_data),
            ("user-data", &self.user_data),
            ("network-config", &self.network_config),
        ]
    }

    /// `sha256:<hex>` of the documents; see [`seed_digest`].
    pub fn digest(&self) -> String {
        seed_digest(self)
    }
}

/// Whether rendering `machine`'s seed uses a console password hash: false
/// with `password: false`, and for a `user_data` override that does not use
/// `{password_hash}`.
pub fn needs_password_hash(machine: &MachineSpec) -> bool {
    let ci = &machine.cloud_init;
    if ci.password == ConsolePassword::Disabled {
        return false;
    }
    ci.user_data.as_ref().is_none_or(uses_password_hash)
}

#[derive(Debug, thiserror::Error)]
pub enum CloudInitError {
    #[error("cannot use the SSH public key {}: {problem}", path.display())]
    Pubkey { path: PathBuf, problem: String },
    #[error(
        "{} is a private key; use {} (its public half) as `pubkey`",
        path.display(),
        public.display()
    )]
    PrivateKey { path: PathBuf, public: PathBuf },
    #[error("`pubkey` is not an OpenSSH public key: {problem}")]
    PubkeyText { problem: pubkey::KeyProblem },
    #[error("SSH host key: {0}")]
    HostKey(String),
    #[error("console password: {0}")]
    Password(String),
    #[error("user_data: {0}")]
    UserData(String),
    #[error("rendering a cloud-init template: {0:#}")]
    Template(minijinja::Error),
    #[error("building the seed ISO: {0}")]
    Iso(String),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}
