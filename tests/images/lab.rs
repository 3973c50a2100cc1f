//! The lab every test of the binary uses: a temporary directory, a
//! loopback HTTP server to publish images on, the manifest, `lvlab` run in
//! it; and the ways to publish an image (plain, Fedora-style).

use std::path::PathBuf;
use std::process::{Command, Output};

use lvlab::desired::ChecksumAlgorithm;
use lvlab::images::hash::StreamHasher;

use crate::gpg::Gpg;
use crate::http::Server;
use crate::lab_manifest::LabManifest;
pub use crate::support::image_bytes;
use crate::support::tiny_image;

pub const MIB: usize = 1024 * 1024;

fn digest(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> String {
    let mut h = StreamHasher::new(algorithm);
    h.update(bytes);
    h.finish()
}

pub fn sha256(bytes: &[u8]) -> String {
    digest(ChecksumAlgorithm::Sha256, bytes)
}

pub fn sha512(bytes: &[u8]) -> String {
    digest(ChecksumAlgorithm::Sha512, bytes)
}

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub server: Option<Server>,
}

impl Lab {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            server: Some(Server::start()),
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub fn url(&self, path: &str) -> String {
        self.server().url(path)
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/cloud-images")
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("Lvlab.yml")
    }

    /// A manifest whose machine `m<i>` uses the i-th of `keys`, on `uri`.
    pub fn write_manifest(&self, keys: &[&str], images: &str, uri: &str) {
        let mut manifest = self.manifest_on(uri).images_yaml(images);
        for (i, key) in keys.iter().enumerate() {
            manifest = manifest.machine(&format!("m{i}"), |m| m.os(key));
        }
        manifest.write(self.dir.path());
    }

    /// The lab's environment on `uri`, without machines or images.
    pub fn manifest_on(&self, uri: &str) -> LabManifest {
        LabManifest::lab("lab", uri, self.dir.path())
    }

    pub fn lvlab(&self, args: &[&str]) -> Output {
        self.lvlab_env(args, &[])
    }

    pub fn lvlab_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
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

    pub fn record(&self, file: &str) -> serde_json::Value {
        let text = std::fs::read(self.cache().join(format!("{file}.lvlab.json"))).unwrap();
        serde_json::from_slice(&text).unwrap()
    }
}

/// A blank qcow2 of `size`, made in the lab's directory: its bytes.
pub fn qcow2(lab: &Lab, size: &str) -> Vec<u8> {
    let path = lab.dir.path().join(format!("src-{size}.qcow2"));
    tiny_image(&path, size);
    std::fs::read(path).unwrap()
}

pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lvlab failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn failed(out: &Output) -> String {
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
pub fn image_yaml(key: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("  {key}:\n");
    for (name, value) in fields {
        out.push_str(&format!("    {name}: \"{value}\"\n"));
    }
    out
}

/// Publishes `bytes` as `name` with a Fedora-style clearsigned CHECKSUM
/// (BSD lines, SHA-256) signed by `signer`, and the keys of `keyring` in one
/// armored file. Returns the manifest entry.
pub fn publish_fedora_style(
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
pub fn publish_plain(lab: &Lab, key: &str, name: &str, bytes: &[u8]) -> String {
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
