//! `storage: pool` on `qemu:///system`, with real QEMU domains (TCG,
//! 128 MiB, no NIC, a tiny blank image: nothing needs to boot): each VM
//! directory becomes a libvirt `dir` pool carrying lvlab's mark, disks and
//! the seed are its volumes, attached by path; `destroy` leaves no volume
//! and no pool; a pool under lvlab's name without the mark is refused and
//! left as it was.
//!
//! The lab lives under `/var/lib/libvirt/lvlab-tests/<name><pid>/` (mode
//! 0755): the system daemon's QEMU runs as `libvirt-qemu`, which cannot
//! read a private temporary directory. The guard destroys the lab and
//! every pool left under that directory, then removes it.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/remote_host.rs"]
mod remote_host;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use lab_manifest::LabManifest;
use lvlab::desired::StorageKind;
use lvlab::domain::LabIdentity;
use lvlab::host::pools::{self, PoolMark, MARK_VOLUME};
use lvlab::libvirt::Connection;
use virt::storage_pool::StoragePool;

const SYSTEM: &str = "qemu:///system";

struct SystemLab {
    dir: PathBuf,
    env: String,
}

impl SystemLab {
    /// An empty lab directory with the tiny image cached.
    fn new(name: &str) -> Self {
        let env = format!("{name}{}", std::process::id());
        let dir = remote_host::system_readable_dir(&env);
        support::tiny_image(&dir.join("cache/cloud-images/tiny.qcow2"), "16M");
        Self { dir, env }
    }

    /// The tiny lab on the system daemon, TCG, 128 MiB, no NIC, pools.
    fn manifest(&self) -> LabManifest {
        LabManifest::tiny(&self.env, SYSTEM, &self.dir)
            .defaults(|d| d.tcg(128).set("storage", "pool"))
    }

    fn run(&self, args: &[&str]) -> Output {
        run::lvlab(&self.dir).args(args).output().unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = run::texts(&out);
        assert!(out.status.success(), "lvlab {args:?}:\n{stdout}\n{stderr}");
        stdout
    }

    fn vm_dir(&self, vm: &str) -> PathBuf {
        self.dir.join("vms").join(&self.env).join(vm)
    }

    fn image(&self) -> PathBuf {
        self.dir.join("cache/cloud-images/tiny.qcow2")
    }

    /// Every pool whose directory is under the lab's.
    fn pools(&self, conn: &Connection) -> Vec<(String, PathBuf)> {
        let all = conn.raw().list_all_storage_pools(0).unwrap();
        all.iter()
            .filter_map(|pool| {
                let target = target(pool)?;
                target
                    .starts_with(&self.dir)
                    .then(|| (pool.name().unwrap(), target))
            })
            .collect()
    }
}

impl Drop for SystemLab {
    fn drop(&mut self) {
        let _ = self.run(&["destroy", "--force"]);
        if let Ok(conn) = Connection::open(SYSTEM) {
            for (name, _) in self.pools(&conn) {
                if let Ok(pool) = conn.raw().lookup_storage_pool_by_name(&name) {
                    let _ = pool.destroy();
                    let _ = pool.undefine();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn target(pool: &StoragePool) -> Option<PathBuf> {
    let xml = pool.xml_desc(0).ok()?;
    let doc = roxmltree::Document::parse(&xml).ok()?;
    let target = doc.descendants().find(|n| n.has_tag_name("target"))?;
    let path = target.children().find(|n| n.has_tag_name("path"))?;
    path.text().map(PathBuf::from)
}

/// `(type, source file)` of each `<disk>` of the domain's definition.
fn disks(conn: &Connection, domain: &str) -> Vec<(String, String)> {
    let domain = conn.raw().lookup_domain_by_name(domain).unwrap();
    let xml = domain.xml_desc(0).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("disk"))
        .map(|disk| {
            let source = disk
                .children()
                .find(|n| n.has_tag_name("source"))
                .and_then(|s| s.attribute("file"))
                .unwrap_or_default();
            (
                disk.attribute("type").unwrap_or_default().to_string(),
                source.to_string(),
            )
        })
        .collect()
}

#[test]
fn a_pool_lab_keeps_each_machines_volumes_in_its_marked_pool_and_destroy_leaves_none() {
    let lab = SystemLab::new("pools");
    lab.manifest()
        .machine("web", |m| {
            m.no_interfaces()
                .set("disks", "[{name: root}, {name: data, size: 8M}]")
        })
        .machine("db", |m| m.no_interfaces().set("disk_strategy", "backing"))
        .write(&lab.dir);
    let up = lab.ok(&["up", "--all"]);
    assert!(up.contains("2 added"), "{up}");

    let conn = Connection::open(SYSTEM).unwrap();
    for (vm, volumes) in [
        ("web", &["cidata.iso", "disk0.qcow2", "disk1.qcow2"][..]),
        ("db", &["cidata.iso", "disk0.qcow2"][..]),
    ] {
        let dir = lab.vm_dir(vm);
        let pool = pools::pool_of_dir(&conn, &dir).expect("a pool per VM directory");
        let label = pools::machine_label(&lab.env, vm);
        assert_eq!(pool.name().unwrap(), pools::pool_name(&label, &dir));
        assert!(pool.is_active().unwrap());
        let mark = pools::read_mark(&conn, &pool).expect("lvlab's mark");
        let wanted = PoolMark::machine(&lab.env, vm, &LabIdentity::of(None, &dir), &dir);
        assert!(wanted.accepts(&mark), "{mark:?}");
        let mut names = pool.list_volumes().unwrap();
        names.sort();
        let mut expected: Vec<&str> = volumes.to_vec();
        expected.push(MARK_VOLUME);
        expected.sort();
        // The records beside them are local files the pool sees too.
        names.retain(|n| expected.contains(&n.as_str()));
        assert_eq!(names, expected, "{vm}");
        // Attached by path, each a volume of the pool; the seed among them.
        let attached = disks(&conn, &format!("{vm}_{}", lab.env));
        assert_eq!(attached.len(), volumes.len(), "{attached:?}");
        for (kind, source) in &attached {
            assert_eq!(kind, "file", "{attached:?}");
            let name = Path::new(source).file_name().unwrap().to_str().unwrap();
            assert_eq!(Path::new(source).parent(), Some(dir.as_path()));
            let volume = pool.lookup_storage_vol_by_name(name).unwrap();
            assert_eq!(volume.path().unwrap(), *source);
        }
    }
    // The overlay is backed by the cached image (this host's images pool
    // is the cache directory).
    let db = pools::pool_of_dir(&conn, &lab.vm_dir("db")).unwrap();
    let overlay = db.lookup_storage_vol_by_name("disk0.qcow2").unwrap();
    let xml = overlay.xml_desc(0).unwrap();
    assert!(
        xml.contains(&format!("<path>{}</path>", lab.image().display())),
        "{xml}"
    );
    // The copy and the blank disk stand alone.
    let web = pools::pool_of_dir(&conn, &lab.vm_dir("web")).unwrap();
    for name in ["disk0.qcow2", "disk1.qcow2"] {
        let xml = web
            .lookup_storage_vol_by_name(name)
            .unwrap()
            .xml_desc(0)
            .unwrap();
        assert!(!xml.contains("<backingStore>"), "{name}: {xml}");
    }

    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    let (stdout, stderr) = run::texts(&plan);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan after apply:\n{stdout}\n{stderr}"
    );

    lab.ok(&["destroy", "--force"]);
    let left: Vec<_> = lab
        .pools(&conn)
        .into_iter()
        .filter(|(_, target)| target.starts_with(lab.dir.join("vms")))
        .collect();
    assert!(left.is_empty(), "pools left: {left:?}");
    for vm in ["web", "db"] {
        assert!(!lab.vm_dir(vm).exists(), "{vm}'s directory is gone");
    }
    assert!(
        !lab.dir.join("vms").join(&lab.env).exists(),
        "and the environment's"
    );
}

#[test]
fn a_machines_stopped_pool_reads_as_holding_nothing_and_apply_starts_it_again() {
    // The plan refreshes a machine's pool without asking first whether it
    // runs (one round trip fewer per machine on a remote host): a stopped
    // one refuses the refresh and lists nothing: the machine lost its boot
    // disk, so it must be replaced, and the replacement starts the pool.
    let lab = SystemLab::new("stopped");
    lab.manifest()
        .machine("web", |m| m.no_interfaces().set("disk_strategy", "backing"))
        .write(&lab.dir);
    lab.ok(&["apply", "--auto-approve", "--target", "stopped"]);
    let conn = Connection::open(SYSTEM).unwrap();
    let pool = pools::find_dir_pool(&conn, &lab.vm_dir("web")).expect("the machine's pool");
    pool.destroy().unwrap();

    let plan = lab.ok(&["plan", "--target", "stopped"]);
    assert!(plan.contains("must be replaced"), "{plan}");
    lab.ok(&[
        "apply",
        "--auto-approve",
        "--target",
        "stopped",
        "--replace",
        "web",
    ]);
    assert!(pool.is_active().unwrap(), "apply started the pool again");
    let after = lab.run(&["plan", "--target", "stopped", "--detailed-exitcode"]);
    let (stdout, stderr) = run::texts(&after);
    assert_eq!(after.status.code(), Some(0), "{stdout}\n{stderr}");
}

#[test]
fn a_pool_under_lvlabs_name_without_its_mark_is_refused_and_left_alone() {
    let lab = SystemLab::new("planted");
    lab.manifest()
        .machine("web", |m| m.no_interfaces())
        .write(&lab.dir);
    let dir = lab.vm_dir("web");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious"), "keep").unwrap();
    let name = pools::pool_name(&pools::machine_label(&lab.env, "web"), &dir);
    let conn = Connection::open(SYSTEM).unwrap();
    let xml = format!(
        "<pool type='dir'><name>{name}</name><target><path>{}</path></target></pool>",
        dir.display()
    );
    let planted = conn.raw().define_storage_pool_xml(&xml, 0).unwrap();
    planted.create(0).unwrap();

    let out = lab.run(&["up", "--all"]);
    let (stdout, stderr) = run::texts(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    let text = format!("{stdout}\n{stderr}");
    assert!(
        text.contains(&format!("storage pool {name} ({})", dir.display())),
        "{text}"
    );
    assert!(text.contains("is not lvlab's"), "{text}");

    let found = conn.raw().lookup_storage_pool_by_name(&name).unwrap();
    assert!(found.is_active().unwrap(), "still running");
    found.refresh(0).unwrap();
    assert!(
        found.lookup_storage_vol_by_name(MARK_VOLUME).is_err(),
        "not marked"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("precious")).unwrap(),
        "keep"
    );
    let volumes = found.list_volumes().unwrap();
    assert!(
        !volumes.iter().any(|v| v.starts_with("disk")),
        "{volumes:?}"
    );

    // Nor does `destroy` touch it: it says why it stops there.
    let out = lab.run(&["destroy", "--force"]);
    let (stdout, stderr) = run::texts(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("is not lvlab's"), "{stdout}\n{stderr}");
    let found = conn.raw().lookup_storage_pool_by_name(&name).unwrap();
    assert!(found.is_active().unwrap(), "still running after destroy");
    assert_eq!(
        std::fs::read_to_string(dir.join("precious")).unwrap(),
        "keep"
    );
}

#[test]
fn a_remote_hosts_volumes_are_made_uploaded_and_removed_through_libvirt() {
    let lab = SystemLab::new("remote");
    let remote = remote_host::RemoteHost::start();
    let host = lvlab::host::Host::open(&remote.uri("system")).unwrap();
    let dir = lab.dir.join("volumes/lab/web");
    let mark = PoolMark::machine("lab", "web", &LabIdentity::LabId("ci".into()), &dir);
    let volumes = host.storage(StorageKind::Pool, mark.clone());
    volumes
        .create_blank(&dir.join("disk1.qcow2"), 8 << 20)
        .unwrap();
    let seed = support::image_bytes(7, 300 << 10);
    volumes
        .write_volume(&dir.join("cidata.iso"), &seed)
        .unwrap();
    let mut names = volumes.volume_names(&dir);
    names.sort();
    assert_eq!(names, ["cidata.iso", "disk1.qcow2"]);
    assert!(volumes.volume_exists(&dir.join("disk1.qcow2")));

    // What arrived is what was sent, read back through a download stream.
    let conn = host.connection();
    let pool = pools::pool_of_dir(&conn, &dir).expect("the machine's pool");
    let iso = pool.lookup_storage_vol_by_name("cidata.iso").unwrap();
    assert!(pools::download(&conn, &iso, seed.len() as u64).unwrap() == seed);
    assert!(mark.accepts(&pools::read_mark(&conn, &pool).unwrap()));

    // A second machine of the environment keeps the environment's
    // directory until it goes too.
    let db_dir = lab.dir.join("volumes/lab/db");
    let db_mark = PoolMark::machine("lab", "db", &LabIdentity::LabId("ci".into()), &db_dir);
    let db = host.storage(StorageKind::Pool, db_mark);
    db.create_blank(&db_dir.join("disk0.qcow2"), 8 << 20)
        .unwrap();

    let left = volumes.remove_volumes(&dir, &names).unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(pools::pool_of_dir(&conn, &dir).is_none(), "the pool went");
    assert!(!dir.exists(), "and its directory");
    assert!(lab.dir.join("volumes/lab").exists(), "db is still there");
    let left = db.remove_volumes(&db_dir, &["disk0.qcow2".into()]).unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        !lab.dir.join("volumes/lab").exists(),
        "the environment's directory, emptied by its last machine"
    );
    assert!(
        lab.dir.join("volumes").exists(),
        "but not the base directory"
    );
    assert!(
        remote.logins() > 0,
        "not through the test sshd:\n{}",
        remote.log()
    );
}
