//! Where the osinfo database lives on the machine running lvlab, and which
//! release it is. virt-install and lvlab name guest operating systems by its
//! short ids, so a missing database is worth telling about.

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
}
