//! The snapshots libvirt keeps for a domain: name, when it was taken, the
//! power state it saved and its description. Read for lvlab's domains
//! only, one listing call and one description read per snapshot. Facts
//! for `plan` and `snapshot list`, never a change.

use serde::Serialize;
use virt::domain::Domain;

/// One snapshot of a domain, as its `<domainsnapshot>` description says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedSnapshot {
    pub name: String,
    /// Seconds since the Unix epoch (`<creationTime>`).
    pub created: u64,
    /// The domain's state when it was taken, as libvirt names it
    /// (`running`, `shutoff`, `paused`, `disk-snapshot`...).
    pub state: String,
    pub description: Option<String>,
}

/// Every snapshot of `domain`, oldest first (ties by name).
pub fn list(domain: &Domain) -> Result<Vec<ObservedSnapshot>, virt::error::Error> {
    let mut found = Vec::new();
    for snapshot in domain.list_all_snapshots(0)? {
        let xml = snapshot.xml_desc(0)?;
        found.push(parse(&xml).unwrap_or_else(|| ObservedSnapshot {
            name: snapshot.name().unwrap_or_default(),
            created: 0,
            state: "unknown".into(),
            description: None,
        }));
    }
    found.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    Ok(found)
}

/// Reads a `<domainsnapshot>` description; `None` when it is not one.
pub fn parse(xml: &str) -> Option<ObservedSnapshot> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let root = doc.root_element();
    if root.tag_name().name() != "domainsnapshot" {
        return None;
    }
    // Only the snapshot's own children: its saved `<domain>` has a
    // `<name>` and a `<description>` too.
    let text = |name: &str| {
        root.children()
            .find(|n| n.tag_name().name() == name)
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
    };
    Some(ObservedSnapshot {
        name: text("name")?,
        created: text("creationTime")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        state: text("state").unwrap_or_else(|| "unknown".into()),
        description: text("description").filter(|d| !d.is_empty()),
    })
}

/// `created` as RFC 3339 in UTC.
pub fn created_rfc3339(snapshot: &ObservedSnapshot) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(snapshot.created);
    crate::images::record::rfc3339(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_fields_are_read_and_not_those_of_its_saved_domain() {
        let xml = "<domainsnapshot>\n  <name>base</name>\n  <description>made by lvlab</description>\n  \
                   <state>running</state>\n  <creationTime>1764400000</creationTime>\n  \
                   <domain type='qemu'><name>web_lab</name><description>other</description></domain>\n\
                   </domainsnapshot>";
        let snapshot = parse(xml).unwrap();
        assert_eq!(
            snapshot,
            ObservedSnapshot {
                name: "base".into(),
                created: 1_764_400_000,
                state: "running".into(),
                description: Some("made by lvlab".into()),
            }
        );
        assert_eq!(created_rfc3339(&snapshot), "2025-11-29T07:06:40Z");
        assert_eq!(parse("<domain><name>x</name></domain>"), None);
        assert_eq!(parse("<domainsnapshot/>"), None, "a snapshot has a name");
    }
}
