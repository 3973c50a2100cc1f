//! OpenPGP verification of checksum files, in-process with rPGP: a
//! clearsigned checksum file (Fedora, AlmaLinux) or a detached signature
//! (`SHA256SUMS.gpg`, `SHA512SUMS.sign`), against the keys the manifest
//! names (armored or binary, one or many per file). No GnuPG keyring is
//! read or written.
//!
//! Only the text a clearsignature covers is handed on: lines outside it
//! can never reach the checksum lookup.

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::KeyDetails;

use super::hash::to_hex;
use crate::escape::escape_controls;

/// A signature check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no OpenPGP public key found in {origin}{}", detail_text(.detail))]
    NoKeys {
        origin: String,
        detail: Option<String>,
    },
    #[error(
        "cannot read the signature {origin}: {}",
        escape_controls(.message)
    )]
    Malformed { origin: String, message: String },
    #[error("bad signature: made by key {fingerprint}, but it does not match the checksum file")]
    Bad { fingerprint: String },
    #[error(
        "signed by an unknown key ({}); the configured keys are {}",
        list_or(.issuers, "an unnamed key"),
        list_or(.known, "none")
    )]
    UnknownKey {
        issuers: Vec<String>,
        known: Vec<String>,
    },
}

fn detail_text(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(" ({})", escape_controls(d)))
        .unwrap_or_default()
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(", ")
    }
}

/// Public keys trusted to sign one image's checksum file.
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodSignature {
    /// Fingerprint (uppercase hex) of the primary key that signed, itself
    /// or through a signing subkey.
    pub key_fingerprint: String,
}

impl Keyring {
    /// Reads every public key in `bytes`: one or more armored blocks, or a
    /// binary keyring. `origin` names the source in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, SignatureError> {
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        let text = String::from_utf8_lossy(bytes);
        if text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            for block in armored_blocks(&text, "PGP PUBLIC KEY BLOCK") {
                match SignedPublicKey::from_string_many(block) {
                    Ok((parsed, _)) => collect(parsed, &mut keys, &mut problems),
                    Err(err) => problems.push(err.to_string()),
                }
            }
        } else {
            match SignedPublicKey::from_bytes_many(bytes) {
                Ok(parsed) => collect(parsed, &mut keys, &mut problems),
                Err(err) => problems.push(err.to_string()),
            }
        }
        for problem in &problems {
            tracing::debug!("{origin}: skipped a key: {}", escape_controls(problem));
        }
        if keys.is_empty() {
            return Err(SignatureError::NoKeys {
                origin: origin.to_string(),
                detail: problems.into_iter().next(),
            });
        }
        Ok(Self { keys })
    }

    /// Primary key fingerprints, uppercase hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(fingerprint_of).collect()
    }

    /// Checks a clearsigned text and returns the text the signature covers.
    pub fn verify_clearsigned(
        &self,
        text: &str,
        origin: &str,
    ) -> Result<(String, GoodSignature), SignatureError> {
        let (message, _) =
            CleartextSignedMessage::from_string(text).map_err(|err| SignatureError::Malformed {
                origin: origin.to_string(),
                message: err.to_string(),
            })?;
        let signed = message.signed_text();
        let good = self.verify_all(message.signatures(), signed.as_bytes())?;
        Ok((signed.replace("\r\n", "\n"), good))
    }

    /// Checks a detached signature (armored or binary) over `data`.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &[u8],
        origin: &str,
    ) -> Result<GoodSignature, SignatureError> {
        let malformed = |message: String| SignatureError::Malformed {
            origin: origin.to_string(),
            message,
        };
        let text = String::from_utf8_lossy(signature);
        let parsed: Vec<DetachedSignature> = if text.contains("-----BEGIN PGP SIGNATURE-----") {
            let mut all = Vec::new();
            for block in armored_blocks(&text, "PGP SIGNATURE") {
                let (many, _) = DetachedSignature::from_string_many(block)
                    .map_err(|e| malformed(e.to_string()))?;
                for sig in many {
                    all.push(sig.map_err(|e| malformed(e.to_string()))?);
                }
            }
            all
        } else {
            DetachedSignature::from_bytes_many(signature)
                .map_err(|e| malformed(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| malformed(e.to_string()))?
        };
        if parsed.is_empty() {
            return Err(malformed("it holds no signature".into()));
        }
        let signatures: Vec<Signature> = parsed.into_iter().map(|d| d.signature).collect();
        self.verify_all(&signatures, data)
    }

    /// Every signature by a configured key must be good, and at least one
    /// must be by a configured key.
    fn verify_all(
        &self,
        signatures: &[Signature],
        data: &[u8],
    ) -> Result<GoodSignature, SignatureError> {
        let mut good = None;
        let mut issuers = Vec::new();
        for signature in signatures {
            match self.check(signature, data) {
                Check::Good(fingerprint) => {
                    good.get_or_insert(GoodSignature {
                        key_fingerprint: fingerprint,
                    });
                }
                Check::Bad(fingerprint) => return Err(SignatureError::Bad { fingerprint }),
                Check::Unknown(mut ids) => issuers.append(&mut ids),
            }
        }
        good.ok_or_else(|| SignatureError::UnknownKey {
            issuers,
            known: self.fingerprints(),
        })
    }

    fn check(&self, signature: &Signature, data: &[u8]) -> Check {
        let fingerprints: Vec<String> = signature
            .issuer_fingerprint()
            .iter()
            .map(|f| to_hex(f.as_ref()).to_uppercase())
            .collect();
        let key_ids: Vec<String> = signature
            .issuer_key_id()
            .iter()
            .map(|k| to_hex(k.as_ref()).to_uppercase())
            .collect();
        let named = |fp: String, id: String| {
            (fingerprints.is_empty() && key_ids.is_empty())
                || fingerprints.contains(&fp)
                || key_ids.contains(&id)
        };
        let mut candidate = None;
        for key in &self.keys {
            let primary = fingerprint_of(key);
            let mut parts: Vec<(String, String, bool)> = vec![(
                primary.clone(),
                to_hex(key.primary_key.legacy_key_id().as_ref()).to_uppercase(),
                signature.verify(&key.primary_key, data).is_ok(),
            )];
            for sub in &key.public_subkeys {
                parts.push((
                    to_hex(sub.key.fingerprint().as_ref()).to_uppercase(),
                    to_hex(sub.key.legacy_key_id().as_ref()).to_uppercase(),
                    signature.verify(&sub.key, data).is_ok(),
                ));
            }
            for (fp, id, ok) in parts {
                if ok {
                    return Check::Good(primary);
                }
                if named(fp, id) {
                    candidate.get_or_insert(primary.clone());
                }
            }
        }
        match candidate {
            // Anonymous signatures that no key verifies count as unknown.
            Some(fp) if !(fingerprints.is_empty() && key_ids.is_empty()) => Check::Bad(fp),
            _ => Check::Unknown(if fingerprints.is_empty() {
                key_ids
            } else {
                fingerprints
            }),
        }
    }
}

enum Check {
    Good(String),
    Bad(String),
    Unknown(Vec<String>),
}

fn fingerprint_of(key: &SignedPublicKey) -> String {
    to_hex(key.primary_key.fingerprint().as_ref()).to_uppercase()
}

fn collect(
    parsed: impl Iterator<Item = pgp::errors::Result<SignedPublicKey>>,
    keys: &mut Vec<SignedPublicKey>,
    problems: &mut Vec<String>,
) {
    for key in parsed {
        match key {
            Ok(key) => keys.push(key),
            Err(err) => problems.push(err.to_string()),
        }
    }
}

/// Each `-----BEGIN {kind}-----` ... `-----END {kind}-----` block of `text`.
fn armored_blocks<'t>(text: &'t str, kind: &str) -> Vec<&'t str> {
    let begin = format!("-----BEGIN {kind}-----");
    let end = format!("-----END {kind}-----");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start..];
        let Some(stop) = after.find(&end) else {
            // Unterminated: let the parser say what is wrong.
            blocks.push(after);
            break;
        };
        blocks.push(&after[..stop + end.len()]);
        rest = &after[stop + end.len()..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_keys_and_signatures_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"not a key",
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n",
            b"\x99\x00\x01",
        ] {
            assert!(matches!(
                Keyring::parse(bytes, "test"),
                Err(SignatureError::NoKeys { .. })
            ));
        }
    }

    #[test]
    fn blocks_are_split() {
        let text =
            "x\n-----BEGIN A-----\n1\n-----END A-----\ny\n-----BEGIN A-----\n2\n-----END A-----\n";
        assert_eq!(armored_blocks(text, "A").len(), 2);
    }
}
