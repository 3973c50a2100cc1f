//! The seed's digest: what the planner compares with the digest recorded on
//! a domain to tell whether the cloud-init input changed.

use sha2::{Digest, Sha256};

use super::Seed;

/// Bumped if the digest's framing ever changes.
const FRAMING: &[u8] = b"lvlab-seed-v1";

/// `sha256:<hex>` over the three documents, each framed by its name and
/// length, so moving text from one document to another changes the digest.
pub fn seed_digest(seed: &Seed) -> String {
    let mut hasher = Sha256::new();
    hasher.update(FRAMING);
    for (name, text) in seed.documents() {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    format!("sha256:{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(meta: &str, user: &str, net: &str) -> Seed {
        Seed {
            meta_data: meta.into(),
            user_data: user.into(),
            network_config: net.into(),
            host_key: None,
        }
    }

    #[test]
    fn equal_seeds_share_a_digest_and_any_change_shows() {
        let a = seed_digest(&seed("m", "u", "n"));
        assert_eq!(a, seed_digest(&seed("m", "u", "n")));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
        assert_ne!(a, seed_digest(&seed("m", "u", "n ")));
        assert_ne!(a, seed_digest(&seed("mu", "", "n")));
        assert_ne!(
            seed_digest(&seed("", "x", "")),
            seed_digest(&seed("x", "", ""))
        );
    }
}
