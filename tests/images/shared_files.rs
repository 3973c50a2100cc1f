//! Keys and checksum files that several images share: fetched once per
//! run, cached under distinct names when two URLs end alike, reused from
//! the cache, fetched again when the cached key lacks the signer.

use std::time::Duration;

use crate::gpg::Gpg;
use crate::http::Behaviour;
use crate::lab::{failed, image_bytes, image_yaml, ok, qcow2, sha256, Lab, MIB};

/// Publishes `images` (key, file name, bytes) under `dir/` with one
/// `SHA256SUMS` listing them all, detached-signed (armored) by `signer` as
/// `SHA256SUMS.gpg`, and the keys of `keyring` at `keys_path`. Returns the
/// manifest entries.
fn publish_signed_set(
    lab: &Lab,
    gpg: &Gpg,
    dir: &str,
    images: &[(&str, &str, &[u8])],
    signer: &str,
    keys_path: &str,
    keyring: &[&str],
) -> String {
    let mut sums = String::new();
    for (_, name, bytes) in images {
        lab.server().put(&format!("{dir}/{name}"), bytes.to_vec());
        sums.push_str(&format!("{}  {name}\n", sha256(bytes)));
    }
    lab.server().put(&format!("{dir}/SHA256SUMS"), sums.clone());
    lab.server().put(
        &format!("{dir}/SHA256SUMS.gpg"),
        gpg.detach_sign(signer, sums.as_bytes(), true),
    );
    let keys: Vec<u8> = keyring.iter().flat_map(|u| gpg.export(u, true)).collect();
    lab.server().put(keys_path, keys);
    images
        .iter()
        .map(|(key, name, _)| {
            image_yaml(
                key,
                &[
                    ("image_url", lab.url(&format!("{dir}/{name}"))),
                    ("checksum_url", lab.url(&format!("{dir}/SHA256SUMS"))),
                    ("checksum_type", "sha256".into()),
                    ("checksum_url_gpg", lab.url(keys_path)),
                ],
            )
        })
        .collect()
}

/// What the record of `file` says about the file it means now.
fn current_entry(lab: &Lab, file: &str) -> serde_json::Value {
    let record = lab.record(file);
    let current = record["current"].as_str().unwrap().to_string();
    record["files"][current.as_str()].clone()
}

/// Files of the cache left by a write that did not finish.
fn temporaries(lab: &Lab) -> Vec<String> {
    std::fs::read_dir(lab.cache())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp") || name.ends_with(".partial"))
        .collect()
}

/// Two images whose checksum file and key file are one URL each, both
/// answered late so that both jobs want them at the same time.
fn lab_with_two_images_sharing_keys_and_checksums(gpg: &Gpg) -> (Lab, String) {
    let lab = Lab::new();
    let a = qcow2(&lab, "16M");
    let b = qcow2(&lab, "17M");
    let entries = publish_signed_set(
        &lab,
        gpg,
        "s",
        &[("a", "a.qcow2", &a), ("b", "b.qcow2", &b)],
        "debian",
        "keys/signer.asc",
        &["debian"],
    );
    for path in ["keys/signer.asc", "s/SHA256SUMS", "s/SHA256SUMS.gpg"] {
        for _ in 0..2 {
            lab.server()
                .behave(path, Behaviour::Delay(Duration::from_millis(400)));
        }
    }
    (lab, entries)
}

/// Both images verified with the one key file, each shared file fetched
/// once, and no temporary file left.
fn assert_both_verified_from_one_fetch(lab: &Lab, gpg: &Gpg) {
    let fingerprint = gpg.fingerprint("debian");
    for file in ["a.qcow2", "b.qcow2"] {
        let entry = current_entry(lab, file);
        assert_eq!(entry["verified"], true, "{file}: {entry}");
        assert_eq!(entry["signature"]["key_fingerprint"], fingerprint.as_str());
        assert_eq!(entry["signature"]["keys_file"], "signer.asc");
    }
    assert_eq!(
        std::fs::read(lab.cache().join("signer.asc")).unwrap(),
        gpg.export("debian", true)
    );
    for path in ["keys/signer.asc", "s/SHA256SUMS", "s/SHA256SUMS.gpg"] {
        assert_eq!(lab.server().requests_for(path).len(), 1, "{path}");
    }
    assert_eq!(temporaries(lab), Vec::<String>::new());
}

#[test]
fn init_fetches_a_key_and_checksum_file_two_images_share_once() {
    let gpg = Gpg::new(&["debian"]);
    let (lab, entries) = lab_with_two_images_sharing_keys_and_checksums(&gpg);
    lab.write_manifest(&["a", "b"], &entries, "test:///default");
    let out = ok(&lab.lvlab(&["init", "--jobs", "2"]));
    assert_eq!(
        out.matches("verified (sha256, signed by").count(),
        2,
        "{out}"
    );
    assert_both_verified_from_one_fetch(&lab, &gpg);
    // Each image keeps its own copy of the checksum file and signature.
    for file in ["a.qcow2", "b.qcow2"] {
        assert!(lab.cache().join(format!("{file}.SHA256SUMS")).is_file());
        assert!(lab.cache().join(format!("{file}.SHA256SUMS.gpg")).is_file());
    }
}

#[test]
fn apply_fetches_a_key_and_checksum_file_two_images_share_once() {
    let gpg = Gpg::new(&["debian"]);
    let (lab, entries) = lab_with_two_images_sharing_keys_and_checksums(&gpg);
    lab.write_manifest(&["a", "b"], &entries, "test:///default");
    let plan = ok(&lab.lvlab(&["plan"]));
    assert_eq!(
        plan.matches("will be downloaded and verified").count(),
        2,
        "{plan}"
    );
    let out = ok(&lab.lvlab(&["apply", "--auto-approve", "--parallelism", "4"]));
    assert!(out.contains("Apply complete!"), "{out}");
    assert_both_verified_from_one_fetch(&lab, &gpg);
}

#[test]
fn key_files_of_two_urls_with_one_name_get_distinct_cache_names() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["alpha", "beta"]);
    let a = image_bytes(50, MIB);
    let b = image_bytes(51, MIB);
    let mut entries = publish_signed_set(
        &lab,
        &gpg,
        "x",
        &[("a", "a.qcow2", &a)],
        "alpha",
        "ka/signer.asc",
        &["alpha"],
    );
    entries.push_str(&publish_signed_set(
        &lab,
        &gpg,
        "y",
        &[("b", "b.qcow2", &b)],
        "beta",
        "kb/signer.asc",
        &["beta"],
    ));
    for path in ["ka/signer.asc", "kb/signer.asc"] {
        lab.server()
            .behave(path, Behaviour::Delay(Duration::from_millis(300)));
    }
    lab.write_manifest(&["a", "b"], &entries, "test:///default");
    ok(&lab.lvlab(&["init", "--jobs", "2"]));

    let mut names = Vec::new();
    for (file, user, url) in [
        ("a.qcow2", "alpha", "ka/signer.asc"),
        ("b.qcow2", "beta", "kb/signer.asc"),
    ] {
        let signature = current_entry(&lab, file)["signature"].clone();
        assert_eq!(signature["keys"], lab.url(url).as_str());
        assert_eq!(signature["key_fingerprint"], gpg.fingerprint(user).as_str());
        let name = signature["keys_file"].as_str().unwrap().to_string();
        assert_eq!(
            std::fs::read(lab.cache().join(&name)).unwrap(),
            gpg.export(user, true),
            "{name} holds the keys of {url}"
        );
        names.push(name);
    }
    assert_ne!(names[0], names[1]);
    assert!(names.contains(&"signer.asc".to_string()), "{names:?}");
    let tagged = names.iter().find(|n| *n != "signer.asc").unwrap();
    assert!(
        tagged.starts_with("signer-") && tagged.ends_with(".asc"),
        "{tagged}"
    );

    // Both are lvlab's, and stay theirs on a later check against the publisher.
    let list: serde_json::Value =
        serde_json::from_str(&ok(&lab.lvlab(&["images", "list", "--json"]))).unwrap();
    for name in &names {
        let row = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(&format!("/{name}")))
            .unwrap();
        assert_eq!(row["kind"], "verification", "{row}");
    }
    ok(&lab.lvlab(&["init", "--refresh", "--jobs", "2"]));
    for (file, name) in ["a.qcow2", "b.qcow2"].iter().zip(&names) {
        assert_eq!(
            current_entry(&lab, file)["signature"]["keys_file"],
            name.as_str()
        );
    }
}

#[test]
fn a_cached_key_file_is_reused_without_a_request() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["f43"]);
    let keys = "keys/fedora.gpg";
    let a = image_bytes(63, MIB);
    let b = image_bytes(64, MIB);
    let entry_a = publish_signed_set(
        &lab,
        &gpg,
        "r1",
        &[("a", "a.qcow2", &a)],
        "f43",
        keys,
        &["f43"],
    );
    lab.write_manifest(&["a"], &entry_a, "test:///default");
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests_for(keys).len(), 1);

    // A new image signed by the same key: its checksum file is fetched,
    // the key file is not.
    let entry_b = publish_signed_set(
        &lab,
        &gpg,
        "r2",
        &[("b", "b.qcow2", &b)],
        "f43",
        keys,
        &["f43"],
    );
    lab.write_manifest(&["b"], &entry_b, "test:///default");
    let out = ok(&lab.lvlab(&["init"]));
    assert!(
        out.contains(&format!("signed by {}", gpg.fingerprint("f43"))),
        "{out}"
    );
    assert_eq!(lab.server().requests_for("r2/SHA256SUMS").len(), 1);
    assert_eq!(
        lab.server().requests_for(keys).len(),
        1,
        "the cached key file serves"
    );
}

#[test]
fn a_cached_key_file_that_lacks_the_signer_is_fetched_again_once() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["f43", "f44", "mallory"]);
    let keys = "keys/fedora.gpg";
    let a = image_bytes(60, MIB);
    let b = image_bytes(61, MIB);
    let c = image_bytes(62, MIB);
    let entry_a = publish_signed_set(
        &lab,
        &gpg,
        "r1",
        &[("a", "a.qcow2", &a)],
        "f43",
        keys,
        &["f43"],
    );
    lab.write_manifest(&["a"], &entry_a, "test:///default");
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests_for(keys).len(), 1);

    // The publisher's key file gains the next release's key, which signs b.
    let entry_b = publish_signed_set(
        &lab,
        &gpg,
        "r2",
        &[("b", "b.qcow2", &b)],
        "f44",
        keys,
        &["f43", "f44"],
    );
    lab.write_manifest(
        &["a", "b"],
        &format!("{entry_a}{entry_b}"),
        "test:///default",
    );
    let out = ok(&lab.lvlab(&["init"]));
    assert!(
        out.contains(&format!("signed by {}", gpg.fingerprint("f44"))),
        "{out}"
    );
    assert_eq!(
        lab.server().requests_for(keys).len(),
        2,
        "fetched again once"
    );
    assert_eq!(
        std::fs::read(lab.cache().join("fedora.gpg")).unwrap(),
        [gpg.export("f43", true), gpg.export("f44", true)].concat()
    );

    // A signer the fetched-again file does not hold either: one more fetch,
    // then an error naming the signer and the keys the file holds.
    let entry_c = publish_signed_set(
        &lab,
        &gpg,
        "r3",
        &[("c", "c.qcow2", &c)],
        "mallory",
        keys,
        &["f43", "f44"],
    );
    lab.write_manifest(&["c"], &entry_c, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests_for(keys).len(), 3, "{err}");
    for user in ["mallory", "f43", "f44"] {
        assert!(err.contains(&gpg.fingerprint(user)), "{user}: {err}");
    }
    assert!(err.contains("unknown key"), "{err}");
    assert!(lab.server().requests_for("r3/c.qcow2").is_empty());
}
