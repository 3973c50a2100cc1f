//! The reconciler end to end on libvirt's test driver (one connection per
//! test, since a test:/// host lives as long as its connection): plan,
//! apply, plan again; drift; stop; destroy. Disks and seeds are real files.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/plan_apply.rs"]
mod plan_apply;
#[path = "support/tiny_image.rs"]
mod support;
#[path = "support/tiny_lab.rs"]
mod tiny_lab;
use plan_apply::converge;
use tiny_lab::TinyLab;

use lvlab::desired::Desired;
use lvlab::observe::PowerState;
use lvlab::plan::{Change, Selection, Target};
use lvlab::reconcile::Lab;

fn apply(lab: &Lab, target: Target, selection: &Selection) -> lvlab::plan::Plan {
    converge(lab, target, selection).plan
}

/// `TWO` with `setting` added to machine db.
fn two_with_db(setting: &str) -> String {
    TWO.replace(
        "      - vm_name: db\n",
        &format!("      - vm_name: db\n        {setting}\n"),
    )
}

/// `lab`'s connections, now reconciling `desired`.
fn reopen<'d>(lab: Lab<'_>, desired: &'d Desired) -> Lab<'d> {
    Lab {
        desired,
        environments: desired.environments.iter().collect(),
        hosts: lab.hosts,
    }
}

const TWO: &str = "      - vm_name: web\n        disks: [{name: root, size: 128M}, {name: data, size: 32M}]\n      - vm_name: db\n";

#[test]
fn plan_apply_then_plan_again_shows_no_changes() {
    let fx = TinyLab::new("64M");
    let desired = fx.manifest(TWO);
    let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
    let all = Selection::default();

    let plan = apply(&lab, Target::Running, &all);
    assert_eq!(plan.summary.add, 2);

    let observed = lab.observe().unwrap();
    let env = observed.placements("lab").next().unwrap();
    for name in ["web_lab", "db_lab"] {
        let domain = env.domain(name).unwrap();
        assert_eq!(domain.state, PowerState::Running);
        let mark = domain
            .mark
            .as_ref()
            .expect("lvlab's mark on what it defined");
        assert_eq!(mark.environment, "lab");
    }
    let web = fx.vm_dir("web");
    for file in [
        "disk0.qcow2",
        "disk1.qcow2",
        "cidata.iso",
        "user-data",
        "meta-data",
        "network-config",
        "domain.xml",
    ] {
        assert!(web.join(file).is_file(), "{file} was made");
    }
    assert_eq!(
        lvlab::storage::virtual_size(&web.join("disk0.qcow2")).unwrap(),
        128 << 20
    );

    let again = lab.plan(Target::Running, &all).unwrap().plan;
    assert!(
        again.blocks.is_empty(),
        "{}",
        lvlab::plan::render_text(&again, "Lvlab.yml", false)
    );
}

#[test]
fn drift_stop_start_and_destroy_converge() {
    let fx = TinyLab::new("64M");
    let desired = fx.manifest(TWO);
    let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
    let all = Selection::default();
    apply(&lab, Target::Running, &all);

    // The manifest now asks for more memory: an in-place update.
    let bigger = fx.manifest(&two_with_db("memory: 512\n        cpu: 2"));
    let lab2 = reopen(lab, &bigger);
    let plan = lab2.plan(Target::Running, &all).unwrap().plan;
    assert_eq!(plan.blocks.len(), 1);
    assert_eq!(plan.blocks[0].change, Change::Update);
    let text = lvlab::plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains("memory changed 256 MiB -> 512 MiB; takes effect after restart"),
        "{text}"
    );
    assert!(
        text.contains("cpu changed 1 -> 2; takes effect after restart"),
        "{text}"
    );
    for line in [
        "--- domain.xml (recorded)",
        "+++ domain.xml (desired)",
        "-  <vcpu>1</vcpu>",
        "+  <vcpu>2</vcpu>",
    ] {
        assert!(text.contains(line), "the diff shows {line}:\n{text}");
    }
    apply(&lab2, Target::Running, &all);
    assert!(lab2
        .plan(Target::Running, &all)
        .unwrap()
        .plan
        .blocks
        .is_empty());

    let plan = apply(&lab2, Target::Stopped, &all);
    assert_eq!(plan.summary.change, 2, "two stops");
    let observed = lab2.observe().unwrap();
    assert!(observed.environments[0]
        .domains
        .iter()
        .all(|d| d.state == PowerState::ShutOff));

    // Started again, db runs with the memory the update asked for.
    let plan = apply(&lab2, Target::Running, &all);
    assert_eq!(plan.summary.change, 2, "two starts");
    let observed = lab2.observe().unwrap();
    let conn = lab2
        .hosts
        .get(&bigger.environments[0].libvirt_uri)
        .connection();
    for (name, mib, cpus) in [("db_lab", 512, 2), ("web_lab", 256, 1)] {
        let state = observed
            .placements("lab")
            .next()
            .unwrap()
            .domain(name)
            .unwrap()
            .state;
        assert_eq!(state, PowerState::Running, "{name}");
        let info = conn
            .raw()
            .lookup_domain_by_name(name)
            .unwrap()
            .info()
            .unwrap();
        assert_eq!(info.memory, mib << 10, "{name}: KiB in use");
        assert_eq!(info.nr_virt_cpu, cpus, "{name}: vCPUs");
    }

    let plan = apply(&lab2, Target::Absent, &all);
    assert_eq!(plan.summary.destroy, 2);
    assert!(lab2.observe().unwrap().environments[0].domains.is_empty());
    assert!(
        !fx.path().join("vms/lab").exists(),
        "the environment directory is gone"
    );
    assert!(
        fx.path().join("cache/cloud-images/tiny.qcow2").exists(),
        "the image cache stays"
    );
}

#[test]
fn autostart_is_an_in_place_change() {
    let fx = TinyLab::new("64M");
    let desired = fx.manifest(TWO);
    let lab = Lab::open(&desired, desired.environments.iter().collect()).unwrap();
    apply(&lab, Target::Running, &Selection::default());

    let auto = fx.manifest(&two_with_db("autostart: yes"));
    let lab2 = reopen(lab, &auto);
    let plan = apply(&lab2, Target::Running, &Selection::default());
    assert_eq!(plan.blocks[0].change, Change::Update);
    let conn = lab2
        .hosts
        .get(&auto.environments[0].libvirt_uri)
        .connection();
    let db = conn.raw().lookup_domain_by_name("db_lab").unwrap();
    assert!(db.autostart().unwrap());
    let web = conn.raw().lookup_domain_by_name("web_lab").unwrap();
    assert!(!web.autostart().unwrap());
    assert!(lab2
        .plan(Target::Running, &Selection::default())
        .unwrap()
        .plan
        .blocks
        .is_empty());
}
