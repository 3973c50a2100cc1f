//! The SSH public keys that go into user-data: the manifest's key text, or
//! the keys in the file it names (read when the seed is rendered, so a key
//! rotated on the host reaches the next seed).

use std::path::Path;

use super::CloudInitError;
use crate::desired::PublicKey;

/// The authorized keys for `key`: one for key text; for a file, each of its
/// non-empty lines that is not a comment (an `authorized_keys`-style file
/// may hold several). A missing, unreadable or empty file is an error that
/// names the path.
pub fn authorized_keys(key: &PublicKey) -> Result<Vec<String>, CloudInitError> {
    match key {
        PublicKey::Literal(text) => Ok(vec![text.trim().to_string()]),
        PublicKey::File(path) => read_keys(path),
    }
}

fn read_keys(path: &Path) -> Result<Vec<String>, CloudInitError> {
    let text = std::fs::read_to_string(path).map_err(|source| CloudInitError::Pubkey {
        path: path.to_path_buf(),
        problem: source.to_string(),
    })?;
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(CloudInitError::Pubkey {
            path: path.to_path_buf(),
            problem: "the file holds no key".into(),
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_give_every_key_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.pub");
        std::fs::write(
            &path,
            "# mine\nssh-ed25519 AAAA a@b\n\n  ssh-rsa BBBB c@d  \n",
        )
        .unwrap();
        let keys = authorized_keys(&PublicKey::File(path)).unwrap();
        assert_eq!(keys, ["ssh-ed25519 AAAA a@b", "ssh-rsa BBBB c@d"]);
    }

    #[test]
    fn missing_and_empty_files_name_the_path() {
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
    }
}
