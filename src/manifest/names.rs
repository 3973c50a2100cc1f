//! lvlab's naming rules: domain names, directories, cache file names, MAC
//! addresses, and what an image key says about its OS. Pure functions.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::desired::{MacAddress, OsFamily, Source};

/// `<vm_name>_<environment>`, e.g. `salt.local_lvlab-dev`; a one-off
/// machine's (`createvm NAME`) is exactly `NAME`, as the original names it.
pub fn domain_name(vm_name: &str, environment: &str, one_off: bool) -> String {
    if one_off {
        vm_name.to_string()
    } else {
        format!("{vm_name}_{environment}")
    }
}

/// `<disk_image_basedir>/<environment>/<vm_name>/`.
pub fn vm_dir(disk_image_basedir: &Path, environment: &str, vm_name: &str) -> PathBuf {
    disk_image_basedir.join(environment).join(vm_name)
}

/// `<cloud_image_basedir>/cloud-images/`, not doubled when the base already
/// ends there.
pub fn image_cache_dir(cloud_image_basedir: &Path) -> PathBuf {
    if cloud_image_basedir.file_name() == Some("cloud-images".as_ref()) {
        cloud_image_basedir.to_path_buf()
    } else {
        cloud_image_basedir.join("cloud-images")
    }
}

/// A stable MAC in QEMU's `52:54:00` range, derived from where the interface
/// sits, so that plans are stable and the domain and network-config agree.
pub fn derived_mac(environment: &str, vm_name: &str, interface: &str) -> MacAddress {
    let digest = Sha256::new()
        .chain_update(b"lvlab-mac\0")
        .chain_update(environment.as_bytes())
        .chain_update(b"\0")
        .chain_update(vm_name.as_bytes())
        .chain_update(b"\0")
        .chain_update(interface.as_bytes())
        .finalize();
    MacAddress([0x52, 0x54, 0x00, digest[0], digest[1], digest[2]])
}

/// A MAC as written in the manifest: six hex pairs split by `:` or `-`.
pub fn parse_mac(text: &str) -> Result<MacAddress, String> {
    let parts: Vec<&str> = text.trim().split([':', '-']).collect();
    let bytes: Option<Vec<u8>> = (parts.len() == 6)
        .then(|| {
            parts
                .iter()
                .map(|p| {
                    (p.len() == 2)
                        .then(|| u8::from_str_radix(p, 16).ok())
                        .flatten()
                })
                .collect()
        })
        .flatten();
    let bytes: [u8; 6] = bytes
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("`{text}` is not a MAC address like `52:54:00:12:34:56`"))?;
    if bytes[0] & 1 == 1 {
        return Err(format!(
            "`{text}` is a multicast address; a NIC needs a unicast one (even first byte)"
        ));
    }
    Ok(MacAddress(bytes))
}

/// The OS variant an image key implies: the key up to the first `-`
/// (`debian12-salt` -> `debian12`).
pub fn os_variant_of_key(key: &str) -> &str {
    key.split('-').next().unwrap_or(key)
}

/// The family an OS variant belongs to, from its leading letters.
pub fn family_of(os_variant: &str) -> OsFamily {
    match leading_letters(os_variant).to_ascii_lowercase().as_str() {
        "debian" => OsFamily::Debian,
        "ubuntu" => OsFamily::Ubuntu,
        "fedora" => OsFamily::Fedora,
        "almalinux" => OsFamily::AlmaLinux,
        "rocky" => OsFamily::Rocky,
        "centos" => OsFamily::CentOS,
        "rhel" => OsFamily::Rhel,
        other => OsFamily::Other(other.to_string()),
    }
}

/// The default login of a family's cloud images.
pub fn default_username(family: &OsFamily) -> String {
    match family {
        OsFamily::Debian => "debian".into(),
        OsFamily::Ubuntu => "ubuntu".into(),
        OsFamily::Fedora => "fedora".into(),
        OsFamily::AlmaLinux => "almalinux".into(),
        OsFamily::Rocky => "rocky".into(),
        OsFamily::CentOS | OsFamily::Rhel => "cloud-user".into(),
        OsFamily::Other(letters) => letters.clone(),
    }
}

fn leading_letters(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    &text[..end]
}

/// Where a URL-ish manifest value points: `http(s)://`, `file://` or a path
/// (relative against `base`). Its last segment must name a file.
pub fn parse_source(text: &str, base: &Path) -> Result<Source, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the value is empty: give an https:// URL, a file:// URL or a path".into());
    }
    let source = if let Some(path) = text.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(format!(
                "`{text}`: a file:// URL needs an absolute path (file:///path/to/file)"
            ));
        }
        Source::File(PathBuf::from(path))
    } else if text.starts_with("http://") || text.starts_with("https://") {
        let after_scheme = text.split_once("://").map_or("", |(_, rest)| rest);
        if !after_scheme.contains('/') {
            return Err(format!("`{text}` has no path: it must name a file"));
        }
        Source::Http(text.to_string())
    } else if let Some((scheme, _)) = text.split_once("://") {
        return Err(format!(
            "`{text}`: unsupported scheme `{scheme}`; use https://, http://, file:// or a path"
        ));
    } else {
        let path = crate::manifest::values::expand_path(text, base)?;
        Source::File(path)
    };
    check_last_segment(text)?;
    Ok(source)
}

/// The last path segment names the cached file: it must be a real name.
fn check_last_segment(text: &str) -> Result<(), String> {
    let last = cache_file_name(text);
    match last.as_str() {
        "" => Err(format!("`{text}` ends in `/`: it must name a file")),
        "." | ".." => Err(format!("`{text}` ends in `{last}`: it must name a file")),
        name if name.contains('\\') => Err(format!(
            "`{text}`: the file name `{name}` contains a path separator"
        )),
        _ => Ok(()),
    }
}

/// The file name a source gives in the cache: its last path segment, without
/// query or fragment.
pub fn cache_file_name(text: &str) -> String {
    let without_query = text.split(['?', '#']).next().unwrap_or(text);
    without_query.rsplit('/').next().unwrap_or("").to_string()
}

/// `<stem>-<tag>.<ext>` (`debian-13-generic-amd64-1a2b3c4d5e6f.qcow2`): a
/// second file named like `file` beside it.
pub fn versioned_name(file: &str, tag: &str) -> String {
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{tag}.{ext}"),
        _ => format!("{file}-{tag}"),
    }
}

/// The cache name of a file from `source` whose plain name `name` another
/// source holds: `name` tagged with the first 12 hex digits of the SHA-256
/// of the source's URL or path, so each source gets its own, stable name.
pub fn name_for_source(name: &str, source: &str) -> String {
    let digest = format!("{:x}", Sha256::digest(source.as_bytes()));
    versioned_name(name, &digest[..12])
}

/// The cache file name of a file that belongs to `image_file` (its checksum
/// file, that file's signature): `<image_file>.<last segment of url>`.
pub fn companion_file_name(image_file: &str, url: &str) -> String {
    format!("{image_file}.{}", cache_file_name(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_and_directory_names() {
        assert_eq!(
            domain_name("salt.local", "lvlab-dev", false),
            "salt.local_lvlab-dev"
        );
        assert_eq!(domain_name("web.lab", "oneoff", true), "web.lab");
        assert_eq!(
            vm_dir(Path::new("/var/lib/libvirt/images/lvlab"), "lab", "web01"),
            PathBuf::from("/var/lib/libvirt/images/lvlab/lab/web01")
        );
    }

    #[test]
    fn image_cache_is_not_doubled() {
        assert_eq!(
            image_cache_dir(Path::new("/x/lvlab")),
            PathBuf::from("/x/lvlab/cloud-images")
        );
        assert_eq!(
            image_cache_dir(Path::new("/x/cloud-images")),
            PathBuf::from("/x/cloud-images")
        );
    }

    #[test]
    fn derived_macs_are_stable_distinct_and_in_qemus_range() {
        let a = derived_mac("lab", "web01", "eth0");
        assert_eq!(a, derived_mac("lab", "web01", "eth0"));
        assert_ne!(a, derived_mac("lab", "web01", "eth1"));
        assert_ne!(a, derived_mac("lab", "web02", "eth0"));
        assert_ne!(a, derived_mac("prod", "web01", "eth0"));
        assert!(a.to_string().starts_with("52:54:00:"));
    }

    #[test]
    fn manifest_macs() {
        assert_eq!(
            parse_mac("52:54:00:AB:cd:01").unwrap().to_string(),
            "52:54:00:ab:cd:01"
        );
        assert_eq!(
            parse_mac("52-54-00-ab-cd-01").unwrap().to_string(),
            "52:54:00:ab:cd:01"
        );
        assert!(parse_mac("52:54:00:ab:cd").is_err());
        assert!(parse_mac("52:54:00:ab:cd:zz").is_err());
        assert!(parse_mac("01:00:5e:00:00:01")
            .unwrap_err()
            .contains("multicast"));
    }

    #[test]
    fn image_key_rules() {
        assert_eq!(os_variant_of_key("debian12-salt"), "debian12");
        assert_eq!(os_variant_of_key("fedora44"), "fedora44");
        assert_eq!(default_username(&family_of("debian12")), "debian");
        assert_eq!(default_username(&family_of("ubuntu2404")), "ubuntu");
        assert_eq!(default_username(&family_of("almalinux9")), "almalinux");
        assert_eq!(default_username(&family_of("rocky9")), "rocky");
        assert_eq!(default_username(&family_of("centos9")), "cloud-user");
        assert_eq!(default_username(&family_of("rhel9")), "cloud-user");
        assert_eq!(default_username(&family_of("alpine318")), "alpine");
    }

    #[test]
    fn sources_and_their_file_names() {
        let base = Path::new("/srv/lab");
        assert_eq!(
            parse_source("https://h/d/img.qcow2", base).unwrap(),
            Source::Http("https://h/d/img.qcow2".into())
        );
        assert_eq!(
            parse_source("file:///data/img.qcow2", base).unwrap(),
            Source::File("/data/img.qcow2".into())
        );
        assert_eq!(
            parse_source("images/img.qcow2", base).unwrap(),
            Source::File("/srv/lab/images/img.qcow2".into())
        );
        for bad in [
            "https://h/d/",
            "https://h/d/..",
            "https://h/.",
            "https://h",
            "ftp://h/x",
            "file://rel/x",
        ] {
            assert!(parse_source(bad, base).is_err(), "{bad} must be rejected");
        }
        assert_eq!(cache_file_name("https://h/d/SHA256SUMS?x=1"), "SHA256SUMS");
    }

    #[test]
    fn versioned_names_keep_the_extension() {
        assert_eq!(versioned_name("d.qcow2", "abc"), "d-abc.qcow2");
        assert_eq!(versioned_name("noext", "abc"), "noext-abc");
        assert_eq!(versioned_name(".hidden", "abc"), ".hidden-abc");
    }

    #[test]
    fn names_for_sources_are_tagged_with_the_sources_digest() {
        let url = "https://h/20240102/d.qcow2";
        let tagged = name_for_source("d.qcow2", url);
        // sha256("https://h/20240102/d.qcow2"), first 12 hex digits.
        let digest = format!("{:x}", Sha256::digest(url.as_bytes()));
        assert_eq!(tagged, format!("d-{}.qcow2", &digest[..12]));
        assert_ne!(
            tagged,
            name_for_source("d.qcow2", "https://h/latest/d.qcow2")
        );
    }
}
