//! The image through the real pipeline: `init` downloads and verifies it
//! (checksum and signature), `up` reuses it, and each domain's lvlab
//! metadata names it.

use std::time::Instant;

use crate::checks::Checks;
use crate::lab::{text, virsh, Lab};

/// The verification record `init` left beside the cached image names the
/// digest the publisher signed and the key that signed it.
fn check_image_record(checks: &mut Checks, lab: &Lab) {
    let path = lab.cache().join(format!("{}.lvlab.json", lab.image_file));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let current = record["current"].as_str().unwrap_or("");
    let file = &record["files"][current];
    let shown = if text.is_empty() {
        format!("no record at {}", path.display())
    } else {
        text.clone()
    };
    checks.check(
        "image",
        "cached and verified",
        current == lab.image_file
            && lab.cache().join(current).is_file()
            && file["verified"] == true
            && file["digest"]["algorithm"] == "sha512"
            && file["digest"]["hex"] == lab.digest.as_str(),
        &format!(
            "{} verified, with the published sha512 {}...",
            lab.image_file,
            &lab.digest[..16]
        ),
        &shown,
    );
    let signature = &file["signature"];
    checks.check(
        "image",
        "signature recorded",
        signature["key_fingerprint"]
            .as_str()
            .is_some_and(|f| f.eq_ignore_ascii_case(&lab.fingerprint))
            && signature["signature"] == lab.server.url("images/SHA512SUMS.gpg").as_str()
            && signature["keys"] == lab.server.url("keys/signer.asc").as_str(),
        &format!(
            "SHA512SUMS.gpg checked against the served key {}",
            lab.fingerprint
        ),
        &signature.to_string(),
    );
}

/// The domain's lvlab metadata carries the image key and its verified digest.
pub fn check_image_mark(checks: &mut Checks, lab: &Lab, vm: &str) {
    let out = virsh(&["dumpxml", &lab.domain(vm)]);
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    let found = roxmltree::Document::parse(&xml).ok().and_then(|doc| {
        doc.descendants()
            .find(|n| {
                n.tag_name().namespace() == Some("urn:lvlab:machine:1")
                    && n.tag_name().name() == "image"
            })
            .map(|n| {
                (
                    n.attribute("key").unwrap_or("").to_string(),
                    n.attribute("digest").unwrap_or("").to_string(),
                )
            })
    });
    let expected = format!("sha512:{}", lab.digest);
    checks.check(
        vm,
        "domain metadata names the verified image",
        found
            .as_ref()
            .is_some_and(|(key, digest)| key == "e2e" && *digest == expected),
        &format!(
            "<lvlab:image key='e2e' digest='sha512:{}...'/>",
            &lab.digest[..16]
        ),
        &found.map_or_else(
            || format!("no lvlab:image element in `virsh dumpxml`:\n{}", text(&out)),
            |(key, digest)| format!("key='{key}' digest='{digest}'"),
        ),
    );
}

/// `lvlab init`, which must succeed, then its record's checks; how long
/// it took.
pub fn init(checks: &mut Checks, lab: &Lab) -> f64 {
    let init_started = Instant::now();
    let init = lab.lvlab(&["init"]);
    let init_secs = init_started.elapsed().as_secs_f64();
    assert!(init.status.success(), "lvlab init failed:\n{}", text(&init));
    eprintln!(
        "lvlab init after {init_secs:.1} s: {}",
        String::from_utf8_lossy(&init.stdout).trim()
    );
    check_image_record(checks, lab);
    init_secs
}

/// After `up`: the image `init` verified was not downloaded again.
pub fn check_reused(checks: &mut Checks, lab: &Lab) {
    checks.check(
        "lab",
        "up reuses the verified image",
        lab.image_downloads() == 1,
        "one download of the image in all (by init)",
        &format!("{} requests for the image", lab.image_downloads()),
    );
}
