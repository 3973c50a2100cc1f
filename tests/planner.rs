//! The planner over tables of desired x observed state: for each situation,
//! the exact actions, their order (edges) and the reasons.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lvlab::desired::{Desired, MachineSpec};
use lvlab::domain::{spec_digest, DefinitionFields, HostFacts, OwnershipMark, SpecFields};
use lvlab::manifest::load_str;
use lvlab::observe::capabilities::HostLimits;
use lvlab::observe::host_images::HostImages;
use lvlab::observe::networks::{Lease, Leases, NetworkIpv4, ObservedNetwork};
use lvlab::observe::{
    ImageState, MachineFiles, Observed, ObservedDomain, ObservedEnvironment, PowerState,
};
use lvlab::plan::{
    self, Action, Address, Change, CheckInput, Plan, PlanError, PlanInput, Problem, Problems,
    Reason, Selection, StartWatch, Target,
};
use lvlab::rendering::RenderedMachine;

const MANIFEST: &str = "
environment:
  - name: lab
    libvirt_uri: test:///default
    config_defaults:
      os: debian12
      memory: 1024
      cloud_image_basedir: /cache
      disk_image_basedir: /vms
      cloud_init: {pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab}
    machines:
      - vm_name: web
        disks: [{name: root, size: 4G}, {name: data, size: 1G}]
      - vm_name: db
images:
  debian12:
    image_url: https://example.org/debian-12.qcow2
    checksum_url: https://example.org/SHA512SUMS
    checksum_type: sha512
    checksum_url_gpg: https://example.org/key.asc
";

fn desired(yaml: &str) -> Desired {
    load_str(yaml, Path::new("/srv/lab/Lvlab.yml"))
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
}

const SEED: &str = "sha256:seed";

fn rendered(machine: &MachineSpec) -> RenderedMachine {
    let fields = SpecFields::of(machine, "qemu", SEED);
    RenderedMachine {
        machine: machine.clone(),
        domain_type: "qemu".into(),
        spec_digest: spec_digest(&fields),
        definition: format!("<domain><memory>{}</memory></domain>\n", machine.memory_mib),
        seed: lvlab::cloudinit::Seed {
            meta_data: "instance-id: x\n".into(),
            user_data: "#cloud-config\nhostname: x\n".into(),
            network_config: "version: 2\n".into(),
            host_key: None,
        },
        os_variant: lvlab::observe::osinfo::OsVariant {
            requested: "debian12".into(),
            chosen: "debian12".into(),
            id: None,
        },
        fields,
    }
}

fn mark_for(machine: &MachineSpec) -> OwnershipMark {
    let r = rendered(machine);
    OwnershipMark {
        environment: machine.environment.clone(),
        vm_name: machine.vm_name.clone(),
        manifest: "/srv/lab/Lvlab.yml".into(),
        vm_dir: machine.vm_dir.display().to_string(),
        lab_id: None,
        one_off: false,
        image_key: machine.os.clone(),
        image_digest: String::new(),
        seed_digest: SEED.into(),
        renderer: lvlab::cloudinit::RENDERER_VERSION,
        spec_digest: r.spec_digest,
        spec: r.fields,
        provisioned: None,
    }
}

/// A world where `deployed` machines exist in `state` with complete files.
struct World {
    desired: Desired,
    observed: Observed,
}

impl World {
    fn new(yaml: &str) -> Self {
        let desired = desired(yaml);
        let env = &desired.environments[0];
        let observed = Observed {
            environments: vec![ObservedEnvironment {
                name: env.name.clone(),
                uri: env.libvirt_uri.clone(),
                uris: vec![env.libvirt_uri.clone()],
                host: HostFacts {
                    uri: env.libvirt_uri.clone(),
                    arch: "x86_64".into(),
                    domain_types: vec!["qemu".into()],
                    kvm: false,
                    virtiofsd: None,
                    kvm_probe: None,
                },
                limits: HostLimits {
                    max_vcpus: BTreeMap::from([("qemu".to_string(), 255)]),
                    memory_kib: Some(16 * 1024 * 1024),
                },
                domains: Vec::new(),
                networks: BTreeMap::from([(
                    "default".to_string(),
                    ObservedNetwork {
                        active: true,
                        ipv4: Some(NetworkIpv4 {
                            subnet: "192.168.122.0/24".parse().unwrap(),
                            dhcp_ranges: vec![(
                                "192.168.122.100".parse().unwrap(),
                                "192.168.122.254".parse().unwrap(),
                            )],
                        }),
                        leases: Leases::Listed(Vec::new()),
                    },
                )]),
                machines: env
                    .machines
                    .iter()
                    .map(|m| (m.vm_name.clone(), MachineFiles::default()))
                    .collect(),
            }],
            unreachable: Vec::new(),
            images: env
                .machines
                .iter()
                .map(|m| {
                    let state = ImageState {
                        path: m.image_path.clone(),
                        present: false,
                        verified: false,
                        stale: false,
                        size: None,
                        missing_source: None,
                    };
                    (m.image_path.clone(), state)
                })
                .collect(),
            host_images: Vec::new(),
        };
        Self { desired, observed }
    }

    fn machine(&self, name: &str) -> MachineSpec {
        self.desired.machine(name, None).unwrap().clone()
    }

    fn image_cached(mut self) -> Self {
        for state in self.observed.images.values_mut() {
            state.present = true;
            state.verified = true;
        }
        self
    }

    fn deployed(mut self, name: &str, state: PowerState) -> Self {
        let machine = self.machine(name);
        let env = &mut self.observed.environments[0];
        env.domains.push(ObservedDomain {
            name: machine.domain_name.clone(),
            state,
            mark: Some(mark_for(&machine)),
            definition: DefinitionFields::parse(&rendered(&machine).definition),
            snapshots: Vec::new(),
        });
        env.machines.insert(
            machine.vm_name.clone(),
            MachineFiles {
                dir_exists: true,
                disks: machine
                    .disks
                    .iter()
                    .map(|d| (d.path.clone(), true))
                    .collect(),
                seed_iso: true,
                missing_shares: Vec::new(),
                recorded: BTreeMap::from([
                    ("domain.xml".to_string(), rendered(&machine).definition),
                    (
                        "user-data".to_string(),
                        "#cloud-config\nhostname: x\n".to_string(),
                    ),
                ]),
            },
        );
        self.image_cached()
    }

    fn with_domain(mut self, domain: ObservedDomain) -> Self {
        self.observed.environments[0].domains.push(domain);
        self
    }

    fn files(&mut self, name: &str) -> &mut MachineFiles {
        self.observed.environments[0]
            .machines
            .get_mut(name)
            .unwrap()
    }

    fn mark(&mut self, name: &str) -> &mut OwnershipMark {
        let domain = self.machine(name).domain_name;
        self.observed.environments[0]
            .domains
            .iter_mut()
            .find(|d| d.name == domain)
            .unwrap()
            .mark
            .as_mut()
            .unwrap()
    }

    /// The fields of `name`'s persistent definition, as observed.
    fn live(&mut self, name: &str) -> &mut DefinitionFields {
        let domain = self.machine(name).domain_name;
        self.observed.environments[0]
            .domains
            .iter_mut()
            .find(|d| d.name == domain)
            .unwrap()
            .definition
            .as_mut()
            .unwrap()
    }

    fn plan(&self, target: Target, selection: Selection) -> Result<Plan, PlanError> {
        self.plan_rendered(target, selection, rendered)
    }

    /// A plan with each machine rendered by `render`.
    fn plan_rendered(
        &self,
        target: Target,
        selection: Selection,
        render: impl Fn(&MachineSpec) -> RenderedMachine,
    ) -> Result<Plan, PlanError> {
        let envs: Vec<_> = self.desired.environments.iter().collect();
        let rendered: BTreeMap<String, Arc<RenderedMachine>> = envs
            .iter()
            .flat_map(|e| e.machines.iter())
            .map(|m| (m.domain_name.clone(), Arc::new(render(m))))
            .collect();
        let feasible = plan::check(&CheckInput {
            desired: &self.desired,
            environments: &envs,
            observed: &self.observed,
            target,
            selection: &selection,
        })?;
        plan::build(&PlanInput {
            desired: &self.desired,
            environments: &envs,
            observed: &self.observed,
            rendered: &rendered,
            target,
            selection: &selection,
            feasible: &feasible,
        })
    }

    /// The problems a plan for `target` stops on (none when it succeeds).
    fn problems(&self, target: Target) -> Vec<Problem> {
        match self.plan(target, all()) {
            Ok(_) => Vec::new(),
            Err(PlanError::Infeasible(Problems(problems))) => problems,
            Err(other) => panic!("not a host problem: {other}"),
        }
    }
}

/// `address: action` for each step, in insertion order.
fn steps(plan: &Plan) -> Vec<String> {
    plan.steps()
        .map(|(_, s)| format!("{}: {}", s.address, s.action.describe()))
        .collect()
}

/// `a -> b` for each edge.
fn edges(plan: &Plan) -> Vec<String> {
    let name = |i| {
        let s: &lvlab::plan::Step = &plan.graph[i];
        format!("{}: {}", s.address, s.action.describe())
    };
    let mut edges: Vec<String> = plan
        .graph
        .edge_indices()
        .map(|e| {
            let (a, b) = plan.graph.edge_endpoints(e).unwrap();
            format!("{} -> {}", name(a), name(b))
        })
        .collect();
    edges.sort();
    edges
}

fn all() -> Selection {
    Selection::default()
}

fn images_only() -> Selection {
    Selection {
        images_only: true,
        ..all()
    }
}

fn replace(machine: &str) -> Selection {
    Selection {
        replace: vec![machine.into()],
        ..all()
    }
}

fn only(machine: &str) -> Selection {
    Selection {
        machines: vec![machine.into()],
        ..all()
    }
}

#[test]
fn empty_host_creates_everything_image_first() {
    let plan = World::new(MANIFEST).plan(Target::Running, all()).unwrap();
    assert_eq!(
        steps(&plan),
        [
            "image.debian12: verify signature, download image, verify checksum",
            "lab.web: define domain",
            "lab.web: create disk disk0.qcow2",
            "lab.web: create disk disk1.qcow2",
            "lab.web: build seed ISO",
            "lab.web: start",
            "lab.db: define domain",
            "lab.db: create disk disk0.qcow2",
            "lab.db: build seed ISO",
            "lab.db: start",
        ]
    );
    assert_eq!(
        edges(&plan),
        [
            "image.debian12: verify signature, download image, verify checksum -> lab.db: create disk disk0.qcow2",
            "image.debian12: verify signature, download image, verify checksum -> lab.web: create disk disk0.qcow2",
            "lab.db: build seed ISO -> lab.db: define domain",
            "lab.db: create disk disk0.qcow2 -> lab.db: define domain",
            "lab.db: define domain -> lab.db: start",
            "lab.web: build seed ISO -> lab.web: define domain",
            "lab.web: create disk disk0.qcow2 -> lab.web: define domain",
            "lab.web: create disk disk1.qcow2 -> lab.web: define domain",
            "lab.web: define domain -> lab.web: start",
        ]
    );
    let s = plan.summary;
    assert_eq!(
        (s.add, s.change, s.destroy),
        (3, 0, 0),
        "two machines and one image"
    );
    assert_eq!(plan.blocks[1].reasons, [Reason::NotDeployed]);
}

#[test]
fn target_stopped_creates_without_starting() {
    let plan = World::new(MANIFEST)
        .image_cached()
        .plan(Target::Stopped, all())
        .unwrap();
    assert!(steps(&plan)
        .iter()
        .all(|s| !s.ends_with("start") && !s.starts_with("image")));
    assert_eq!(plan.summary.add, 2);
}

#[test]
fn all_running_means_no_changes() {
    let world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running);
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(
        plan.is_empty() && plan.blocks.is_empty(),
        "{:?}",
        steps(&plan)
    );
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert_eq!(text, "No changes. The lab matches Lvlab.yml.\n");
}

/// `web` rendered as a KVM guest, `db` under TCG.
fn web_on_kvm(machine: &MachineSpec) -> RenderedMachine {
    let mut r = rendered(machine);
    if machine.vm_name == "web" {
        r.domain_type = "kvm".into();
    }
    r
}

/// The domain type, and what a start watches for, are fixed in the plan
/// from each machine's rendering; the steps that make a machine carry it.
#[test]
fn planned_steps_carry_their_machine_its_domain_type_and_the_start_watch() {
    let plan = World::new(MANIFEST)
        .image_cached()
        .plan_rendered(Target::Running, all(), web_on_kvm)
        .unwrap();
    let mut seen = Vec::new();
    for (_, step) in plan.steps() {
        let Address::Machine { vm_name, .. } = &step.address else {
            continue;
        };
        let kvm = vm_name == "web";
        let made_by = |machine: &lvlab::plan::PlannedMachine| {
            assert_eq!(&machine.machine.vm_name, vm_name, "{step:?}");
        };
        match &step.action {
            Action::DefineDomain {
                domain_type,
                machine,
            } => {
                assert_eq!(domain_type, if kvm { "kvm" } else { "qemu" });
                made_by(machine);
            }
            Action::StartDomain { watch } => {
                let expected = if kvm {
                    StartWatch::KvmFailure
                } else {
                    StartWatch::None
                };
                assert_eq!(*watch, expected, "{vm_name}");
            }
            Action::BuildSeed { machine } | Action::CreateDisk { machine, .. } => made_by(machine),
            other => panic!("{other:?} in a create"),
        }
        seen.push(format!("{vm_name}: {}", step.action.describe()));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "db: build seed ISO",
            "db: create disk disk0.qcow2",
            "db: define domain",
            "db: start",
            "web: build seed ISO",
            "web: create disk disk0.qcow2",
            "web: create disk disk1.qcow2",
            "web: define domain",
            "web: start",
        ]
    );
}

/// A start or an update of a machine already defined carries the same
/// facts as a create's.
#[test]
fn a_stopped_kvm_machine_is_started_with_the_kvm_watch_and_redefined_with_its_type() {
    let mut world = World::new(MANIFEST)
        .deployed("web", PowerState::ShutOff)
        .deployed("db", PowerState::Running);
    world.mark("web").spec_digest = "sha256:older".into();
    world.mark("web").spec.0.insert("cpu".into(), "4".into());
    let plan = world
        .plan_rendered(Target::Running, all(), web_on_kvm)
        .unwrap();
    let actions: Vec<&Action> = plan.steps().map(|(_, s)| &s.action).collect();
    assert!(
        matches!(
            actions[..],
            [
                Action::RedefineDomain { domain_type, .. },
                Action::StartDomain {
                    watch: StartWatch::KvmFailure
                }
            ] if domain_type == "kvm"
        ),
        "{actions:?}"
    );
}

/// Destroying a machine of the manifest removes its disks by name; an
/// orphan's directory loses any disk lvlab names (see the prune test).
#[test]
fn destroying_a_machine_removes_the_manifests_disks() {
    let world = World::new(MANIFEST).deployed("web", PowerState::Running);
    let web = world.machine("web");
    let plan = world
        .plan(
            Target::Absent,
            Selection {
                machines: vec!["web".into()],
                ..all()
            },
        )
        .unwrap();
    assert_eq!(
        plan.steps().last().unwrap().1.action,
        Action::RemoveFiles {
            dir: web.vm_dir.clone(),
            disks: Some(web.disks.iter().map(|d| d.path.clone()).collect()),
            volume_dir: web.vm_dir.clone(),
            storage: Some(lvlab::desired::StorageKind::Files),
        }
    );
}

#[test]
fn one_stopped_machine_is_started() {
    let world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::ShutOff);
    let plan = world.plan(Target::Running, all()).unwrap();
    assert_eq!(steps(&plan), ["lab.db: start"]);
    assert_eq!(plan.blocks[0].change, Change::Start);
    assert_eq!(
        plan.blocks[0].reasons,
        [Reason::NotRunning {
            state: "shut off".into()
        }]
    );
    assert_eq!(plan.summary.change, 1, "a start is a change");
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains(
            "  # db (db_lab) will be started\n> lab.db\n      # (because it is shut off)\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 0 to add, 1 to change, 0 to destroy.\n"),
        "{text}"
    );
}

#[test]
fn target_stopped_shuts_running_machines_down() {
    let world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::ShutOff);
    let plan = world.plan(Target::Stopped, all()).unwrap();
    assert_eq!(steps(&plan), ["lab.web: shut down"]);
    assert_eq!(plan.blocks[0].change, Change::Stop);
}

#[test]
fn a_definition_edited_outside_lvlab_is_updated_in_place() {
    let mut world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::ShutOff);
    let wanted = world.live("web").0["memory"].clone();
    world
        .live("web")
        .0
        .insert("memory".into(), "512 MiB".into());
    world
        .live("db")
        .0
        .insert("nic 52:54:00:00:00:99".into(), "user-mode".into());
    let plan = world.plan(Target::Running, all()).unwrap();
    assert_eq!(
        steps(&plan),
        [
            "lab.web: update domain definition",
            "lab.db: update domain definition",
            "lab.db: start",
        ]
    );
    assert!(edges(&plan).contains(&"lab.db: update domain definition -> lab.db: start".into()));
    assert_eq!(plan.blocks[0].change, Change::Update);
    let Reason::Drifted { changes, running } = &plan.blocks[0].reasons[0] else {
        panic!("{:?}", plan.blocks[0].reasons);
    };
    assert!(running);
    assert_eq!(
        (
            changes[0].field.as_str(),
            changes[0].before.as_deref(),
            changes[0].after.as_deref()
        ),
        ("memory", Some("512 MiB"), Some(wanted.as_str()))
    );
    assert_eq!(
        serde_json::to_value(&plan.blocks[0].reasons[0]).unwrap(),
        serde_json::json!({
            "reason": "drifted",
            "changes": [{"field": "memory", "before": "512 MiB", "after": wanted, "kind": "in_place"}],
            "running": true,
        })
    );
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains(&format!(
            "~ lab.web\n      # (because memory: 512 MiB in the live definition, {wanted} \
             wanted (changed outside lvlab); takes effect after restart)\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "# (because nic 52:54:00:00:00:99: user-mode in the live definition, not wanted \
             (changed outside lvlab))\n      # (because it is shut off)"
        ),
        "{text}"
    );
}

#[test]
fn a_spec_change_is_found_by_its_digest_without_a_second_reason() {
    let mut world = World::new(MANIFEST).deployed("web", PowerState::Running);
    let mark = world.mark("web");
    mark.spec.0.insert("memory".into(), "2048 MiB".into());
    mark.spec_digest = "sha256:old".into();
    world.live("web").0.insert("memory".into(), "2 GiB".into());
    let plan = world.plan(Target::Running, only("web")).unwrap();
    assert_eq!(steps(&plan), ["lab.web: update domain definition"]);
    assert!(
        matches!(&plan.blocks[0].reasons[..], [Reason::SpecChanged { .. }]),
        "{:?}",
        plan.blocks[0].reasons
    );
}

#[test]
fn a_paused_machine_is_resumed_under_target_running() {
    let world = World::new(MANIFEST)
        .deployed("web", PowerState::Paused)
        .deployed("db", PowerState::Running);
    let plan = world.plan(Target::Running, all()).unwrap();
    assert_eq!(steps(&plan), ["lab.web: resume"]);
    assert_eq!(plan.blocks[0].change, Change::Start);
    assert_eq!(plan.blocks[0].reasons, [Reason::Paused]);
    assert_eq!(plan.summary.change, 1);
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains("> lab.web\n      # (because it is paused (suspended outside lvlab))\n"),
        "{text}"
    );
}

#[test]
fn a_paused_machine_is_resumed_before_its_shutdown_under_target_stopped() {
    let world = World::new(MANIFEST)
        .deployed("web", PowerState::Paused)
        .deployed("db", PowerState::ShutOff);
    let plan = world.plan(Target::Stopped, all()).unwrap();
    assert_eq!(steps(&plan), ["lab.web: shut down", "lab.web: resume"]);
    assert_eq!(edges(&plan), ["lab.web: resume -> lab.web: shut down"]);
    assert_eq!(plan.blocks[0].change, Change::Stop);
    assert_eq!(plan.blocks[0].reasons, [Reason::Paused]);
}

#[test]
fn a_missing_disk_needs_a_replacement_that_must_be_asked_for() {
    let mut world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running);
    let data = world.machine("web").disks[1].path.clone();
    world.files("web").disks.insert(data.clone(), false);
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(
        plan.is_empty(),
        "not applied without --replace: {:?}",
        steps(&plan)
    );
    assert_eq!(plan.blocks[0].change, Change::ReplaceNotRequested);
    assert_eq!(plan.blocks[0].reasons, [Reason::DiskMissing { path: data }]);
    assert!(plan.summary.is_empty());
    assert!(plan.notes[0].contains("--replace web"));

    let replace = Selection {
        replace: vec!["web".into()],
        ..all()
    };
    let plan = world.plan(Target::Running, replace).unwrap();
    assert_eq!(
        steps(&plan),
        [
            "lab.web: power off",
            "lab.web: undefine domain",
            "lab.web: remove files",
            "lab.web: define domain",
            "lab.web: create disk disk0.qcow2",
            "lab.web: create disk disk1.qcow2",
            "lab.web: build seed ISO",
            "lab.web: start",
        ]
    );
    let e = edges(&plan);
    for create in [
        "create disk disk0.qcow2",
        "create disk disk1.qcow2",
        "build seed ISO",
    ] {
        assert!(
            e.contains(&format!("lab.web: remove files -> lab.web: {create}")),
            "destroy before create: {e:?}"
        );
    }
    let s = plan.summary;
    assert_eq!(
        (s.add, s.change, s.destroy),
        (1, 0, 1),
        "a replacement counts in add and destroy"
    );
}

#[test]
fn drifted_memory_is_updated_in_place_and_says_when_it_takes_effect() {
    let mut world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::ShutOff);
    let mark = world.mark("web");
    mark.spec.0.insert("memory".into(), "2048 MiB".into());
    mark.spec_digest = "sha256:old".into();
    world.files("web").recorded.insert(
        "domain.xml".into(),
        "<domain><memory>2048</memory></domain>\n".into(),
    );
    let plan = world.plan(Target::Running, only("web")).unwrap();
    assert_eq!(steps(&plan), ["lab.web: update domain definition"]);
    let block = &plan.blocks[0];
    assert_eq!(block.change, Change::Update);
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains(
            "# (because memory changed 2048 MiB -> 1024 MiB; takes effect after restart)"
        ),
        "{text}"
    );
    assert!(
        text.contains("-<domain><memory>2048</memory></domain>"),
        "a diff of the definition:\n{text}"
    );
    assert!(
        text.contains("+<domain><memory>1024</memory></domain>"),
        "{text}"
    );
}

#[test]
fn domain_type_nic_attachments_and_shared_directories_update_in_place() {
    // Per field: what the mark recorded, made from what the manifest says now.
    type Recorded = fn(&str) -> String;
    let recorded: [(&str, Recorded); 3] = [
        ("domain_type", |_| "kvm".into()),
        ("nic.", |value| {
            let (mac, _) = value.split_once(' ').unwrap();
            format!("{mac} network elsewhere")
        }),
        ("shared.data", |_| "/srv/old-share".into()),
    ];
    for (field, old_value) in recorded {
        let mut world = World::new(MANIFEST).deployed("web", PowerState::Running);
        let mark = world.mark("web");
        let name = if field.ends_with('.') {
            mark.spec
                .0
                .keys()
                .find(|k| k.starts_with(field))
                .unwrap_or_else(|| panic!("web has a NIC: {:?}", mark.spec))
                .clone()
        } else {
            field.to_string()
        };
        let value = old_value(mark.spec.0.get(&name).map_or("", String::as_str));
        mark.spec.0.insert(name.clone(), value);
        mark.spec_digest = "sha256:old".into();
        let plan = world.plan(Target::Running, only("web")).unwrap();
        assert_eq!(
            steps(&plan),
            ["lab.web: update domain definition"],
            "{name}"
        );
        assert_eq!(plan.blocks[0].change, Change::Update, "{name}");
        let text = plan::render_text(&plan, "Lvlab.yml", false);
        assert!(
            text.contains(&format!("~ lab.web\n      # (because {name} "))
                && text.contains("; takes effect after restart)"),
            "{name}: {text}"
        );
    }
}

#[test]
fn changed_user_data_needs_replacement_because_cloud_init_ran_once() {
    let mut world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running);
    let mark = world.mark("db");
    mark.spec
        .0
        .insert("seed".into(), "sha256:older-seed".into());
    mark.spec_digest = "sha256:old".into();
    world
        .files("db")
        .recorded
        .insert("user-data".into(), "#cloud-config\nhostname: old\n".into());
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(plan.is_empty());
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains("# db (db_lab) must be replaced (not applied without --replace)"),
        "{text}"
    );
    assert!(
        text.contains("cloud-init seed changed; cloud-init only runs on first boot"),
        "{text}"
    );
    assert!(
        text.contains("-hostname: old") && text.contains("+hostname: x"),
        "{text}"
    );
}

#[test]
fn a_foreign_domain_with_our_name_is_an_error_naming_it() {
    let world = World::new(MANIFEST).with_domain(ObservedDomain {
        name: "web_lab".into(),
        state: PowerState::Running,
        mark: None,
        definition: None,
        snapshots: Vec::new(),
    });
    let problems = world.problems(Target::Running);
    assert!(
        matches!(&problems[..], [Problem::ForeignDomain { domain, .. }] if domain == "web_lab")
    );
    assert!(problems[0].to_string().contains("was not made by lvlab"));
    assert!(
        matches!(
            &world.problems(Target::Absent)[..],
            [Problem::ForeignDomain { .. }]
        ),
        "never destroyed either"
    );
}

#[test]
fn foreign_domains_with_other_names_are_left_alone() {
    let world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running)
        .with_domain(ObservedDomain {
            name: "mail".into(),
            state: PowerState::Running,
            mark: None,
            definition: None,
            snapshots: Vec::new(),
        });
    let plan = world.plan(Target::Absent, all()).unwrap();
    assert!(steps(&plan).iter().all(|s| !s.contains("mail")));
}

/// Two image keys whose URLs end in one file name, in one cache.
fn two_same_named_images() -> String {
    MANIFEST.replace(
        "      - vm_name: db\n",
        "      - {vm_name: db, os: debian12-dated}\n",
    ) + "  debian12-dated:\n    image_url: https://example.org/20240102/debian-12.qcow2\n"
}

#[test]
fn two_sources_with_one_file_name_are_downloaded_to_two_paths() {
    let plan = World::new(&two_same_named_images())
        .plan(Target::Running, all())
        .unwrap();
    let paths: Vec<String> = plan
        .steps()
        .filter_map(|(_, s)| match &s.address {
            lvlab::plan::Address::Image { path, .. } => Some(path.display().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(paths.len(), 2, "{:?}", steps(&plan));
    assert_ne!(paths[0], paths[1]);
    assert!(paths
        .iter()
        .all(|p| p.starts_with("/cache/cloud-images/debian-12-")));
}

#[test]
fn two_sources_on_one_cache_path_are_refused() {
    let mut world = World::new(&two_same_named_images());
    let web = world.machine("web").image_path;
    for machine in &mut world.desired.environments[0].machines {
        machine.image_path = web.clone();
    }
    let problems = world.problems(Target::Running);
    assert!(
        matches!(&problems[..], [Problem::ImagePathShared { keys, path }]
            if keys == &["debian12".to_string(), "debian12-dated".to_string()] && *path == web),
        "{problems:?}"
    );
}

#[test]
fn orphaned_lvlab_domains_are_destroyed_only_with_prune() {
    let orphan_spec = World::new(&MANIFEST.replace("vm_name: db", "vm_name: old")).machine("old");
    let world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running)
        .with_domain(ObservedDomain {
            name: "old_lab".into(),
            state: PowerState::Running,
            mark: Some(mark_for(&orphan_spec)),
            definition: None,
            snapshots: Vec::new(),
        });
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(plan.is_empty());
    assert!(
        plan.notes[0].contains("old_lab is lvlab's but old is no longer in the manifest"),
        "{:?}",
        plan.notes
    );

    let plan = world
        .plan(
            Target::Running,
            Selection {
                prune: true,
                ..all()
            },
        )
        .unwrap();
    assert_eq!(
        steps(&plan),
        [
            "lab.old: power off",
            "lab.old: undefine domain",
            "lab.old: remove files"
        ]
    );
    assert_eq!(plan.blocks[0].reasons, [Reason::NotInManifest]);
    assert_eq!(
        plan.steps().last().unwrap().1.action,
        Action::RemoveFiles {
            dir: "/vms/lab/old".into(),
            disks: None,
            volume_dir: "/vms/lab/old".into(),
            storage: None,
        },
        "the orphan's directory comes from its mark"
    );
}

#[test]
fn target_absent_on_a_partly_deployed_environment() {
    let mut world = World::new(MANIFEST).deployed("web", PowerState::ShutOff);
    world.files("db").dir_exists = true; // left over from an interrupted apply
    let plan = world.plan(Target::Absent, all()).unwrap();
    assert_eq!(
        steps(&plan),
        [
            "lab.web: undefine domain",
            "lab.web: remove files",
            "lab.db: remove files"
        ],
        "a shut-off domain needs no power off"
    );
    assert_eq!(
        edges(&plan),
        ["lab.web: undefine domain -> lab.web: remove files"]
    );
    assert_eq!(plan.summary.destroy, 2);
}

#[test]
fn selecting_machines_limits_the_plan_and_unknown_names_are_errors() {
    let world = World::new(MANIFEST).image_cached();
    let plan = world.plan(Target::Running, only("db")).unwrap();
    assert!(steps(&plan).iter().all(|s| s.starts_with("lab.db")));
    let err = world.plan(Target::Running, only("nope")).unwrap_err();
    assert!(err.to_string().contains("no machine nope"));
}

#[test]
fn images_only_plans_just_the_downloads() {
    let plan = World::new(MANIFEST)
        .plan(Target::Running, images_only())
        .unwrap();
    assert_eq!(
        steps(&plan),
        ["image.debian12: verify signature, download image, verify checksum"]
    );
    assert_eq!(plan.summary.add, 1);
}

#[test]
fn cached_images_are_verified_again_when_unverified_or_stale() {
    let mut world = World::new(MANIFEST);
    let path = world.machine("web").image_path;
    let state = world.observed.images.get_mut(&path).unwrap();
    state.present = true;
    let plan = world.plan(Target::Running, images_only()).unwrap();
    assert_eq!(
        plan.blocks[0].reasons,
        [Reason::ImageUnverified { path: path.clone() }]
    );

    let state = world.observed.images.get_mut(&path).unwrap();
    state.verified = true;
    state.stale = true;
    let plan = world.plan(Target::Running, images_only()).unwrap();
    assert_eq!(
        plan.blocks[0].reasons,
        [Reason::ImageRecordStale { path: path.clone() }]
    );

    world.observed.images.get_mut(&path).unwrap().stale = false;
    let plan = world.plan(Target::Running, images_only()).unwrap();
    assert!(plan.is_empty(), "verified and current: no request");
}

/// `init`'s plan: every image asked for gets a step, even a ready one,
/// once per cache file (two keys of one source share it), and none of any
/// machine; the catalog's model has no environments at all.
#[test]
fn an_images_plan_names_each_asked_for_cache_file_once_even_when_ready() {
    let desired = desired(&format!(
        "{MANIFEST}  debian12b:\n    image_url: https://example.org/debian-12.qcow2\n    \
         checksum_url: https://example.org/SHA512SUMS\n    checksum_type: sha512\n    \
         checksum_url_gpg: https://example.org/key.asc\n"
    ));
    let file = &desired.images["debian12"].file_name;
    assert_eq!(&desired.images["debian12b"].file_name, file);
    let ready = Path::new("/cache").join(file);
    let elsewhere = Path::new("/elsewhere").join(file);
    let address = |key: &str, path: &Path| lvlab::desired::ImageAddress {
        key: key.into(),
        path: path.to_path_buf(),
    };
    let state = |path: &Path, present| ImageState {
        path: path.to_path_buf(),
        present,
        verified: present,
        stale: false,
        size: None,
        missing_source: None,
    };
    let observed = Observed {
        environments: Vec::new(),
        images: BTreeMap::from([
            (ready.clone(), state(&ready, true)),
            (elsewhere.clone(), state(&elsewhere, false)),
        ]),
        host_images: Vec::new(),
        unreachable: Vec::new(),
    };
    let asked = vec![
        address("debian12", &ready),
        address("debian12b", &ready),
        address("debian12", &elsewhere),
    ];
    let plan = plan::images_plan(&desired, &observed, asked).unwrap();
    assert_eq!(
        steps(&plan),
        [
            "image.debian12: verify signature, download image, verify checksum",
            "image.debian12: verify signature, download image, verify checksum",
        ]
    );
    let reasons: Vec<&Reason> = plan.blocks.iter().flat_map(|b| &b.reasons).collect();
    assert_eq!(
        reasons,
        [
            &Reason::ImageRequested { path: ready },
            &Reason::ImageNotCached { path: elsewhere },
        ]
    );

    let catalog = lvlab::images::catalog::desired();
    let debian13 = Path::new("/cache").join(&catalog.images["debian13"].file_name);
    let plan = plan::images_plan(&catalog, &observed, vec![address("debian13", &debian13)]);
    assert_eq!(steps(&plan.unwrap()).len(), 1);
    let err = plan::images_plan(&catalog, &observed, vec![address("nope", &debian13)]);
    assert!(
        matches!(&err, Err(PlanError::UnknownImage { key, .. }) if key == "nope"),
        "{err:?}"
    );
}

#[test]
fn json_lists_actions_with_dependencies_and_the_summary() {
    let plan = World::new(MANIFEST)
        .image_cached()
        .plan(Target::Running, only("db"))
        .unwrap();
    let json = plan::to_json(&plan);
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["summary"]["add"], 1);
    let actions = json["actions"].as_array().unwrap();
    let start = actions
        .iter()
        .find(|a| a["action"] == "start_domain")
        .unwrap();
    let define = actions
        .iter()
        .find(|a| a["action"] == "define_domain")
        .unwrap();
    assert_eq!(start["depends_on"], serde_json::json!([define["id"]]));
    assert_eq!(start["address"], "lab.db");
    assert_eq!(json["changes"][0]["reasons"][0]["reason"], "not_deployed");
}

/// `db` with a static address on the `default` network.
fn with_ip(ip: &str) -> String {
    MANIFEST.replace(
        "      - vm_name: db\n",
        &format!("      - vm_name: db\n        interfaces: [{{ip4: {ip}}}]\n"),
    )
}

fn default_network(world: &mut World) -> &mut ObservedNetwork {
    world.observed.environments[0]
        .networks
        .get_mut("default")
        .unwrap()
}

#[test]
fn networks_must_exist_run_and_hold_static_addresses_in_their_subnet() {
    let world = World::new(&with_ip("192.168.122.10/24")).image_cached();
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(
        !plan.notes.iter().any(|n| n.contains("DHCP")),
        "outside the DHCP range, inside the subnet: nothing to say"
    );

    let problems = World::new(&with_ip("10.1.2.3/24")).problems(Target::Running);
    assert!(
        problems[0]
            .to_string()
            .contains("outside network default's subnet 192.168.122.0/24"),
        "{problems:?}"
    );

    let mut world = World::new(MANIFEST);
    default_network(&mut world).active = false;
    let problems = world.problems(Target::Running);
    assert_eq!(problems.len(), 2, "both machines: {problems:?}");
    assert!(problems[0].to_string().contains("net-start default"));
    assert!(
        world.plan(Target::Absent, all()).is_ok(),
        "destroying needs no network"
    );

    world.observed.environments[0].networks.clear();
    assert!(
        matches!(&world.problems(Target::Running)[0], Problem::NetworkMissing { network, .. } if network == "default"),
    );
}

#[test]
fn a_static_address_in_the_dhcp_range_is_a_note_with_both_fixes() {
    let world = World::new(&with_ip("192.168.122.150/24"));
    let plan = world.plan(Target::Running, all()).unwrap();
    let note = plan
        .notes
        .iter()
        .find(|n| n.contains("DHCP"))
        .expect("a note about the DHCP range");
    for part in [
        "network default on test:///default hands out 192.168.122.100-192.168.122.254",
        "192.168.122.150 (db)",
        "virsh -c test:///default net-edit default",
        "net-update default add ip-dhcp-host",
        "ip='192.168.122.150'",
    ] {
        assert!(note.contains(part), "{part:?} in {note}");
    }
    assert!(!note.contains("cannot list DHCP leases"), "{note}");

    let mut world = World::new(&with_ip("192.168.122.150/24"));
    default_network(&mut world).leases = Leases::Unknown;
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("test:///default cannot list DHCP leases, so there was no check")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_static_address_leased_to_another_mac_is_an_error_naming_it() {
    let mut world = World::new(&with_ip("192.168.122.150/24"));
    let own_mac = world.machine("db").interfaces[0].mac.to_string();
    let lease = |mac: &str| Lease {
        mac: mac.into(),
        ip: "192.168.122.150".parse().unwrap(),
    };
    default_network(&mut world).leases = Leases::Listed(vec![lease(&own_mac)]);
    assert!(
        world.plan(Target::Running, all()).is_ok(),
        "the machine's own lease"
    );
    default_network(&mut world).leases = Leases::Listed(vec![lease("52:54:00:aa:bb:cc")]);
    let problems = world.problems(Target::Running);
    let text = problems[0].to_string();
    assert!(
        text.contains(
            "192.168.122.150 is leased on network default to another MAC, 52:54:00:aa:bb:cc"
        ),
        "{text}"
    );
}

#[test]
fn vcpus_and_memory_must_fit_the_host_and_a_total_over_it_is_a_note() {
    let manifest = MANIFEST.replace(
        "      - vm_name: db\n",
        "      - vm_name: db\n        cpu: 256\n        memory: 20480\n",
    );
    let problems = World::new(&manifest).problems(Target::Running);
    let texts: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(texts[0]
        .contains("db asks for 256 vCPUs; qemu guests on test:///default can have at most 255"));
    assert!(texts[1]
        .contains("db asks for 20480 MiB of memory; the host at test:///default has 16384 MiB"));

    // Each fits, together they do not.
    let manifest = MANIFEST.replace("memory: 1024", "memory: 10240");
    let plan = World::new(&manifest).plan(Target::Running, all()).unwrap();
    assert!(
        plan.notes.iter().any(|n| n.contains(
            "the machines on test:///default ask for 20480 MiB of memory together, more than the host's 16384 MiB"
        )),
        "{:?}",
        plan.notes
    );
    let plan = World::new(&manifest).plan(Target::Stopped, all()).unwrap();
    assert!(
        !plan.notes.iter().any(|n| n.contains("together")),
        "none runs"
    );
}

#[test]
fn a_missing_local_image_matters_only_when_it_must_be_copied() {
    let mut world = World::new(MANIFEST);
    for state in world.observed.images.values_mut() {
        state.missing_source = Some("/nowhere/debian12.qcow2".into());
    }
    let problems = world.problems(Target::Running);
    assert_eq!(problems.len(), 1, "once per image: {problems:?}");
    assert!(problems[0]
        .to_string()
        .contains("image debian12: /nowhere/debian12.qcow2, its image_url, does not exist"));
    assert!(
        world.image_cached().plan(Target::Running, all()).is_ok(),
        "a cached, verified copy is enough"
    );
}

#[test]
fn shared_directories_need_virtiofsd() {
    let manifest = MANIFEST.replace(
        "      - vm_name: db\n",
        "      - vm_name: db\n        shared_directories: [{source: /tmp, mount_tag: tmp}]\n",
    );
    let problems = World::new(&manifest).problems(Target::Running);
    assert!(
        matches!(&problems[..], [Problem::NoVirtiofsd { vm_name }] if vm_name == "db"),
        "{problems:?}"
    );
    let mut world = World::new(&manifest);
    world.observed.environments[0].host.virtiofsd = Some("/usr/libexec/virtiofsd".into());
    assert!(world.plan(Target::Running, all()).is_ok());
}

#[test]
fn every_problem_of_every_machine_is_reported_at_once() {
    let manifest = MANIFEST.replace(
        "      - vm_name: db\n",
        "      - vm_name: db\n        cpu: 300\n        interfaces: [{network: lab}]\n",
    );
    let mut world = World::new(&manifest);
    world
        .files("web")
        .missing_shares
        .push("/nonexistent/salt".into());
    let err = world.plan(Target::Running, all()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("3 problems stop this plan:"), "{text}");
    for part in [
        "web shares /nonexistent/salt",
        "db asks for 300 vCPUs",
        "needs libvirt network lab",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
}

#[test]
fn a_missing_shared_directory_is_a_plan_error() {
    let mut world = World::new(MANIFEST);
    world
        .files("web")
        .missing_shares
        .push("/nonexistent/salt".into());
    let err = world.plan(Target::Running, all()).unwrap_err();
    assert!(
        err.to_string()
            .contains("shares /nonexistent/salt, which does not exist"),
        "{err}"
    );
}

/// The `<metadata>` of `mark` exactly as lvlab wrote it before marks
/// recorded a renderer version: no `renderer` on `<lvlab:seed>`.
fn unversioned_mark_xml(mark: &OwnershipMark) -> String {
    let spec = serde_json::to_string(&mark.spec).unwrap();
    format!(
        "<domain type='qemu'>
  <name>{}_{}</name>
  <metadata>
    <lvlab:machine xmlns:lvlab='urn:lvlab:machine:1'>
      <lvlab:environment>{}</lvlab:environment>
      <lvlab:vm-name>{}</lvlab:vm-name>
      <lvlab:manifest>{}</lvlab:manifest>
      <lvlab:vm-dir>{}</lvlab:vm-dir>
      <lvlab:image key='{}' digest=''/>
      <lvlab:seed digest='{}'/>
      <lvlab:spec digest='{}'>{spec}</lvlab:spec>
    </lvlab:machine>
  </metadata>
</domain>",
        mark.vm_name,
        mark.environment,
        mark.environment,
        mark.vm_name,
        mark.manifest,
        mark.vm_dir,
        mark.image_key,
        mark.seed_digest,
        mark.spec_digest,
    )
}

/// `web` deployed by an lvlab that recorded no renderer version, with a
/// seed digest other than today's rendering gives; `edit` changes its
/// recorded spec further.
fn deployed_by_older_lvlab(edit: impl FnOnce(&mut OwnershipMark)) -> World {
    let mut world = World::new(MANIFEST)
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running);
    let mark = world.mark("web");
    mark.seed_digest = "sha256:rendered-before".into();
    mark.spec
        .0
        .insert("seed".into(), "sha256:rendered-before".into());
    edit(mark);
    mark.spec_digest = spec_digest(&mark.spec);
    let parsed = OwnershipMark::from_domain_xml(&unversioned_mark_xml(mark)).unwrap();
    assert_eq!(
        parsed.renderer,
        lvlab::cloudinit::UNVERSIONED_RENDERER,
        "a mark without a version reads as the first renderer"
    );
    *mark = parsed;
    world
}

const OLDER_NOTE: &str =
    "Note: web: cloud-init seed rendered by an older lvlab; `--replace` to re-render (lvlab apply --replace web)";

#[test]
fn a_machine_deployed_by_an_older_lvlab_is_no_change_but_a_note() {
    let world = deployed_by_older_lvlab(|_| {});
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(
        plan.is_empty() && plan.blocks.is_empty(),
        "{:?}",
        plan.blocks
    );
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(text.contains(OLDER_NOTE), "{text}");
    assert!(
        text.ends_with("No changes. The lab matches Lvlab.yml.\n"),
        "{text}"
    );
    let json = plan::to_json(&plan);
    assert_eq!(json["changes"], serde_json::json!([]));
    assert!(
        json["notes"][0]
            .as_str()
            .unwrap()
            .contains("rendered by an older lvlab; `--replace` to re-render"),
        "{json}"
    );

    // Asked for, the replacement happens and the note is not needed.
    let plan = world.plan(Target::Running, replace("web")).unwrap();
    assert_eq!(plan.blocks[0].change, Change::Replace);
    assert_eq!(plan.blocks[0].reasons, [Reason::ReplaceRequested]);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn a_real_change_on_a_machine_deployed_by_an_older_lvlab_still_plans() {
    // Memory changed in the manifest: an in-place update, not a
    // replacement for the seed lvlab renders differently now.
    let world = deployed_by_older_lvlab(|mark| {
        mark.spec.0.insert("memory".into(), "2048 MiB".into());
    });
    let plan = world.plan(Target::Running, all()).unwrap();
    assert_eq!(steps(&plan), ["lab.web: update domain definition"]);
    let Reason::SpecChanged { changes, .. } = &plan.blocks[0].reasons[0] else {
        panic!("{:?}", plan.blocks[0].reasons)
    };
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["memory"]);
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(text.contains(OLDER_NOTE), "{text}");
    assert!(
        text.ends_with("Plan: 0 to add, 1 to change, 0 to destroy.\n"),
        "{text}"
    );

    // A new disk still needs a replacement.
    let world = deployed_by_older_lvlab(|mark| {
        mark.spec.0.remove("disk.data");
    });
    let plan = world.plan(Target::Running, all()).unwrap();
    assert_eq!(plan.blocks[0].change, Change::ReplaceNotRequested);
}

#[test]
fn a_seed_change_under_todays_renderer_is_a_change() {
    let mut world = deployed_by_older_lvlab(|_| {});
    world.mark("web").renderer = lvlab::cloudinit::RENDERER_VERSION;
    let plan = world.plan(Target::Running, all()).unwrap();
    assert_eq!(plan.blocks[0].change, Change::ReplaceNotRequested);
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains("cloud-init seed changed; cloud-init only runs on first boot"),
        "{text}"
    );
    assert!(!text.contains("older lvlab"), "{text}");
}

/// MANIFEST with a `provision:` list: the defaults' command, then web's.
fn provisioned_manifest() -> String {
    MANIFEST
        .replace(
            "      disk_image_basedir: /vms\n",
            "      disk_image_basedir: /vms\n      provision: [\"echo defaults\"]\n",
        )
        .replace(
            "      - vm_name: web\n",
            "      - vm_name: web\n        provision: [\"echo web\"]\n",
        )
}

fn reprovision(machine: &str) -> Selection {
    Selection {
        reprovision: vec![machine.into()],
        ..all()
    }
}

fn provision_digest(world: &World, name: &str) -> String {
    lvlab::provision::digest(&world.machine(name).provision).unwrap()
}

#[test]
fn a_machine_made_now_is_provisioned_after_its_start() {
    let world = World::new(&provisioned_manifest()).image_cached();
    let web = world.machine("web");
    assert_eq!(
        web.provision,
        [
            lvlab::desired::ProvisionStep::Command("echo defaults".into()),
            lvlab::desired::ProvisionStep::Command("echo web".into()),
        ],
        "the defaults' entries come first"
    );
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(steps(&plan).contains(&"lab.web: provision".to_string()));
    let edges = edges(&plan);
    let into: Vec<&String> = edges
        .iter()
        .filter(|e| e.ends_with("lab.web: provision"))
        .collect();
    assert_eq!(into, ["lab.web: start -> lab.web: provision"]);
    let (_, step) = plan
        .steps()
        .find(|(_, s)| {
            matches!(s.action, Action::Provision { .. }) && s.address.to_string() == "lab.web"
        })
        .unwrap();
    assert!(
        matches!(&step.action, Action::Provision { digest, .. } if *digest == provision_digest(&world, "web"))
    );
    // Not started, not provisioned.
    let stopped = world.plan(Target::Stopped, all()).unwrap();
    assert!(!steps(&stopped).iter().any(|s| s.ends_with("provision")));
}

#[test]
fn an_existing_machine_is_provisioned_only_with_reprovision_and_a_change_is_a_note() {
    let mut world = World::new(&provisioned_manifest())
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running);
    // Deployed before the list (no record): a note, no step.
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(plan.is_empty(), "{:?}", steps(&plan));
    assert!(plan.summary.is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n.starts_with("web: its provision list has not run")
                && n.ends_with("provision again (lvlab apply --reprovision web)")),
        "{:?}",
        plan.notes
    );
    // The list that ran is recorded: nothing at all.
    let web_digest = provision_digest(&world, "web");
    let db_digest = provision_digest(&world, "db");
    world.mark("web").provisioned = Some(web_digest.clone());
    world.mark("db").provisioned = Some(db_digest);
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(plan.is_empty() && plan.notes.is_empty(), "{:?}", plan.notes);
    // A changed list: a note, kept apart from the spec (no drift, no step).
    world.mark("web").provisioned = Some("sha256:an-older-list".into());
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(plan.is_empty() && plan.summary.is_empty());
    assert_eq!(
        plan.notes,
        ["web: its provision list changed since it ran; provision again (lvlab apply --reprovision web)"]
    );
    // Asked: the step, with the reason.
    let plan = world.plan(Target::Running, reprovision("web")).unwrap();
    assert_eq!(steps(&plan), ["lab.web: provision"]);
    assert_eq!(plan.blocks.len(), 1);
    assert_eq!(plan.blocks[0].change, Change::Update);
    assert_eq!(plan.blocks[0].reasons, [Reason::ReprovisionRequested]);
    assert!(matches!(
        &plan.graph[plan.steps().next().unwrap().0].action,
        Action::Provision { digest, .. } if *digest == web_digest
    ));
}

#[test]
fn a_reprovisioned_machine_that_is_off_is_provisioned_after_its_start() {
    let world = World::new(&provisioned_manifest()).deployed("web", PowerState::ShutOff);
    let web_only = Selection {
        machines: vec!["web".into()],
        ..reprovision("web")
    };
    let plan = world.plan(Target::Running, web_only.clone()).unwrap();
    assert_eq!(edges(&plan), ["lab.web: start -> lab.web: provision"]);
    assert_eq!(
        plan.blocks[0].reasons,
        [
            Reason::NotRunning {
                state: "shut off".into()
            },
            Reason::ReprovisionRequested
        ]
    );
    // Stopping never provisions.
    let plan = world.plan(Target::Stopped, web_only).unwrap();
    assert!(!steps(&plan).iter().any(|s| s.ends_with("provision")));
}

#[test]
fn reprovision_names_a_machine_with_a_list() {
    let world = World::new(&provisioned_manifest());
    assert!(matches!(
        world.plan(Target::Running, reprovision("wbe")),
        Err(PlanError::UnknownMachine { name, .. }) if name == "wbe"
    ));
    let bare = World::new(MANIFEST);
    let err = bare.plan(Target::Running, reprovision("db")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--reprovision db: the machine has no `provision:` list to run"
    );
}

// Pool images: machines on a remote host boot their image from the
// host's images pool, uploaded once per host.

const REMOTE_URI: &str = "qemu+ssh://root@hv2/system";
const IMAGE_SIZE: u64 = 1000;

/// The lab on a remote host, its image cached (`IMAGE_SIZE` bytes), and the
/// host's images pool holding `volumes`.
fn remote_host_world(volumes: &[(&str, u64)]) -> World {
    let mut world = World::new(&MANIFEST.replace("test:///default", REMOTE_URI)).image_cached();
    for state in world.observed.images.values_mut() {
        state.size = Some(IMAGE_SIZE);
    }
    world.observed.host_images = vec![HostImages {
        uri: REMOTE_URI.into(),
        dir: "/var/lib/libvirt/lvlab/images".into(),
        volumes: volumes.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
    }];
    world
}

fn upload_blocks(plan: &Plan) -> Vec<(String, Vec<Reason>)> {
    plan.blocks
        .iter()
        .filter(|b| matches!(b.address, Address::HostImage { .. }))
        .map(|b| (b.address.to_string(), b.reasons.clone()))
        .collect()
}

#[test]
fn two_machines_on_a_host_lacking_the_image_wait_for_one_upload() {
    let plan = remote_host_world(&[]).plan(Target::Running, all()).unwrap();
    let upload = "image.debian12@qemu+ssh://root@hv2/system: upload to the host's images pool";
    let uploads = steps(&plan).into_iter().filter(|s| s == upload).count();
    assert_eq!(uploads, 1, "{:#?}", steps(&plan));
    let edges = edges(&plan);
    for machine in ["web", "db"] {
        let edge = format!("{upload} -> lab.{machine}: create disk disk0.qcow2");
        assert!(edges.contains(&edge), "{edge}: {edges:#?}");
    }
    assert_eq!(
        upload_blocks(&plan),
        [(
            "image.debian12@qemu+ssh://root@hv2/system".to_string(),
            vec![Reason::ImageNotOnHost {
                uri: REMOTE_URI.into()
            }]
        )]
    );
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains("image debian12 will be uploaded to qemu+ssh://root@hv2/system")
            && text.contains("(because not on qemu+ssh://root@hv2/system yet)"),
        "{text}"
    );
}

#[test]
fn a_host_holding_the_image_gets_no_upload_and_a_short_copy_gets_one() {
    let there = remote_host_world(&[("debian-12.qcow2", IMAGE_SIZE)]);
    let plan = there.plan(Target::Running, all()).unwrap();
    assert!(upload_blocks(&plan).is_empty(), "{:#?}", steps(&plan));
    let short = remote_host_world(&[("debian-12.qcow2", 400)])
        .deployed("web", PowerState::Running)
        .deployed("db", PowerState::Running);
    let plan = short.plan(Target::Running, all()).unwrap();
    assert_eq!(
        upload_blocks(&plan)[0].1,
        [Reason::ImageIncompleteOnHost {
            uri: REMOTE_URI.into(),
            size: 400,
            expected: IMAGE_SIZE
        }],
        "existing machines keep their host's image complete"
    );
    let text = plan::render_text(&plan, "Lvlab.yml", false);
    assert!(
        text.contains("its copy on qemu+ssh://root@hv2/system is incomplete: 400 of 1000 bytes"),
        "{text}"
    );
}

#[test]
fn an_image_fetched_again_is_uploaded_again_after_its_download() {
    let mut world = remote_host_world(&[("debian-12.qcow2", IMAGE_SIZE)]);
    for state in world.observed.images.values_mut() {
        state.present = false;
    }
    let plan = world.plan(Target::Running, all()).unwrap();
    assert_eq!(
        upload_blocks(&plan)[0].1,
        [Reason::ImageFetchedAgain {
            uri: REMOTE_URI.into()
        }]
    );
    let download = "image.debian12: verify signature, download image, verify checksum";
    let edge = format!(
        "{download} -> image.debian12@qemu+ssh://root@hv2/system: upload to the host's images pool"
    );
    assert!(edges(&plan).contains(&edge), "{:#?}", edges(&plan));
}

#[test]
fn machines_with_local_files_upload_nothing() {
    let world = World::new(MANIFEST).image_cached();
    let plan = world.plan(Target::Running, all()).unwrap();
    assert!(upload_blocks(&plan).is_empty());
}
