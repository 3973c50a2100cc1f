//! One guest on a "remote" host, after the lab is gone: this machine's
//! system libvirtd reached through `qemu+ssh://` to an sshd the test starts
//! on loopback (`tests/support/remote_host.rs`). `lvlab up --wait` uploads
//! the tier's image (already in the cache from `init`) to the host's images
//! pool, makes the guest's disks and seed as volumes of its own pool under
//! `/var/lib/libvirt/lvlab-e2e-remote-<pid>/`, boots it under TCG with a
//! passt forward on the host's loopback, and reaches its SSH through the
//! URI's `ProxyCommand`; `lvlab ssh` and `status` go the same way; the
//! sshd's log shows the logins; `destroy --force` and `images clean
//! --force` leave nothing of it on the host.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::checks::Checks;
use crate::lab::{text, Lab, DOMAIN, USER};
use crate::lab_manifest::LabManifest;
use crate::remote_host::{system_virsh, RemoteHost};
use crate::{boot, run};

const VM: &str = "far";
const SYSTEM: &str = "qemu:///system";
/// What `up` says once as the upload starts and once as it ends.
const UPLOAD: &str = "upload to the host's images pool";

/// How many checks [`check`] makes.
pub const CHECKS: usize = 9;

/// The remote lab: its manifest directory (inside the tier's lab, which
/// holds the cached image), its environment and pool base, and the host.
/// On drop (a failed check too) it destroys the guest and cleans the host's
/// images pool through lvlab, then removes whatever lvlab left of it
/// (domain, pools, directory) before the sshd stops.
struct RemoteLab {
    dir: PathBuf,
    env: String,
    pool_base: PathBuf,
    remote: RemoteHost,
}

impl RemoteLab {
    fn new(lab: &Lab) -> Self {
        let env = format!("{}r", lab.env);
        let pool_base = PathBuf::from(format!(
            "/var/lib/libvirt/lvlab-e2e-remote-{}",
            std::process::id()
        ));
        // Not made here: lvlab (libvirt on the host) makes it, as on a
        // host nobody prepared.
        let dir = lab.dir.path().join("remote");
        std::fs::create_dir_all(&dir).unwrap();
        let remote = RemoteHost::start();
        let remote = Self {
            dir,
            env,
            pool_base,
            remote,
        };
        remote.manifest(lab, "e2e").write(&remote.dir);
        remote
    }

    /// The lab's manifest, its machine booting image `os`: the tier's own
    /// image entry (`init` cached and verified it) is `e2e`.
    fn manifest(&self, lab: &Lab, os: &str) -> LabManifest {
        let tier = std::fs::read_to_string(lab.dir.path().join("Lvlab.yml")).unwrap();
        let images = tier.split_once("\nimages:\n").unwrap().1;
        let pubkey = lab.dir.path().join("id_ed25519.pub");
        LabManifest::lab(&self.env, &self.remote.uri("system"), lab.dir.path())
            .defaults(|d| {
                d.os(os)
                    .tcg(768)
                    .set("domain", DOMAIN)
                    .set("pool_basedir", self.pool_base.display())
                    .disk_image_basedir(self.dir.join("vms"))
                    .set("disks", "[{name: root}]")
                    .set("disk_strategy", "backing")
                    .cloud_init("user", USER)
                    .pubkey(&pubkey.display().to_string())
                    .no_password()
            })
            .machine(VM, |m| {
                m.set("interfaces", "[{network_type: passt, ssh_port: auto}]")
            })
            .images_yaml(images)
    }

    fn lvlab(&self, args: &[&str]) -> Output {
        run::lvlab(&self.dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn domain(&self) -> String {
        format!("{VM}_{}", self.env)
    }

    /// The directory on the host that holds the guest's volumes.
    fn volume_dir(&self) -> PathBuf {
        self.pool_base.join(&self.env).join(VM)
    }

    fn images_dir(&self) -> PathBuf {
        self.pool_base.join("images")
    }

    /// The host's pools whose directory is under this lab's pool base.
    fn pools(&self) -> Vec<(String, PathBuf)> {
        let base = &self.pool_base;
        system_virsh(&["pool-list", "--all", "--name"])
            .lines()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .filter_map(|name| Some((name.to_string(), pool_path(name)?)))
            .filter(|(_, path)| path.starts_with(base))
            .collect()
    }

    fn domain_defined(&self) -> bool {
        system_virsh(&["list", "--all", "--name"])
            .lines()
            .any(|name| name.trim() == self.domain())
    }
}

impl Drop for RemoteLab {
    fn drop(&mut self) {
        let _ = self.lvlab(&["destroy", "--force"]);
        let _ = self.lvlab(&["images", "clean", "--force"]);
        if self.domain_defined() {
            system_virsh(&["destroy", &self.domain()]);
            system_virsh(&["undefine", &self.domain()]);
        }
        for (pool, _) in self.pools() {
            system_virsh(&["pool-destroy", &pool]);
            system_virsh(&["pool-undefine", &pool]);
        }
        let _ = std::fs::remove_dir_all(&self.pool_base);
    }
}

pub fn check(checks: &mut Checks, lab: &Lab) {
    let remote = RemoteLab::new(lab);
    let timeout = boot::ssh_timeout().as_secs().to_string();
    eprintln!("remote guest: lvlab up --all --wait on {SYSTEM} through the test sshd");
    let up = remote.lvlab(&["up", "--all", "--wait", "--wait-timeout", &timeout]);
    let up_text = text(&up);
    eprintln!("{}", up_text.trim_end());

    check_upload(checks, &remote, lab, &up_text);
    check_volumes(checks, &remote, lab);
    check_wait(checks, &remote, &up, &up_text);
    check_ssh(checks, &remote);
    check_status(checks, &remote);
    let plan = remote.lvlab(&["plan", "--detailed-exitcode"]);
    checks.check(
        VM,
        "`plan` after `up` on the remote host shows no change",
        plan.status.code() == Some(0),
        "`lvlab plan --detailed-exitcode` exits 0",
        &format!("exit {:?}\n{}", plan.status.code(), text(&plan)),
    );
    let logins = remote.remote.logins();
    checks.check(
        VM,
        "the remote host was reached through the test sshd",
        logins > 0,
        "logins in the test sshd's log",
        &format!("{logins} logins\n{}", remote.remote.log()),
    );
    check_destroy(checks, &remote, lab);
}

/// `up` uploaded the cached image to the host's images pool once, whole.
fn check_upload(checks: &mut Checks, remote: &RemoteLab, lab: &Lab, up_text: &str) {
    let cached = lab.cache().join(&lab.image_file);
    let uploaded = remote.images_dir().join(&lab.image_file);
    let size = |path: &PathBuf| std::fs::metadata(path).map(|m| m.len()).ok();
    let said = up_text.matches(UPLOAD).count();
    checks.check(
        VM,
        "the image is uploaded once to the remote host's images pool",
        said == 2 && size(&uploaded).is_some() && size(&uploaded) == size(&cached),
        &format!(
            "`up` says `{UPLOAD}` as the one upload starts and ends; {} as large as the cached image",
            uploaded.display()
        ),
        &format!(
            "said {said} times; uploaded {:?} bytes, cached {:?}",
            size(&uploaded),
            size(&cached)
        ),
    );
}

/// Every disk of the domain (the seed too) is a `type='file'` disk whose
/// path is a volume of the guest's pool; the root overlay is backed by the
/// uploaded image.
fn check_volumes(checks: &mut Checks, remote: &RemoteLab, lab: &Lab) {
    let xml = system_virsh(&["dumpxml", &remote.domain()]);
    let disks = disk_sources(&xml);
    let pool = remote
        .pools()
        .into_iter()
        .find(|(_, path)| *path == remote.volume_dir());
    let volumes: Vec<String> = pool.as_ref().map_or_else(Vec::new, |(name, _)| {
        system_virsh(&["vol-list", name])
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1).map(str::to_string))
            .collect()
    });
    let image = remote.images_dir().join(&lab.image_file);
    let backings: Vec<Option<PathBuf>> = disks.iter().map(|d| volume_backing(&d.path)).collect();
    let backed = backings.contains(&Some(image));
    let by_path = disks.len() >= 2
        && disks
            .iter()
            .all(|disk| disk.kind == "file" && volumes.contains(&disk.path));
    checks.check(
        VM,
        "the guest's disks and seed are volumes of its pool, attached by path",
        by_path && backed,
        &format!(
            "root disk and seed as <disk type='file'> with paths listed by `virsh vol-list` of the pool at {}; the root's backing store the uploaded image",
            remote.volume_dir().display()
        ),
        &format!(
            "disks {disks:?} backed by {backings:?}; pool {pool:?} with volumes {volumes:?}"
        ),
    );
}

/// `up --wait` saw the guest's SSH through the host's `ssh -W` hop.
fn check_wait(checks: &mut Checks, remote: &RemoteLab, up: &Output, up_text: &str) {
    let hop = format!("ProxyCommand=ssh -W %h:%p -p {}", remote.remote.port);
    let answered = up_text
        .lines()
        .find(|line| line.starts_with(&format!("{VM} answers on SSH after ")));
    checks.check(
        VM,
        "`up --wait` reaches the remote guest's SSH through the ProxyCommand",
        up.status.success() && answered.is_some_and(|line| line.contains(&hop)),
        &format!("exit 0 and `{VM} answers on SSH after Ns: ssh -o '{hop} ...' -p PORT {USER}@127.0.0.1`"),
        up_text,
    );
}

/// `lvlab ssh far -- hostname` answers with its name, through the hop.
fn check_ssh(checks: &mut Checks, remote: &RemoteLab) {
    // sshd starts after cloud-init made the user; a few tries absorb a
    // slow first handshake through two SSH hops under TCG.
    let mut out = remote.lvlab(&["ssh", VM, "--", "hostname"]);
    for _ in 1..3 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_secs(5));
        out = remote.lvlab(&["ssh", VM, "--", "hostname"]);
    }
    checks.check(
        VM,
        "`lvlab ssh VM -- hostname` answers from the remote guest",
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == VM,
        &format!("exit 0 and `{VM}`"),
        &text(&out),
    );
}

/// `status --json`: running, its SSH on the host's loopback via the host.
fn check_status(checks: &mut Checks, remote: &RemoteLab) {
    let out = remote.lvlab(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let row = &rows[0];
    let hop = format!("ssh -W %h:%p -p {}", remote.remote.port);
    checks.check(
        VM,
        "`lvlab status` shows the remote guest running, its SSH via the host",
        out.status.success()
            && row["state"] == "running"
            && row["ssh"].as_str().is_some_and(|ssh| {
                ssh.starts_with("127.0.0.1:") && ssh.ends_with(" via 127.0.0.1")
            })
            && row["ssh_proxy_command"]
                .as_str()
                .is_some_and(|proxy| proxy.starts_with(&hop)),
        &format!(
            "state `running`, ssh `127.0.0.1:PORT via 127.0.0.1`, ssh_proxy_command `{hop} ...`"
        ),
        &text(&out),
    );
}

/// `destroy --force` leaves no domain, volume or pool of the machine; then
/// `images clean --force` removes the upload no machine boots any more.
fn check_destroy(checks: &mut Checks, remote: &RemoteLab, lab: &Lab) {
    let destroy = remote.lvlab(&["destroy", "--force"]);
    let pools: Vec<(String, PathBuf)> = remote
        .pools()
        .into_iter()
        .filter(|(_, path)| *path != remote.images_dir())
        .collect();
    let defined = remote.domain_defined();
    let volume_dir = remote.volume_dir();
    checks.check(
        VM,
        "`destroy --force` leaves no domain, volume or pool of the remote guest",
        destroy.status.success() && !defined && pools.is_empty() && !volume_dir.exists(),
        &format!(
            "exit 0, no domain {}, no pool but the images pool, no {}",
            remote.domain(),
            volume_dir.display()
        ),
        &format!(
            "domain left: {defined}; pools left: {pools:?}; directory left: {}\n{}",
            volume_dir.exists(),
            text(&destroy)
        ),
    );
    // An upload stays while a machine of the manifest on that host boots
    // it: `far` now boots another image (never fetched).
    let absent = remote.dir.join("absent.qcow2");
    remote
        .manifest(lab, "other")
        .image("other", |i| i.url(absent.display()))
        .write(&remote.dir);
    let clean = remote.lvlab(&["images", "clean", "--force"]);
    let uploaded = remote.images_dir().join(&lab.image_file);
    checks.check(
        VM,
        "`images clean --force` removes the upload no machine on the remote host boots",
        clean.status.success() && !uploaded.exists() && lab.cache().join(&lab.image_file).is_file(),
        &format!("exit 0, no {}, the cached image kept", uploaded.display()),
        &format!("upload left: {}\n{}", uploaded.exists(), text(&clean)),
    );
}

/// A `<disk>` of a domain's XML.
#[derive(Debug)]
struct Disk {
    /// Its `type` attribute (`file`, `volume`, ...).
    kind: String,
    path: String,
}

fn disk_sources(xml: &str) -> Vec<Disk> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name("disk"))
        .map(|disk| Disk {
            kind: disk.attribute("type").unwrap_or("").to_string(),
            path: disk
                .children()
                .find(|n| n.has_tag_name("source"))
                .and_then(|s| s.attribute("file"))
                .unwrap_or("")
                .to_string(),
        })
        .collect()
}

/// The backing file libvirt reports for the volume at `path`.
fn volume_backing(path: &str) -> Option<PathBuf> {
    text_at(
        &system_virsh(&["vol-dumpxml", path]),
        &["backingStore", "path"],
    )
}

/// The directory of the host's pool `name`.
fn pool_path(name: &str) -> Option<PathBuf> {
    text_at(&system_virsh(&["pool-dumpxml", name]), &["target", "path"])
}

/// The text of the first `outer`/`inner` element of `xml`, as a path.
fn text_at(xml: &str, [outer, inner]: &[&str; 2]) -> Option<PathBuf> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let text = doc
        .descendants()
        .find(|n| n.has_tag_name(*outer))?
        .children()
        .find(|n| n.has_tag_name(*inner))?
        .text()?;
    Some(PathBuf::from(text))
}
