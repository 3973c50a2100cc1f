//! A machine's SSH host key: an ed25519 key lvlab makes when it first
//! renders the machine's seed, keeps in the VM directory
//! ([`KEY_FILE`], 0600) and gives to cloud-init's `ssh_keys`, so the guest
//! boots with a key lvlab already knows. Beside it, [`KNOWN_HOSTS_FILE`]
//! holds the public half under the machine's domain name (used as ssh's
//! `HostKeyAlias`, which no address or forwarded port can make stale):
//! strict host key checking with no trust on first use.
//!
//! One type is enough: OpenSSH has taken ed25519 host keys since 6.5 and
//! prefers them. cloud-init then makes no other type (its `ssh_keys`
//! replaces `ssh_genkeytypes`); sshd logs that the other default keys are
//! missing and serves ed25519.
//!
//! The key file is written in OpenSSH's own unencrypted format
//! (PROTOCOL.key), which `ssh-keygen -y -f` reads; the encoding is a few
//! length-prefixed strings, written here over ed25519-dalek (already in the
//! tree through pgp) rather than adding a crate for it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use zeroize::Zeroizing;

use super::CloudInitError;
use crate::desired::MachineSpec;

/// The private key, in the VM directory.
pub const KEY_FILE: &str = "ssh_host_ed25519_key";
/// `<domain name> ssh-ed25519 <base64>`, in the VM directory.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";

const KEY_TYPE: &str = "ssh-ed25519";
const MAGIC: &[u8] = b"openssh-key-v1\0";
const PEM_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const PEM_END: &str = "-----END OPENSSH PRIVATE KEY-----";
const PRIVATE_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// One machine's host key. Its `Debug` and `Serialize` show only the
/// public half.
#[derive(Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The key file's text (OpenSSH format, unencrypted).
    private: String,
    /// The public key's wire-format blob.
    public_blob: Vec<u8>,
    /// The key's comment: the domain name, which is also its alias in
    /// known_hosts.
    alias: String,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("public", &self.public())
            .field("alias", &self.alias)
            .finish_non_exhaustive()
    }
}

impl Serialize for HostKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.public())
    }
}

impl HostKey {
    /// A new key whose comment (and known_hosts alias) is `alias`.
    pub fn generate(alias: &str) -> Result<Self, CloudInitError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut check = [0u8; 4];
        for bytes in [&mut seed[..], &mut check[..]] {
            getrandom::fill(bytes).map_err(|err| {
                CloudInitError::HostKey(format!("the system's random generator failed: {err}"))
            })?;
        }
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key().to_bytes();
        let public_blob = public_blob(&public);
        let mut secret = Zeroizing::new(Vec::with_capacity(256));
        put_u32(&mut secret, u32::from_be_bytes(check));
        put_u32(&mut secret, u32::from_be_bytes(check));
        put_string(&mut secret, KEY_TYPE.as_bytes());
        put_string(&mut secret, &public);
        let keypair = Zeroizing::new([*seed, public].concat());
        put_string(&mut secret, &keypair);
        put_string(&mut secret, alias.as_bytes());
        // Padded to the cipher's block size ("none": 8) with 1, 2, 3, ...
        let mut pad = 1u8;
        while secret.len() % 8 != 0 {
            secret.push(pad);
            pad += 1;
        }
        let mut body = Zeroizing::new(MAGIC.to_vec());
        put_string(&mut body, b"none");
        put_string(&mut body, b"none");
        put_string(&mut body, b"");
        put_u32(&mut body, 1);
        put_string(&mut body, &public_blob);
        put_string(&mut body, &secret);
        Ok(Self {
            private: pem(&body),
            public_blob,
            alias: alias.to_string(),
        })
    }

    /// The key in `text` (a key file lvlab wrote), or why it is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = text
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|rest| rest.strip_suffix(PEM_END))
            .ok_or("not an OpenSSH private key")?;
        let body: String = body.split_whitespace().collect();
        let body = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| "the key is not valid base64")?,
        );
        let mut rest = body
            .strip_prefix(MAGIC)
            .ok_or("not an openssh-key-v1 key")?;
        let short = "the key is cut short";
        for expected in [&b"none"[..], b"none"] {
            if take_string(&mut rest).ok_or(short)? != expected {
                return Err("the key is encrypted; lvlab writes its host keys unencrypted".into());
            }
        }
        take_string(&mut rest).ok_or(short)?;
        if take_u32(&mut rest).ok_or(short)? != 1 {
            return Err("the file holds more than one key".into());
        }
        let public_blob = take_string(&mut rest).ok_or(short)?.to_vec();
        let mut secret = take_string(&mut rest).ok_or(short)?;
        let (check1, check2) = (take_u32(&mut secret), take_u32(&mut secret));
        if check1.is_none() || check1 != check2 {
            return Err("the key's check numbers differ".into());
        }
        if take_string(&mut secret).ok_or(short)? != KEY_TYPE.as_bytes() {
            return Err("not an ed25519 key".into());
        }
        let public = take_string(&mut secret).ok_or(short)?;
        let keypair = take_string(&mut secret).ok_or(short)?;
        let alias = take_string(&mut secret).ok_or(short)?;
        let seed: [u8; 32] = keypair
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or(short)?;
        let derived = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        if public_blob != self::public_blob(public) || keypair[32..] != derived || public != derived
        {
            return Err("the key's public half does not match its private half".into());
        }
        Ok(Self {
            private: text.to_string(),
            public_blob,
            alias: String::from_utf8_lossy(alias).into_owned(),
        })
    }

    /// `ssh-ed25519 <base64> <alias>`, as in a `.pub` file.
    pub fn public(&self) -> String {
        format!(
            "{KEY_TYPE} {} {}",
            base64::engine::general_purpose::STANDARD.encode(&self.public_blob),
            self.alias
        )
    }

    /// The key file's text, for cloud-init's `ed25519_private`.
    pub fn private(&self) -> &str {
        &self.private
    }

    /// The name ssh looks the key up under (`HostKeyAlias`).
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The known_hosts line that trusts this key under its alias.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "{} {KEY_TYPE} {}\n",
            self.alias,
            base64::engine::general_purpose::STANDARD.encode(&self.public_blob)
        )
    }

    /// Writes the key file (0600) and known_hosts (0644) into `dir`, the
    /// key first, and returns their paths.
    pub fn write(&self, dir: &Path) -> Result<[PathBuf; 2], CloudInitError> {
        let (key, known_hosts) = (dir.join(KEY_FILE), dir.join(KNOWN_HOSTS_FILE));
        crate::storage::write_file(&key, self.private.as_bytes(), PRIVATE_MODE)?;
        let line = self.known_hosts_line();
        crate::storage::write_file(&known_hosts, line.as_bytes(), PUBLIC_MODE)?;
        Ok([key, known_hosts])
    }
}

/// The host key kept in `dir`, if there is one; a file there that is not
/// a key lvlab wrote is an error naming it.
pub fn load(dir: &Path) -> Result<Option<HostKey>, CloudInitError> {
    let path = dir.join(KEY_FILE);
    if !crate::storage::volume_exists(&path) {
        return Ok(None);
    }
    let text = crate::storage::read_text(&path).unwrap_or_default();
    HostKey::parse(&text).map(Some).map_err(|problem| {
        CloudInitError::HostKey(format!(
            "{}: {problem}; remove it and `--replace` the machine to make a new one",
            path.display()
        ))
    })
}

/// The host key a machine's seed carries: the one kept in its directory;
/// else a new one when its seed is rendered for the first time (no
/// user-data recorded); else none, for a machine whose seed lvlab made
/// before it made host keys (its guest has keys of its own, and that seed
/// must render as it did). A `user_data` override that sets `ssh_keys`
/// itself gets none either.
pub fn for_seed(
    machine: &MachineSpec,
    kept: Option<&HostKey>,
    seed_recorded: bool,
) -> Result<Option<HostKey>, CloudInitError> {
    if overrides_host_keys(machine) {
        return Ok(None);
    }
    match kept {
        Some(key) => Ok(Some(key.clone())),
        None if seed_recorded => Ok(None),
        None => HostKey::generate(&machine.domain_name).map(Some),
    }
}

/// Whether the machine's `user_data` override brings its own `ssh_keys`.
pub fn overrides_host_keys(machine: &MachineSpec) -> bool {
    machine
        .cloud_init
        .user_data
        .as_ref()
        .is_some_and(|doc| doc.get("ssh_keys").is_some())
}

fn public_blob(public: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, KEY_TYPE.as_bytes());
    put_string(&mut blob, public);
    blob
}

/// Base64 in lines of 70, between the markers, as ssh-keygen writes it.
fn pem(body: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let mut text = format!("{PEM_BEGIN}\n");
    for line in encoded.as_bytes().chunks(70) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(PEM_END);
    text.push('\n');
    text
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(
        out,
        u32::try_from(bytes.len()).expect("key fields are small"),
    );
    out.extend_from_slice(bytes);
}

fn take_u32(data: &mut &[u8]) -> Option<u32> {
    let (value, rest) = data.split_first_chunk::<4>()?;
    *data = rest;
    Some(u32::from_be_bytes(*value))
}

fn take_string<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u32(data)?).ok()?;
    if data.len() < len {
        return None;
    }
    let (value, rest) = data.split_at(len);
    *data = rest;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_reads_back_whole() {
        let key = HostKey::generate("web_lab").unwrap();
        let again = HostKey::parse(key.private()).unwrap();
        assert_eq!(again, key);
        assert!(key
            .public()
            .starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert!(key.public().ends_with(" web_lab"));
        assert!(key
            .known_hosts_line()
            .starts_with("web_lab ssh-ed25519 AAAA"));
        assert_ne!(
            HostKey::generate("web_lab").unwrap(),
            key,
            "keys are random"
        );
        assert!(!format!("{key:?}").contains("PRIVATE"), "Debug hides it");
    }

    #[test]
    fn a_damaged_or_foreign_key_file_is_refused() {
        let key = HostKey::generate("a_b").unwrap();
        let cut = &key.private()[..key.private().len() / 2];
        assert!(HostKey::parse(cut).is_err());
        assert!(HostKey::parse("ssh-ed25519 AAAA").is_err());
        let lines: Vec<&str> = key.private().lines().collect();
        let mut bad = lines[1].to_string();
        // Flip a character of the public blob in the clear header.
        let flipped = if bad.as_bytes()[60] == b'A' { "B" } else { "A" };
        bad.replace_range(60..61, flipped);
        let damaged = key.private().replace(lines[1], &bad);
        assert!(HostKey::parse(&damaged).is_err());
    }
}
