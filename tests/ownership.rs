//! Which domains are this lab's: a mark must name the environment and the
//! machine and record this machine's VM directory (or the environment's
//! `lab_id`); another lab's domains are refused, never pruned or
//! destroyed, and taken over only with `--adopt`. Applies of one
//! environment on one libvirt serialize whichever manifest they come from.
//! Only domains whose names can be the lab's are read. Against libvirt's test driver on the hosts in `state/`.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use lab_manifest::LabManifest;
use run::texts;

/// A manifest in a temporary directory with the image in its cache.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// Environments `(name, machines)` (each the keys of a machine,
    /// `vm_name` first, without its own) on the test-driver host `state`
    /// (a file of `state/`), VM directories under `disk_base`
    /// (`{base}`: the lab's directory).
    fn new(state: &str, environments: &[(&str, &[&str])], disk_base: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        support::tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
        let vms = disk_base.replace("{base}", &dir.path().display().to_string());
        let uri = state_uri(state);
        let mut manifest = LabManifest::tiny(environments[0].0, &uri, dir.path()).defaults(|d| {
            d.memory(256)
                .cpu(1)
                .disk_image_basedir(&vms)
                .user_network()
                .no_password()
        });
        for (i, (name, machines)) in environments.iter().enumerate() {
            if i > 0 {
                manifest = manifest.environment(name, &uri);
            }
            for machine in *machines {
                manifest = manifest.machines_yaml(&format!("      - {{vm_name: {machine}}}\n"));
            }
        }
        manifest.write(dir.path());
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = run::lvlab(self.dir.path()).args(args).output().unwrap();
        let (stdout, stderr) = texts(&out);
        (out.status.code(), stdout, stderr)
    }
}

fn state_uri(state: &str) -> String {
    format!("test://{}/state/{state}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_domain_of_another_environment_with_the_same_name_is_refused_and_never_destroyed() {
    // Machine `a_b` of `x` and machine `a` of `b_x` are both `a_b_x`.
    let lab = Lab::new(
        "other-lab.xml",
        &[("x", &["a_b, hostname: ab"])],
        "{base}/vms",
    );
    let owner = "owned by another lab (machine a of environment b_x, VM directory \
                 /nonexistent/other-lab/vms/b_x/a)";
    for args in [
        &["plan"][..],
        &["destroy", "--force"],
        &["apply", "--auto-approve", "--target", "absent"],
    ] {
        let (code, stdout, stderr) = lab.run(args);
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!("domain a_b_x on {}", state_uri("other-lab.xml")))
                && stderr.contains(owner)
                && stderr.contains("--adopt"),
            "{args:?}: {stderr}"
        );
        assert!(!stdout.contains("destroyed"), "{args:?}: {stdout}");
    }
    let (code, stdout, stderr) = lab.run(&["status"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("running (another lab's)"), "{stdout}");
    let (code, stdout, stderr) = lab.run(&["plan", "--adopt", "--target", "absent"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("- x.a_b"),
        "--adopt takes it over: {stdout}"
    );
}

#[test]
fn prune_and_destroy_leave_another_checkouts_domains_of_the_same_environment() {
    let lab = Lab::new("other-lab.xml", &[("lab", &["web"])], "{base}/vms");
    let note = "Note: old_lab is owned by another lab (machine old of environment lab, VM \
                directory /nonexistent/other-lab/vms/lab/old); lvlab leaves it alone";
    for args in [
        &["plan", "--prune"][..],
        &["apply", "--prune", "--auto-approve"],
        &["destroy", "--force"],
    ] {
        let (code, stdout, stderr) = lab.run(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains(note), "{args:?}: {stdout}");
        assert!(!stdout.contains("lab.old"), "{args:?}: {stdout}");
    }
    // The checkout whose VM directories they are prunes it.
    let owner = Lab::new(
        "other-lab.xml",
        &[("lab", &["web"])],
        "/nonexistent/other-lab/vms",
    );
    let (code, stdout, stderr) = owner.run(&["plan", "--prune"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("- lab.old\n      # (because old_lab is not in the manifest)"),
        "{stdout}"
    );
}

/// The `<domain>` elements of a host in `state/`.
fn domains_of(state: &str) -> String {
    let xml =
        std::fs::read_to_string(format!("{}/state/{state}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let (start, end) = (
        xml.find("  <domain").unwrap(),
        xml.rfind("</domain>").unwrap(),
    );
    format!("{}\n", &xml[start..end + "</domain>".len()])
}

#[test]
fn plan_reads_only_the_domains_whose_names_can_be_the_environments() {
    // Another lab's and a foreign domain under this environment's names,
    // among 300 unrelated domains and near misses of its names.
    let mut domains = domains_of("other-lab.xml") + &domains_of("foreign.xml");
    let unrelated: Vec<String> = (0..300)
        .map(|i| format!("unrelated{i:03}"))
        .chain(["lab", "_lab", "web_lab2", "weblab"].map(String::from))
        .collect();
    for (i, name) in unrelated.iter().enumerate() {
        domains.push_str(&format!(
            "  <domain type='test'><name>{name}</name>\
             <uuid>7a1b2c3d-0000-4000-8000-{i:012}</uuid><memory unit='MiB'>64</memory>\
             <vcpu>1</vcpu><os><type arch='i686'>hvm</type></os></domain>\n"
        ));
    }
    let crowded = |lab: &Lab| {
        let path = lab.dir.path().join("crowded.xml");
        std::fs::write(&path, format!("<node>\n{domains}</node>\n")).unwrap();
        format!("test://{}", path.display())
    };
    let plan = |lab: &Lab| {
        let out = run::lvlab(lab.dir.path())
            .args(["--connect", &crowded(lab), "plan", "--prune"])
            .env("LVLAB_LOG", "lvlab::observe::domains=trace")
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&out);
        (out.status.code(), stdout, stderr)
    };
    let read = |stderr: &str| -> Vec<String> {
        let mut names: Vec<String> = stderr
            .lines()
            .filter_map(|l| l.split("reading the definition of ").nth(1))
            .map(String::from)
            .collect();
        names.sort();
        names
    };

    let lab = Lab::new("empty.xml", &[("lab", &["db"])], "{base}/vms");
    let (code, stdout, stderr) = plan(&lab);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(read(&stderr), ["old_lab", "web_lab"], "{stderr}");
    assert!(
        stderr.contains("domains: 308 listed, 2 definitions read (names ending in _lab)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Note: old_lab is owned by another lab"),
        "--prune still sees it: {stdout}"
    );

    // A foreign domain under a wanted name is still refused.
    let lab = Lab::new("empty.xml", &[("lab", &["web"])], "{base}/vms");
    let (code, stdout, stderr) = plan(&lab);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stderr.contains("domain web_lab exists on") && stderr.contains("was not made by lvlab"),
        "{stderr}"
    );
    assert_eq!(read(&stderr), ["old_lab", "web_lab"], "{stderr}");
}

/// `destroy` of the whole lab reads the host's domains once, for its plan,
/// as `plan` does: a destroy's cost is the plan and the power-offs.
#[test]
fn destroy_of_the_whole_lab_reads_the_host_once() {
    let lab = Lab::new("other-lab.xml", &[("lab", &["web"])], "{base}/vms");
    let reads = |args: &[&str]| {
        let out = run::lvlab(lab.dir.path())
            .args(args)
            .env("LVLAB_LOG", "lvlab::observe::domains=debug")
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
        stderr.matches("definitions read").count()
    };
    assert_eq!(reads(&["destroy", "--force"]), 1);
    assert_eq!(reads(&["plan", "--target", "absent"]), 1);
}

#[test]
fn two_machines_of_one_manifest_with_one_domain_name_are_a_validate_error() {
    let lab = Lab::new(
        "empty.xml",
        &[("b_x", &["a"]), ("x", &["a_b, hostname: ab"])],
        "{base}/vms",
    );
    let (code, _, stderr) = lab.run(&["validate"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "machine `a_b` of environment `x` has the domain name a_b_x, which machine `a` of \
             environment `b_x` already has"
        ) && stderr.contains("Lvlab.yml:"),
        "{stderr}"
    );
}

#[test]
fn a_lab_id_owns_the_domains_wherever_the_checkout_is() {
    let lab = Lab::new("partly-deployed.xml", &[("lab", &["web"])], "{base}/vms");
    let (code, _, stderr) = lab.run(&["plan"]);
    assert_eq!(code, Some(1), "without its lab_id: {stderr}");
    assert!(
        stderr
            .contains("owned by another lab (machine web of environment lab, lab_id state-files)"),
        "{stderr}"
    );
    let manifest = lab.dir.path().join("Lvlab.yml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let with_id = text.replacen(
        "    config_defaults:",
        "    lab_id: state-files\n    config_defaults:",
        1,
    );
    std::fs::write(&manifest, with_id).unwrap();
    let (code, stdout, stderr) = lab.run(&["plan"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("web (web_lab) must be replaced"),
        "{stdout}"
    );
}

#[test]
fn an_apply_waits_for_another_manifest_on_the_same_environment_and_uri() {
    let first = Lab::new("empty.xml", &[("lab", &["web"])], "{base}/vms");
    let second = Lab::new("empty.xml", &[("lab", &["db"])], "{base}/vms");
    let uri = lvlab::libvirt::Connection::open(&state_uri("empty.xml"))
        .unwrap()
        .canonical_uri()
        .unwrap();
    // What `first`'s apply holds while it runs.
    let held =
        lvlab::apply::EnvironmentLock::acquire(&run::state_dir(), &uri, "lab", Duration::ZERO)
            .unwrap();
    let (code, stdout, stderr) = second.run(&["apply", "--auto-approve", "--lock-timeout", "1"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "another lvlab (PID {}) is changing environment lab on {uri}",
            std::process::id()
        )),
        "{stderr}"
    );
    assert!(!Path::new(&first.dir.path().join("vms/lab.lock")).exists());
    drop(held);
    let (code, _, stderr) = second.run(&["apply", "--auto-approve", "--lock-timeout", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
}
