//! plan, apply and the classic commands as a user runs them, against
//! libvirt's test driver opened on the hypervisor states in `state/`. Each
//! run of the binary opens the state file afresh.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/schema_names.rs"]
mod schema_names;
#[path = "support/tiny_image.rs"]
mod support;
#[path = "support/terminal.rs"]
mod terminal;
use lab_manifest::LabManifest;
use schema_names::schema_names;
use support::tiny_image;
use terminal::on_terminal;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Lab {
    dir: tempfile::TempDir,
    /// The manifest's `lab_id`.
    lab_id: Option<&'static str>,
}

impl Lab {
    /// A manifest for machines `web` and `db` of environment `lab` on the
    /// given state file, with the image already in the cache.
    fn on(state: &str) -> Self {
        Self::with_lab_id(state, None)
    }

    /// [`Lab::on`] a state file whose marks record `lab_id: state-files`
    /// (their VM directories are fixed paths, not this lab's).
    fn claiming(state: &str) -> Self {
        Self::with_lab_id(state, Some("state-files"))
    }

    fn with_lab_id(state: &str, lab_id: Option<&'static str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
        let lab = Self { dir, lab_id };
        lab.write_manifest(state, 256);
        lab
    }

    fn write_manifest(&self, state: &str, memory: u32) {
        let state = format!("{}/state/{state}", env!("CARGO_MANIFEST_DIR"));
        self.write_manifest_on(Path::new(&state), memory);
    }

    /// The manifest on the test-driver host described by `state` (absolute).
    fn write_manifest_on(&self, state: &Path, memory: u32) {
        let uri = format!("test://{}", state.display());
        let mut manifest = LabManifest::tiny("lab", &uri, self.dir.path())
            .defaults(|d| d.memory(memory).cpu(1).user_network().no_password())
            .machine("web", |m| m)
            .machine("db", |m| m);
        if let Some(id) = self.lab_id {
            manifest = manifest.lab_id(id);
        }
        manifest.write(self.dir.path());
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("Lvlab.yml")
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lvlab"));
        command
            .env("LVLAB_NO_HOST_CONFIG", "1")
            .env(
                "LVLAB_STATE_DIR",
                std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
            )
            .env_remove("LVLAB_LOG")
            .arg("-f")
            .arg(self.manifest())
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// What `lvlab args` shows on a terminal: stderr alone, stdout alone
    /// (when `stdout`) goes to a file whose text is returned second.
    fn on_terminal(&self, args: &[&str]) -> (String, String) {
        let mut command = self.command(args);
        command.env_remove("NO_COLOR");
        let stdout = self.path().join("stdout.txt");
        let (status, stderr) = on_terminal(&command, Some(&stdout));
        let stdout = std::fs::read_to_string(stdout).unwrap();
        assert!(status.success(), "{args:?}\n{stdout}\n{stderr}");
        (stderr, stdout)
    }

    /// Moves the cached image to its `image_url`, so that plans fetch it.
    fn uncache_image(&self) {
        std::fs::create_dir_all(self.path().join("source")).unwrap();
        std::fs::rename(
            self.path().join("cache/cloud-images/tiny.qcow2"),
            self.path().join("source/tiny.qcow2"),
        )
        .unwrap();
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_on_an_empty_host_and_the_detailed_exit_code() {
    let lab = Lab::on("empty.xml");
    let out = lab.run(&["plan"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("  # web (web_lab) will be created\n+ lab.web\n      # (because web_lab does not exist)"), "{stdout}");
    assert!(
        stdout.contains(
            "Note: web: the osinfo database does not know os_variant tiny; it is recorded as"
        ),
        "the OS-variant fallback is a note: {stdout}"
    );
    assert!(
        stdout.ends_with("Plan: 2 to add, 0 to change, 0 to destroy.\n"),
        "{stdout}"
    );
    assert_eq!(
        lab.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(2)
    );
    assert_eq!(
        lab.run(&["plan", "nope", "--detailed-exitcode"])
            .status
            .code(),
        Some(1),
        "errors are 1"
    );
}

#[test]
fn plan_json_has_the_documented_shape() {
    let lab = Lab::on("empty.xml");
    let out = lab.run(&["plan", "--json", "web"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["target"], "running");
    assert_eq!(
        doc["summary"],
        serde_json::json!({"add": 1, "change": 0, "destroy": 0})
    );
    for action in doc["actions"].as_array().unwrap() {
        for key in [
            "id",
            "address",
            "action",
            "description",
            "depends_on",
            "resource",
        ] {
            assert!(!action[key].is_null(), "{key} in {action}");
        }
    }
    assert_eq!(doc["changes"][0]["change"], "create");
    // Facts fixed when the plan is made: the test driver offers only its
    // own domain type, and a guest that is not KVM's needs no KVM watch.
    let action = |name: &str| {
        doc["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == name)
            .unwrap_or_else(|| panic!("no {name} in {doc:#}"))
            .clone()
    };
    assert_eq!(action("define_domain")["domain_type"], "test");
    assert_eq!(action("start_domain")["watch"], "none");
}

#[test]
fn a_foreign_domain_with_our_name_stops_the_plan() {
    let lab = Lab::on("foreign.xml");
    let out = lab.run(&["plan"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("domain web_lab exists") && stderr.contains("was not made by lvlab"),
        "{stderr}"
    );
}

#[test]
fn adopt_never_takes_over_an_unmarked_domain() {
    let lab = Lab::on("foreign.xml");
    for args in [
        &["plan", "--adopt"][..],
        &["apply", "--adopt", "--auto-approve"],
    ] {
        let out = lab.run(args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}");
        assert!(
            stderr.contains("domain web_lab exists") && stderr.contains("was not made by lvlab"),
            "{args:?}: {stderr}"
        );
        assert!(!stdout.contains("takes web_lab over"), "{args:?}: {stdout}");
    }
}

#[test]
fn a_partly_deployed_environment() {
    let lab = Lab::claiming("partly-deployed.xml");
    let out = lab.run(&["plan", "--detailed-exitcode"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stdout.contains("# web (web_lab) must be replaced (not applied without --replace)"),
        "{stdout}"
    );
    assert!(stdout.contains("disk0.qcow2 is missing"), "{stdout}");
    assert!(stdout.contains("# db (db_lab) will be created"), "{stdout}");
    assert!(stdout.contains("Note: web needs replacing"), "{stdout}");

    // With --replace, the replacement destroys before it creates: disk and
    // seed wait for the old files' removal, which waits for the undefine.
    let json = plan_json(&lab, &["--replace", "web"]);
    let actions = json["actions"].as_array().unwrap();
    let id_of = |name: &str| {
        actions
            .iter()
            .find(|a| a["address"] == "lab.web" && a["action"] == name)
            .unwrap_or_else(|| panic!("{name} in {json:#}"))["id"]
            .clone()
    };
    let depends = |name: &str| {
        let id = id_of(name);
        actions.iter().find(|a| a["id"] == id).unwrap()["depends_on"].clone()
    };
    for create in ["create_disk", "build_seed"] {
        assert_eq!(
            depends(create),
            serde_json::json!([id_of("remove_files")]),
            "{create}"
        );
    }
    assert_eq!(
        depends("remove_files"),
        serde_json::json!([id_of("undefine_domain")])
    );
    let absent = lab.run(&["plan", "--target", "absent"]);
    let (stdout, _) = text(&absent);
    assert!(
        stdout.contains("- lab.web") && !stdout.contains("lab.db"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("Plan: 0 to add, 0 to change, 1 to destroy.\n"),
        "{stdout}"
    );
}

#[test]
fn orphans_are_destroyed_only_with_prune_and_foreign_domains_never() {
    let lab = Lab::claiming("orphaned.xml");
    let (stdout, _) = text(&lab.run(&["plan"]));
    assert!(
        stdout.contains("Note: old_lab is lvlab's but old is no longer in the manifest"),
        "{stdout}"
    );
    assert!(!stdout.contains("- lab.old"), "{stdout}");
    let (stdout, _) = text(&lab.run(&["plan", "--prune"]));
    assert!(stdout.contains("  # old (old_lab) will be destroyed\n- lab.old\n      # (because old_lab is not in the manifest)"), "{stdout}");
    assert!(!stdout.contains("mail"), "{stdout}");
}

#[test]
fn apply_needs_a_terminal_or_auto_approve_and_then_converges() {
    let lab = Lab::on("empty.xml");
    let out = lab.run(&["apply"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("standard input is not a terminal; pass --auto-approve"),
        "{stderr}"
    );
    assert!(!lab.path().join("vms/lab/web").exists(), "nothing was done");

    let out = lab.run(&["apply", "--auto-approve"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("lab.web: define domain: done after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Apply complete! Resources: 2 added, 0 changed, 0 destroyed."),
        "{stdout}"
    );
    assert!(lab.path().join("vms/lab/web/disk0.qcow2").is_file());

    // The test driver forgets the domains when the binary exits; a host
    // holding the definitions apply wrote, running, must plan as no change.
    let mut domains = String::new();
    for vm in ["web", "db"] {
        let xml = lab.path().join(format!("vms/lab/{vm}/domain.xml"));
        domains.push_str(&std::fs::read_to_string(xml).unwrap());
    }
    let state = lab.path().join("applied.xml");
    std::fs::write(&state, format!("<node>\n{domains}</node>\n")).unwrap();
    lab.write_manifest_on(&state, 256);
    let out = lab.run(&["plan", "--detailed-exitcode"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("No changes."), "{stdout}");
}

#[test]
fn saved_plans_apply_when_fresh_and_are_refused_when_stale() {
    let lab = Lab::on("empty.xml");
    let plan_file = lab.path().join("lab.plan");
    let out = lab.run(&["plan", "--out", plan_file.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out).0.contains("Saved the plan to"));

    // The manifest changes after the plan was made: refused.
    lab.write_manifest("empty.xml", 512);
    let out = lab.run(&["apply", plan_file.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("Saved plan is stale: the manifest changed"),
        "{stderr}"
    );

    // Back as it was, but the world moved: files appeared in a VM directory.
    lab.write_manifest("empty.xml", 256);
    std::fs::create_dir_all(lab.path().join("vms/lab/db")).unwrap();
    std::fs::write(lab.path().join("vms/lab/db/user-data"), "#cloud-config\n").unwrap();
    let out = lab.run(&["apply", plan_file.to_str().unwrap()]);
    assert!(
        text(&out)
            .1
            .contains("Saved plan is stale: the observed state"),
        "{:?}",
        text(&out)
    );

    // Fresh again: applied without asking.
    std::fs::remove_dir_all(lab.path().join("vms")).unwrap();
    let out = lab.run(&["apply", plan_file.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Apply complete! Resources: 2 added"),
        "{stdout}"
    );
}

#[test]
fn classic_commands_refuse_unknown_and_undeployed_machines() {
    let lab = Lab::claiming("partly-deployed.xml");
    let out = lab.run(&["up", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("no machine `nope`"),
        "{:?}",
        text(&out)
    );
    let out = lab.run(&["down", "db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("db is not deployed"),
        "{:?}",
        text(&out)
    );
    let out = lab.run(&["destroy", "db", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    let out = lab.run(&["destroy", "web"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "asks, and cannot without a terminal"
    );
    assert!(text(&out).1.contains("pass --force"), "{:?}", text(&out));
    let out = lab.run(&["up"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "names or --all: a usage error, which exits 1"
    );
}

#[test]
fn down_stops_deployed_machines_and_destroy_removes_them() {
    let lab = Lab::claiming("partly-deployed.xml");
    let out = lab.run(&["down"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("< lab.web"), "{stdout}");
    assert!(stdout.contains("lab.web: shut down: done"), "{stdout}");
    assert!(!stdout.contains("lab.db"), "down never creates: {stdout}");

    let out = lab.run(&["destroy", "--force"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("lab.web: power off: done")
            && stdout.contains("lab.web: undefine domain: done"),
        "{stdout}"
    );

    // On a host where both machines' files are here, they go from the disk.
    let lab = Lab::on("empty.xml");
    let state = deployed_by_older_lvlab(&lab);
    lab.write_manifest_on(&state, 256);
    for vm in ["web", "db"] {
        assert!(lab
            .path()
            .join(format!("vms/lab/{vm}/disk0.qcow2"))
            .is_file());
    }
    let out = lab.run(&["destroy", "--force"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 destroyed"), "{stdout}");
    assert!(!lab.path().join("vms/lab").exists(), "{stdout}");
    assert!(
        lab.path().join("cache/cloud-images/tiny.qcow2").is_file(),
        "the image cache stays"
    );
}

#[test]
fn status_shows_each_machine_and_a_landing_page_without_manifest() {
    let lab = Lab::claiming("partly-deployed.xml");
    let out = lab.run(&["status", "-o", "wide"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("ENVIRONMENT  MACHINE  DOMAIN"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("web      web_lab  running") && lines[1].contains("tiny (cached)"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("db       db_lab   undeployed"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&lab.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["state"], "running");

    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .arg("-C")
        .arg(empty.path())
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("No Lvlab.yml here."));
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/invalid/unknown_key.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .arg("-f")
        .arg(bad)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn plan_json_uses_only_the_documented_names() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan-json.md"))
            .unwrap();
    let lab = Lab::claiming("partly-deployed.xml");
    let out = lab.run(&["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for action in json["actions"].as_array().unwrap() {
        let name = action["action"].as_str().unwrap();
        assert!(doc.contains(&format!("`{name}`")), "{name} is documented");
    }
    for change in json["changes"].as_array().unwrap() {
        let kind = change["change"].as_str().unwrap();
        assert!(doc.contains(&format!("`{kind}`")), "{kind} is documented");
        for reason in change["reasons"].as_array().unwrap() {
            let name = reason["reason"].as_str().unwrap();
            assert!(doc.contains(&format!("`{name}`")), "{name} is documented");
        }
    }
}

/// A host where an lvlab that recorded no renderer version deployed `web`
/// and `db` of the lab with 256 MiB, their seeds rendered differently from
/// today's rendering. Written here because the marks' spec must match the
/// lab's temporary paths and derived MACs.
fn deployed_by_older_lvlab(lab: &Lab) -> PathBuf {
    let desired =
        lvlab::manifest::load(&lab.manifest(), &lvlab::manifest::HostSettings::none()).unwrap();
    let mut domains = String::new();
    for (index, machine) in desired.environments[0].machines.iter().enumerate() {
        let fields = lvlab::domain::SpecFields::of(machine, "test", "sha256:rendered-before");
        let spec = serde_json::to_string(&fields).unwrap();
        domains.push_str(&format!(
            "  <domain type='test'>
    <name>{domain}</name>
    <uuid>6a1b2c3d-0000-4000-8000-00000000000{index}</uuid>
    <metadata>
      <lvlab:machine xmlns:lvlab='urn:lvlab:machine:1'>
        <lvlab:environment>lab</lvlab:environment>
        <lvlab:vm-name>{vm}</lvlab:vm-name>
        <lvlab:manifest>{manifest}</lvlab:manifest>
        <lvlab:vm-dir>{dir}</lvlab:vm-dir>
        <lvlab:image key='tiny' digest=''/>
        <lvlab:seed digest='sha256:rendered-before'/>
        <lvlab:spec digest='{digest}'>{spec}</lvlab:spec>
      </lvlab:machine>
    </metadata>
    <memory unit='MiB'>256</memory>
    <vcpu>1</vcpu>
    <os><type arch='i686'>hvm</type></os>
    <devices>{devices}</devices>
  </domain>
",
            domain = machine.domain_name,
            vm = machine.vm_name,
            manifest = lab.manifest().display(),
            dir = machine.vm_dir.display(),
            digest = lvlab::domain::spec_digest(&fields),
            devices = older_devices(machine),
        ));
        std::fs::create_dir_all(&machine.vm_dir).unwrap();
        for file in ["disk0.qcow2", "cidata.iso"] {
            std::fs::write(machine.vm_dir.join(file), "").unwrap();
        }
    }
    let state = lab.path().join("older-lvlab.xml");
    std::fs::write(
        &state,
        format!("<node>\n  <memory>4194304</memory>\n{domains}</node>\n"),
    )
    .unwrap();
    state
}

/// The disks, seed and user-mode NICs an older lvlab defined, so the
/// live definition matches what lvlab defines now.
fn older_devices(machine: &lvlab::desired::MachineSpec) -> String {
    let disk = |path: &Path, target: usize, readonly: &str| {
        format!(
            "<disk type='file' device='disk'><source file='{}'/>\
             <target dev='vd{}' bus='virtio'/>{readonly}</disk>",
            path.display(),
            (b'a' + target as u8) as char
        )
    };
    let mut devices: Vec<String> = machine
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| disk(&d.path, i, ""))
        .collect();
    let seed = lvlab::domain::seed_path(machine);
    devices.push(disk(&seed, machine.disks.len(), "<readonly/>"));
    for nic in &machine.interfaces {
        devices.push(format!(
            "<interface type='user'><mac address='{}'/></interface>",
            nic.mac
        ));
    }
    devices.concat()
}

#[test]
fn machines_deployed_by_an_older_lvlab_plan_as_no_change_with_a_note() {
    let lab = Lab::on("empty.xml");
    let state = deployed_by_older_lvlab(&lab);
    lab.write_manifest_on(&state, 256);
    let out = lab.run(&["plan", "--detailed-exitcode"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for vm in ["web", "db"] {
        assert!(
            stdout.contains(&format!(
                "Note: {vm}: cloud-init seed rendered by an older lvlab; `--replace` to re-render"
            )),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("\nNo changes. The lab matches "),
        "{stdout}"
    );
    let out = lab.run(&["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["changes"], serde_json::json!([]), "{json}");
    assert_eq!(json["notes"].as_array().unwrap().len(), 2, "{json}");

    // A real manifest change still plans, as that change alone.
    lab.write_manifest_on(&state, 512);
    let out = lab.run(&["plan", "--detailed-exitcode", "web"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout
            .contains("# (because memory changed 256 MiB -> 512 MiB; takes effect after restart)"),
        "{stdout}"
    );
    assert!(!stdout.contains("cloud-init seed changed"), "{stdout}");
    assert!(
        stdout.ends_with("Plan: 0 to add, 1 to change, 0 to destroy.\n"),
        "{stdout}"
    );
}

#[test]
fn adopt_takes_over_another_labs_domains_and_a_saved_plan_keeps_it() {
    // Marked without a lab_id: another lab's, once the manifest sets one.
    let lab = Lab::with_lab_id("empty.xml", Some("ci"));
    let state = deployed_by_older_lvlab(&lab);
    lab.write_manifest_on(&state, 256);
    let web_dir = lvlab::domain::canonical_dir(&lab.path().join("vms/lab/web"));
    let out = lab.run(&["plan"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "domain web_lab on test://{} is owned by another lab (machine web of environment \
             lab, VM directory {})",
            state.display(),
            web_dir.display()
        )),
        "{stderr}"
    );
    let saved = lab.path().join("adopt.plan");
    let out = lab.run(&["plan", "--adopt", "--out", saved.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("--adopt takes web_lab over from another lab (machine web")
            && stdout.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{stdout}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(plan["selection"]["adopt"], true, "{plan}");
    let out = lab.run(&["apply", saved.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("Apply complete! Resources: 0 added, 2 changed"),
        "{stdout}"
    );
}

#[test]
fn up_takes_over_another_labs_domains_only_with_adopt() {
    let lab = Lab::with_lab_id("empty.xml", Some("ci"));
    let state = deployed_by_older_lvlab(&lab);
    lab.write_manifest_on(&state, 256);
    let out = lab.run(&["up", "--all"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stderr.contains("owned by another lab"), "{stderr}");
    let out = lab.run(&["up", "--all", "--adopt"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("--adopt takes web_lab over from another lab"),
        "{stdout}"
    );
}

fn plan_json(lab: &Lab, args: &[&str]) -> serde_json::Value {
    let out = lab.run(&[&["plan", "--json"], args].concat());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan-json.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every field of `value` at every depth, as `parent.field`.
fn field_names(value: &serde_json::Value, parent: &str, names: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                names.push(format!("{parent}.{key}"));
                field_names(inner, key, names);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                field_names(item, parent, names);
            }
        }
        _ => {}
    }
}

/// Real plans of every kind (create with a download, update with
/// `spec_changed`, replace, start/stop, destroy with `remove_files`, notes)
/// against the strict schema in docs/, which fails on any undocumented field.
#[test]
fn plan_json_matches_the_schema_in_docs() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let mut plans = Vec::new();

    let lab = Lab::on("empty.xml");
    plans.push(("create", plan_json(&lab, &[])));
    lab.uncache_image();
    plans.push(("download", plan_json(&lab, &[])));

    let lab = Lab::claiming("partly-deployed.xml");
    plans.push(("replace not requested", plan_json(&lab, &[])));
    plans.push(("replace", plan_json(&lab, &["--replace", "web"])));
    plans.push(("stop", plan_json(&lab, &["--target", "stopped"])));
    plans.push(("destroy", plan_json(&lab, &["--target", "absent"])));

    let lab = Lab::claiming("orphaned.xml");
    plans.push(("orphans", plan_json(&lab, &[])));

    let lab = Lab::claiming("snapshots.xml");
    plans.push(("snapshots", plan_json(&lab, &[])));
    plans.push(("prune", plan_json(&lab, &["--prune"])));

    let lab = Lab::on("empty.xml");
    let state = deployed_by_older_lvlab(&lab);
    lab.write_manifest_on(&state, 512);
    plans.push(("update", plan_json(&lab, &[])));
    // db shut off: a start.
    let deployed = std::fs::read_to_string(&state).unwrap();
    let stopped = deployed.replace(
        "  </domain>\n</node>",
        "    <test:runstate xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>5</test:runstate>\n  \
         </domain>\n</node>",
    );
    assert_ne!(stopped, deployed, "the last domain (db) is shut off");
    std::fs::write(&state, stopped).unwrap();
    lab.write_manifest_on(&state, 256);
    plans.push(("start", plan_json(&lab, &[])));
    // db paused: a resume. web's memory edited behind lvlab's back: drift,
    // with the diff of its recorded definition.
    let edited = std::fs::read_to_string(&state)
        .unwrap()
        .replace(">5</test:runstate>", ">3</test:runstate>")
        .replacen(
            "<memory unit='MiB'>256</memory>",
            "<memory unit='MiB'>300</memory>",
            1,
        );
    std::fs::write(&state, edited).unwrap();
    std::fs::write(lab.path().join("vms/lab/web/domain.xml"), "<domain/>\n").unwrap();
    plans.push(("resume and drift", plan_json(&lab, &[])));

    // Another lab's domains (marked without a lab_id), taken over.
    let lab = Lab::with_lab_id("empty.xml", Some("ci"));
    let state = deployed_by_older_lvlab(&lab);
    lab.write_manifest_on(&state, 256);
    plans.push(("adopt", plan_json(&lab, &["--adopt"])));

    let mut seen = Vec::new();
    for (name, plan) in &plans {
        let errors: Vec<String> = validator
            .iter_errors(plan)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}\n{plan:#}");
        field_names(plan, "", &mut seen);
        for action in plan["actions"].as_array().unwrap() {
            seen.push(format!("action {}", action["action"].as_str().unwrap()));
        }
        for change in plan["changes"].as_array().unwrap() {
            seen.push(format!("change {}", change["change"].as_str().unwrap()));
            for reason in change["reasons"].as_array().unwrap() {
                seen.push(format!("reason {}", reason["reason"].as_str().unwrap()));
            }
        }
    }
    // The plans above reach each part of the schema that matters here.
    for expected in [
        ".notes",
        "snapshots.address",
        "snapshots.names",
        "changes.address",
        "reasons.changes",
        "changes.field",
        "changes.before",
        "changes.after",
        "changes.kind",
        "reasons.running",
        "reasons.path",
        "reasons.state",
        "actions.checksum",
        "actions.signature",
        "actions.index",
        "actions.path",
        "actions.dir",
        "actions.domain_type",
        "actions.watch",
        "action download_image",
        "action define_domain",
        "action start_domain",
        "action redefine_domain",
        "action remove_files",
        "action shutdown_domain",
        "action resume_domain",
        "changes.diffs",
        "diffs.file",
        "diffs.lines",
        "reasons.owner",
        "reason spec_changed",
        "reason drifted",
        "reason paused",
        "reason adopted",
        "change create",
        "change update",
        "change replace",
        "change replace_not_requested",
        "change stop",
        "change start",
        "change destroy",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "no plan showed {expected}"
        );
    }
    let notes = |name: &str| plans.iter().find(|(n, _)| *n == name).unwrap().1["notes"].clone();
    assert!(!notes("orphans").as_array().unwrap().is_empty());

    // Strict: a field the document does not list fails, wherever it is.
    let mut plan = plans[0].1.clone();
    plan["actions"][0]["undocumented"] = serde_json::json!(1);
    assert!(!validator.is_valid(&plan), "an extra action field fails");
    let mut plan = plans[0].1.clone();
    plan["changes"][0]["reasons"][0]["undocumented"] = serde_json::json!(1);
    assert!(!validator.is_valid(&plan), "an extra reason field fails");
    let mut plan = plans[0].1.clone();
    plan["extra"] = serde_json::json!([]);
    assert!(!validator.is_valid(&plan), "an extra top-level field fails");
}

/// docs/plan-json.md and its schema name the same values, and the page
/// links to the schema.
#[test]
fn the_plan_json_page_documents_every_name_of_its_schema() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan-json.md"))
            .unwrap();
    assert!(
        doc.contains("(plan-json.schema.json)"),
        "the page links to the schema"
    );
    let mut names = schema_names(&schema());
    assert!(names.len() > 40, "{names:?}");
    names.retain(|name| !doc.contains(&format!("`{name}`")));
    assert!(names.is_empty(), "not in docs/plan-json.md: {names:?}");
}

/// On a terminal: progress for the image on stderr, colour on stdout;
/// `-q` leaves only errors on stderr (results stay on stdout), and
/// `--no-color` or `NO_COLOR` leave no colour.
#[test]
fn progress_and_colour_on_a_terminal_and_what_quiet_and_no_color_remove() {
    let lab = Lab::on("empty.xml");
    lab.uncache_image();
    let (stderr, _) = lab.on_terminal(&["init"]);
    assert!(
        stderr.contains("tiny") && stderr.contains("ok: ready"),
        "{stderr}"
    );
    assert!(stderr.contains("\u{1b}["), "drawn bars: {stderr}");
    lab.uncache_image();
    let (stderr, _) = lab.on_terminal(&["-q", "init"]);
    assert_eq!(stderr, "", "-q init");
    assert!(lab.path().join("cache/cloud-images/tiny.qcow2").is_file());

    lab.uncache_image();
    let (stderr, stdout) = lab.on_terminal(&["apply", "--auto-approve"]);
    assert!(stderr.contains("download"), "download bars: {stderr}");
    assert!(stdout.contains("Apply complete!"), "{stdout}");
    std::fs::remove_dir_all(lab.path().join("vms")).unwrap();
    lab.uncache_image();
    let (stderr, stdout) = lab.on_terminal(&["-q", "apply", "--auto-approve"]);
    assert_eq!(stderr, "", "-q apply");
    assert!(stdout.contains("Apply complete!"), "results stay: {stdout}");

    // stdout on the terminal: the plan's symbols are coloured.
    let plan = |flags: &[&str], no_color_env: bool| {
        let mut command = lab.command(&[flags, &["plan"]].concat());
        command.env_remove("NO_COLOR");
        if no_color_env {
            command.env("NO_COLOR", "1");
        }
        let (status, shown) = on_terminal(&command, None);
        assert!(status.success(), "{shown}");
        assert!(shown.contains("Plan: 2 to add"), "{shown}");
        shown
    };
    assert!(plan(&[], false).contains("\u{1b}["), "colour");
    assert!(
        !plan(&["--no-color"], false).contains('\u{1b}'),
        "--no-color"
    );
    assert!(!plan(&[], true).contains('\u{1b}'), "NO_COLOR");
}
