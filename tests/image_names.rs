//! Two images whose URLs end in the same file name, in one cache: through
//! the real binary against a loopback HTTP server, each source gets its own
//! cache file, record and machine; a name one source uses stays plain.

// This file uses only some of the server's misbehaviours.
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use http::Server;
use lab_manifest::LabManifest;
use lvlab::manifest::name_for_source;
use run::{lvlab, sha256_hex, texts};

const NAME: &str = "debian-12-genericcloud-amd64.qcow2";

struct Lab {
    dir: tempfile::TempDir,
    server: Server,
}

impl Lab {
    /// Publishes a distinct small qcow2 under `<release>/NAME` for each
    /// release, with a SHA256SUMS beside it listing NAME.
    fn new(releases: &[&str]) -> Self {
        let lab = Self {
            dir: tempfile::tempdir().unwrap(),
            server: Server::start(),
        };
        for (i, release) in releases.iter().enumerate() {
            let source = lab.dir.path().join(format!("src{i}.qcow2"));
            support::tiny_image(&source, &format!("{}M", 16 + i));
            let bytes = std::fs::read(&source).unwrap();
            let sums = format!("{}  {NAME}\n", sha256_hex(&bytes));
            lab.server.put(&format!("{release}/{NAME}"), bytes);
            lab.server.put(&format!("{release}/SHA256SUMS"), sums);
        }
        lab
    }

    fn url(&self, release: &str) -> String {
        self.server.url(&format!("{release}/{NAME}"))
    }

    fn published(&self, release: &str) -> Vec<u8> {
        let i = ["latest", "20240102-1614"]
            .iter()
            .position(|r| *r == release)
            .unwrap();
        std::fs::read(self.dir.path().join(format!("src{i}.qcow2"))).unwrap()
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/cloud-images")
    }

    /// Machine `m<i>` uses image key `(key, release)` i, on `uri`; boot
    /// disks are overlays, so each names the image it was made from.
    fn write_manifest(&self, images: &[(&str, &str)], uri: &str) {
        let dir = self.dir.path();
        let mut manifest =
            LabManifest::lab("lab", uri, dir).defaults(|d| d.set("disk_strategy", "backing"));
        for (i, (key, release)) in images.iter().enumerate() {
            let sums = self.server.url(&format!("{release}/SHA256SUMS"));
            manifest = manifest
                .machine(&format!("m{i}"), |m| m.os(key))
                .image(key, |image| {
                    image.url(self.url(release)).checksum(sums, "sha256")
                });
        }
        manifest.write(dir);
    }

    fn run(&self, args: &[&str]) -> Output {
        lvlab(self.dir.path())
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "lvlab {args:?} failed\n{stdout}\n{stderr}"
        );
        stdout
    }

    fn record(&self, file: &str) -> serde_json::Value {
        let text = std::fs::read(self.cache().join(format!("{file}.lvlab.json"))).unwrap();
        serde_json::from_slice(&text).unwrap()
    }
}

const TWO: [(&str, &str); 2] = [("debian12", "latest"), ("debian12-dated", "20240102-1614")];

/// The file a qcow2 overlay is backed by.
fn backing_file(overlay: &Path) -> String {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(overlay)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", texts(&out).1);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["backing-filename"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn init_caches_two_same_named_images_apart_with_records_naming_their_urls() {
    let lab = Lab::new(&["latest", "20240102-1614"]);
    lab.write_manifest(&TWO, "test:///default");
    let out = lab.ok(&["init"]);
    for (key, release) in TWO {
        let url = lab.url(release);
        let name = name_for_source(NAME, &url);
        let path = lab.cache().join(&name);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            lab.published(release),
            "{name} holds {url}"
        );
        assert!(
            out.contains(&format!("{key}: verified")) && out.contains(&path.display().to_string()),
            "{out}"
        );
        let record = lab.record(&name);
        assert_eq!(record["source"], url.as_str(), "{record}");
        assert_eq!(record["current"], name.as_str(), "{record}");
    }
    assert!(
        !lab.cache().join(NAME).exists(),
        "neither took the plain name"
    );
}

#[test]
fn plan_and_apply_boot_each_machine_from_its_own_image() {
    let lab = Lab::new(&["latest", "20240102-1614"]);
    lab.write_manifest(&TWO, "test:///default");
    let plan: serde_json::Value = serde_json::from_str(&lab.ok(&["plan", "--json"])).unwrap();
    let image_actions: Vec<&serde_json::Value> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["address"].as_str().unwrap().starts_with("image."))
        .collect();
    assert_eq!(image_actions.len(), 2, "{plan}");
    let paths: Vec<String> = image_actions
        .iter()
        .map(|a| a["resource"]["path"].as_str().unwrap().to_string())
        .collect();
    assert_ne!(paths[0], paths[1], "{plan}");

    let out = lab.ok(&["apply", "--auto-approve"]);
    assert!(out.contains("Apply complete!"), "{out}");
    for (i, (_, release)) in TWO.iter().enumerate() {
        let overlay = lab.dir.path().join(format!("vms/lab/m{i}/disk0.qcow2"));
        let expected = lab.cache().join(name_for_source(NAME, &lab.url(release)));
        assert_eq!(
            backing_file(&overlay),
            expected.display().to_string(),
            "m{i}"
        );
    }
}

#[test]
fn a_name_one_source_uses_stays_plain_and_a_cached_image_under_it_is_used() {
    let lab = Lab::new(&["latest"]);
    lab.write_manifest(&[("debian12", "latest")], "test:///default");
    lab.ok(&["init"]);
    assert_eq!(
        std::fs::read(lab.cache().join(NAME)).unwrap(),
        lab.published("latest")
    );
    let requests = lab.server.requests().len();
    let plan = lab.ok(&["plan"]);
    assert!(!plan.contains("image.debian12"), "{plan}");
    assert_eq!(lab.server.requests().len(), requests, "plan asks no server");
}

#[test]
fn one_url_with_two_verifications_is_refused_naming_both_keys() {
    let lab = Lab::new(&["latest"]);
    lab.write_manifest(
        &[("debian12", "latest"), ("debian12-salt", "latest")],
        "test:///default",
    );
    let manifest = lab.dir.path().join("Lvlab.yml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("checksum_type: sha256", "checksum_type: sha512", 1),
    )
    .unwrap();
    for command in ["validate", "init"] {
        let out = lab.run(&[command]);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("`debian12` and `debian12-salt`")
                && stderr.contains("same image_url, different verification"),
            "{command}: {stderr}"
        );
    }
    assert!(lab.server.requests().is_empty(), "nothing fetched");
}
