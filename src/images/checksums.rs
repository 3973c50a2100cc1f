//! Checksum files: the three line formats distributions publish, found by
//! file name. Pure functions of the text.
//!
//! - `SHA256 (file) = hex` (BSD style: Fedora, AlmaLinux; also `openssl
//!   dgst`'s `SHA2-256(file)= hex`)
//! - `hex  file` (GNU text mode: Debian)
//! - `hex *file` (GNU binary mode: Ubuntu)
//!
//! Comments, blank lines and OpenPGP armour (a clearsigned file's header
//! and signature block) are skipped; dash-escaped lines are unescaped.
//! Parsing a clearsigned file here does not verify it: the signature
//! module hands over only the text the signature covers.

use crate::desired::ChecksumAlgorithm;
use crate::escape::escape_controls;

/// One line that names a file and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumEntry {
    /// The BSD-style tag (`SHA256`), absent for GNU-style lines.
    pub tag: Option<String>,
    pub file: String,
    /// Lowercase hex.
    pub digest: String,
}

/// Why the image's digest could not be taken from a checksum file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("the checksum file has no checksum lines at all{}", first_line_hint(.first_line))]
    Empty { first_line: Option<String> },
    #[error("`{file}` is not listed in the checksum file (it lists {})", listed_sample(.listed))]
    NotListed { file: String, listed: Vec<String> },
    #[error("`{file}` is listed only with {found}, not {wanted}: set `checksum_type` to match")]
    WrongAlgorithm {
        file: String,
        found: String,
        wanted: &'static str,
    },
}

fn first_line_hint(line: &Option<String>) -> String {
    match line {
        Some(line) => format!(
            " (it starts with `{}`)",
            escape_controls(&truncate(line, 60))
        ),
        None => " (it is empty)".into(),
    }
}

fn listed_sample(listed: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out = listed
        .iter()
        .take(SHOWN)
        .map(|f| format!("`{}`", escape_controls(f)))
        .collect::<Vec<_>>()
        .join(", ");
    if listed.len() > SHOWN {
        out.push_str(&format!(" and {} more", listed.len() - SHOWN));
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

pub fn algorithm_name(algorithm: ChecksumAlgorithm) -> &'static str {
    match algorithm {
        ChecksumAlgorithm::Sha256 => "sha256",
        ChecksumAlgorithm::Sha512 => "sha512",
    }
}

fn hex_len(algorithm: ChecksumAlgorithm) -> usize {
    match algorithm {
        ChecksumAlgorithm::Sha256 => 64,
        ChecksumAlgorithm::Sha512 => 128,
    }
}

/// The algorithm a BSD tag names, if it is one lvlab checks.
fn tag_algorithm(tag: &str) -> Option<ChecksumAlgorithm> {
    match tag.to_ascii_uppercase().as_str() {
        "SHA256" | "SHA2-256" | "SHA-256" => Some(ChecksumAlgorithm::Sha256),
        "SHA512" | "SHA2-512" | "SHA-512" => Some(ChecksumAlgorithm::Sha512),
        _ => None,
    }
}

/// Whether `text` is an OpenPGP clearsigned message.
pub fn is_clearsigned(text: &str) -> bool {
    text.trim_start()
        .starts_with("-----BEGIN PGP SIGNED MESSAGE-----")
}

/// Every checksum line of `text`, in order.
pub fn parse(text: &str) -> Vec<ChecksumEntry> {
    let mut entries = Vec::new();
    let mut in_armor_header = false;
    let mut in_signature = false;
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if in_signature {
            in_signature = !line.starts_with("-----END PGP SIGNATURE-----");
            continue;
        }
        if line.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
            in_armor_header = true;
            continue;
        }
        if in_armor_header {
            // `Hash: SHA256` lines up to the first blank line.
            in_armor_header = !line.trim().is_empty();
            continue;
        }
        if line.starts_with("-----BEGIN PGP SIGNATURE-----") {
            in_signature = true;
            continue;
        }
        let line = line.strip_prefix("- ").unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(entry) = parse_bsd(trimmed).or_else(|| parse_gnu(trimmed)) {
            entries.push(entry);
        }
    }
    entries
}

/// `SHA256 (file) = hex`, `SHA2-256(file)= hex`.
fn parse_bsd(line: &str) -> Option<ChecksumEntry> {
    let open = line.find('(')?;
    let tag = line[..open].trim_end();
    if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let close = line.rfind(')')?;
    if close <= open {
        return None;
    }
    let file = &line[open + 1..close];
    let digest = line[close + 1..].trim_start().strip_prefix('=')?.trim();
    is_hex(digest).then(|| ChecksumEntry {
        tag: Some(tag.to_string()),
        file: file.to_string(),
        digest: digest.to_ascii_lowercase(),
    })
}

/// `hex  file`, `hex *file`, and GNU's escaped form `\hex  file\\name`.
fn parse_gnu(line: &str) -> Option<ChecksumEntry> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let split = line.find([' ', '\t'])?;
    let digest = &line[..split];
    if !is_hex(digest) {
        return None;
    }
    let rest = &line[split + 1..];
    // One more space (text mode) or `*` (binary mode) may stand before the name.
    let name = rest
        .strip_prefix('*')
        .or_else(|| rest.strip_prefix(' '))
        .unwrap_or(rest);
    if name.is_empty() {
        return None;
    }
    let file = if escaped {
        unescape(name)
    } else {
        name.to_string()
    };
    Some(ChecksumEntry {
        tag: None,
        file,
        digest: digest.to_ascii_lowercase(),
    })
}

fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_hex(text: &str) -> bool {
    (32..=128).contains(&text.len()) && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether a listed path names `file_name`: the same name, or a path
/// ending in it (`./x`, `images/x`).
fn names(entry_file: &str, file_name: &str) -> bool {
    entry_file == file_name || entry_file.rsplit('/').next() == Some(file_name)
}

/// The digest `text` gives for `file_name` with `algorithm`.
pub fn find(
    text: &str,
    file_name: &str,
    algorithm: ChecksumAlgorithm,
) -> Result<String, LookupError> {
    let entries = parse(text);
    if entries.is_empty() {
        return Err(LookupError::Empty {
            first_line: text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string),
        });
    }
    let named: Vec<&ChecksumEntry> = entries
        .iter()
        .filter(|e| names(&e.file, file_name))
        .collect();
    if named.is_empty() {
        return Err(LookupError::NotListed {
            file: file_name.to_string(),
            listed: entries.iter().map(|e| e.file.clone()).collect(),
        });
    }
    let fits = |e: &&&ChecksumEntry| match &e.tag {
        Some(tag) => tag_algorithm(tag) == Some(algorithm),
        None => e.digest.len() == hex_len(algorithm),
    };
    // An exact name beats a path that ends in it.
    let exact = named.iter().filter(fits).find(|e| e.file == file_name);
    if let Some(entry) = exact.or_else(|| named.iter().find(fits)) {
        if entry.digest.len() == hex_len(algorithm) {
            return Ok(entry.digest.clone());
        }
    }
    let found = named
        .iter()
        .map(|e| match &e.tag {
            Some(tag) => tag.clone(),
            None => format!("a {}-digit digest", e.digest.len()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(LookupError::WrongAlgorithm {
        file: file_name.to_string(),
        found,
        wanted: algorithm_name(algorithm),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChecksumAlgorithm::{Sha256, Sha512};

    const H64: &str = "4a5f0ca8e2b0d3c2ea3f4f8d2b1e7d0c9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";

    fn h128() -> String {
        format!("{H64}{H64}")
    }

    #[test]
    fn fedora_bsd_style_with_comments() {
        let text = format!(
            "# Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2: 123 bytes\n\
             SHA256 (Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2) = {}\n",
            H64.to_uppercase()
        );
        assert_eq!(
            find(
                &text,
                "Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2",
                Sha256
            )
            .unwrap(),
            H64
        );
    }

    #[test]
    fn debian_text_mode_and_ubuntu_binary_mode() {
        let text = format!(
            "{}  debian-13-generic-amd64.qcow2\n{}  other.raw\n",
            h128(),
            h128()
        );
        assert_eq!(
            find(&text, "debian-13-generic-amd64.qcow2", Sha512).unwrap(),
            h128()
        );
        let text = format!("{H64} *noble-server-cloudimg-amd64.img\r\n");
        assert_eq!(
            find(&text, "noble-server-cloudimg-amd64.img", Sha256).unwrap(),
            H64
        );
    }

    #[test]
    fn openssl_dgst_style_and_paths() {
        let text = format!("SHA2-256(./images/x.qcow2)= {H64}\n");
        assert_eq!(find(&text, "x.qcow2", Sha256).unwrap(), H64);
    }

    #[test]
    fn armour_is_skipped_and_dash_escapes_undone() {
        let text = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\
             # AlmaLinux\n- {H64}  dashed.qcow2\nSHA256 (x.qcow2) = {H64}\n\
             -----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE{H64}\n=abcd\n\
             -----END PGP SIGNATURE-----\n"
        );
        let entries = parse(&text);
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0].file, "dashed.qcow2");
        assert!(is_clearsigned(&text));
    }

    #[test]
    fn gnu_escaped_names() {
        let text = format!("\\{H64}  a\\\\b\\nc\n");
        assert_eq!(parse(&text)[0].file, "a\\b\nc");
    }

    #[test]
    fn missing_file_lists_what_is_there() {
        let text = format!("{H64}  a.qcow2\n{H64}  b.qcow2\n");
        let err = find(&text, "c.qcow2", Sha256).unwrap_err();
        assert!(matches!(err, LookupError::NotListed { .. }));
        assert!(err.to_string().contains("`a.qcow2`, `b.qcow2`"), "{err}");
    }

    #[test]
    fn wrong_algorithm_says_what_was_found() {
        let text = format!("SHA256 (x.qcow2) = {H64}\n");
        let err = find(&text, "x.qcow2", Sha512).unwrap_err();
        assert!(err.to_string().contains("SHA256"), "{err}");
        let text = format!("{H64}  x.qcow2\n");
        let err = find(&text, "x.qcow2", Sha512).unwrap_err();
        assert!(err.to_string().contains("64-digit"), "{err}");
    }

    #[test]
    fn a_web_page_is_no_checksum_file() {
        let err = find("<html><body>Not here</body></html>", "x", Sha256).unwrap_err();
        assert!(err.to_string().contains("<html>"), "{err}");
        assert!(matches!(
            find("", "x", Sha256),
            Err(LookupError::Empty { .. })
        ));
    }

    #[test]
    fn control_characters_from_the_file_are_escaped_in_errors() {
        let err = find("\u{1b}[2Jhello\n", "x", Sha256).unwrap_err();
        assert!(err.to_string().contains("`\\u{1b}[2Jhello`"), "{err}");
        let text = format!("{H64}  a\u{9b}b\n");
        let err = find(&text, "x", Sha256).unwrap_err();
        assert!(err.to_string().contains("`a\\u{9b}b`"), "{err}");
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "(",
            ")(",
            "SHA256 () =",
            "SHA256 (x) = zz",
            "\\",
            "abc *",
            "é(é)=é",
        ] {
            let _ = parse(text);
            let _ = find(text, "x", Sha256);
        }
    }
}
