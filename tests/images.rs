//! `lvlab init` and `lvlab images` against a real HTTP server on 127.0.0.1,
//! with real OpenPGP keys and signatures (GnuPG in a temporary home) and
//! real qcow2 images: the downloads, their failures and the cache rules.

#[path = "support/gpg.rs"]
mod gpg;
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/tiny_image.rs"]
mod support;
use support::tiny_image;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gpg::Gpg;
use http::{Behaviour, Server};
use lab_manifest::LabManifest;
use lvlab::desired::ChecksumAlgorithm;
use lvlab::images::hash::StreamHasher;

const MIB: usize = 1024 * 1024;

/// Deterministic bytes that do not compress or repeat within a file.
fn image_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn digest(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> String {
    let mut h = StreamHasher::new(algorithm);
    h.update(bytes);
    h.finish()
}

fn sha256(bytes: &[u8]) -> String {
    digest(ChecksumAlgorithm::Sha256, bytes)
}

fn sha512(bytes: &[u8]) -> String {
    digest(ChecksumAlgorithm::Sha512, bytes)
}

struct Lab {
    dir: tempfile::TempDir,
    server: Option<Server>,
}

impl Lab {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            server: Some(Server::start()),
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    fn url(&self, path: &str) -> String {
        self.server().url(path)
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/cloud-images")
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("Lvlab.yml")
    }

    /// A manifest whose machine `m<i>` uses the i-th of `keys`, on `uri`.
    fn write_manifest(&self, keys: &[&str], images: &str, uri: &str) {
        let mut manifest = self.manifest_on(uri).images_yaml(images);
        for (i, key) in keys.iter().enumerate() {
            manifest = manifest.machine(&format!("m{i}"), |m| m.os(key));
        }
        manifest.write(self.dir.path());
    }

    /// The lab's environment on `uri`, without machines or images.
    fn manifest_on(&self, uri: &str) -> LabManifest {
        LabManifest::lab("lab", uri, self.dir.path())
    }

    fn lvlab(&self, args: &[&str]) -> Output {
        self.lvlab_env(args, &[])
    }

    fn lvlab_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lvlab"));
        cmd.env("LVLAB_NO_HOST_CONFIG", "1");
        cmd.env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        );
        cmd.arg("-f")
            .arg(self.manifest())
            .args(args)
            .env("HOME", self.dir.path())
            .env("LVLAB_HTTP_TIMEOUT", "2")
            .env("LVLAB_HTTP_CONNECT_TIMEOUT", "2")
            .env("LVLAB_HTTP_RETRIES", "2")
            .env("LVLAB_HTTP_BACKOFF_MS", "20")
            .env("NO_PROXY", "*")
            .env("no_proxy", "*")
            .env_remove("LVLAB_LOG");
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn record(&self, file: &str) -> serde_json::Value {
        let text = std::fs::read(self.cache().join(format!("{file}.lvlab.json"))).unwrap();
        serde_json::from_slice(&text).unwrap()
    }
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lvlab failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "lvlab should fail\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// An image entry of the manifest.
fn image_yaml(key: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("  {key}:\n");
    for (name, value) in fields {
        out.push_str(&format!("    {name}: \"{value}\"\n"));
    }
    out
}

/// Publishes `bytes` as `name` with a Fedora-style clearsigned CHECKSUM
/// (BSD lines, SHA-256) signed by `signer`, and the keys of `keyring` in one
/// armored file. Returns the manifest entry.
fn publish_fedora_style(
    lab: &Lab,
    gpg: &Gpg,
    key: &str,
    name: &str,
    bytes: &[u8],
    signer: &str,
    keyring: &[&str],
) -> String {
    lab.server().put(&format!("f/{name}"), bytes.to_vec());
    let checksum = format!(
        "# {name}: {} bytes\nSHA256 ({name}) = {}\n",
        bytes.len(),
        sha256(bytes)
    );
    lab.server().put(
        &format!("f/{name}-CHECKSUM"),
        gpg.clearsign(signer, &checksum),
    );
    let keys: Vec<u8> = keyring.iter().flat_map(|u| gpg.export(u, true)).collect();
    lab.server().put("keys/fedora.gpg", keys);
    image_yaml(
        key,
        &[
            ("image_url", lab.url(&format!("f/{name}"))),
            ("checksum_url", lab.url(&format!("f/{name}-CHECKSUM"))),
            ("checksum_type", "sha256".into()),
            ("checksum_url_gpg", lab.url("keys/fedora.gpg")),
        ],
    )
}

/// An unsigned checksum entry over HTTP (`hex  name`, SHA-256).
fn publish_plain(lab: &Lab, key: &str, name: &str, bytes: &[u8]) -> String {
    lab.server().put(&format!("p/{name}"), bytes.to_vec());
    lab.server().put(
        &format!("p/{name}.SUMS"),
        format!("{}  {name}\n", sha256(bytes)),
    );
    image_yaml(
        key,
        &[
            ("image_url", lab.url(&format!("p/{name}"))),
            ("checksum_url", lab.url(&format!("p/{name}.SUMS"))),
            ("checksum_type", "sha256".into()),
        ],
    )
}

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
fn a_download_cut_mid_file_resumes_with_a_range_request() {
    let lab = Lab::new();
    let bytes = image_bytes(4, 3 * MIB);
    let entry = publish_plain(&lab, "img", "cut.qcow2", &bytes);
    lab.server()
        .behave("p/cut.qcow2", Behaviour::CutAfter(MIB + 5));
    lab.write_manifest(&["img"], &entry, "test:///default");
    let out = ok(&lab.lvlab(&["init"]));
    assert!(out.contains("resumed at"), "{out}");
    let requests = lab.server().requests_for("p/cut.qcow2");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={}-", MIB + 5).as_str())
    );
    assert_eq!(std::fs::read(lab.cache().join("cut.qcow2")).unwrap(), bytes);
}

/// A lab whose server publishes `bytes` as `p/<name>` (SHA-256 listed)
/// and whose cache holds `partial` as an earlier run's `<name>.partial`.
fn lab_with_partial(name: &str, bytes: &[u8], partial: &[u8]) -> Lab {
    let lab = Lab::new();
    let entry = publish_plain(&lab, "img", name, bytes);
    lab.write_manifest(&["img"], &entry, "test:///default");
    std::fs::create_dir_all(lab.cache()).unwrap();
    std::fs::write(lab.cache().join(format!("{name}.partial")), partial).unwrap();
    lab
}

#[test]
fn a_416_restarts_cleanly_and_a_complete_partial_needs_no_body() {
    let bytes = image_bytes(5, 2 * MIB);
    // A stale partial the server cannot resume: restart from zero.
    let lab = lab_with_partial("r.qcow2", &bytes, &image_bytes(99, MIB));
    lab.server()
        .behave("p/r.qcow2", Behaviour::RangeNotSatisfiable);
    ok(&lab.lvlab(&["init"]));
    let requests = lab.server().requests_for("p/r.qcow2");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].range.is_some() && requests[1].range.is_none());
    assert_eq!(std::fs::read(lab.cache().join("r.qcow2")).unwrap(), bytes);

    // A partial that already holds everything: 416 with the same length.
    let lab = lab_with_partial("r.qcow2", &bytes, &bytes);
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests_for("p/r.qcow2").len(), 1);
    assert_eq!(std::fs::read(lab.cache().join("r.qcow2")).unwrap(), bytes);
}

#[test]
fn a_server_that_ignores_range_restarts_the_file() {
    let bytes = image_bytes(6, 2 * MIB);
    // Garbage in the partial: appending the full answer to it would not verify.
    let lab = lab_with_partial("i.qcow2", &bytes, &image_bytes(98, MIB));
    lab.server().behave("p/i.qcow2", Behaviour::IgnoreRange);
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests_for("p/i.qcow2").len(), 1);
    assert_eq!(std::fs::read(lab.cache().join("i.qcow2")).unwrap(), bytes);
}

#[test]
fn a_resumed_partial_of_another_file_is_downloaded_again_whole() {
    let bytes = image_bytes(7, 2 * MIB);
    // An earlier run's partial of a file the publisher has since replaced:
    // the resumed bytes hash wrong, so lvlab fetches the whole file once more.
    let lab = lab_with_partial("o.qcow2", &bytes, &image_bytes(97, MIB));
    let out = ok(&lab.lvlab(&["init"]));
    let requests = lab.server().requests_for("p/o.qcow2");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].range.as_deref(),
        Some(format!("bytes={MIB}-").as_str())
    );
    assert_eq!(requests[1].range, None);
    assert_eq!(std::fs::read(lab.cache().join("o.qcow2")).unwrap(), bytes);
    assert!(!lab.cache().join("o.qcow2.rejected").exists(), "{out}");
}

#[test]
fn a_404_names_the_url_the_status_and_where_to_put_the_file() {
    let lab = Lab::new();
    let bytes = image_bytes(7, 1000);
    let entry = publish_plain(&lab, "img", "gone.qcow2", &bytes);
    lab.server().behave("p/gone.qcow2", Behaviour::Status(404));
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains(&lab.url("p/gone.qcow2")), "{err}");
    assert!(err.contains("HTTP 404 Not Found"), "{err}");
    let path = lab.cache().join("gone.qcow2");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(!path.exists());
    // 404 is final: no retries.
    assert_eq!(lab.server().requests_for("p/gone.qcow2").len(), 1);

    // Placing the file by hand, as the hint says, works and verifies it.
    std::fs::write(&path, &bytes).unwrap();
    let out = ok(&lab.lvlab(&["init"]));
    assert!(out.contains("found in the cache"), "{out}");
}

#[test]
fn a_stalled_server_times_out_and_retries_are_bounded() {
    let lab = Lab::new();
    let entry = publish_plain(&lab, "img", "slow.qcow2", &image_bytes(8, MIB));
    for _ in 0..3 {
        lab.server()
            .behave("p/slow.qcow2", Behaviour::Stall(Duration::from_secs(4)));
    }
    lab.write_manifest(&["img"], &entry, "test:///default");
    let start = Instant::now();
    let err = failed(&lab.lvlab_env(
        &["init"],
        &[("LVLAB_HTTP_TIMEOUT", "0.3"), ("LVLAB_HTTP_RETRIES", "1")],
    ));
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains("after 2 attempts"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(lab.server().requests_for("p/slow.qcow2").len(), 2);
    assert!(!lab.cache().join("slow.qcow2").exists());
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
fn several_images_download_in_parallel_then_need_no_server() {
    let mut lab = Lab::new();
    let mut entries = String::new();
    let keys = ["a1", "a2", "a3", "a4"];
    let mut all = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let bytes = image_bytes(20 + i as u64, 2 * MIB);
        let name = format!("{key}.qcow2");
        entries.push_str(&publish_plain(&lab, key, &name, &bytes));
        lab.server().behave(&format!("p/{name}"), Behaviour::Slow);
        all.push((name, bytes));
    }
    lab.write_manifest(&keys, &entries, "test:///default");
    let out = ok(&lab.lvlab(&["init", "--jobs", "4"]));
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(lab.server().max_concurrent() >= 2, "transfers overlapped");
    for (name, bytes) in &all {
        assert_eq!(&std::fs::read(lab.cache().join(name)).unwrap(), bytes);
    }

    // Verified images need no request: the server is gone.
    lab.server.take().unwrap().stop();
    let out = ok(&lab.lvlab(&["init"]));
    assert_eq!(out.matches("no request made").count(), 4, "{out}");

    let list: serde_json::Value =
        serde_json::from_str(&ok(&lab.lvlab(&["images", "list", "--json"]))).unwrap();
    let images: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "image")
        .collect();
    assert_eq!(images.len(), 4);
    for row in images {
        assert_eq!(row["verified"], true);
        assert_eq!(row["current"], true);
        assert_eq!(row["machines"].as_array().unwrap().len(), 1);
        assert_eq!(row["size"], 2 * MIB);
    }
}

/// The URI of the libvirt test-driver host [`host_with_domain_on`] writes.
fn host_uri(lab: &Lab) -> String {
    format!("test://{}", lab.dir.path().join("host.xml").display())
}

/// A libvirt test-driver host whose one domain's disk is a qcow2 overlay
/// backed by `image`.
fn host_with_domain_on(lab: &Lab, image: &Path) {
    let overlay = lab.dir.path().join("vms/lab/m0/disk0.qcow2");
    std::fs::create_dir_all(overlay.parent().unwrap()).unwrap();
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(image)
        .arg(&overlay)
        .status()
        .unwrap();
    assert!(status.success());
    let state = lab.dir.path().join("host.xml");
    std::fs::write(
        &state,
        format!(
            "<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>\
             <cores>1</cores><threads>1</threads><active>1</active></cpu><memory>2097152</memory>\
             <domain type='test'><name>m0_lab</name><memory>524288</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
             <source file='{}'/><target dev='vda' bus='virtio'/></disk></devices></domain></node>",
            overlay.display()
        ),
    )
    .unwrap();
}

fn qcow2(lab: &Lab, size: &str) -> Vec<u8> {
    let path = lab.dir.path().join(format!("src-{size}.qcow2"));
    tiny_image(&path, size);
    std::fs::read(path).unwrap()
}

#[test]
fn refresh_downloads_a_new_published_image_beside_the_one_a_domain_uses() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["fedora"]);
    let old = qcow2(&lab, "64M");
    let entry = publish_fedora_style(
        &lab,
        &gpg,
        "img",
        "cloud.qcow2",
        &old,
        "fedora",
        &["fedora"],
    );
    let old_path = lab.cache().join("cloud.qcow2");
    lab.write_manifest(&["img"], &entry, &host_uri(&lab));
    ok(&lab.lvlab(&["init"]));
    host_with_domain_on(&lab, &old_path);

    // Without --refresh nothing is asked, even though the publisher moved on.
    let new = qcow2(&lab, "65M");
    assert_ne!(old, new);
    publish_fedora_style(
        &lab,
        &gpg,
        "img",
        "cloud.qcow2",
        &new,
        "fedora",
        &["fedora"],
    );
    let before = lab.server().requests().len();
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests().len(), before);

    let out = ok(&lab.lvlab(&["init", "--refresh"]));
    assert!(out.contains("kept, used by m0_lab"), "{out}");
    let new_name = format!("cloud-{}.qcow2", &sha256(&new)[..12]);
    assert_eq!(
        std::fs::read(&old_path).unwrap(),
        old,
        "the old image is untouched"
    );
    assert_eq!(std::fs::read(lab.cache().join(&new_name)).unwrap(), new);
    let record = lab.record("cloud.qcow2");
    assert_eq!(record["current"], new_name.as_str());
    assert_eq!(record["files"].as_object().unwrap().len(), 2);

    // images clean keeps the superseded image: a domain's backing chain uses it.
    let clean = ok(&lab.lvlab(&["images", "clean", "--force"]));
    assert!(clean.contains("keep"), "{clean}");
    assert!(old_path.exists());
}

#[test]
fn refresh_removes_a_superseded_image_no_domain_uses() {
    let lab = Lab::new();
    let old = image_bytes(30, MIB);
    let entry = publish_plain(&lab, "img", "c.qcow2", &old);
    lab.write_manifest(&["img"], &entry, "test:///default");
    ok(&lab.lvlab(&["init"]));
    let new = image_bytes(31, MIB);
    publish_plain(&lab, "img", "c.qcow2", &new);
    let out = ok(&lab.lvlab(&["init", "--refresh"]));
    assert!(out.contains("removed, no domain used it"), "{out}");
    assert!(!lab.cache().join("c.qcow2").exists());
    let current = lab.record("c.qcow2")["current"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(std::fs::read(lab.cache().join(current)).unwrap(), new);

    // An unchanged publisher: refresh confirms without downloading.
    let before = lab.server().requests_for("p/c.qcow2").len();
    let out = ok(&lab.lvlab(&["init", "--refresh"]));
    assert!(out.contains("still the published file"), "{out}");
    assert_eq!(lab.server().requests_for("p/c.qcow2").len(), before);
}

#[test]
fn a_machine_created_after_a_refresh_gets_its_disk_from_the_current_file() {
    let lab = Lab::new();
    let entry = publish_plain(&lab, "img", "c.qcow2", &qcow2(&lab, "64M"));
    lab.write_manifest(&["img"], &entry, "test:///default");
    ok(&lab.lvlab(&["init"]));
    publish_plain(&lab, "img", "c.qcow2", &qcow2(&lab, "65M"));
    ok(&lab.lvlab(&["init", "--refresh"]));
    let current = lab.record("c.qcow2")["current"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(current, "c.qcow2", "refresh moved `current`");

    let out = ok(&lab.lvlab(&["apply", "--auto-approve"]));
    assert!(out.contains("Apply complete!"), "{out}");
    // The boot disk is the image's size: 65 MiB is the refreshed file.
    let disk = lab.dir.path().join("vms/lab/m0/disk0.qcow2");
    assert_eq!(lvlab::storage::virtual_size(&disk).unwrap(), 65 << 20);
}

#[test]
fn clean_is_a_dry_run_by_default_and_spares_foreign_files() {
    let lab = Lab::new();
    let a = image_bytes(40, 1000);
    let b = image_bytes(41, 1000);
    let both = format!(
        "{}{}",
        publish_plain(&lab, "a", "a.qcow2", &a),
        publish_plain(&lab, "b", "b.qcow2", &b)
    );
    lab.write_manifest(&["a", "b"], &both, "test:///default");
    ok(&lab.lvlab(&["init"]));
    std::fs::write(lab.cache().join("notes.txt"), "mine").unwrap();
    std::fs::write(lab.cache().join("x.qcow2.rejected"), "bad").unwrap();
    // The manifest drops image b.
    lab.write_manifest(
        &["a"],
        &publish_plain(&lab, "a", "a.qcow2", &a),
        "test:///default",
    );
    let dry = ok(&lab.lvlab(&["images", "clean"]));
    assert!(
        dry.contains("would remove") && dry.contains("b.qcow2"),
        "{dry}"
    );
    assert!(lab.cache().join("b.qcow2").exists());
    let done = ok(&lab.lvlab(&["images", "clean", "--force"]));
    assert!(done.contains("removed"), "{done}");
    assert!(!lab.cache().join("b.qcow2").exists());
    assert!(!lab.cache().join("b.qcow2.lvlab.json").exists());
    assert!(!lab.cache().join("x.qcow2.rejected").exists());
    assert!(lab.cache().join("notes.txt").exists(), "not lvlab's file");
    assert!(lab.cache().join("a.qcow2").exists());
    assert!(lab.cache().join("a.qcow2.lvlab.json").exists());
}

#[test]
fn without_a_manifest_init_offers_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        )
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .arg("init")
        .output()
        .unwrap();
    let err = failed(&out);
    for key in ["debian13", "ubuntu24.04", "fedora44", "almalinux10"] {
        assert!(err.contains(key), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        )
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .args(["init", "nonesuch"])
        .output()
        .unwrap();
    assert!(failed(&out).contains("no image `nonesuch` in the built-in catalog"));
}

#[test]
fn backing_chains_are_read_from_qcow2_headers() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let status = Command::new("qemu-img")
            .current_dir(dir.path())
            .args(args)
            .status()
            .unwrap();
        assert!(status.success());
    };
    run(&["create", "-q", "-f", "qcow2", "base.qcow2", "16M"]);
    // A relative backing name, as qemu-img writes it, resolves beside the overlay.
    run(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        "base.qcow2",
        "mid.qcow2",
    ]);
    run(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        "mid.qcow2",
        "top.qcow2",
    ]);
    let chain = lvlab::observe::disks::backing_chain(&dir.path().join("top.qcow2"));
    let names: Vec<String> = chain
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["top.qcow2", "mid.qcow2", "base.qcow2"]);
}

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

#[test]
fn init_puts_an_image_no_machine_uses_in_the_environments_default_cache() {
    let lab = Lab::new();
    let used = image_bytes(70, 1000);
    let spare = image_bytes(71, 1000);
    let entries = format!(
        "{}{}",
        publish_plain(&lab, "used", "used.qcow2", &used),
        publish_plain(&lab, "spare", "spare.qcow2", &spare)
    );
    let own = lab.dir.path().join("own");
    // The one machine keeps its image elsewhere than config_defaults says.
    lab.manifest_on("test:///default")
        .machine("m0", |m| m.os("used").cloud_image_basedir(&own))
        .images_yaml(&entries)
        .write(lab.dir.path());
    let out = ok(&lab.lvlab(&["init"]));
    assert_eq!(
        std::fs::read(own.join("cloud-images/used.qcow2")).unwrap(),
        used
    );
    let placed = lab.cache().join("spare.qcow2");
    assert_eq!(std::fs::read(&placed).unwrap(), spare, "{out}");
    assert!(out.contains(&placed.display().to_string()), "{out}");
    assert!(!own.join("cloud-images/spare.qcow2").exists());
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
