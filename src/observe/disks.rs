//! Which files defined domains' disks use: each disk's source and, through
//! qcow2 backing chains, every file under it. Image cleaning and refresh ask
//! this before removing a cached image. Reads only.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use virt::domain::Domain;

use crate::host::Host;
use crate::images::DomainFiles;
use crate::libvirt::{Connection, LibvirtError};

/// Longest backing chain followed (qemu refuses much shorter ones in
/// practice; this only stops a loop).
const MAX_CHAIN: usize = 64;

/// Every file each domain on `conn` (running or not) uses, keyed by the
/// file's canonical path, with the names of the domains that use it.
pub fn domain_files(conn: &Connection) -> Result<BTreeMap<PathBuf, Vec<String>>, LibvirtError> {
    // 0: every domain, active and inactive.
    let domains = conn
        .raw()
        .list_all_domains(0)
        .map_err(|e| conn.error("list domains", e))?;
    // A remote host's files are not this machine's to read: what libvirt
    // lists (each disk and the `<backingStore>` chain it knows) is all
    // that can be known of them from here.
    let remote = crate::host::is_remote_uri(conn.uri());
    let mut files: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for domain in domains {
        // A domain undefined since the listing uses nothing.
        let Some((name, xml)) = describe(conn, &domain)? else {
            continue;
        };
        for source in disk_sources(&xml) {
            let chain = if remote {
                vec![source]
            } else {
                backing_chain(&source)
            };
            for file in chain {
                let users = files.entry(file).or_default();
                if !users.contains(&name) {
                    users.push(name.clone());
                }
            }
        }
    }
    Ok(files)
}

/// The files the domains on `uris` use, each user named `domain (uri)`;
/// `None` when any URI cannot be read (then nothing may be removed on the
/// grounds that no domain uses it), with what went wrong.
pub fn domain_files_on(uris: &[String]) -> (Option<DomainFiles>, Vec<String>) {
    let mut all = DomainFiles::new();
    let mut problems = Vec::new();
    for uri in uris {
        match Host::open(uri).and_then(|host| domain_files(&host.connection())) {
            Ok(files) => {
                for (file, users) in files {
                    let entry = all.entry(file).or_default();
                    for user in users {
                        let user = format!("{user} ({uri})");
                        if !entry.contains(&user) {
                            entry.push(user);
                        }
                    }
                }
            }
            Err(err) => problems.push(err.to_string()),
        }
    }
    let files = problems.is_empty().then_some(all);
    (files, problems)
}

/// The domain's name and XML; `None` when it no longer exists.
fn describe(conn: &Connection, domain: &Domain) -> Result<Option<(String, String)>, LibvirtError> {
    let name = domain
        .name()
        .map_err(|e| conn.error("read a domain's name", e))?;
    // 0: the live (or persistent, for a stopped domain) definition.
    match domain.xml_desc(0) {
        Ok(xml) => Ok(Some((name, xml))),
        Err(err) if super::domains::is_no_domain(&err) => Ok(None),
        Err(err) => Err(conn.error("read a domain's XML", err)),
    }
}

/// The file paths of a domain XML's disks, with any `<backingStore>` files
/// libvirt already lists.
pub fn disk_sources(xml: &str) -> Vec<PathBuf> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for disk in doc
        .descendants()
        .filter(|n| n.has_tag_name("disk") || n.has_tag_name("backingStore"))
    {
        for source in disk.children().filter(|n| n.has_tag_name("source")) {
            if let Some(file) = source.attribute("file") {
                let path = PathBuf::from(file);
                if !out.contains(&path) {
                    out.push(path);
                }
            }
        }
    }
    out
}

/// `path` and every file under it through qcow2 backing files, canonical
/// where the file exists. A missing or unreadable file ends the chain.
pub fn backing_chain(path: &Path) -> Vec<PathBuf> {
    let mut chain = Vec::new();
    let mut next = Some(path.to_path_buf());
    while let Some(current) = next.take() {
        let current = std::fs::canonicalize(&current).unwrap_or(current);
        if chain.contains(&current) || chain.len() >= MAX_CHAIN {
            break;
        }
        next = match qcow2_backing_file(&current) {
            Ok(Some(backing)) => Some(resolve_backing(&current, &backing)),
            Ok(None) => None,
            Err(err) => {
                tracing::debug!("{}: {err}", current.display());
                None
            }
        };
        chain.push(current);
    }
    chain
}

fn resolve_backing(image: &Path, backing: &str) -> PathBuf {
    let backing = Path::new(backing);
    if backing.is_absolute() {
        backing.to_path_buf()
    } else {
        image.parent().unwrap_or(Path::new("/")).join(backing)
    }
}

/// The backing file name recorded in a qcow2 header (`None` for another
/// format, or a qcow2 image without one). Header: magic `QFI\xfb`, version
/// (u32), backing file offset (u64) and size (u32), all big-endian.
pub fn qcow2_backing_file(path: &Path) -> io::Result<Option<String>> {
    let mut file = File::open(path)?;
    let mut header = [0u8; 20];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    if &header[..4] != b"QFI\xfb" {
        return Ok(None);
    }
    let offset = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
    let size = u32::from_be_bytes(header[16..20].try_into().expect("4 bytes"));
    // qemu limits the name to 1023 bytes.
    if offset == 0 || size == 0 || size > 1023 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut name = vec![0u8; size as usize];
    file.read_exact(&mut name)?;
    let name = String::from_utf8(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidData, "backing file name is not UTF-8")
    })?;
    // A backing "file" given as a protocol URL (nbd:, json:) is not a local file.
    Ok((!name.contains(':') || name.starts_with('/')).then_some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_sources_include_backing_stores() {
        let xml = r#"<domain type='test'><name>a</name><devices>
            <disk type='file' device='disk'><source file='/x/disk0.qcow2'/>
              <backingStore type='file'><format type='qcow2'/><source file='/c/img.qcow2'/>
              <backingStore/></backingStore></disk>
            <disk type='file' device='cdrom'><source file='/x/seed.iso'/></disk>
            <disk type='network'><source protocol='nbd' name='x'/></disk>
            </devices></domain>"#;
        assert_eq!(
            disk_sources(xml),
            vec![
                PathBuf::from("/x/disk0.qcow2"),
                PathBuf::from("/c/img.qcow2"),
                PathBuf::from("/x/seed.iso")
            ]
        );
        assert!(disk_sources("<not xml").is_empty());
    }

    #[test]
    fn non_qcow2_and_short_files_have_no_backing_file() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, b"QFI").unwrap();
        assert_eq!(qcow2_backing_file(&raw).unwrap(), None);
        std::fs::write(&raw, vec![0u8; 4096]).unwrap();
        assert_eq!(qcow2_backing_file(&raw).unwrap(), None);
        // A header whose name runs past the end of the file is an error, not a panic.
        let mut bad = b"QFI\xfb\0\0\0\x03".to_vec();
        bad.extend_from_slice(&4000u64.to_be_bytes());
        bad.extend_from_slice(&100u32.to_be_bytes());
        std::fs::write(&raw, bad).unwrap();
        assert!(qcow2_backing_file(&raw).is_err());
        assert_eq!(backing_chain(&raw).len(), 1);
    }
}
