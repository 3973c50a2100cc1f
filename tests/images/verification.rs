//! What makes a downloaded image verified, or refused: checksum files and
//! their signatures in the formats distributions publish, wrong checksums,
//! bad or unknown signatures, tampered clearsigned text, and an image with
//! no checksum at all (downloaded, recorded unverified).

use crate::gpg::Gpg;
use crate::lab::{
    failed, image_bytes, image_yaml, ok, publish_fedora_style, publish_plain, qcow2, sha256,
    sha512, Lab, MIB,
};

#[test]
fn a_clearsigned_checksum_file_verifies_with_one_of_several_keys() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["other", "fedora"]);
    let bytes = image_bytes(1, 3 * MIB);
    let entry = publish_fedora_style(
        &lab,
        &gpg,
        "fedora44",
        "F-44.qcow2",
        &bytes,
        "fedora",
        &["other", "fedora"],
    );
    lab.write_manifest(&["fedora44"], &entry, "test:///default");
    // In-process verification: no GnuPG home is read or made.
    let gnupg = lab.dir.path().join("gnupg-home");
    std::fs::create_dir(&gnupg).unwrap();
    let run = lab.lvlab_env(&["init"], &[("GNUPGHOME", gnupg.to_str().unwrap())]);
    let out = ok(&run);
    assert_eq!(std::fs::read_dir(&gnupg).unwrap().count(), 0);
    assert!(!lab.dir.path().join(".gnupg").exists());
    // Not on a terminal: plain progress lines on stderr, one result line
    // per image on stdout.
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("fedora44: ")),
        "{stderr}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    let fingerprint = gpg.fingerprint("fedora");
    assert!(out.contains(&format!("signed by {fingerprint}")), "{out}");
    assert_eq!(
        std::fs::read(lab.cache().join("F-44.qcow2")).unwrap(),
        bytes
    );
    let record = lab.record("F-44.qcow2");
    let file = &record["files"]["F-44.qcow2"];
    assert_eq!(file["verified"], true);
    assert_eq!(file["digest"]["hex"], sha256(&bytes));
    assert_eq!(file["signature"]["signature"], "clearsigned");
    assert_eq!(file["signature"]["key_fingerprint"], fingerprint.as_str());
    assert!(file["checksum"]["sha256"].as_str().unwrap().len() == 64);
    assert!(file["recorded_at"].as_str().unwrap().ends_with('Z'));
    assert!(lab.cache().join("F-44.qcow2.F-44.qcow2-CHECKSUM").exists());
    assert!(!lab.cache().join("F-44.qcow2.partial").exists());
}

#[test]
fn a_detached_binary_signature_is_found_by_suffix_with_a_binary_key() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["debian"]);
    let bytes = image_bytes(2, 2 * MIB);
    let sums = format!(
        "{}  other.qcow2\n{}  debian-13.qcow2\n",
        sha512(b"x"),
        sha512(&bytes)
    );
    lab.server().put("d/debian-13.qcow2", bytes.clone());
    lab.server().put("d/SHA512SUMS", sums.clone());
    lab.server().put(
        "d/SHA512SUMS.sign",
        gpg.detach_sign("debian", sums.as_bytes(), false),
    );
    lab.server()
        .put("d/debian.gpg", gpg.export("debian", false));
    let entry = image_yaml(
        "debian13",
        &[
            ("image_url", lab.url("d/debian-13.qcow2")),
            ("checksum_url", lab.url("d/SHA512SUMS")),
            ("checksum_type", "sha512".into()),
            ("checksum_url_gpg", lab.url("d/debian.gpg")),
        ],
    );
    lab.write_manifest(&["debian13"], &entry, "test:///default");
    let out = ok(&lab.lvlab(&["init"]));
    assert!(out.contains(&gpg.fingerprint("debian")), "{out}");
    let tried: Vec<String> = lab
        .server()
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.starts_with("/d/SHA512SUMS."))
        .collect();
    assert_eq!(
        tried,
        [
            "/d/SHA512SUMS.gpg",
            "/d/SHA512SUMS.sig",
            "/d/SHA512SUMS.sign"
        ]
    );
    let record = lab.record("debian-13.qcow2");
    assert_eq!(
        record["files"]["debian-13.qcow2"]["digest"]["algorithm"],
        "sha512"
    );
    assert!(lab.cache().join("debian-13.qcow2.SHA512SUMS.sign").exists());
}

#[test]
fn an_ubuntu_style_binary_marker_with_an_armored_sig_url() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["ubuntu"]);
    let bytes = image_bytes(3, MIB + 7);
    let sums = format!("{} *noble.img\n", sha256(&bytes));
    lab.server().put("u/noble.img", bytes);
    lab.server().put("u/SHA256SUMS", sums.clone());
    lab.server().put(
        "u/SHA256SUMS.gpg",
        gpg.detach_sign("ubuntu", sums.as_bytes(), true),
    );
    lab.server().put("u/key.asc", gpg.export("ubuntu", true));
    let entry = image_yaml(
        "ubuntu24.04",
        &[
            ("image_url", lab.url("u/noble.img")),
            ("checksum_url", lab.url("u/SHA256SUMS")),
            ("checksum_type", "sha256".into()),
            ("checksum_url_gpg", lab.url("u/key.asc")),
            ("checksum_sig_url", lab.url("u/SHA256SUMS.gpg")),
        ],
    );
    lab.write_manifest(&["ubuntu24.04"], &entry, "test:///default");
    ok(&lab.lvlab(&["init"]));
}

#[test]
fn a_wrong_checksum_fails_and_keeps_the_file_only_as_rejected() {
    let lab = Lab::new();
    let bytes = image_bytes(9, MIB);
    let entry = publish_plain(&lab, "img", "bad.qcow2", &bytes);
    lab.server().put(
        "p/bad.qcow2.SUMS",
        format!("{}  bad.qcow2\n", sha256(b"something else")),
    );
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("sha256 mismatch"), "{err}");
    assert!(err.contains(&sha256(&bytes)), "{err}");
    let rejected = lab.cache().join("bad.qcow2.rejected");
    assert!(err.contains(&rejected.display().to_string()), "{err}");
    assert!(!lab.cache().join("bad.qcow2").exists());
    assert_eq!(std::fs::read(rejected).unwrap(), bytes);
    assert!(!lab.cache().join("bad.qcow2.lvlab.json").exists());
}

#[test]
fn a_bad_signature_fails_before_the_image_is_fetched() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["debian"]);
    let bytes = image_bytes(10, MIB);
    let sums = format!("{}  x.qcow2\n", sha256(&bytes));
    lab.server().put("s/x.qcow2", bytes);
    lab.server().put("s/SUMS", sums);
    // A real signature by the right key, over other content.
    lab.server().put(
        "s/SUMS.gpg",
        gpg.detach_sign("debian", b"another file\n", false),
    );
    lab.server().put("s/key.gpg", gpg.export("debian", true));
    let entry = image_yaml(
        "img",
        &[
            ("image_url", lab.url("s/x.qcow2")),
            ("checksum_url", lab.url("s/SUMS")),
            ("checksum_type", "sha256".into()),
            ("checksum_url_gpg", lab.url("s/key.gpg")),
        ],
    );
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("bad signature"), "{err}");
    assert!(err.contains(&gpg.fingerprint("debian")), "{err}");
    assert!(lab.server().requests_for("s/x.qcow2").is_empty());
    assert!(!lab.cache().join("x.qcow2").exists());
}

#[test]
fn a_signature_by_a_key_not_configured_is_refused() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["fedora", "mallory"]);
    let bytes = image_bytes(11, MIB);
    let entry = publish_fedora_style(&lab, &gpg, "img", "k.qcow2", &bytes, "mallory", &["fedora"]);
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("unknown key"), "{err}");
    assert!(err.contains(&gpg.fingerprint("fedora")), "{err}");
    assert!(lab.server().requests_for("f/k.qcow2").is_empty());
}

#[test]
fn tampered_clearsigned_text_is_refused() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["fedora"]);
    let bytes = image_bytes(12, MIB);
    let entry = publish_fedora_style(&lab, &gpg, "img", "t.qcow2", &bytes, "fedora", &["fedora"]);
    // Swap the digest inside the signed text for the attacker's.
    let signed = gpg.clearsign(
        "fedora",
        &format!("SHA256 (t.qcow2) = {}\n", sha256(&bytes)),
    );
    let tampered = signed.replace(&sha256(&bytes), &sha256(b"evil"));
    assert_ne!(signed, tampered);
    lab.server().put("f/t.qcow2-CHECKSUM", tampered);
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("bad signature"), "{err}");
    assert!(lab.server().requests_for("f/t.qcow2").is_empty());

    // Lines added outside the signed text are never read: the signed text
    // lists only other.qcow2, so reading the added line for t.qcow2 would
    // start its download. After the signature: refused as unreadable.
    let lab = Lab::new();
    let entry = publish_fedora_style(&lab, &gpg, "img", "t.qcow2", &bytes, "fedora", &["fedora"]);
    let signed = gpg.clearsign(
        "fedora",
        "SHA256 (other.qcow2) = 00\n# nothing for t.qcow2\n",
    );
    let line = format!("SHA256 (t.qcow2) = {}\n", sha256(&bytes));
    lab.server()
        .put("f/t.qcow2-CHECKSUM", format!("{signed}{line}"));
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("cannot read the signature"), "{err}");
    assert!(err.contains("unexpected trailing data"), "{err}");
    assert!(lab.server().requests_for("f/t.qcow2").is_empty());

    // Before it: the file is no longer a clearsigned message at all, and
    // without a detached signature it is refused as unsigned.
    lab.server()
        .put("f/t.qcow2-CHECKSUM", format!("{line}{signed}"));
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("is not clearsigned"), "{err}");
    assert!(lab.server().requests_for("f/t.qcow2").is_empty());
}

#[test]
fn an_image_missing_from_the_checksum_file_fails() {
    let lab = Lab::new();
    let entry = publish_plain(&lab, "img", "m.qcow2", &image_bytes(13, 1000));
    lab.server()
        .put("p/m.qcow2.SUMS", format!("{}  other.qcow2\n", sha256(b"x")));
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("`m.qcow2` is not listed"), "{err}");
    assert!(err.contains("`other.qcow2`"), "{err}");
    assert!(lab.server().requests_for("p/m.qcow2").is_empty());
}

#[test]
fn a_key_without_any_signature_means_not_signed() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["debian"]);
    let bytes = image_bytes(14, 1000);
    let mut entry = publish_plain(&lab, "img", "n.qcow2", &bytes);
    lab.server().put("p/key.asc", gpg.export("debian", true));
    entry.push_str(&format!(
        "    checksum_url_gpg: \"{}\"\n",
        lab.url("p/key.asc")
    ));
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains("checksum file is not signed"), "{err}");
    for suffix in [".gpg", ".sig", ".sign", ".asc"] {
        assert!(err.contains(&format!("n.qcow2.SUMS{suffix}")), "{err}");
    }
}

#[test]
fn an_image_without_checksum_is_downloaded_and_recorded_unverified() {
    let lab = Lab::new();
    lab.server().put("u/raw.img", image_bytes(15, 1000));
    let entry = image_yaml("img", &[("image_url", lab.url("u/raw.img"))]);
    lab.write_manifest(&["img"], &entry, "test:///default");
    let out = ok(&lab.lvlab(&["init"]));
    assert!(out.contains("UNVERIFIED"), "{out}");
    assert_eq!(lab.record("raw.img")["files"]["raw.img"]["verified"], false);
    let list = ok(&lab.lvlab(&["images", "list"]));
    assert!(list.contains("UNVERIFIED"), "{list}");
}

#[test]
fn the_text_plan_says_an_image_without_checksum_is_not_verified() {
    let lab = Lab::new();
    lab.server().put("u/raw.qcow2", qcow2(&lab, "16M"));
    let mut entries = image_yaml("raw", &[("image_url", lab.url("u/raw.qcow2"))]);
    entries.push_str(&publish_plain(
        &lab,
        "sums",
        "sums.qcow2",
        &qcow2(&lab, "17M"),
    ));
    lab.write_manifest(&["raw", "sums"], &entries, "test:///default");
    let plan = ok(&lab.lvlab(&["plan"]));
    assert!(
        plan.contains("  # image raw: download (not verified: no checksum_url)\n+ image.raw\n"),
        "{plan}"
    );
    assert!(
        plan.contains("  # image sums will be downloaded and verified\n"),
        "{plan}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&lab.lvlab(&["plan", "--json"]))).unwrap();
    let raw = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == "image.raw")
        .unwrap()
        .clone();
    assert_eq!(raw["description"], "download image (unverified)", "{raw}");
}
