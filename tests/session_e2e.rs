//! The classic commands on a real QEMU through `qemu:///session` (TCG, no
//! NIC or user-mode NICs, a tiny local image): up, status, plan, down,
//! destroy; an apply killed half-way converges on the next run; a second
//! apply waits for the first one's lock; a replacement; an apply that
//! downloads and verifies its image itself.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/session_lab.rs"]
mod session_lab;
#[path = "support/tiny_image.rs"]
mod support;
use lab_manifest::LabManifest;
use session_lab::SessionLab;
use support::tiny_image;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The URI as libvirt reports it, which names the locks.
const SESSION: &str = "qemu:///session";

/// One machine without a NIC.
const ONE: &str = "      - vm_name: one\n        interfaces: []\n";

impl SessionLab {
    fn new(name: &str) -> Self {
        Self::with(
            name,
            "      - vm_name: one
        interfaces: []
      - vm_name: two
        interfaces: [{network_type: user}]
      - vm_name: three
        interfaces: []
        disks: [{name: root}, {name: data, size: 8M}]
",
        )
    }

    /// A lab of `machines` whose image is already in the cache.
    fn with(name: &str, machines: &str) -> Self {
        let lab = Self::empty(name);
        lab.cache_tiny_image();
        lab.write_manifest(machines);
        lab
    }

    /// The lab's manifest with `machines` (YAML lines), no console password.
    fn manifest_of(&self, machines: &str) -> LabManifest {
        self.manifest()
            .defaults(|d| d.no_password())
            .machines_yaml(machines)
    }

    fn write_manifest(&self, machines: &str) {
        self.manifest_of(machines).write(self.dir.path());
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = run::lvlab(self.dir.path());
        command.args(args);
        command
    }

    /// `lvlab plan --detailed-exitcode` finds nothing to do.
    #[track_caller]
    fn assert_converged(&self) {
        let plan = self.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&plan.stdout)
        );
    }

    fn vms(&self) -> PathBuf {
        self.dir.path().join("vms")
    }

    fn domains(&self) -> Vec<String> {
        let out = Command::new("virsh")
            .args(["-c", "qemu:///session", "list", "--all", "--name"])
            .output()
            .expect("virsh (libvirt-clients) is installed by scripts/setup.sh");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(&format!("_{}", self.env)))
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn up_status_plan_down_destroy_on_real_qemu() {
    let lab = SessionLab::new("e2e");
    let up = lab.ok(&["up", "--all"]);
    assert!(
        up.contains("Apply complete! Resources: 3 added, 0 changed, 0 destroyed."),
        "{up}"
    );
    assert_eq!(lab.domains().len(), 3);

    let status = lab.ok(&["status"]);
    assert_eq!(
        status.lines().filter(|l| l.contains(" running ")).count(),
        3,
        "{status}"
    );

    lab.assert_converged();

    // The image holds no OS to answer ACPI: the guests are powered off
    // after the timeout, which is what --force is for.
    let down = lab.ok(&["down", "--timeout", "1", "--force"]);
    assert!(down.contains("Resources: 0 added, 3 changed"), "{down}");
    let status = lab.ok(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "shut off"),
        "{status}"
    );

    let destroy = lab.ok(&["destroy", "--force"]);
    assert!(destroy.contains("3 destroyed"), "{destroy}");
    assert!(lab.domains().is_empty());
    assert!(!lab.vms().join(&lab.env).exists(), "no file left behind");
}

#[test]
fn an_apply_killed_half_way_converges_on_the_next_run() {
    let lab = SessionLab::new("kill");
    let mut child = lab
        .command(&["up", "--all", "--parallelism", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Kill it as soon as the first action is under way.
    while let Some(Ok(line)) = lines.next() {
        if line.ends_with("...") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let up = lab.ok(&["up", "--all"]);
    assert!(up.contains("Apply complete!"), "{up}");
    lab.assert_converged();
    assert_eq!(lab.domains().len(), 3);
}

#[test]
fn a_second_apply_waits_for_the_lock_then_names_the_holder() {
    let lab = SessionLab::new("lock");
    let held = hold_lock(&lab);
    let start = Instant::now();
    let out = lab.run(&["up", "--all", "--lock-timeout", "1"]);
    let waited = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        waited >= Duration::from_secs(1),
        "gave up after {waited:?}, not after --lock-timeout 1"
    );
    assert!(
        stderr.contains(&format!("another lvlab (PID {})", std::process::id())),
        "{stderr}"
    );
    assert!(lab.domains().is_empty(), "nothing was done");
    drop(held);
    lab.ok(&["up", "--all"]);
    let lock = run::state_dir().join(lvlab::apply::lock::lock_file_name(SESSION, &lab.env));
    assert!(lock.exists());
    assert!(!lab.vms().join(format!("{}.lock", lab.env)).exists());
    // Removing it could let two applies lock two different files.
    lab.ok(&["destroy", "--force"]);
    assert!(lock.exists(), "the lock file stays after destroy");
}

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///session"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_disk_and_nic_is_attached_and_cleanup_keeps_foreign_files() {
    let lab = SessionLab::with(
        "dev",
        "      - vm_name: full
        disks: [{name: root}, {name: data, size: 8M}, {name: logs, size: 4M}]
        interfaces: [{network_type: user}, {name: mgmt, network_type: passt, ssh_port: auto}]
",
    );
    lab.ok(&["up", "--all"]);
    let domain = format!("full_{}", lab.env);
    let disks = virsh(&["domblklist", &domain]);
    for target in ["vda", "vdb", "vdc", "vdd"] {
        assert!(disks.contains(target), "{target} in\n{disks}");
    }
    assert!(disks.contains("cidata.iso"), "{disks}");
    let nics = virsh(&["domiflist", &domain]);
    let manifest = lab.dir.path().join("Lvlab.yml");
    let desired = lvlab::manifest::load(&manifest, &lvlab::manifest::HostSettings::none()).unwrap();
    for nic in &desired.environments[0].machines[0].interfaces {
        assert!(
            nics.contains(&nic.mac.to_string()),
            "{} in\n{nics}",
            nic.mac
        );
    }
    let status = lab.ok(&["status"]);
    assert!(status.contains("127.0.0.1:"), "the passt forward: {status}");

    // The blank image answers no ACPI request: --force powers it off.
    let out = lab.run(&["down", "--timeout", "2", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("did not stop within 2s; powering it off"),
        "{stderr}"
    );

    let vm_dir = lab.vms().join(&lab.env).join("full");
    std::fs::write(vm_dir.join("notes.txt"), "mine").unwrap();
    let out = lab.run(&["destroy", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notes.txt") && stderr.contains("lvlab did not make it"),
        "reported: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(vm_dir.join("notes.txt")).unwrap(),
        "mine"
    );
    let left: Vec<_> = std::fs::read_dir(&vm_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["notes.txt"], "every file lvlab made is gone");
    assert!(lab.domains().is_empty());
}

#[test]
fn a_kvm_guest_that_cannot_run_here_says_to_use_tcg() {
    let lab = SessionLab::with(
        "kvm",
        "      - vm_name: fast\n        domain_type: kvm\n        interfaces: []\n",
    );
    let out = lab.run(&["up", "--all"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // A host where KVM works: the guest runs.
        assert!(lab.ok(&["status"]).contains(" running "), "{stdout}");
    } else {
        assert!(
            stderr.contains("set `domain_type: qemu`"),
            "{stdout}\n{stderr}"
        );
    }
}

#[test]
fn wait_gives_up_naming_the_machines_without_ssh() {
    let lab = SessionLab::with(
        "wait",
        "      - vm_name: mute\n        interfaces: [{network_type: passt, ssh_port: auto}]\n      - vm_name: nonic\n        interfaces: []\n",
    );
    let out = lab.run(&["up", "--all", "--wait", "--wait-timeout", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("nonic: no SSH endpoint"), "{stdout}");
    assert!(
        stderr.contains("not reachable on SSH within 3s: mute (127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn shared_directories_start_with_virtiofs_and_missing_sources_stop_the_plan() {
    let share = tempfile::tempdir().unwrap();
    let lab = SessionLab::with(
        "share",
        &format!(
            "      - vm_name: files\n        interfaces: [{{network_type: passt}}]\n        shared_directories: [{{source: {}, mount_tag: data}}]\n",
            share.path().display()
        ),
    );
    lab.ok(&["up", "--all"]);
    let status = lab.ok(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(rows[0]["state"], "running");
    assert_eq!(rows[0]["mount_tags"], serde_json::json!(["data"]));
    let xml = virsh(&["dumpxml", &format!("files_{}", lab.env)]);
    assert!(
        xml.contains("virtiofs") && xml.contains("<target dir='data'/>"),
        "{xml}"
    );
    lab.ok(&["destroy", "--force"]);

    let gone = share.path().display().to_string();
    drop(share);
    let out = lab.run(&["plan"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("shares {gone}, which does not exist")),
        "{stderr}"
    );
}

#[test]
fn a_second_apply_waits_until_the_holder_releases_the_lock() {
    let lab = SessionLab::with("lockwait", ONE);
    let held = hold_lock(&lab);
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        drop(held);
    });
    let start = Instant::now();
    let up = lab.ok(&["up", "--all", "--lock-timeout", "30"]);
    let took = start.elapsed();
    holder.join().unwrap();
    assert!(up.contains("Apply complete! Resources: 1 added"), "{up}");
    assert!(
        took >= Duration::from_millis(1900),
        "applied after {took:?}, while the lock was held for 2 s"
    );
    assert!(
        took < Duration::from_secs(25),
        "took {took:?}: it did not go ahead once the lock was free"
    );
    assert_eq!(lab.domains().len(), 1);
}

#[test]
fn a_replacement_is_applied_only_with_replace_and_makes_a_new_domain() {
    let lab = SessionLab::with("repl", ONE);
    lab.ok(&["up", "--all"]);
    let domain = format!("one_{}", lab.env);
    let uuid = virsh(&["domuuid", &domain]);

    // A new disk needs a new machine.
    lab.write_manifest(
        "      - vm_name: one\n        interfaces: []\n        disks: [{name: root}, {name: data, size: 8M}]\n",
    );
    let plan = lab.ok(&["plan"]);
    assert!(
        plan.contains("must be replaced (not applied without --replace)"),
        "{plan}"
    );
    lab.ok(&["apply", "--auto-approve"]);
    assert_eq!(
        virsh(&["domuuid", &domain]),
        uuid,
        "untouched without --replace"
    );
    // vda the boot disk, vdb the seed.
    assert!(!virsh(&["domblklist", &domain]).contains("vdc"));

    let out = lab.ok(&["apply", "--replace", "one", "--auto-approve"]);
    assert!(
        out.contains("Apply complete! Resources: 1 added, 0 changed, 1 destroyed."),
        "{out}"
    );
    assert_ne!(virsh(&["domuuid", &domain]), uuid, "a new domain");
    // vdb the new disk, vdc the seed.
    let disks = virsh(&["domblklist", &domain]);
    assert!(disks.contains("vdc"), "{disks}");
    assert_eq!(virsh(&["domstate", &domain]).trim(), "running");
    lab.assert_converged();
}

#[test]
fn apply_downloads_and_verifies_the_image_as_a_step_of_the_plan() {
    let server = http::Server::start();
    let lab = SessionLab::empty("fetch");
    let published = lab.dir.path().join("published/tiny.qcow2");
    tiny_image(&published, "16M");
    let bytes = std::fs::read(&published).unwrap();
    let digest = run::sha256_hex(&bytes);
    server.put("img/tiny.qcow2", bytes.clone());
    server.put("img/SHA256SUMS", format!("{digest}  tiny.qcow2\n"));
    lab.manifest_of(ONE)
        .image("tiny", |i| {
            i.url(server.url("img/tiny.qcow2"))
                .checksum(server.url("img/SHA256SUMS"), "sha256")
        })
        .write(lab.dir.path());
    let plan = lab.ok(&["plan"]);
    assert!(
        plan.contains("# image tiny will be downloaded and verified"),
        "{plan}"
    );

    let up = lab.ok(&["up", "--all"]);
    let lines: Vec<&str> = up.lines().collect();
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{up}"))
    };
    let downloaded = position("image.tiny: download image, verify checksum: done after");
    assert!(downloaded < position("create disk"), "{up}");
    assert!(up.contains("Apply complete!"), "{up}");

    let cache = lab.dir.path().join("cache/cloud-images");
    assert_eq!(std::fs::read(cache.join("tiny.qcow2")).unwrap(), bytes);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("tiny.qcow2.lvlab.json")).unwrap())
            .unwrap();
    assert_eq!(
        record["files"]["tiny.qcow2"]["verified"], true,
        "{record:#}"
    );
    assert_eq!(
        record["files"]["tiny.qcow2"]["digest"]["hex"],
        digest.as_str(),
        "{record:#}"
    );
    let xml = virsh(&["dumpxml", &format!("one_{}", lab.env)]);
    assert!(
        xml.contains(&format!(
            r#"<lvlab:image key="tiny" digest="sha256:{digest}"/>"#
        )),
        "{xml}"
    );
    assert_eq!(server.requests_for("img/tiny.qcow2").len(), 1);
    lab.assert_converged();
    assert_eq!(server.requests_for("img/tiny.qcow2").len(), 1);
}

#[test]
fn another_checkout_with_the_same_environment_name_never_destroys_this_ones_machine() {
    let first = SessionLab::with("twin", ONE);
    let second = SessionLab::with("twin", "      - vm_name: two\n        interfaces: []\n");
    assert_eq!(first.env, second.env, "one environment name, two manifests");
    first.ok(&["up", "--all"]);
    let one = format!("one_{}", first.env);
    let note = format!(
        "{one} is owned by another lab (machine one of environment {}",
        first.env
    );
    let pruned = second.ok(&["apply", "--prune", "--auto-approve", "--target", "stopped"]);
    assert!(pruned.contains(&note), "{pruned}");
    let destroyed = second.ok(&["destroy", "--force"]);
    assert!(destroyed.contains(&note), "{destroyed}");
    assert_eq!(first.domains(), vec![one.clone()]);
    let disk = first.vms().join(&first.env).join("one/disk0.qcow2");
    assert!(disk.exists(), "its disk is left alone");

    // A third checkout naming `one` is refused, and takes it over with --adopt.
    let third = SessionLab::with("twin", ONE);
    let out = third.run(&["up", "--all"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("owned by another lab") && stderr.contains("--adopt"),
        "{stderr}"
    );
    let adopted = third.ok(&["apply", "--adopt", "--replace", "one", "--auto-approve"]);
    assert!(
        adopted.contains(&format!("--adopt takes {one} over from another lab")),
        "{adopted}"
    );
    let mark = virsh(&["dumpxml", &one]);
    let third_dir = lvlab::domain::canonical_dir(&third.vms().join(&third.env).join("one"));
    assert!(
        mark.contains(&format!(
            "<lvlab:vm-dir>{}</lvlab:vm-dir>",
            third_dir.display()
        )),
        "{mark}"
    );
}

#[test]
fn destroy_undefines_a_domain_that_has_snapshot_metadata() {
    let lab = SessionLab::with("snap", ONE);
    lab.ok(&["apply", "--target", "stopped", "--auto-approve"]);
    let domain = format!("one_{}", lab.env);
    // Plain `virsh undefine` refuses a domain with snapshots.
    virsh(&["snapshot-create-as", &domain, "before"]);
    assert!(virsh(&["snapshot-list", &domain, "--name"]).contains("before"));
    lab.ok(&["destroy", "--force"]);
    assert!(lab.domains().is_empty(), "{:?}", lab.domains());
}

#[test]
fn nic_attachment_and_shared_directory_changes_apply_in_place_and_start() {
    let share = tempfile::tempdir().unwrap();
    let lab = SessionLab::with(
        "inplace",
        "      - vm_name: one\n        interfaces: [{network_type: user}]\n",
    );
    lab.ok(&["up", "--all"]);
    let domain = format!("one_{}", lab.env);
    let uuid = virsh(&["domuuid", &domain]);

    lab.write_manifest(
        &format!(
            "      - vm_name: one\n        interfaces: [{{network_type: passt}}]\n        shared_directories: [{{source: {}, mount_tag: data}}]\n",
            share.path().display()
        ),
    );
    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(text.contains("will be updated in place"), "{text}");
    let applied = lab.ok(&["apply", "--auto-approve"]);
    assert!(
        applied.contains("0 added, 1 changed, 0 destroyed"),
        "{applied}"
    );

    // The redefinition takes effect at the next start.
    lab.ok(&["down", "--timeout", "1", "--force"]);
    lab.ok(&["up", "--all"]);
    let live = virsh(&["dumpxml", &domain]);
    assert!(live.contains("<backend type='passt'"), "{live}");
    assert!(live.contains("<target dir='data'/>"), "{live}");
    assert_eq!(virsh(&["domuuid", &domain]), uuid, "the same domain");
    lab.assert_converged();
}

/// The lab's environment lock, taken here as another lvlab would hold it.
fn hold_lock(lab: &SessionLab) -> lvlab::apply::EnvironmentLock {
    lvlab::apply::EnvironmentLock::acquire(&run::state_dir(), SESSION, &lab.env, Duration::ZERO)
        .unwrap()
}
