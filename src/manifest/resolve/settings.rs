//! The host-wide settings of the merged document (`networks`,
//! `default_network`, `default_vm_username`, `runcmd`, `user_data`),
//! checked once and read by the machine rules.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_yaml::Mapping;

use super::Resolver;
use crate::desired::{Nameservers, RunCommand};
use crate::manifest::error::Problem;
use crate::manifest::raw::{RawManifest, RawNetwork};
use crate::manifest::source::KeyPath;

/// The network of interfaces that name none, without `default_network`.
const DEFAULT_NETWORK: &str = "default";

#[derive(Debug, Default)]
pub(in crate::manifest) struct Settings {
    networks: BTreeMap<String, NetworkSettings>,
    default_network: Option<String>,
    pub default_vm_username: Option<String>,
    pub runcmd: Vec<RunCommand>,
    /// The top-level `user_data`: the override of machines whose
    /// `cloud_init` sets none.
    pub user_data: Option<Mapping>,
}

/// What a `networks:` entry says about a libvirt network.
#[derive(Debug, Default)]
pub(in crate::manifest) struct NetworkSettings {
    pub gateway: Option<IpAddr>,
    pub nameservers: Nameservers,
}

impl Settings {
    /// The network of an interface that names none.
    pub fn default_network(&self) -> &str {
        self.default_network.as_deref().unwrap_or(DEFAULT_NETWORK)
    }

    pub fn network(&self, name: &str) -> Option<&NetworkSettings> {
        self.networks.get(name)
    }
}

/// Takes the settings keys out of `raw`, reporting bad values.
pub(super) fn resolve_settings(r: &mut Resolver, raw: &mut RawManifest) -> Settings {
    let root = KeyPath::root();
    let networks = raw
        .networks
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, entry)| {
            let path = root.key("networks").key(&name);
            let spec = network(r, entry.unwrap_or_default(), &path)?;
            Some((name, spec))
        })
        .collect();
    let default_vm_username = match raw.default_vm_username.take() {
        Some(name) if name.trim().is_empty() => {
            r.report(
                Problem::value(
                    root.key("default_vm_username"),
                    "`default_vm_username` is empty",
                )
                .hint("name the account every image without `username` gets, or remove the key"),
            );
            None
        }
        name => name.map(|n| n.trim().to_string()),
    };
    Settings {
        networks,
        default_network: raw.default_network.take(),
        default_vm_username,
        runcmd: super::cloud_init::commands(raw.runcmd.take().unwrap_or_default().iter()),
        user_data: raw.user_data.take().inspect(|data| {
            // Checked once here; a bad one is kept so that machines do not
            // also report a missing pubkey.
            super::cloud_init::check_mapping(r, data, &root.key("user_data"));
        }),
    }
}

fn network(r: &mut Resolver, raw: RawNetwork, path: &KeyPath) -> Option<NetworkSettings> {
    let gateway = match raw.gateway.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            r.check(
                &path.key("gateway"),
                text.parse::<IpAddr>()
                    .map_err(|_| format!("`{text}` is not an IP address")),
            )?,
        ),
    };
    let nameservers = nameservers(r, raw.dns, raw.search, path, "dns")?;
    Some(NetworkSettings {
        gateway,
        nameservers,
    })
}

/// A nameservers block: `addresses` (under `address_key`) parsed as IP
/// addresses, `search` taken as written.
pub(super) fn nameservers(
    r: &mut Resolver,
    addresses: Option<crate::manifest::raw::OneOrMany<String>>,
    search: Option<crate::manifest::raw::OneOrMany<String>>,
    path: &KeyPath,
    address_key: &str,
) -> Option<Nameservers> {
    let mut out = Nameservers::default();
    for (i, text) in addresses
        .map(|a| a.into_vec())
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let parsed = text
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("`{text}` is not an IP address"));
        out.addresses
            .push(r.check(&path.key(address_key).index(i), parsed)?);
    }
    out.search = search.map(|s| s.into_vec()).unwrap_or_default();
    Some(out)
}
