//! Builds the plan: for each selected machine, compares the desired spec
//! with the observed domain and files, and adds the actions (with their
//! dependency edges) that bring it to the target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};

use super::checks::{Feasible, Problems};
use super::provision::Provisioning;
use super::{
    Action, Address, Block, Change, MachineSnapshots, Plan, PlannedMachine, Reason, Selection,
    StartWatch, Step, Summary, Target, UnreachableMachine,
};
use crate::cloudinit;
use crate::desired::{Desired, EnvironmentSpec, ImageSpec, MachineSpec};
use crate::domain::{ChangeKind, DefinitionFields, FieldChange, OwnershipMark, SEED_FIELD};
use crate::host::images_pool;
use crate::observe::{
    ImageState, MachineFiles, Observed, ObservedDomain, ObservedEnvironment, PowerState,
};
use crate::rendering::RenderedMachine;

/// Everything a plan is made from. All plain data.
pub struct PlanInput<'a> {
    pub desired: &'a Desired,
    pub environments: &'a [&'a EnvironmentSpec],
    pub observed: &'a Observed,
    /// The rendered desired machines, by domain name: every machine of the
    /// environments (`crate::rendering::render`).
    pub rendered: &'a BTreeMap<String, Arc<RenderedMachine>>,
    pub target: Target,
    pub selection: &'a Selection,
    /// What [`super::check`] found for the same input.
    pub feasible: &'a Feasible,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("no machine {name} in the selected environments (machines: {known})")]
    UnknownMachine { name: String, known: String },
    #[error("no image {key} in the manifest (images: {known})")]
    UnknownImage { key: String, known: String },
    #[error("--reprovision {name}: the machine has no `provision:` list to run")]
    NothingToProvision { name: String },
    #[error("environment {0} was not observed")]
    NotObserved(String),
    /// Everything [`super::check`] found wrong, all at once.
    #[error("{0}")]
    Infeasible(Problems),
}

pub fn build(input: &PlanInput) -> Result<Plan, PlanError> {
    let mut planner = Planner {
        input,
        graph: DiGraph::new(),
        blocks: Vec::new(),
        notes: input.feasible.notes.clone(),
        image_ready: BTreeMap::new(),
        uploads: BTreeMap::new(),
        image_blocks: Vec::new(),
        made: BTreeMap::new(),
        snapshots: Vec::new(),
        unreachable: Vec::new(),
    };
    for env in input.environments {
        for machine in &env.machines {
            if !planner.selected(machine) {
                continue;
            }
            match input.observed.of(machine) {
                Some(observed) => {
                    planner.machine(env, observed, machine)?;
                    planner.snapshots(observed, machine);
                }
                None => planner.unreachable(machine)?,
            }
        }
        if input.selection.machines.is_empty() && !input.selection.images_only {
            for observed in input.observed.placements(&env.name) {
                planner.orphans(env, observed);
            }
        }
    }
    for image in &input.selection.images {
        planner.image(&image.key, &image.path, true);
    }
    let Planner {
        graph,
        mut image_blocks,
        blocks,
        notes,
        snapshots,
        unreachable,
        ..
    } = planner;
    image_blocks.extend(blocks);
    let summary = summarize(&image_blocks);
    Ok(Plan {
        target: input.target,
        graph,
        blocks: image_blocks,
        summary,
        notes,
        snapshots,
        unreachable,
    })
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    graph: DiGraph<Step, ()>,
    blocks: Vec<Block>,
    notes: Vec<String>,
    /// Image path -> the node after which the image is usable (`None`:
    /// already cached).
    image_ready: BTreeMap<PathBuf, Option<NodeIndex>>,
    /// (host URI, image volume path) -> the node after which the image is
    /// usable on that host (`None`: it is there already).
    uploads: BTreeMap<(String, PathBuf), Option<NodeIndex>>,
    image_blocks: Vec<Block>,
    /// The first steps of each machine made by this plan, by (environment,
    /// vm_name): a moved machine's old domain goes before they run.
    made: BTreeMap<(String, String), Vec<NodeIndex>>,
    snapshots: Vec<MachineSnapshots>,
    unreachable: Vec<UnreachableMachine>,
}

impl<'a> Planner<'a> {
    fn selected(&self, machine: &MachineSpec) -> bool {
        super::checks::is_selected(self.input.selection, machine)
    }

    fn machine(
        &mut self,
        spec: &EnvironmentSpec,
        env: &ObservedEnvironment,
        machine: &MachineSpec,
    ) -> Result<(), PlanError> {
        if self.input.selection.images_only {
            if self.input.selection.images.is_empty() {
                self.image(&machine.os, &machine.image_path, false);
            }
            return Ok(());
        }
        // `check` rejected foreign domains under a wanted name, and other
        // labs' ones unless adopting.
        let domain = env.domain(&machine.domain_name);
        let files = env.files(&machine.vm_name);
        let address = machine_address(machine);
        match (self.input.target, domain) {
            (Target::Absent, Some(domain)) => {
                self.destroy(&address, domain, Action::remove_files_of(machine));
                self.block(address, Change::Destroy, vec![Reason::TargetAbsent]);
            }
            (Target::Absent, None) if files.dir_exists => {
                self.add(&address, Action::remove_files_of(machine));
                self.block(address, Change::Destroy, vec![Reason::TargetAbsent]);
            }
            (Target::Absent, None) => {}
            (_, None) => {
                self.create(&address, machine, files, &[]);
                self.block(address, Change::Create, vec![Reason::NotDeployed]);
            }
            (_, Some(domain)) => {
                self.host_image(machine, false);
                let adopted = domain
                    .mark
                    .as_ref()
                    .filter(|mark| !spec.owns_machine(mark, machine))
                    .map(|mark| mark.owner());
                self.existing(&address, machine, domain, files, adopted)
            }
        }
        Ok(())
    }

    /// A machine whose host could not be opened: listed, nothing planned.
    fn unreachable(&mut self, machine: &MachineSpec) -> Result<(), PlanError> {
        let host = self
            .input
            .observed
            .unreachable_host(machine)
            .ok_or_else(|| PlanError::NotObserved(machine.environment.clone()))?;
        self.unreachable.push(UnreachableMachine {
            address: machine_address(machine),
            message: host.message.clone(),
        });
        Ok(())
    }

    /// The machine's snapshots, shown beside the plan and never planned.
    fn snapshots(&mut self, env: &ObservedEnvironment, machine: &MachineSpec) {
        let Some(domain) = env.domain(&machine.domain_name) else {
            return;
        };
        if self.input.selection.images_only || domain.snapshots.is_empty() {
            return;
        }
        self.snapshots.push(MachineSnapshots {
            address: machine_address(machine),
            names: domain.snapshots.iter().map(|s| s.name.clone()).collect(),
        });
    }

    fn existing(
        &mut self,
        address: &Address,
        machine: &MachineSpec,
        domain: &ObservedDomain,
        files: &MachineFiles,
        adopted: Option<String>,
    ) {
        let rendered = self.rendered(machine);
        let mark = domain.mark.as_ref().expect("foreign domains were rejected");
        let running = domain.state.is_active();
        let mut changes = if mark.spec_digest == rendered.spec_digest {
            Vec::new()
        } else {
            mark.spec.changes(&rendered.fields)
        };
        let replace_requested = self.input.selection.replace.contains(&machine.vm_name);
        if rendered_by_older_lvlab(mark, &mut changes) && !replace_requested {
            self.notes.push(format!(
                "{}: cloud-init seed rendered by an older lvlab; `--replace` to re-render \
                 (lvlab apply --replace {})",
                machine.vm_name, machine.vm_name
            ));
        }
        let missing_disks: Vec<Reason> = files
            .disks
            .iter()
            .filter(|(_, exists)| !**exists)
            .map(|(path, _)| Reason::DiskMissing { path: path.clone() })
            .collect();
        // The digest is the fast path for spec changes; edits made behind
        // lvlab's back only show in the live definition.
        let drift = if changes.is_empty() {
            live_drift(domain, &rendered)
        } else {
            Vec::new()
        };
        let needs_replace =
            !missing_disks.is_empty() || changes.iter().any(|c| c.kind == ChangeKind::Replace);
        let adopted = adopted.map(|owner| Reason::Adopted { owner });
        if replace_requested {
            let end = self.destroy(address, domain, Action::remove_files_of(machine));
            self.create(address, machine, MachineFiles::none(), &[end]);
            let mut reasons = vec![Reason::ReplaceRequested];
            reasons.extend(adopted);
            reasons.extend(spec_reason(changes, running));
            reasons.extend(missing_disks);
            self.block_with_diffs(address.clone(), Change::Replace, reasons, files, &rendered);
            return;
        }
        let mut reasons = Vec::new();
        let mut change = None;
        // What a start must wait for.
        let mut updates = Vec::new();
        let redefine = !changes.is_empty() || !drift.is_empty() || adopted.is_some();
        reasons.extend(adopted);
        if needs_replace {
            // Shown, not applied; power changes below still are.
            let mut replace_reasons: Vec<Reason> =
                spec_reason(changes, running).into_iter().collect();
            replace_reasons.extend(missing_disks);
            self.block_with_diffs(
                address.clone(),
                Change::ReplaceNotRequested,
                replace_reasons,
                files,
                &rendered,
            );
            self.notes.push(format!(
                "{} needs replacing to apply its changes; run with --replace {} to destroy and create it",
                machine.vm_name, machine.vm_name
            ));
        } else if redefine {
            let redefine = Action::RedefineDomain {
                domain_type: rendered.domain_type.clone(),
                machine: rendered.clone(),
            };
            updates.push(self.add(address, redefine));
            reasons.extend(spec_reason(changes, running));
            if !drift.is_empty() {
                reasons.push(Reason::Drifted {
                    changes: drift,
                    running,
                });
            }
            change = Some(Change::Update);
        }
        if !files.seed_iso && !needs_replace {
            let seed = Action::BuildSeed {
                machine: rendered.clone(),
            };
            updates.push(self.add(address, seed));
            reasons.push(Reason::SeedMissing);
            change = Some(Change::Update);
        }
        let paused = domain.state == PowerState::Paused;
        // The start or resume a provisioning waits for.
        let mut powered_on = None;
        match (self.input.target, running) {
            (Target::Running, false) => {
                let start = self.add(address, start_action(&rendered));
                for node in updates {
                    self.graph.add_edge(node, start, ());
                }
                powered_on = Some(start);
                reasons.push(Reason::NotRunning {
                    state: domain.state.label().to_string(),
                });
                change.get_or_insert(Change::Start);
            }
            (Target::Running, true) if paused => {
                let resume = self.add(address, Action::ResumeDomain);
                for node in updates {
                    self.graph.add_edge(node, resume, ());
                }
                powered_on = Some(resume);
                reasons.push(Reason::Paused);
                change.get_or_insert(Change::Start);
            }
            (Target::Stopped, true) => {
                let shutdown = self.add(address, Action::ShutdownDomain);
                // A paused guest cannot answer the ACPI request.
                if paused {
                    let resume = self.add(address, Action::ResumeDomain);
                    self.graph.add_edge(resume, shutdown, ());
                    reasons.push(Reason::Paused);
                } else {
                    reasons.push(Reason::Running);
                }
                change.get_or_insert(Change::Stop);
            }
            _ => {}
        }
        let requested = self.input.selection.reprovision.contains(&machine.vm_name);
        match super::provision::for_existing(machine, mark, requested, self.input.target) {
            Provisioning::Run(digest) => {
                let provision = self.add(address, provision_action(digest, &rendered));
                self.chain(powered_on, provision);
                reasons.push(Reason::ReprovisionRequested);
                change.get_or_insert(Change::Update);
            }
            Provisioning::Note(note) => self.notes.push(note),
            Provisioning::Nothing => {}
        }
        if let Some(change) = change {
            let diffs = if change == Change::Update {
                files
            } else {
                MachineFiles::none()
            };
            self.block_with_diffs(address.clone(), change, reasons, diffs, &rendered);
        }
    }

    /// Power off (if active), undefine, `remove` (an
    /// [`Action::RemoveFiles`]); returns the last node.
    fn destroy(&mut self, address: &Address, domain: &ObservedDomain, remove: Action) -> NodeIndex {
        let undefine = self.unmake(address, domain);
        let remove = self.add(address, remove);
        self.chain(Some(undefine), remove);
        remove
    }

    /// Power off (if active) and undefine; returns the undefine.
    fn unmake(&mut self, address: &Address, domain: &ObservedDomain) -> NodeIndex {
        let mut previous = None;
        if domain.state.is_active() {
            previous = Some(self.add(address, Action::PowerOffDomain));
        }
        let undefine = self.add(address, Action::UndefineDomain);
        self.chain(previous, undefine);
        undefine
    }

    /// Disks, seed and definition, then a start for target running. Each
    /// root waits for every node in `after` (a destroy before a re-create).
    fn create(
        &mut self,
        address: &Address,
        machine: &MachineSpec,
        files: &MachineFiles,
        after: &[NodeIndex],
    ) {
        let rendered = self.rendered(machine);
        let variant = &rendered.os_variant;
        if variant.is_fallback() {
            self.notes.push(format!(
                "{}: the osinfo database does not know os_variant {}; it is recorded as {}",
                machine.vm_name, variant.requested, variant.chosen
            ));
        }
        let image = match self.host_image(machine, true) {
            HostImage::Local => self.image(&machine.os, &machine.image_path, false),
            HostImage::Ready(node) => node,
        };
        let define = self.add(
            address,
            Action::DefineDomain {
                domain_type: rendered.domain_type.clone(),
                machine: rendered.clone(),
            },
        );
        let mut roots = Vec::new();
        for (index, disk) in machine.disks.iter().enumerate() {
            if files.disks.get(&disk.path).copied().unwrap_or(false) {
                continue;
            }
            let node = self.add(
                address,
                Action::CreateDisk {
                    index,
                    path: disk.path.clone(),
                    machine: rendered.clone(),
                },
            );
            if index == 0 {
                self.chain(image, node);
            }
            self.graph.add_edge(node, define, ());
            roots.push(node);
        }
        let seed = self.add(
            address,
            Action::BuildSeed {
                machine: rendered.clone(),
            },
        );
        self.graph.add_edge(seed, define, ());
        roots.push(seed);
        for root in &roots {
            for before in after {
                self.graph.add_edge(*before, *root, ());
            }
        }
        let key = (machine.environment.clone(), machine.vm_name.clone());
        self.made.insert(key, roots);
        if self.input.target == Target::Running {
            let start = self.add(address, start_action(&rendered));
            self.graph.add_edge(define, start, ());
            // A machine made now gets its first provisioning.
            if let Some(digest) = crate::provision::digest(&machine.provision) {
                let provision = self.add(address, provision_action(digest, &rendered));
                self.graph.add_edge(start, provision, ());
            }
        }
    }

    /// Image `key`'s download and verification into `path`, once per cache
    /// path; returns the node after which it is usable (`None` when already
    /// cached and not `requested`). One path is one source: resolution names
    /// sources apart, and the checks refuse a plan where two still meet
    /// ([`super::checks`]).
    fn image(&mut self, key: &str, path: &Path, requested: bool) -> Option<NodeIndex> {
        if let Some(ready) = self.image_ready.get(path) {
            return *ready;
        }
        let spec = &self.input.desired.images[key];
        let state = self.input.observed.images.get(path);
        let reason = image_reason(spec, state, path).or_else(|| {
            requested.then(|| Reason::ImageRequested {
                path: path.to_path_buf(),
            })
        });
        let ready = reason.map(|reason| self.image_action(key, path, reason));
        self.image_ready.insert(path.to_path_buf(), ready);
        ready
    }

    /// For a machine whose disks live in its host's pools: the upload of
    /// its image into the host's images pool, once per host and image,
    /// when the pool lacks it or holds another size, after the image's
    /// download when there is one. An existing machine (`creating` false)
    /// whose host holds the image needs nothing of the cache.
    fn host_image(&mut self, machine: &MachineSpec, creating: bool) -> HostImage {
        if !crate::observe::host_images::uses_images_pool(machine) {
            return HostImage::Local;
        }
        let observed = self.input.observed;
        let state = observed.images.get(&machine.image_path);
        let cached = state.map_or(&machine.image_path, |s| &s.path);
        let dir = images_pool::images_pool_dir(machine);
        let name = crate::host::pools::volume_name(cached);
        let volume = dir.join(&name);
        let uri = machine.libvirt_uri.clone();
        if let Some(ready) = self.uploads.get(&(uri.clone(), volume.clone())) {
            return HostImage::Ready(*ready);
        }
        let there = crate::observe::host_images::find(&observed.host_images, &uri, &dir)
            .and_then(|pool| pool.volumes.get(&name).copied());
        let spec = &self.input.desired.images[&machine.os];
        let fetch = image_reason(spec, state, &machine.image_path).is_some();
        let reason = match (there, fetch, state.and_then(|s| s.size)) {
            (None, _, _) => Some(Reason::ImageNotOnHost { uri: uri.clone() }),
            (Some(_), true, _) if creating => Some(Reason::ImageFetchedAgain { uri: uri.clone() }),
            (Some(size), false, Some(expected)) if size != expected => {
                Some(Reason::ImageIncompleteOnHost {
                    uri: uri.clone(),
                    size,
                    expected,
                })
            }
            _ => None,
        };
        let ready = reason.map(|reason| {
            let image = self.image(&machine.os, &machine.image_path, false);
            let address = Address::HostImage {
                key: spec.key.clone(),
                path: machine.image_path.clone(),
                uri: uri.clone(),
            };
            let upload = self.add(&address, Action::UploadImage { dir });
            self.chain(image, upload);
            self.image_blocks.push(Block {
                address,
                change: Change::Create,
                reasons: vec![reason],
                diffs: Vec::new(),
            });
            upload
        });
        self.uploads.insert((uri, volume), ready);
        HostImage::Ready(ready)
    }

    fn image_action(&mut self, key: &str, path: &Path, reason: Reason) -> NodeIndex {
        let spec = &self.input.desired.images[key];
        let address = Address::Image {
            key: spec.key.clone(),
            path: path.to_path_buf(),
        };
        let node = self.add(
            &address,
            Action::DownloadImage {
                checksum: spec.checksum.is_some(),
                signature: spec.signature.is_some(),
            },
        );
        self.image_blocks.push(Block {
            address,
            change: Change::Create,
            reasons: vec![reason],
            diffs: Vec::new(),
        });
        node
    }

    /// This lab's domains of this environment on `observed`'s host that
    /// the manifest no longer places there (a machine no longer named, or
    /// placed on another host now); another lab's with the same environment
    /// name are only listed.
    fn orphans(&mut self, env: &EnvironmentSpec, observed: &ObservedEnvironment) {
        for domain in &observed.domains {
            let Some(mark) = &domain.mark else { continue };
            if mark.environment != env.name || observed.machines.contains_key(&mark.vm_name) {
                continue;
            }
            if !env.owns(mark) {
                self.notes.push(format!(
                    "{} is owned by another lab ({}); lvlab leaves it alone",
                    domain.name,
                    mark.owner()
                ));
                continue;
            }
            let placed = env.machines.iter().find(|m| m.vm_name == mark.vm_name);
            if !self.input.selection.prune {
                self.notes.push(match placed {
                    Some(machine) => format!(
                        "{} on {} is lvlab's but machine {} is now placed on {}; --prune destroys it",
                        domain.name, observed.uri, mark.vm_name, machine.libvirt_uri
                    ),
                    None => format!(
                        "{} is lvlab's but {} is no longer in the manifest; --prune destroys it",
                        domain.name, mark.vm_name
                    ),
                });
                continue;
            }
            let address = Address::Machine {
                environment: env.name.clone(),
                vm_name: mark.vm_name.clone(),
                domain: domain.name.clone(),
                uri: observed.uris[0].clone(),
            };
            let reason = match placed {
                // Its files are the placed machine's now: only the domain
                // goes, before the machine is made on its new host.
                Some(machine) => {
                    let undefine = self.unmake(&address, domain);
                    let key = (env.name.clone(), machine.vm_name.clone());
                    for root in self.made.get(&key).cloned().unwrap_or_default() {
                        self.graph.add_edge(undefine, root, ());
                    }
                    Reason::PlacedElsewhere {
                        uri: machine.libvirt_uri.clone(),
                    }
                }
                None => {
                    self.destroy(
                        &address,
                        domain,
                        Action::remove_files_in(Path::new(&mark.vm_dir)),
                    );
                    Reason::NotInManifest
                }
            };
            self.block(address, Change::Destroy, vec![reason]);
        }
    }

    /// The machine's rendering, for the steps that make it. Rendering
    /// covers every machine of the environments planned.
    fn rendered(&self, machine: &MachineSpec) -> PlannedMachine {
        PlannedMachine::new(Arc::clone(&self.input.rendered[&machine.domain_name]))
    }

    fn add(&mut self, address: &Address, action: Action) -> NodeIndex {
        self.graph.add_node(Step {
            address: address.clone(),
            action,
        })
    }

    fn chain(&mut self, from: Option<NodeIndex>, to: NodeIndex) {
        if let Some(from) = from {
            self.graph.add_edge(from, to, ());
        }
    }

    fn block(&mut self, address: Address, change: Change, reasons: Vec<Reason>) {
        self.blocks.push(Block {
            address,
            change,
            reasons,
            diffs: Vec::new(),
        });
    }

    fn block_with_diffs(
        &mut self,
        address: Address,
        change: Change,
        reasons: Vec<Reason>,
        files: &MachineFiles,
        rendered: &RenderedMachine,
    ) {
        let mut diffs = Vec::new();
        let new_files = std::iter::once(("domain.xml", rendered.definition.as_str()))
            .chain(rendered.seed.documents());
        for (name, new) in new_files {
            if let Some(old) = files.recorded.get(name) {
                if old != new {
                    diffs.push((name.to_string(), old.clone(), new.to_string()));
                }
            }
        }
        self.blocks.push(Block {
            address,
            change,
            reasons,
            diffs,
        });
    }
}

/// Where a machine's disks find its image.
enum HostImage {
    /// In the cache on this machine (a files storage): its download, if any.
    Local,
    /// In its host's images pool: the node after which it is there, if any.
    Ready(Option<NodeIndex>),
}

/// Why an image must be fetched into the cache at `path`; `None` when the
/// cached file is usable as it is.
pub(super) fn image_reason(
    spec: &ImageSpec,
    state: Option<&ImageState>,
    path: &Path,
) -> Option<Reason> {
    let path = path.to_path_buf();
    match state {
        None => Some(Reason::ImageNotCached { path }),
        Some(s) if !s.present => Some(Reason::ImageNotCached { path }),
        Some(s) if s.stale => Some(Reason::ImageRecordStale { path }),
        Some(s) if spec.checksum.is_some() && !s.verified => Some(Reason::ImageUnverified { path }),
        Some(_) => None,
    }
}

fn provision_action(digest: String, rendered: &PlannedMachine) -> Action {
    Action::Provision {
        digest,
        machine: rendered.clone(),
    }
}

/// A start, watching for what the machine's domain type can go wrong with.
fn start_action(rendered: &RenderedMachine) -> Action {
    Action::StartDomain {
        watch: StartWatch::for_domain_type(&rendered.domain_type),
    }
}

fn machine_address(machine: &MachineSpec) -> Address {
    Address::Machine {
        environment: machine.environment.clone(),
        vm_name: machine.vm_name.clone(),
        domain: machine.domain_name.clone(),
        uri: machine.libvirt_uri.clone(),
    }
}

/// Whether the seed differs only because an older lvlab rendered it: its
/// mark records an older [`cloudinit::RENDERER_VERSION`]. Such a seed
/// change is dropped from `changes`, so upgrading lvlab replaces no
/// machine and a drift check stays clean; every other field still counts.
/// A mark without a version cannot tell a cloud-init edit made together
/// with the upgrade from the new rendering: both are the note.
fn rendered_by_older_lvlab(mark: &OwnershipMark, changes: &mut Vec<FieldChange>) -> bool {
    let seed_changed = changes.iter().any(|c| c.field == SEED_FIELD);
    if !seed_changed || mark.renderer >= cloudinit::RENDERER_VERSION {
        return false;
    }
    changes.retain(|c| c.field != SEED_FIELD);
    true
}

/// Where the persistent definition differs from the one lvlab would
/// define (nothing when it was not read).
fn live_drift(domain: &ObservedDomain, rendered: &RenderedMachine) -> Vec<FieldChange> {
    let (Some(live), Some(wanted)) = (
        &domain.definition,
        DefinitionFields::parse(&rendered.definition),
    ) else {
        return Vec::new();
    };
    live.drift(&wanted)
}

fn spec_reason(changes: Vec<FieldChange>, running: bool) -> Option<Reason> {
    (!changes.is_empty()).then_some(Reason::SpecChanged { changes, running })
}

/// A replacement counts once in add and once in destroy; starts, stops and
/// updates are changes; a replacement not asked for counts nowhere.
pub fn summarize(blocks: &[Block]) -> Summary {
    let mut summary = Summary::default();
    for block in blocks {
        match block.change {
            Change::Create => summary.add += 1,
            Change::Destroy => summary.destroy += 1,
            Change::Replace => {
                summary.add += 1;
                summary.destroy += 1;
            }
            Change::Update | Change::Start | Change::Stop => summary.change += 1,
            Change::ReplaceNotRequested => {}
        }
    }
    summary
}
