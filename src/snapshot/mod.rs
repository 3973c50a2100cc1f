//! Snapshots of lvlab's machines: create, revert and delete one by name,
//! as internal qcow2 snapshots kept by libvirt. [`select`] decides from
//! the observed lab, without touching libvirt, which machines a request
//! acts on and refuses it whole when any is not lvlab's, not deployed, or
//! has (or lacks) the snapshot; [`run`] carries the steps out through the
//! executor; [`command`] is both on an open lab, as the commands run
//! them. Listing reads what `observe` found.
//!
//! Never the disk-only flag: on a running domain it silently writes an
//! external overlay file instead. A running machine's snapshot saves its
//! memory too (`<memory snapshot='internal'/>`), and reverting restores
//! both disk and power state. libvirt skips the read-only seed ISO by
//! itself, and a `backing` disk's overlay keeps its backing chain: the
//! snapshot lives inside the overlay.

pub mod command;
pub mod run;
pub mod select;

pub use command::{change, list, ChangeOptions, SnapshotError, SnapshotRow};
pub use run::execute;
pub use select::{plan, Problem, Problems, Request, Step};

/// What a snapshot command does to each machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Take the snapshot; `replace` deletes one of that name first.
    Create {
        replace: bool,
    },
    Revert,
    Delete,
}

impl Verb {
    pub fn describe(self) -> &'static str {
        match self {
            Verb::Create { replace: false } => "create snapshot",
            Verb::Create { replace: true } => "replace snapshot",
            Verb::Revert => "revert to snapshot",
            Verb::Delete => "delete snapshot",
        }
    }
}

/// A snapshot name: 1 to 64 letters, digits, `.`, `_` and `-`, starting
/// with a letter or digit. Safe in XML, in file names and on a command
/// line, which libvirt's own rules (anything without `/`) are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotName(String);

impl SnapshotName {
    pub fn parse(text: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let starts_well = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if text.len() > 64 || !starts_well || !text.chars().all(allowed) {
            return Err(format!(
                "`{}` is not a snapshot name: use 1 to 64 letters, digits, `.`, `_` \
                 and `-`, starting with a letter or digit (e.g. `base`, `pre-salt`)",
                crate::escape::escape_controls_by_line(text)
            ));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SnapshotName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `<domainsnapshot>` to create: the memory state of a running (or
/// paused) domain, none for a shut-off one, which libvirt refuses to save
/// ("memory state cannot be saved with offline or disk-only snapshot").
/// Disks are left to libvirt's defaults: internal for qcow2, none for
/// read-only ones.
pub fn snapshot_xml(name: &SnapshotName, description: &str, with_memory: bool) -> String {
    let memory = if with_memory {
        "\n  <memory snapshot='internal'/>"
    } else {
        ""
    };
    format!(
        "<domainsnapshot>\n  <name>{name}</name>\n  <description>{}</description>{memory}\n</domainsnapshot>\n",
        crate::escape::xml_text(description)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words() {
        for good in ["base", "pre-salt", "v1.2_x", "0"] {
            assert_eq!(SnapshotName::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "a<b", &"x".repeat(65), "é"] {
            let err = SnapshotName::parse(bad).unwrap_err();
            assert!(err.contains("is not a snapshot name"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_xml_saves_memory_only_for_a_running_machine() {
        let name = SnapshotName::parse("base").unwrap();
        let live = snapshot_xml(&name, "by lvlab <lab & co>", true);
        let snapshot = crate::observe::snapshots::parse(&live).unwrap();
        assert_eq!(snapshot.name, "base");
        assert_eq!(snapshot.description.as_deref(), Some("by lvlab <lab & co>"));
        assert!(live.contains("<memory snapshot='internal'/>"), "{live}");
        let off = snapshot_xml(&name, "by lvlab", false);
        assert!(!off.contains("<memory"), "{off}");
        assert!(!off.contains("disk-only") && !live.contains("external"));
    }
}
