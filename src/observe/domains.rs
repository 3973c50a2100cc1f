//! The domains on one libvirt connection: name, power state, and lvlab's
//! ownership mark and the fields lvlab sets, read from the persistent
//! definition. Three listing calls (all, running, shut off), and reads of
//! only the domains whose names can be the lab's (for lvlab's domains,
//! their snapshots too).

use std::collections::HashSet;

use serde::Serialize;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;

use crate::domain::{DefinitionFields, OwnershipMark};
use crate::libvirt::{Connection, LibvirtError};
use crate::observe::snapshots::{self, ObservedSnapshot};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedDomain {
    pub name: String,
    pub state: PowerState,
    /// `None`: the domain is not lvlab's (foreign).
    pub mark: Option<OwnershipMark>,
    /// What lvlab sets, as the persistent definition says now (read for
    /// lvlab's domains only): the plan compares it with what lvlab would
    /// define, to see edits made behind its back.
    pub definition: Option<DefinitionFields>,
    /// Its snapshots (read for lvlab's domains only). Facts to show, not
    /// plan input: kept out of the fingerprint that makes a saved plan
    /// stale, as taking one changes nothing a plan would do.
    #[serde(skip)]
    pub snapshots: Vec<ObservedSnapshot>,
}

/// A domain's power state, named as `virsh domstate` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    Running,
    Paused,
    ShuttingDown,
    ShutOff,
    Crashed,
    Suspended,
    Unknown,
}

impl PowerState {
    pub fn label(self) -> &'static str {
        match self {
            PowerState::Running => "running",
            PowerState::Paused => "paused",
            PowerState::ShuttingDown => "in shutdown",
            PowerState::ShutOff => "shut off",
            PowerState::Crashed => "crashed",
            PowerState::Suspended => "pmsuspended",
            PowerState::Unknown => "unknown",
        }
    }

    /// The domain has a QEMU process (it must be stopped before undefine
    /// leaves nothing behind).
    pub fn is_active(self) -> bool {
        !matches!(self, PowerState::ShutOff | PowerState::Crashed)
    }

    fn from_libvirt(state: &Enum<DomainState, virt::sys::virDomainState>) -> Self {
        match state {
            Enum::Known(DomainState::Running | DomainState::Blocked) => PowerState::Running,
            Enum::Known(DomainState::Paused) => PowerState::Paused,
            Enum::Known(DomainState::Shutdown) => PowerState::ShuttingDown,
            Enum::Known(DomainState::Shutoff) => PowerState::ShutOff,
            Enum::Known(DomainState::Crashed) => PowerState::Crashed,
            Enum::Known(DomainState::PMSuspended) => PowerState::Suspended,
            Enum::Known(DomainState::NoState) | Enum::Unknown(_) => PowerState::Unknown,
        }
    }
}

/// At most this many domain reads in flight on one host: enough to hide
/// a network round trip per read, few enough not to crowd the daemon's
/// workers.
pub const READS_IN_FLIGHT: usize = 4;

/// The domain names a lab's environments on one connection can use: any
/// `<vm_name>_<environment>` of a manifest's environment, and exactly the
/// domain names of one-off machines (`createvm NAME` names its domain
/// `NAME`).
#[derive(Debug, Clone, Default)]
pub struct LabNames<'a> {
    /// Manifest environments: names ending in `_<environment>`.
    pub environments: Vec<&'a str>,
    /// One-off machines' domain names, matched whole.
    pub exact: Vec<&'a str>,
}

impl LabNames<'_> {
    /// Whether a domain called `name` can be lvlab's for these
    /// environments: `<vm_name>_<environment>` with a non-empty vm_name, or
    /// one of the exact names.
    pub fn may_belong(&self, name: &str) -> bool {
        self.exact.contains(&name)
            || self.environments.iter().any(|env| {
                name.strip_suffix(env)
                    .and_then(|rest| rest.strip_suffix('_'))
                    .is_some_and(|vm_name| !vm_name.is_empty())
            })
    }

    /// "names ending in _lab", "names exactly scratch", or both.
    fn describe(&self) -> String {
        let ending = (!self.environments.is_empty())
            .then(|| format!("names ending in _{}", self.environments.join(" or _")));
        let exact =
            (!self.exact.is_empty()).then(|| format!("names exactly {}", self.exact.join(", ")));
        [ending, exact]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", or ")
    }
}

/// The domains on `conn` that can belong to the lab (`names`), sorted by
/// name: one listing call, then the definition (and the state, when the
/// running and shut off listings do not tell it) of only the domains
/// [`LabNames::may_belong`] admits, read in parallel. Every lvlab
/// domain of an environment has such a name
/// ([`crate::manifest::names::domain_name`]), so this sees each machine's
/// domain, foreign and other labs' domains under its names, and this
/// lab's domains the manifest no longer names (`--prune`); the rest of
/// the host is never read, so observing costs what the lab holds, not what
/// the host holds.
pub fn list(conn: &Connection, names: &LabNames) -> Result<Vec<ObservedDomain>, LibvirtError> {
    let listed = list_names(conn, 0)?;
    let total = listed.len();
    // A domain's name comes with the listing: no call per domain here.
    let candidates: Vec<(String, Domain)> = listed
        .into_iter()
        .filter(|(name, _)| names.may_belong(name))
        .collect();
    tracing::debug!(
        uri = conn.uri(),
        "domains: {total} listed, {} definitions read ({})",
        candidates.len(),
        names.describe()
    );
    let listed_states = ListedStates::read(conn)?;
    let mut observed = Vec::with_capacity(candidates.len());
    let read =
        |(name, domain): &(String, Domain)| observe_listed(domain, name, listed_states.of(name));
    for read in crate::parallel::in_parallel(&candidates, READS_IN_FLIGHT, read) {
        match read {
            Ok(found) => observed.push(found),
            // A domain undefined between the listing and the read: gone.
            Err(err) if is_no_domain(&err) => {}
            Err(err) => return Err(conn.error("read a domain", err)),
        }
    }
    observed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(observed)
}

/// The domains one listing call returns (`flags` filter them), with their
/// names.
fn list_names(conn: &Connection, flags: u32) -> Result<Vec<(String, Domain)>, LibvirtError> {
    let listed = conn
        .raw()
        .list_all_domains(flags)
        .map_err(|e| conn.error("list domains", e))?;
    Ok(listed
        .into_iter()
        .filter_map(|domain| Some((domain.name().ok()?, domain)))
        .collect())
}

/// The power states two more listing calls tell for the whole host (the
/// running domains, the shut off ones), so that a lab of stopped or of
/// running machines costs no state call per domain.
struct ListedStates {
    running: HashSet<String>,
    shut_off: HashSet<String>,
}

impl ListedStates {
    fn read(conn: &Connection) -> Result<Self, LibvirtError> {
        let names = |flags| -> Result<HashSet<String>, LibvirtError> {
            Ok(list_names(conn, flags)?
                .into_iter()
                .map(|(name, _)| name)
                .collect())
        };
        Ok(Self {
            running: names(virt::sys::VIR_CONNECT_LIST_DOMAINS_RUNNING)?,
            shut_off: names(virt::sys::VIR_CONNECT_LIST_DOMAINS_SHUTOFF)?,
        })
    }

    /// The state of the domain called `name` when it was listed, if one
    /// listing alone says it: `None` for other states (paused, blocked...)
    /// and for a domain that changed state between the listings, whose
    /// state is then asked for.
    fn of(&self, name: &str) -> Option<PowerState> {
        match (self.running.contains(name), self.shut_off.contains(name)) {
            (true, false) => Some(PowerState::Running),
            (false, true) => Some(PowerState::ShutOff),
            _ => None,
        }
    }
}

/// The domain called `name`, if there is one.
pub fn find(conn: &Connection, name: &str) -> Result<Option<ObservedDomain>, LibvirtError> {
    match conn.raw().lookup_domain_by_name(name) {
        Ok(domain) => observe_one(&domain)
            .map(Some)
            .map_err(|e| conn.error("read a domain", e)),
        Err(err) if is_no_domain(&err) => Ok(None),
        Err(err) => Err(conn.error("look up a domain", err)),
    }
}

/// Only the power state of a domain already looked up: what polling loops
/// ask, without reading its definition.
pub fn power_state(domain: &Domain) -> Result<PowerState, virt::error::Error> {
    let (state, _reason) = domain.state()?;
    Ok(PowerState::from_libvirt(&state))
}

fn observe_one(domain: &Domain) -> Result<ObservedDomain, virt::error::Error> {
    observe_listed(domain, &domain.name()?, None)
}

/// The domain `name`, its power state asked for unless `listed` says it.
fn observe_listed(
    domain: &Domain,
    name: &str,
    listed: Option<PowerState>,
) -> Result<ObservedDomain, virt::error::Error> {
    tracing::trace!("reading the definition of {name}");
    let xml = domain.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?;
    let mark = OwnershipMark::from_domain_xml(&xml);
    let snapshots = match mark {
        Some(_) => snapshots::list(domain)?,
        None => Vec::new(),
    };
    let state = match listed {
        Some(state) => state,
        None => power_state(domain)?,
    };
    Ok(ObservedDomain {
        name: name.to_string(),
        state,
        definition: mark.as_ref().and_then(|_| DefinitionFields::parse(&xml)),
        mark,
        snapshots,
    })
}

/// The error libvirt gives for a domain that does not (or no longer) exist.
pub fn is_no_domain(err: &virt::error::Error) -> bool {
    err.code() == Enum::Known(virt::error::ErrorNumber::NoDomain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_ending_in_an_environment_can_be_its_domains() {
        let names = LabNames {
            environments: vec!["lab", "b_x"],
            exact: Vec::new(),
        };
        for name in ["web_lab", "a_b_x", "salt.local_lab", "x__lab"] {
            assert!(names.may_belong(name), "{name}");
        }
        for name in [
            "lab", "_lab", "weblab", "web_lab2", "web_lab_", "mail", "web_x",
        ] {
            assert!(!names.may_belong(name), "{name}");
        }
        assert!(!LabNames::default().may_belong("web_lab"));
    }

    #[test]
    fn a_one_off_machine_is_read_by_its_exact_name_only() {
        let names = LabNames {
            environments: Vec::new(),
            exact: vec!["scratch.lab"],
        };
        assert!(names.may_belong("scratch.lab"));
        for name in ["scratch", "scratch.lab_oneoff", "scratch.lab2", "other"] {
            assert!(!names.may_belong(name), "{name}");
        }
    }

    #[test]
    fn the_listings_tell_running_and_shut_off_and_other_states_are_asked() {
        let conn = Connection::open("test:///default").unwrap();
        let define = |name: &str| {
            let xml = format!(
                "<domain type='test'><name>{name}</name><memory>65536</memory>\
                 <os><type>hvm</type></os></domain>"
            );
            conn.raw().define_domain_xml(&xml).unwrap()
        };
        define("off_lab");
        define("on_lab").create().unwrap();
        let paused = define("paused_lab");
        paused.create().unwrap();
        paused.suspend().unwrap();
        define("other_host");
        let states: Vec<(String, PowerState)> = list(
            &conn,
            &LabNames {
                environments: vec!["lab"],
                exact: Vec::new(),
            },
        )
        .unwrap()
        .into_iter()
        .map(|d| (d.name, d.state))
        .collect();
        assert_eq!(
            states,
            [
                ("off_lab".to_string(), PowerState::ShutOff),
                ("on_lab".to_string(), PowerState::Running),
                ("paused_lab".to_string(), PowerState::Paused),
            ]
        );
        let listed = ListedStates::read(&conn).unwrap();
        assert_eq!(listed.of("paused_lab"), None, "asked for, not listed");
        assert_eq!(listed.of("test"), Some(PowerState::Running));
    }
}
