//! Where the osinfo database lives on the machine running lvlab, and which
//! release it is. virt-install and lvlab name guest operating systems by its
//! short ids, so a missing database is worth telling about.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The directories libosinfo reads, in the order lvlab looks at them.
const WELL_KNOWN_DIRS: [&str; 3] = [
    "/usr/share/osinfo",
    "/usr/local/share/osinfo",
    "/etc/osinfo",
];

/// An installed osinfo database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsinfoDb {
    pub path: PathBuf,
    /// The release stamp from the database's `VERSION` file (a date such as
    /// `20221203`), when it has one. `osinfo-query` cannot tell it.
    pub version: Option<String>,
}

/// Finds the database on this machine, honouring `$OSINFO_SYSTEM_DIR`.
pub fn find() -> Option<OsinfoDb> {
    find_in(&candidate_dirs(std::env::var_os("OSINFO_SYSTEM_DIR")))
}

/// `$OSINFO_SYSTEM_DIR` first, as libosinfo lets it replace the system
/// directory; then the directories distributions install to.
pub fn candidate_dirs(system_dir: Option<OsString>) -> Vec<PathBuf> {
    let from_env = system_dir.filter(|dir| !dir.is_empty()).map(PathBuf::from);
    from_env
        .into_iter()
        .chain(WELL_KNOWN_DIRS.iter().map(PathBuf::from))
        .collect()
}

/// The first of `dirs` that holds a database.
pub fn find_in(dirs: &[PathBuf]) -> Option<OsinfoDb> {
    dirs.iter()
        .find(|dir| holds_database(dir))
        .map(|dir| OsinfoDb {
            path: dir.clone(),
            version: read_version(dir),
        })
}

/// An empty `/etc/osinfo` (a place for local overrides) is no database: ask
/// for the `os` tree or the release stamp that osinfo-db ships.
fn holds_database(dir: &Path) -> bool {
    dir.join("os").is_dir() || dir.join("VERSION").is_file()
}

fn read_version(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("VERSION"))
        .ok()
        .and_then(|text| parse_version(&text))
}

/// The `VERSION` file holds one token and, in Debian's package, no newline.
pub fn parse_version(text: &str) -> Option<String> {
    text.split_whitespace().next().map(str::to_string)
}

/// Every OS the database describes: short id (`debian11`) -> libosinfo
/// id (`http://debian.org/debian/11`). Read with a plain scan of the XML
/// files, which is all the structure this needs.
pub fn os_ids(db: &Path) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    let Ok(vendors) = std::fs::read_dir(db.join("os")) else {
        return ids;
    };
    for vendor in vendors.flatten() {
        let Ok(files) = std::fs::read_dir(vendor.path()) else {
            continue;
        };
        for file in files.flatten() {
            if let Ok(text) = std::fs::read_to_string(file.path()) {
                collect_ids(&text, &mut ids);
            }
        }
    }
    ids
}

fn collect_ids(xml: &str, ids: &mut BTreeMap<String, String>) {
    let Some(id) = between(xml, "<os id=\"", "\"") else {
        return;
    };
    let mut rest = xml;
    while let Some(start) = rest.find("<short-id>") {
        rest = &rest[start + "<short-id>".len()..];
        let Some(end) = rest.find("</short-id>") else {
            break;
        };
        ids.entry(rest[..end].trim().to_string())
            .or_insert_with(|| id.to_string());
    }
}

fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)?;
    Some(&text[start..start + end])
}

/// The OS variant a machine is recorded with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsVariant {
    pub requested: String,
    /// The short id used; `generic` when nothing matched.
    pub chosen: String,
    /// Its libosinfo id, when the database knows it.
    pub id: Option<String>,
}

impl OsVariant {
    pub fn is_fallback(&self) -> bool {
        self.requested != self.chosen
    }
}

/// `requested` if the database knows it; else, as the original lvlab did,
/// the same family's newest lower version, then `<family>-unknown` or
/// `<family>-current`, then the newest generic `linuxNNNN`, then `generic`.
pub fn choose_variant(requested: &str, ids: &BTreeMap<String, String>) -> OsVariant {
    let pick = |short: &str| OsVariant {
        requested: requested.to_string(),
        chosen: short.to_string(),
        id: ids.get(short).cloned(),
    };
    if ids.contains_key(requested) {
        return pick(requested);
    }
    let (family, version) = split_version(requested);
    let lower = ids
        .keys()
        .filter_map(|short| {
            let (f, v) = split_version(short);
            (f == family && !v.is_empty() && (version.is_empty() || v < version))
                .then_some((v, short))
        })
        .max();
    if let Some((_, short)) = lower {
        return pick(short);
    }
    for suffix in ["-unknown", "-current"] {
        let short = format!("{family}{suffix}");
        if ids.contains_key(&short) {
            return pick(&short);
        }
    }
    let generic_linux = ids
        .keys()
        .filter(|s| {
            s.strip_prefix("linux")
                .is_some_and(|y| !y.is_empty() && y.chars().all(|c| c.is_ascii_digit()))
        })
        .max();
    match generic_linux {
        Some(short) => pick(short),
        None => pick("generic"),
    }
}

/// `ubuntu22.04` -> (`ubuntu`, [22, 4]); `debian12` -> (`debian`, [12]).
fn split_version(short: &str) -> (&str, Vec<u64>) {
    let at = short
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(short.len());
    let (family, rest) = short.split_at(at);
    let version = rest
        .split('.')
        .map_while(|part| part.parse().ok())
        .collect();
    (family, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_dir_comes_first_then_well_known_dirs() {
        let dirs = candidate_dirs(Some("/opt/osinfo".into()));
        assert_eq!(dirs[0], PathBuf::from("/opt/osinfo"));
        assert_eq!(&dirs[1..], WELL_KNOWN_DIRS.map(PathBuf::from).as_slice());
    }

    #[test]
    fn empty_env_dir_is_ignored() {
        assert_eq!(candidate_dirs(Some("".into())).len(), WELL_KNOWN_DIRS.len());
        assert_eq!(candidate_dirs(None).len(), WELL_KNOWN_DIRS.len());
    }

    #[test]
    fn version_file_without_newline() {
        assert_eq!(parse_version("20221203").as_deref(), Some("20221203"));
        assert_eq!(parse_version("20250606\n").as_deref(), Some("20250606"));
        assert_eq!(parse_version("  \n"), None);
    }

    #[test]
    fn finds_first_dir_holding_a_database() {
        let root = tempfile::tempdir().unwrap();
        let empty = root.path().join("etc-osinfo");
        let db = root.path().join("share-osinfo");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(db.join("os")).unwrap();
        std::fs::write(db.join("VERSION"), "20240701").unwrap();

        let found = find_in(&[root.path().join("missing"), empty, db.clone()]).unwrap();
        assert_eq!(found.path, db);
        assert_eq!(found.version.as_deref(), Some("20240701"));
    }

    #[test]
    fn database_without_version_file_has_no_version() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("os")).unwrap();
        let found = find_in(&[root.path().to_path_buf()]).unwrap();
        assert_eq!(found.version, None);
    }

    #[test]
    fn no_database_anywhere() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(find_in(&[root.path().to_path_buf()]), None);
    }

    fn db(entries: &[(&str, &[&str])]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let vendor = root.path().join("os/example.org");
        std::fs::create_dir_all(&vendor).unwrap();
        for (i, (id, shorts)) in entries.iter().enumerate() {
            let shorts: String = shorts
                .iter()
                .map(|s| format!("<short-id>{s}</short-id>\n"))
                .collect();
            std::fs::write(
                vendor.join(format!("os-{i}.xml")),
                format!("<libosinfo version=\"0.0.1\">\n  <os id=\"{id}\">\n{shorts}  </os>\n</libosinfo>\n"),
            )
            .unwrap();
        }
        root
    }

    #[test]
    fn variants_fall_back_like_the_original() {
        let root = db(&[
            ("http://debian.org/debian/10", &["debian10"]),
            (
                "http://debian.org/debian/11",
                &["debian11", "debianbullseye"],
            ),
            ("http://fedoraproject.org/fedora/36", &["fedora36"]),
            (
                "http://fedoraproject.org/fedora/unknown",
                &["fedora-unknown"],
            ),
            ("http://ubuntu.com/ubuntu/22.04", &["ubuntu22.04"]),
            ("http://libosinfo.org/linux/2020", &["linux2020"]),
            ("http://libosinfo.org/linux/2022", &["linux2022"]),
        ]);
        let ids = os_ids(root.path());
        assert_eq!(ids["debianbullseye"], "http://debian.org/debian/11");
        let chosen = |r: &str| choose_variant(r, &ids).chosen;
        assert_eq!(chosen("debian11"), "debian11", "known: as is");
        assert_eq!(
            chosen("debian12"),
            "debian11",
            "the family's newest lower version"
        );
        assert_eq!(
            chosen("debian9"),
            "linux2022",
            "no lower debian: generic Linux"
        );
        assert_eq!(chosen("ubuntu2404"), "ubuntu22.04");
        assert_eq!(chosen("fedora44"), "fedora36");
        assert_eq!(chosen("fedora"), "fedora36");
        let v = choose_variant("debian12", &ids);
        assert!(v.is_fallback());
        assert_eq!(v.id.as_deref(), Some("http://debian.org/debian/11"));
        assert_eq!(
            choose_variant("plan9", &os_ids(db(&[]).path())).chosen,
            "generic"
        );
        let unknown_only = db(&[(
            "http://fedoraproject.org/fedora/unknown",
            &["fedora-unknown"],
        )]);
        assert_eq!(
            choose_variant("fedora44", &os_ids(unknown_only.path())).chosen,
            "fedora-unknown"
        );
    }

    #[test]
    fn the_installed_database_lacks_debian12_and_falls_back() {
        // Debian 12's osinfo-db (2022-11, installed by scripts/setup.sh)
        // predates Debian 12.
        let installed = find().expect("osinfo-db is installed");
        let ids = os_ids(&installed.path);
        assert!(!ids.contains_key("debian12"));
        let v = choose_variant("debian12", &ids);
        assert_eq!(v.chosen, "debian11");
    }
}
