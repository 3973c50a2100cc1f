//! The SSH public keys that go into user-data: the manifest's key text, or
//! the keys in the file it names (read when the seed is rendered, so a key
//! rotated on the host reaches the next seed).
//!
//! Only OpenSSH public keys pass: each line `type base64 [comment]`, whose
//! base64 decodes to a blob that names the same type and holds that type's
//! fields. A private key is refused whole, and no error ever quotes a key
//! text or a file's content (it could be a secret).

use std::path::{Path, PathBuf};

use super::CloudInitError;
use crate::desired::PublicKey;

/// Key types and the number of length-prefixed fields their blob holds
/// after the type name (RFC 4253, RFC 5656, OpenSSH's PROTOCOL.u2f).
fn blob_fields(key_type: &str) -> Option<usize> {
    match key_type {
        // public key
        "ssh-ed25519" => Some(1),
        // e, n
        "ssh-rsa" => Some(2),
        // public key, application
        "sk-ssh-ed25519@openssh.com" => Some(2),
        // curve, point, application
        t if t.starts_with("sk-ecdsa-sha2-") => Some(3),
        // curve, point
        t if t.starts_with("ecdsa-sha2-") => Some(2),
        _ => None,
    }
}

/// What is wrong with text that should hold OpenSSH public keys. Holds
/// none of the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("it is a private key")]
    PrivateKey,
    #[error("it holds no key")]
    Empty,
    #[error("line {line}: {what}")]
    Line { line: usize, what: &'static str },
}

/// Whether `text` is (or holds) a private key, in any of the formats
/// ssh-keygen, OpenSSL or PuTTY write.
pub fn is_private_key(text: &str) -> bool {
    text.contains("PRIVATE KEY-----") || text.contains("PuTTY-User-Key-File-")
}

/// The public keys in `text`, one a line; empty lines and `#` comments are
/// skipped. Every other line must be an OpenSSH public key.
pub fn parse_public_keys(text: &str) -> Result<Vec<String>, KeyProblem> {
    if is_private_key(text) {
        return Err(KeyProblem::PrivateKey);
    }
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        check_key_line(line).map_err(|what| KeyProblem::Line {
            line: index + 1,
            what,
        })?;
        keys.push(line.to_string());
    }
    if keys.is_empty() {
        return Err(KeyProblem::Empty);
    }
    Ok(keys)
}

/// One `type base64 [comment]` line.
fn check_key_line(line: &str) -> Result<(), &'static str> {
    let mut words = line.split_whitespace();
    let key_type = words.next().unwrap_or_default();
    let Some(fields) = blob_fields(key_type) else {
        return Err(
            "not an OpenSSH public key (it must start with ssh-ed25519, ssh-rsa, \
                    ecdsa-sha2-... or sk-...)",
        );
    };
    let blob = words
        .next()
        .ok_or("the key type is not followed by the key's base64")?;
    let blob = decode_base64(blob).ok_or("the key is not valid base64")?;
    let mut rest = blob.as_slice();
    let named = take_string(&mut rest).ok_or("the key's data is cut short")?;
    if named != key_type.as_bytes() {
        return Err("the key's data is of another type than the line names");
    }
    for _ in 0..fields {
        take_string(&mut rest).ok_or("the key's data is cut short")?;
    }
    if !rest.is_empty() {
        return Err("the key's data has bytes after its last field");
    }
    Ok(())
}

/// One SSH wire-format string: a big-endian u32 length, then the bytes.
fn take_string<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = data.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    *data = rest;
    Some(value)
}

/// Standard base64 with `=` padding, as OpenSSH writes keys.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The authorized keys for `key`: its key text, or every key line of the
/// file it names (an `authorized_keys`-style file may hold several). A
/// missing, unreadable or empty file, a private key, or a line that is no
/// OpenSSH public key is an error that names the path, never the content.
pub fn authorized_keys(key: &PublicKey) -> Result<Vec<String>, CloudInitError> {
    match key {
        PublicKey::Literal(text) => {
            parse_public_keys(text).map_err(|problem| CloudInitError::PubkeyText { problem })
        }
        PublicKey::File(path) => read_keys(path),
    }
}

fn read_keys(path: &Path) -> Result<Vec<String>, CloudInitError> {
    let text = std::fs::read_to_string(path).map_err(|source| CloudInitError::Pubkey {
        path: path.to_path_buf(),
        problem: source.to_string(),
    })?;
    parse_public_keys(&text).map_err(|problem| match problem {
        KeyProblem::PrivateKey => CloudInitError::PrivateKey {
            path: path.to_path_buf(),
            public: public_half(path),
        },
        other => CloudInitError::Pubkey {
            path: path.to_path_buf(),
            problem: other.to_string(),
        },
    })
}

/// Where ssh-keygen puts the public half of the private key at `path`.
pub fn public_half(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAZ3V2CJfQS4GVByf2qcI4dIrf0ve+JR8lt1KQmBKeAPN+B1Sys9GS7aeM94nW6CI+EG8EvOTKUR8XIOFF8a7Pk= ec@example";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAQQDFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXF c@d";
    const SK: &str = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fAAAABHNzaDo= yubi";

    #[test]
    fn every_openssh_key_type_parses() {
        for key in [ED25519, ECDSA, RSA, SK] {
            assert_eq!(parse_public_keys(key), Ok(vec![key.to_string()]), "{key}");
        }
        // No comment is fine too.
        let bare = ED25519.trim_end_matches(" a@b");
        assert!(parse_public_keys(bare).is_ok());
    }

    #[test]
    fn lines_that_are_no_public_key_are_refused_by_line_number() {
        let line = |text: &str| match parse_public_keys(text) {
            Err(KeyProblem::Line { line, what }) => (line, what),
            other => panic!("{text}: {other:?}"),
        };
        assert!(line("ssh-dss AAAA").1.contains("not an OpenSSH"));
        assert_eq!(line(&format!("{ED25519}\n\nhello world")).0, 3);
        assert!(line("ssh-ed25519").1.contains("not followed"));
        assert!(line("ssh-ed25519 AAAA").1.contains("cut short"));
        assert!(line("ssh-ed25519 not*base64").1.contains("base64"));
        // The right base64, the wrong type name.
        let swapped = ED25519.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(line(&swapped).1.contains("another type"));
        // A field too many.
        let long = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAQAAAAAB";
        assert!(line(long).1.contains("after its last field"), "{long}");
        assert_eq!(parse_public_keys("# only\n\n"), Err(KeyProblem::Empty));
    }

    #[test]
    fn key_files_give_every_key_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.pub");
        std::fs::write(&path, format!("# mine\n{ED25519}\n\n  {RSA}  \n")).unwrap();
        let keys = authorized_keys(&PublicKey::File(path)).unwrap();
        assert_eq!(keys, [ED25519, RSA]);
    }

    #[test]
    fn missing_empty_and_private_key_files_name_the_path_and_never_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pub");
        let err = authorized_keys(&PublicKey::File(missing.clone())).unwrap_err();
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
        let empty = dir.path().join("empty.pub");
        std::fs::write(&empty, "\n# nothing\n").unwrap();
        let err = authorized_keys(&PublicKey::File(empty)).unwrap_err();
        assert!(err.to_string().contains("holds no key"), "{err}");

        let private = dir.path().join("id_ed25519");
        std::fs::write(
            &private,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = authorized_keys(&PublicKey::File(private.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "{} is a private key; use {}.pub",
                private.display(),
                private.display()
            )),
            "{err}"
        );
        assert!(!err.contains("c2VjcmV0") && !err.contains("BEGIN"), "{err}");

        let junk = dir.path().join("junk.pub");
        std::fs::write(&junk, "password=hunter2\n").unwrap();
        let err = authorized_keys(&PublicKey::File(junk))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1: not an OpenSSH public key"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
