//! `checksum_sig_url`: a detached signature at a URL of its own (no
//! `.gpg`/`.sig`/`.sign`/`.asc` beside the checksum file is tried), with
//! real keys and signatures made by GnuPG and lvlab's production download
//! settings.

#[path = "support/gpg.rs"]
mod gpg;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;

use std::path::PathBuf;
use std::process::Output;

use gpg::Gpg;
use http::Server;
use lab_manifest::LabManifest;
use run::{lvlab, sha256_hex, texts};

const SIG: &str = "sigs/noble-SHA256SUMS.signature";

struct Published {
    dir: tempfile::TempDir,
    server: Server,
    gpg: Gpg,
    bytes: Vec<u8>,
    sums: String,
}

impl Published {
    /// An image with a `SHA256SUMS` (`hex *name` lines) and an armored key
    /// for `ubuntu`; the signature is the test's to publish at [`SIG`].
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start();
        let gpg = Gpg::new(&["ubuntu"]);
        let bytes: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 31 % 241) as u8).collect();
        let sums = format!("{} *noble.img\n", sha256_hex(&bytes));
        server.put("u/noble.img", bytes.clone());
        server.put("u/SHA256SUMS", sums.clone());
        server.put("u/key.asc", gpg.export("ubuntu", true));
        LabManifest::lab("lab", "test:///default", dir.path())
            .machine("m", |m| m.os("ubuntu24.04"))
            .image("ubuntu24.04", |i| {
                i.url(server.url("u/noble.img"))
                    .checksum(server.url("u/SHA256SUMS"), "sha256")
                    .set("checksum_url_gpg", server.url("u/key.asc"))
                    .set("checksum_sig_url", server.url(SIG))
            })
            .write(dir.path());
        Self {
            dir,
            server,
            gpg,
            bytes,
            sums,
        }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/cloud-images")
    }

    fn init(&self) -> Output {
        lvlab(self.dir.path()).arg("init").output().unwrap()
    }

    /// Requests for signatures beside the checksum file.
    fn suffix_requests(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .map(|r| r.path)
            .filter(|p| p.starts_with("/u/SHA256SUMS."))
            .collect()
    }
}

#[test]
fn a_signature_at_checksum_sig_url_is_recorded_with_the_key_that_made_it() {
    let lab = Published::new();
    let signature = lab.gpg.detach_sign("ubuntu", lab.sums.as_bytes(), true);
    lab.server.put(SIG, signature.clone());
    let out = lab.init();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let fingerprint = lab.gpg.fingerprint("ubuntu");
    assert!(
        stdout.contains(&format!("signed by {fingerprint}")),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(lab.cache().join("noble.img")).unwrap(),
        lab.bytes
    );

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.cache().join("noble.img.lvlab.json")).unwrap())
            .unwrap();
    let file = &record["files"]["noble.img"];
    assert_eq!(file["verified"], true, "{record:#}");
    let recorded = &file["signature"];
    assert_eq!(
        recorded["signature"],
        lab.server.url(SIG).as_str(),
        "{record:#}"
    );
    assert_eq!(
        recorded["key_fingerprint"],
        fingerprint.as_str(),
        "{record:#}"
    );
    assert_eq!(
        recorded["keys"],
        lab.server.url("u/key.asc").as_str(),
        "{record:#}"
    );
    let copy = recorded["signature_file"].as_str().expect("a cached copy");
    assert_eq!(std::fs::read(lab.cache().join(copy)).unwrap(), signature);
    assert!(
        lab.suffix_requests().is_empty(),
        "{:?}",
        lab.suffix_requests()
    );
}

#[test]
fn a_bad_signature_at_checksum_sig_url_fails_and_leaves_no_image() {
    let lab = Published::new();
    // A real signature by the configured key, over other content.
    lab.server.put(
        SIG,
        lab.gpg.detach_sign("ubuntu", b"another SHA256SUMS\n", true),
    );
    // A correct signature beside the checksum file must not rescue it.
    lab.server.put(
        "u/SHA256SUMS.gpg",
        lab.gpg.detach_sign("ubuntu", lab.sums.as_bytes(), true),
    );
    let out = lab.init();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "bad signature: made by key {}, but it does not match the checksum file",
            lab.gpg.fingerprint("ubuntu")
        )),
        "{stderr}"
    );
    assert!(stderr.contains("image `ubuntu24.04`"), "{stderr}");
    assert!(stderr.contains(&lab.server.url("u/SHA256SUMS")), "{stderr}");
    assert!(
        stderr.contains(&format!("\n  signature: {}\n", lab.server.url(SIG))),
        "names the signature it checked: {stderr}"
    );
    assert!(lab.server.requests_for("u/noble.img").is_empty());
    assert!(
        lab.suffix_requests().is_empty(),
        "{:?}",
        lab.suffix_requests()
    );
    let left: Vec<String> = std::fs::read_dir(lab.cache())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // Keys are cached only once they have verified a signature.
    assert!(
        left.is_empty(),
        "no image, partial, signature, keys or record: {left:?}"
    );
}
