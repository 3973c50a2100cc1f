//! The console password: which crypt hash goes into user-data, and the
//! one-time password generated on a machine's first creation.
//!
//! Only the SHA-512 crypt hash is ever rendered or written. The plain text
//! lives in a [`OneTimePassword`], which never prints itself (its `Debug`
//! is redacted and it has no `Display`): the caller shows it once, on
//! purpose, with [`OneTimePassword::reveal`].

use std::fmt;

use sha_crypt::{CustomizedPasswordHasher, Params, ShaCrypt};

use super::CloudInitError;
use crate::desired::ConsolePassword;

/// Characters of generated passwords: letters and digits that cannot be
/// mistaken for each other on a console (no 0/O, 1/l/I).
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// 20 characters of a 57-letter alphabet: about 116 bits.
const LENGTH: usize = 20;
/// Salt bytes; sha-crypt encodes them as 16 characters, its maximum.
const SALT_BYTES: usize = 12;

/// A freshly generated console password, shown to the user once.
pub struct OneTimePassword(String);

impl OneTimePassword {
    /// A random password from the operating system's generator.
    pub fn generate() -> Result<Self, CloudInitError> {
        let mut text = String::with_capacity(LENGTH);
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - (256 % ALPHABET.len());
        while text.len() < LENGTH {
            let mut bytes = [0u8; 32];
            random(&mut bytes)?;
            for b in bytes {
                if usize::from(b) < limit && text.len() < LENGTH {
                    text.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
                }
            }
        }
        Ok(Self(text))
    }

    /// The plain text, for the one place that shows it to the user.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Its SHA-512 crypt hash (`$6$...`) with a random salt.
    pub fn hash(&self) -> Result<String, CloudInitError> {
        let mut salt = [0u8; SALT_BYTES];
        random(&mut salt)?;
        sha512_crypt(&self.0, &salt)
    }
}

impl fmt::Debug for OneTimePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimePassword(<redacted>)")
    }
}

/// Hears about generated console passwords the moment their seed is on
/// disk: from then on the machine will boot with it, so this is when it
/// is shown (an apply that fails or is interrupted later loses nothing).
/// Jobs run in parallel, hence `Sync`.
pub trait PasswordReporter: Sync {
    fn seed_written(&self, vm_name: &str, user: &str, password: &OneTimePassword);
}

impl<T: PasswordReporter + Send + ?Sized> PasswordReporter for std::sync::Arc<T> {
    fn seed_written(&self, vm_name: &str, user: &str, password: &OneTimePassword) {
        (**self).seed_written(vm_name, user, password);
    }
}

/// Shows nothing: for library callers with no one to show passwords to.
pub struct Unshown;

impl PasswordReporter for Unshown {
    fn seed_written(&self, _: &str, _: &str, _: &OneTimePassword) {}
}

/// The SHA-512 crypt hash of `password` with `salt` (raw bytes).
pub fn sha512_crypt(password: &str, salt: &[u8]) -> Result<String, CloudInitError> {
    ShaCrypt::SHA512
        .hash_password_customized(password.as_bytes(), salt, None, None, Params::RECOMMENDED)
        .map(|hash| hash.to_string())
        .map_err(|err| CloudInitError::Password(err.to_string()))
}

/// What the console password of a machine is for one render.
#[derive(Debug)]
pub struct ConsoleCredential {
    /// The crypt hash to render; `None` when the machine has no password.
    pub hash: Option<String>,
    /// Set only when the hash was generated just now: show it, once.
    pub generated: Option<OneTimePassword>,
}

/// The console credential for a machine's `password` setting. `recorded`
/// is the hash generated on the machine's first creation, when there was
/// one: reusing it keeps the seed (and so the plan) stable. `needed` is
/// false when the seed would not use a hash (a `user_data` override
/// without `{password_hash}`), so no password is generated for nothing.
pub fn console_credential(
    setting: &ConsolePassword,
    recorded: Option<&str>,
    needed: bool,
) -> Result<ConsoleCredential, CloudInitError> {
    let (hash, generated) = match setting {
        ConsolePassword::Disabled => (None, None),
        ConsolePassword::Hash(hash) => (Some(hash.clone()), None),
        ConsolePassword::Generate if !needed => (None, None),
        ConsolePassword::Generate => match recorded {
            Some(hash) => (Some(hash.to_string()), None),
            None => {
                let password = OneTimePassword::generate()?;
                (Some(password.hash()?), Some(password))
            }
        },
    };
    Ok(ConsoleCredential { hash, generated })
}

/// The password hash in user-data rendered earlier: the first `passwd` (or
/// `hashed_passwd`) of a user in `users`. `None` when there is none, or the
/// text is not YAML.
pub fn recorded_hash(user_data: &str) -> Option<String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(user_data).ok()?;
    doc.get("users")?
        .as_sequence()?
        .iter()
        .filter_map(|user| user.get("passwd").or_else(|| user.get("hashed_passwd")))
        .filter_map(serde_yaml::Value::as_str)
        .find(|hash| hash.starts_with('$'))
        .map(str::to_string)
}

fn random(bytes: &mut [u8]) -> Result<(), CloudInitError> {
    getrandom::fill(bytes).map_err(|err| {
        CloudInitError::Password(format!("the system's random generator failed: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_differ_and_use_the_alphabet() {
        let a = OneTimePassword::generate().unwrap();
        let b = OneTimePassword::generate().unwrap();
        assert_ne!(a.reveal(), b.reveal());
        assert_eq!(a.reveal().len(), LENGTH);
        assert!(a.reveal().bytes().all(|c| ALPHABET.contains(&c)));
        assert_eq!(format!("{a:?}"), "OneTimePassword(<redacted>)");
    }

    #[test]
    fn hashes_are_sha512_crypt_with_fresh_salts() {
        let password = OneTimePassword::generate().unwrap();
        let (h1, h2) = (password.hash().unwrap(), password.hash().unwrap());
        assert!(h1.starts_with("$6$"), "{h1}");
        assert_ne!(h1, h2);
        assert!(!h1.contains(password.reveal()));
    }

    #[test]
    fn a_recorded_hash_is_reused_and_none_is_made_when_not_needed() {
        let reuse = console_credential(&ConsolePassword::Generate, Some("$6$x$y"), true).unwrap();
        assert_eq!(reuse.hash.as_deref(), Some("$6$x$y"));
        assert!(reuse.generated.is_none());
        let fresh = console_credential(&ConsolePassword::Generate, None, true).unwrap();
        assert!(fresh.generated.is_some() && fresh.hash.is_some());
        let unused = console_credential(&ConsolePassword::Generate, None, false).unwrap();
        assert!(unused.hash.is_none() && unused.generated.is_none());
        let off = console_credential(&ConsolePassword::Disabled, Some("$6$x$y"), true).unwrap();
        assert!(off.hash.is_none());
    }

    #[test]
    fn the_recorded_hash_is_read_from_users() {
        let text = "#cloud-config\nusers:\n  - name: a\n    passwd: \"$6$s$h\"\n";
        assert_eq!(recorded_hash(text).as_deref(), Some("$6$s$h"));
        assert_eq!(recorded_hash("#cloud-config\nhostname: x\n"), None);
        assert_eq!(recorded_hash(": not yaml ["), None);
    }
}
