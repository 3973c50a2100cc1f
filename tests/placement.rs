//! One lab over several libvirt hosts: machines placed with their own
//! `libvirt_uri`. Two test-driver hosts (`state/empty.xml` and
//! `state/loopback.xml`, or copies of `empty.xml` a test edits) and an
//! unreachable one (a `test:///` path that does not exist). The library
//! tests keep one connection per host for the whole test (a `test:` host
//! lives as long as its connection); the binary tests see each host as its
//! file says.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/plan_apply.rs"]
mod plan_apply;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::{Path, PathBuf};

use lab_manifest::LabManifest;
use lvlab::desired::Desired;
use lvlab::plan::{Change, Reason, Selection, Target};
use lvlab::reconcile::Lab;
use plan_apply::converge;

const UNREACHABLE: &str = "test:///nonexistent/lvlab-placement/host.xml";

fn state_uri(file: &str) -> String {
    format!("test://{}/state/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// A tiny lab in a temporary directory: environment `lab` on `env_uri`,
/// machine `web` there and `db` on `db_uri`.
struct TwoHosts {
    dir: tempfile::TempDir,
}

impl TwoHosts {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        support::tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn manifest_text(&self, env_uri: &str, web_uri: Option<&str>, db_uri: &str) -> String {
        LabManifest::tiny("lab", env_uri, self.path())
            .lab_id("state-files")
            .defaults(|d| d.tcg(256).user_network().no_password())
            .machine("web", |m| match web_uri {
                Some(uri) => m.set("libvirt_uri", format!("'{uri}'")),
                None => m,
            })
            .machine("db", |m| m.set("libvirt_uri", format!("'{db_uri}'")))
            .to_yaml()
    }

    fn desired(&self, env_uri: &str, web_uri: Option<&str>, db_uri: &str) -> Desired {
        lvlab::manifest::load_str(
            &self.manifest_text(env_uri, web_uri, db_uri),
            &self.path().join("Lvlab.yml"),
        )
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    fn write(&self, env_uri: &str, db_uri: &str) {
        std::fs::write(
            self.path().join("Lvlab.yml"),
            self.manifest_text(env_uri, None, db_uri),
        )
        .unwrap();
    }

    /// A copy of `state/empty.xml` as `name`, a host the test may edit.
    fn host_file(&self, name: &str) -> PathBuf {
        let path = self.path().join(name);
        let empty = Path::new(env!("CARGO_MANIFEST_DIR")).join("state/empty.xml");
        std::fs::copy(empty, &path).unwrap();
        path
    }

    fn lvlab(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = run::lvlab(self.path()).args(args).output().unwrap();
        let (stdout, stderr) = run::texts(&out);
        (out.status.code(), stdout, stderr)
    }
}

fn text(plan: &lvlab::plan::Plan) -> String {
    lvlab::plan::render_text(plan, "Lvlab.yml", false)
}

/// The part of a text plan under `Host <uri>:`, up to the next heading.
fn host_section<'t>(text: &'t str, uri: &str) -> &'t str {
    let heading = format!("Host {uri}:\n");
    let start = text
        .find(&heading)
        .unwrap_or_else(|| panic!("no heading for {uri}:\n{text}"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\nHost ").unwrap_or(rest.len());
    &rest[..end]
}

fn domain_names(lab: &Lab, uri: &str) -> Vec<String> {
    let observed = lab.observe().unwrap();
    let canonical = lab.hosts.get(uri).canonical_uri();
    observed
        .environments
        .iter()
        .filter(|e| e.uri == canonical)
        .flat_map(|e| e.domains.iter().map(|d| d.name.clone()))
        .collect()
}

#[test]
fn one_plan_spans_two_hosts_grouped_by_host_and_applies_on_each() {
    let lab_dir = TwoHosts::new();
    let (a, b) = (state_uri("empty.xml"), state_uri("loopback.xml"));
    let desired = lab_dir.desired(&a, None, &b);
    let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
    assert_eq!(lab.hosts.iter().count(), 2);
    let all = Selection::default();

    let planned = lab.plan(Target::Running, &all).unwrap();
    let plan_text = text(&planned.plan);
    assert!(
        host_section(&plan_text, &a).contains("+ lab.web"),
        "{plan_text}"
    );
    assert!(
        !host_section(&plan_text, &a).contains("lab.db"),
        "{plan_text}"
    );
    assert!(
        host_section(&plan_text, &b).contains("+ lab.db"),
        "{plan_text}"
    );
    // Every machine step carries its host.
    let json = lvlab::plan::to_json(&planned.plan);
    for action in json["actions"].as_array().unwrap() {
        let resource = &action["resource"];
        if resource["kind"] == "machine" {
            let want = if resource["vm_name"] == "web" { &a } else { &b };
            assert_eq!(resource["uri"], want.as_str(), "{action}");
        }
    }

    converge(&lab, Target::Running, &all);
    assert_eq!(domain_names(&lab, &a), ["web_lab"]);
    assert_eq!(domain_names(&lab, &b), ["db_lab"]);
    let again = lab.plan(Target::Running, &all).unwrap().plan;
    assert!(again.blocks.is_empty(), "{}", text(&again));

    // Drift behind lvlab's back on host b shows there only.
    let conn = lab.hosts.get(&b).connection();
    let db = conn.raw().lookup_domain_by_name("db_lab").unwrap();
    let xml = db.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE).unwrap();
    let edited = xml.replace(
        "<memory unit='KiB'>262144</memory>",
        "<memory unit='KiB'>131072</memory>",
    );
    assert_ne!(xml, edited, "{xml}");
    conn.raw().define_domain_xml(&edited).unwrap();
    drop(conn);
    let drifted = lab.plan(Target::Running, &all).unwrap().plan;
    let drift_text = text(&drifted);
    assert_eq!(drifted.blocks.len(), 1, "{drift_text}");
    assert_eq!(drifted.blocks[0].address.uri(), Some(b.as_str()));
    assert!(
        drifted.blocks[0]
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::Drifted { .. })),
        "{drift_text}"
    );
    // One host with changes: no heading is needed.
    assert!(!drift_text.contains("Host "), "{drift_text}");
}

#[test]
fn a_machine_moved_to_another_host_is_made_there_and_its_old_domain_is_an_orphan() {
    let lab_dir = TwoHosts::new();
    let (a, b) = (state_uri("empty.xml"), state_uri("loopback.xml"));
    let before = lab_dir.desired(&a, None, &b);
    let lab = Lab::open(&before, before.environments.iter().collect()).unwrap();
    converge(&lab, Target::Stopped, &Selection::default());

    // web moves from a to b.
    let moved = lab_dir.desired(&a, Some(&b), &b);
    let lab = Lab {
        desired: &moved,
        environments: moved.environments.iter().collect(),
        hosts: lab.hosts,
    };
    let plan = lab
        .plan(Target::Stopped, &Selection::default())
        .unwrap()
        .plan;
    let plan_text = text(&plan);
    let create = plan
        .blocks
        .iter()
        .find(|b| b.change == Change::Create)
        .unwrap_or_else(|| panic!("{plan_text}"));
    assert_eq!(create.address.uri(), Some(b.as_str()), "{plan_text}");
    assert!(
        plan.notes.iter().any(|n| n.contains("web_lab on")
            && n.contains(&format!("machine web is now placed on {b}"))
            && n.contains("--prune")),
        "{plan_text}"
    );

    let prune = Selection {
        prune: true,
        ..Selection::default()
    };
    let planned = converge(&lab, Target::Stopped, &prune);
    let plan_text = text(&planned.plan);
    let orphan = planned
        .plan
        .blocks
        .iter()
        .find(|b| b.change == Change::Destroy)
        .unwrap_or_else(|| panic!("{plan_text}"));
    assert_eq!(orphan.address.uri(), Some(a.as_str()));
    // The old domain goes before the machine is made on its new host.
    let graph = &planned.plan.graph;
    let undefine = graph
        .node_indices()
        .find(|i| graph[*i].action == lvlab::plan::Action::UndefineDomain)
        .unwrap();
    assert!(
        graph
            .neighbors(undefine)
            .any(|next| graph[next].address.uri() == Some(b.as_str())),
        "{plan_text}"
    );
    assert_eq!(orphan.reasons, [Reason::PlacedElsewhere { uri: b.clone() }]);
    assert!(
        host_section(&plan_text, &a).contains(&format!("machine web is now placed on {b}")),
        "{plan_text}"
    );
    assert!(domain_names(&lab, &a).is_empty());
    assert_eq!(domain_names(&lab, &b), ["db_lab", "web_lab"]);
    // The moved machine's files stay: they are the placed machine's.
    assert!(lab_dir.path().join("vms/lab/web/disk0.qcow2").is_file());
}

#[test]
fn an_unreachable_host_fails_only_its_machines() {
    let lab_dir = TwoHosts::new();
    let a = format!("test://{}", lab_dir.host_file("a.xml").display());
    lab_dir.write(&a, UNREACHABLE);

    let (code, stdout, stderr) = lab_dir.lvlab(&["plan"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(host_section(&stdout, &a).contains("+ lab.web"), "{stdout}");
    let unreachable = host_section(&stdout, UNREACHABLE);
    assert!(unreachable.contains("! lab.db"), "{stdout}");
    assert!(
        unreachable.contains(&format!("host unreachable: {UNREACHABLE}: ")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "lab.db was not planned: host unreachable: {UNREACHABLE}"
        )),
        "{stderr}"
    );

    // web is made on a; db is not, and the run fails at the end.
    let (code, stdout, stderr) = lab_dir.lvlab(&["apply", "--auto-approve"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("Apply complete!"), "{stdout}");
    assert!(
        stdout.contains(&format!("{UNREACHABLE}: unreachable")),
        "{stdout}"
    );
    assert!(lab_dir.path().join("vms/lab/web/disk0.qcow2").is_file());
    assert!(!lab_dir.path().join("vms/lab/db").exists());
    assert!(stderr.contains(UNREACHABLE), "{stderr}");

    // --json: the same, with an error diagnostic naming the URI last.
    let (code, stdout, _) = lab_dir.lvlab(&["apply", "--auto-approve", "--json"]);
    assert_eq!(code, Some(1), "{stdout}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "diagnostic", "{last}");
    assert_eq!(last["diagnostic"]["severity"], "error", "{last}");
    let summary = last["diagnostic"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("host unreachable: {UNREACHABLE}")),
        "{summary}"
    );

    let (code, stdout, stderr) = lab_dir.lvlab(&["status", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let db = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["machine"] == "db")
        .unwrap();
    assert_eq!(db["state"], "unreachable", "{db}");
    assert_eq!(db["host"], UNREACHABLE, "{db}");
    let (code, _, stderr) = lab_dir.lvlab(&["ssh", "db", "--print"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(UNREACHABLE), "{stderr}");
    let (_, table, _) = lab_dir.lvlab(&["status"]);
    assert!(
        table.contains("HOST") && table.contains("unreachable"),
        "{table}"
    );
}

#[test]
fn a_saved_plan_goes_stale_when_either_host_changes() {
    let lab_dir = TwoHosts::new();
    let (a_file, b_file) = (lab_dir.host_file("a.xml"), lab_dir.host_file("b.xml"));
    let (a, b) = (
        format!("test://{}", a_file.display()),
        format!("test://{}", b_file.display()),
    );
    lab_dir.write(&a, &b);
    let saved = lab_dir.path().join("lab.plan");
    let saved = saved.to_str().unwrap();
    let empty = std::fs::read_to_string(&a_file).unwrap();
    // A domain of the environment appears on one host.
    let with_domain = empty.replace(
        "</node>",
        "  <domain type='test'><name>old_lab</name><memory>262144</memory>\
         <os><type>hvm</type></os></domain>\n</node>",
    );
    for changed in [&a_file, &b_file] {
        let (code, stdout, stderr) = lab_dir.lvlab(&["plan", "--out", saved]);
        assert_eq!(code, Some(0), "{stdout}\n{stderr}");
        std::fs::write(changed, &with_domain).unwrap();
        let (code, stdout, stderr) = lab_dir.lvlab(&["apply", saved]);
        assert_eq!(code, Some(1), "{}: {stdout}\n{stderr}", changed.display());
        assert!(
            stderr.contains("Saved plan is stale: the observed state"),
            "{}: {stderr}",
            changed.display()
        );
        std::fs::write(changed, &empty).unwrap();
    }
}

#[test]
fn libvirt_uri_is_a_machine_key_but_not_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let text = LabManifest::tiny("lab", "test:///default", dir.path())
        .defaults(|d| d.set("libvirt_uri", "'test:///default'"))
        .machine("web", |m| m.set("libvirt_uri", "nonsense"))
        .to_yaml();
    let err = lvlab::manifest::load_str(&text, &dir.path().join("Lvlab.yml")).expect_err("refused");
    let rendered = err.render(false);
    assert!(
        rendered.contains("`libvirt_uri` cannot be a default"),
        "{rendered}"
    );
    assert!(
        rendered.contains("set `libvirt_uri` on the environment"),
        "{rendered}"
    );
    assert!(
        rendered.contains("`nonsense` is not a libvirt URI"),
        "{rendered}"
    );

    let text = LabManifest::tiny("lab", "test:///default", dir.path())
        .machine("web", |m| m.set("libvirt_uri", "'qemu:///system'"))
        .machine("db", |m| m)
        .to_yaml();
    let desired = lvlab::manifest::load_str(&text, &dir.path().join("Lvlab.yml")).unwrap();
    let uris: Vec<&str> = desired.environments[0]
        .machines
        .iter()
        .map(|m| m.libvirt_uri.as_str())
        .collect();
    assert_eq!(uris, ["qemu:///system", "test:///default"]);
}
