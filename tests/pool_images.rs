//! Images on a "remote" host's images pool: this machine's system
//! libvirtd reached through `qemu+ssh://` to a test sshd. The plan uploads
//! an image once per host however many machines boot it, the upload's
//! bytes are the cached file's, a host that has it gets no upload, a
//! truncated copy is uploaded again (and a plan saved before is stale), a
//! failed upload leaves no volume, a pool without lvlab's mark is refused,
//! and `images clean` removes an uploaded image no machine there uses.
//! Every pool lives under `/var/lib/libvirt/lvlab-tests/<unique>/`,
//! removed with its pools.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod lvlab_run;
#[path = "support/remote_host.rs"]
mod remote_host;
// Only its image bytes.
#[allow(dead_code)]
#[path = "support/tiny_image.rs"]
mod tiny_image;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use lab_manifest::LabManifest;
use remote_host::{system_virsh, RemoteHost};
use serde_json::Value;

/// A lab on the remote host: its directory, its environment name (unique
/// on the system libvirtd), its pool base; removes its domains and pools
/// when dropped.
struct RemoteLab {
    dir: tempfile::TempDir,
    env: String,
    pool_base: PathBuf,
}

impl RemoteLab {
    fn new() -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "pi{}x{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let pool_base = remote_host::system_readable_dir(&unique);
        let lab = Self {
            dir: tempfile::tempdir().unwrap(),
            env: unique,
            pool_base,
        };
        std::fs::create_dir_all(lab.dir.path().join("source")).unwrap();
        lab
    }

    /// A cached image `file` of a few MiB of data (its first and last MiB
    /// differ), as `init` would have left it.
    fn cache_image(&self, file: &str, seed: u64) -> PathBuf {
        let raw = self.dir.path().join(format!("{file}.raw"));
        std::fs::write(&raw, tiny_image::image_bytes(seed, 3 << 20)).unwrap();
        let cached = self.dir.path().join("cache/cloud-images").join(file);
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        let made = Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&cached)
            .status()
            .unwrap();
        assert!(made.success());
        cached
    }

    /// `machines` (name, image key) on `uri`, and `images` (key, cached
    /// file).
    fn manifest(&self, uri: &str, machines: &[(&str, &str)], images: &[(&str, &str)]) {
        let base = self.dir.path();
        let mut manifest = LabManifest::lab(&self.env, uri, base).defaults(|d| {
            d.tcg(256)
                .no_password()
                .set("pool_basedir", self.pool_base.display())
        });
        for (key, file) in images {
            let source = base.join("source").join(file);
            manifest = manifest.image(key, |i| i.url(source.display()));
        }
        for (name, os) in machines {
            manifest = manifest.machine(name, |m| m.os(os).no_interfaces());
        }
        manifest.write(base);
    }

    fn lvlab(&self, args: &[&str]) -> Output {
        lvlab_run::lvlab(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.lvlab(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "lvlab {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// `plan --json`, checked against the schema in docs/.
    fn plan_json(&self) -> Value {
        let plan =
            serde_json::from_str(&self.ok(&["plan", "--json", "--target", "stopped"])).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan-json.schema.json");
        let schema = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&plan)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{errors:#?}
{plan:#}"
        );
        plan
    }

    fn images_dir(&self) -> PathBuf {
        self.pool_base.join("images")
    }

    /// The name of the libvirt pool at [`RemoteLab::images_dir`].
    fn images_pool(&self) -> String {
        let path = format!("<path>{}</path>", self.images_dir().display());
        system_virsh(&["pool-list", "--all", "--name"])
            .lines()
            .map(str::trim)
            .find(|p| !p.is_empty() && system_virsh(&["pool-dumpxml", p]).contains(&path))
            .expect("the images pool is defined")
            .to_string()
    }
}

impl Drop for RemoteLab {
    fn drop(&mut self) {
        remote_host::remove_system_leftovers(&self.env, &self.pool_base);
    }
}

/// `value` matches the strict schema `docs/<name>.schema.json`.
fn assert_valid(name: &str, value: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/{name}.schema.json"));
    let schema = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{value:#}");
}

/// The plan's actions of kind `action`.
fn actions<'a>(plan: &'a Value, action: &str) -> Vec<&'a Value> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == action)
        .collect()
}

/// The reasons of the plan's changes to `host_image` resources.
fn upload_reasons(plan: &Value) -> Vec<Value> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["address"]["kind"] == "host_image")
        .flat_map(|c| c["reasons"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn an_image_is_uploaded_once_per_host_and_again_when_its_copy_is_incomplete() {
    let remote = RemoteHost::start();
    let lab = RemoteLab::new();
    let cached = lab.cache_image("tiny.qcow2", 7);
    let uri = remote.uri("system");
    let machines = [("a", "tiny"), ("b", "tiny")];
    lab.manifest(&uri, &machines, &[("tiny", "tiny.qcow2")]);

    let plan = lab.plan_json();
    let uploads = actions(&plan, "upload_image");
    assert_eq!(uploads.len(), 1, "one upload for two machines: {plan:#}");
    assert_eq!(uploads[0]["resource"]["uri"], uri.as_str());
    assert_eq!(
        uploads[0]["dir"],
        lab.images_dir().display().to_string().as_str()
    );
    let upload_id = &uploads[0]["id"];
    let boot_disks: Vec<&Value> = actions(&plan, "create_disk")
        .into_iter()
        .filter(|a| a["index"] == 0)
        .collect();
    assert_eq!(boot_disks.len(), 2);
    for disk in boot_disks {
        assert!(
            disk["depends_on"].as_array().unwrap().contains(upload_id),
            "a boot disk waits for the upload: {disk}"
        );
    }
    assert_eq!(
        upload_reasons(&plan),
        [serde_json::json!({"reason": "image_not_on_host", "uri": uri})]
    );

    let saved = lab.dir.path().join("before-upload.plan");
    lab.ok(&[
        "plan",
        "--target",
        "stopped",
        "--out",
        saved.to_str().unwrap(),
    ]);
    let applied = lab.ok(&["apply", "--target", "stopped", "--auto-approve"]);
    assert_eq!(
        applied.matches("upload to the host's images pool").count(),
        2,
        "one upload, started and finished:\n{applied}"
    );
    let volume = lab.images_dir().join("tiny.qcow2");
    assert!(
        std::fs::read(&volume).unwrap() == std::fs::read(&cached).unwrap(),
        "the uploaded volume holds the cached file's bytes"
    );
    assert!(remote.logins() > 0, "{}", remote.log());

    let again = lab.plan_json();
    assert!(actions(&again, "upload_image").is_empty(), "{again:#}");
    let saved = lab.dir.path().join("complete.plan");
    let saved = saved.to_str().unwrap();
    lab.ok(&["plan", "--target", "stopped", "--out", saved]);

    let size = std::fs::metadata(&cached).unwrap().len();
    let half = size / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&volume)
        .unwrap()
        .set_len(half)
        .unwrap();
    system_virsh(&["pool-refresh", &lab.images_pool()]);
    // Only the pool changed: the plan saved before is stale.
    let stale = lab.lvlab(&["apply", saved, "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(!stale.status.success(), "{stderr}");
    assert!(stderr.contains("Saved plan is stale"), "{stderr}");
    let incomplete = lab.plan_json();
    assert_eq!(actions(&incomplete, "upload_image").len(), 1);
    assert_eq!(
        upload_reasons(&incomplete),
        [serde_json::json!({
            "reason": "image_incomplete_on_host",
            "uri": uri,
            "size": half,
            "expected": size,
        })]
    );
    let text = lab.ok(&["plan", "--target", "stopped"]);
    assert!(
        text.contains(&format!("is incomplete: {half} of {size} bytes")),
        "{text}"
    );
}

#[test]
fn images_clean_removes_an_uploaded_image_no_machine_on_the_host_boots() {
    let remote = RemoteHost::start();
    let lab = RemoteLab::new();
    lab.cache_image("tiny.qcow2", 1);
    lab.cache_image("other.qcow2", 2);
    let uri = remote.uri("system");
    let images = [("tiny", "tiny.qcow2"), ("other", "other.qcow2")];
    // Two images uploaded to one host at once.
    lab.manifest(&uri, &[("a", "tiny"), ("b", "other")], &images);
    let stream = lab.ok(&["apply", "--target", "stopped", "--auto-approve", "--json"]);
    let lines: Vec<Value> = stream
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.iter().for_each(|l| assert_valid("apply-json", l));
    let mut uploads: Vec<(&Value, &Value)> = lines
        .iter()
        .filter(|l| l["hook"]["action"] == "upload_image")
        .map(|l| (&l["type"], &l["hook"]["resource"]["key"]))
        .collect();
    uploads.sort_by_key(|(kind, key)| (kind.to_string(), key.to_string()));
    assert_eq!(
        uploads,
        [
            (&Value::from("apply_complete"), &Value::from("other")),
            (&Value::from("apply_complete"), &Value::from("tiny")),
            (&Value::from("apply_start"), &Value::from("other")),
            (&Value::from("apply_start"), &Value::from("tiny")),
        ],
        "{stream}"
    );
    // Both machines boot `tiny` now (b needs --replace for it): `other`
    // on the host is unused.
    lab.manifest(&uri, &[("a", "tiny"), ("b", "tiny")], &images);
    let tiny = lab.images_dir().join("tiny.qcow2");
    let other = lab.images_dir().join("other.qcow2");
    assert!(tiny.is_file() && other.is_file());

    let listed = lab.ok(&["images", "list"]);
    let users = format!("used by {env}/a, {env}/b", env = lab.env);
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.contains(name) && l.contains("uploaded"))
            .unwrap_or_else(|| panic!("{name} listed as uploaded:\n{listed}"))
            .to_string()
    };
    assert!(line("tiny.qcow2").contains(&users), "{listed}");
    assert!(!line("other.qcow2").contains("used by"), "{listed}");

    let dry = lab.ok(&["images", "clean"]);
    assert!(
        dry.contains(&format!("would remove {}", uri.split('?').next().unwrap())),
        "{dry}"
    );
    assert!(dry.contains(&other.display().to_string()), "{dry}");
    assert!(!dry.contains(&tiny.display().to_string()), "{dry}");
    assert!(other.is_file(), "a dry run removes nothing");

    let cleaned = lab.ok(&["images", "clean", "--force"]);
    assert!(
        cleaned.contains(&format!("{} (no machine", other.display())),
        "{cleaned}"
    );
    assert!(!other.exists(), "{cleaned}");
    assert!(tiny.is_file(), "the image machines boot stays");
    assert!(
        lab.images_dir().join(".lvlab-pool").is_file(),
        "lvlab's mark stays"
    );
    assert!(remote.logins() > 0);
}

#[test]
fn a_pool_without_lvlabs_mark_at_the_images_directory_is_refused() {
    let remote = RemoteHost::start();
    let lab = RemoteLab::new();
    lab.cache_image("tiny.qcow2", 3);
    let dir = lab.images_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.img"), "someone else's").unwrap();
    let name = format!("foreign-{}", lab.env);
    let xml = lab.dir.path().join("pool.xml");
    std::fs::write(
        &xml,
        format!(
            "<pool type='dir'><name>{name}</name><target><path>{}</path></target></pool>",
            dir.display()
        ),
    )
    .unwrap();
    system_virsh(&["pool-define", xml.to_str().unwrap()]);
    system_virsh(&["pool-start", &name]);
    let tiny = [("tiny", "tiny.qcow2")];
    lab.manifest(&remote.uri("system"), &[("a", "tiny")], &tiny);

    let out = lab.lvlab(&["apply", "--target", "stopped", "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains(&format!("storage pool {name}")),
        "{stdout}\n{stderr}"
    );
    assert!(
        format!("{stdout}{stderr}").contains(&format!("{} is already storage pool", dir.display())),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.img")).unwrap(),
        "someone else's"
    );
    assert!(!dir.join("tiny.qcow2").exists(), "nothing uploaded into it");
}

#[test]
fn a_failed_upload_leaves_no_volume_and_says_what_failed() {
    let remote = RemoteHost::start();
    let lab = RemoteLab::new();
    let conn = lvlab::libvirt::Connection::open(&remote.uri("system")).unwrap();
    let dir = lab.images_dir();
    // A directory opens like a file but cannot be read: the upload fails
    // after its volume was made.
    let unreadable = lab.dir.path().join("broken.qcow2");
    std::fs::create_dir(&unreadable).unwrap();
    let error = lvlab::host::images_pool::upload(&conn, &dir, &unreadable, &|_| {})
        .expect_err("an unreadable file cannot be uploaded")
        .to_string();
    assert!(
        error.starts_with(&format!("cannot read {}: ", unreadable.display())),
        "{error}"
    );
    assert!(!dir.join("broken.qcow2").exists(), "{error}");
    let volumes = lvlab::host::images_pool::list(&conn, &dir).unwrap();
    assert!(volumes.is_empty(), "{volumes:?}");
    assert!(remote.logins() > 0);
}
