//! The domains on one libvirt connection: name, power state, and lvlab's
//! ownership mark and the fields lvlab sets, read from the persistent
//! definition. One listing call and one definition read per domain, and
//! for lvlab's domains their snapshots.

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

/// Every domain defined or running on `conn`, sorted by name.
pub fn list(conn: &Connection) -> Result<Vec<ObservedDomain>, LibvirtError> {
    let domains = conn
        .raw()
        .list_all_domains(0)
        .map_err(|e| conn.error("list domains", e))?;
    let mut observed = domains
        .iter()
        .filter_map(|domain| match observe_one(domain) {
            Ok(found) => Some(Ok(found)),
            // A domain undefined between the listing and the read: gone.
            Err(err) if is_no_domain(&err) => None,
            Err(err) => Some(Err(conn.error("read a domain", err))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    observed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(observed)
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
    let xml = domain.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?;
    let mark = OwnershipMark::from_domain_xml(&xml);
    let snapshots = match mark {
        Some(_) => snapshots::list(domain)?,
        None => Vec::new(),
    };
    Ok(ObservedDomain {
        name: domain.name()?,
        state: power_state(domain)?,
        definition: mark.as_ref().and_then(|_| DefinitionFields::parse(&xml)),
        mark,
        snapshots,
    })
}

/// The error libvirt gives for a domain that does not (or no longer) exist.
pub fn is_no_domain(err: &virt::error::Error) -> bool {
    err.code() == Enum::Known(virt::error::ErrorNumber::NoDomain)
}
