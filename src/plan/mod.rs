//! The plan: what must change to bring the observed world to the desired
//! state for a target, as a dependency graph of actions, each with its
//! reasons. A plan is a value: [`check`] first vets the request against the
//! observed host (every problem at once), then [`build`] makes the plan;
//! both read plain data and never touch libvirt or the disk. `text` and
//! `json` render it; apply walks it.

mod build;
mod checks;
mod diff;
mod images;
mod json;
mod provision;
pub mod saved;
mod text;

use std::path::PathBuf;
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

pub use crate::desired::ImageAddress;
use crate::domain::FieldChange;
use crate::rendering::RenderedMachine;
pub use build::{build, summarize, PlanError, PlanInput};
pub use checks::{check, is_selected, lease_collision, CheckInput, Feasible, Problem, Problems};
pub use images::images_plan;
pub use json::to_json;
pub use text::render_text;

/// The state a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Created and started.
    Running,
    /// Created (image to definition) but not started; running ones stop.
    Stopped,
    /// Powered off, undefined, and every file lvlab made removed.
    Absent,
}

/// What a plan is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Selection {
    /// Machines to act on (by vm_name); empty means all.
    pub machines: Vec<String>,
    /// Machines to destroy and create again even when nothing changed.
    pub replace: Vec<String>,
    /// Destroy lvlab's domains of the environment that the manifest no
    /// longer names.
    pub prune: bool,
    /// Only the image actions (`init`).
    pub images_only: bool,
    /// With `images_only`: the images to make sure of, each planned even
    /// when its cache looks ready (`init` reports on every image it is
    /// asked for; `--refresh` asks the publisher again). Empty: the selected
    /// machines' images, where they need it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageAddress>,
    /// Take over domains under wanted names that another lab's mark names
    /// (never unmarked ones): the define rewrites the mark.
    #[serde(default)]
    pub adopt: bool,
    /// Machines whose `provision:` list runs again (`--reprovision`),
    /// whether or not it changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reprovision: Vec<String>,
}

/// The thing an action is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Address {
    Image {
        key: String,
        path: PathBuf,
    },
    /// The cached image `path` (of key `key`) in the images pool of the
    /// host at `uri`.
    HostImage {
        key: String,
        path: PathBuf,
        uri: String,
    },
    Machine {
        environment: String,
        vm_name: String,
        domain: String,
        /// The libvirt URI of the host the machine is on: every step on
        /// the machine goes there.
        uri: String,
    },
}

impl Address {
    /// The libvirt URI the address is on: a machine's host, or the host
    /// an image is uploaded to (`None` for the image cache, lvlab's own).
    pub fn uri(&self) -> Option<&str> {
        match self {
            Address::Image { .. } => None,
            Address::Machine { uri, .. } | Address::HostImage { uri, .. } => Some(uri),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Image { key, .. } => write!(f, "image.{key}"),
            Address::HostImage { key, uri, .. } => write!(f, "image.{key}@{}", host_label(uri)),
            Address::Machine {
                environment,
                vm_name,
                ..
            } => write!(f, "{environment}.{vm_name}"),
        }
    }
}

/// A host as addresses name it: its URI without the query (which carries
/// key files and options, not which host).
pub fn host_label(uri: &str) -> &str {
    uri.split_once('?').map_or(uri, |(host, _)| host)
}

/// One step. Plain data, with every fact apply needs decided here: the
/// machine a step makes and its rendering, the domain type, what a start
/// watches for. Apply decides how each is carried out, never what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Download the image, checking its checksum while the bytes arrive,
    /// after the checksum file's OpenPGP signature (when configured).
    DownloadImage {
        checksum: bool,
        signature: bool,
    },
    /// Upload the cached image into the host's images pool at `dir` and
    /// check what arrived (size, first and last MiB).
    UploadImage {
        dir: PathBuf,
    },
    CreateDisk {
        index: usize,
        path: PathBuf,
        #[serde(skip)]
        machine: PlannedMachine,
    },
    BuildSeed {
        #[serde(skip)]
        machine: PlannedMachine,
    },
    DefineDomain {
        /// `kvm`, `qemu` or what else the host offers, chosen at rendering.
        domain_type: String,
        #[serde(skip)]
        machine: PlannedMachine,
    },
    /// Define again over the existing domain: in-place changes.
    RedefineDomain {
        domain_type: String,
        #[serde(skip)]
        machine: PlannedMachine,
    },
    StartDomain {
        watch: StartWatch,
    },
    /// Resume a paused domain.
    ResumeDomain,
    /// ACPI shutdown, waiting for the guest to stop.
    ShutdownDomain,
    PowerOffDomain,
    UndefineDomain,
    /// Wait for the machine's SSH, run its `provision:` list, and record
    /// `digest` on the domain once every entry succeeded.
    Provision {
        digest: String,
        #[serde(skip)]
        machine: PlannedMachine,
    },
    /// The machine's directory, and the environment's once empty; its
    /// volumes, and their pool.
    RemoveFiles {
        dir: PathBuf,
        /// The manifest's disks of the machine; `None` for a machine no
        /// longer in it, whose `diskN.qcow2` files all go.
        #[serde(skip)]
        disks: Option<Vec<PathBuf>>,
        /// Where the disks and seed are on the host (`dir` but for a pool
        /// on a remote host).
        #[serde(skip)]
        volume_dir: PathBuf,
        /// How they are kept; `None` for a machine no longer in the
        /// manifest: a pool of `volume_dir` if the host has one, else files.
        #[serde(skip)]
        storage: Option<crate::desired::StorageKind>,
    },
}

/// What a start watches for once libvirt has started the guest, decided
/// from the machine's domain type when the plan is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartWatch {
    /// Nothing: the start call's answer is the result.
    None,
    /// A KVM guest: on hosts where KVM is offered but broken (nested
    /// virtualization) it dies or pauses within moments, so the start
    /// watches it briefly, and a failure says to set `domain_type: qemu`.
    KvmFailure,
}

impl StartWatch {
    pub fn for_domain_type(domain_type: &str) -> Self {
        if domain_type == "kvm" {
            StartWatch::KvmFailure
        } else {
            StartWatch::None
        }
    }
}

/// A rendered desired machine, shared by the steps that make it, so that
/// apply gets the machine and its rendering from the step and never looks
/// one up. Two are equal when they are the same rendering.
#[derive(Clone)]
pub struct PlannedMachine(Arc<RenderedMachine>);

impl PlannedMachine {
    pub fn new(rendered: Arc<RenderedMachine>) -> Self {
        Self(rendered)
    }
}

impl std::ops::Deref for PlannedMachine {
    type Target = RenderedMachine;

    fn deref(&self) -> &RenderedMachine {
        &self.0
    }
}

impl PartialEq for PlannedMachine {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PlannedMachine {}

/// The domain's name only: a plan's debug output stays readable.
impl std::fmt::Debug for PlannedMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlannedMachine({})", self.machine.domain_name)
    }
}

impl Action {
    /// Removes a manifest machine's files and volumes.
    pub fn remove_files_of(machine: &crate::desired::MachineSpec) -> Self {
        Action::RemoveFiles {
            dir: machine.vm_dir.clone(),
            disks: Some(machine.disks.iter().map(|d| d.path.clone()).collect()),
            volume_dir: machine.volume_dir.clone(),
            storage: Some(machine.storage),
        }
    }

    /// Removes what lvlab made for a machine no longer in the manifest,
    /// whose domain's mark names `vm_dir`.
    pub fn remove_files_in(vm_dir: &std::path::Path) -> Self {
        Action::RemoveFiles {
            dir: vm_dir.to_path_buf(),
            disks: None,
            volume_dir: vm_dir.to_path_buf(),
            storage: None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Action::DownloadImage {
                checksum: false, ..
            } => "download image (unverified)".into(),
            Action::DownloadImage {
                signature: false, ..
            } => "download image, verify checksum".into(),
            Action::DownloadImage { .. } => {
                "verify signature, download image, verify checksum".into()
            }
            Action::UploadImage { .. } => "upload to the host's images pool".into(),
            Action::CreateDisk { path, .. } => format!(
                "create disk {}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            Action::BuildSeed { .. } => "build seed ISO".into(),
            Action::DefineDomain { .. } => "define domain".into(),
            Action::RedefineDomain { .. } => "update domain definition".into(),
            Action::StartDomain { .. } => "start".into(),
            Action::ResumeDomain => "resume".into(),
            Action::ShutdownDomain => "shut down".into(),
            Action::PowerOffDomain => "power off".into(),
            Action::UndefineDomain => "undefine domain".into(),
            Action::RemoveFiles { .. } => "remove files".into(),
            Action::Provision { .. } => "provision".into(),
        }
    }
}

/// Why something is in the plan. Data, rendered by `text` and `json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    NotDeployed,
    ImageNotCached {
        path: PathBuf,
    },
    /// The cached file is not the one its verification record describes.
    ImageRecordStale {
        path: PathBuf,
    },
    /// Cached without verification although a checksum is configured now.
    ImageUnverified {
        path: PathBuf,
    },
    /// Ready in the cache, and named by [`Selection::images`]: its record
    /// is read again (and, on `init --refresh`, the publisher asked).
    ImageRequested {
        path: PathBuf,
    },
    /// The host's images pool lacks the image.
    ImageNotOnHost {
        uri: String,
    },
    /// The host's copy is not the cached file's size.
    ImageIncompleteOnHost {
        uri: String,
        size: u64,
        expected: u64,
    },
    /// The image is fetched again in this plan: the host's copy is
    /// replaced by the new file.
    ImageFetchedAgain {
        uri: String,
    },
    DiskMissing {
        path: PathBuf,
    },
    SeedMissing,
    SpecChanged {
        changes: Vec<FieldChange>,
        running: bool,
    },
    /// The persistent definition was edited outside lvlab: each change's
    /// `before` is the live value, `after` the one lvlab defines.
    Drifted {
        changes: Vec<FieldChange>,
        running: bool,
    },
    ReplaceRequested,
    /// `--reprovision`: the `provision:` list runs again.
    ReprovisionRequested,
    NotRunning {
        state: String,
    },
    /// Suspended outside lvlab (`virsh suspend`).
    Paused,
    Running,
    TargetAbsent,
    NotInManifest,
    /// The machine is in the manifest, placed on another host now: its
    /// domain on this one is an orphan.
    PlacedElsewhere {
        uri: String,
    },
    /// Another lab's domain taken over with `--adopt`.
    Adopted {
        owner: String,
    },
}

/// How a block changes its resource, with terraform's symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Create,
    Update,
    Destroy,
    Replace,
    Start,
    Stop,
    /// Needs replacing, but was not asked to: shown, not applied.
    ReplaceNotRequested,
}

impl Change {
    pub fn symbol(self) -> &'static str {
        match self {
            Change::Create => "+",
            Change::Update => "~",
            Change::Destroy => "-",
            Change::Replace | Change::ReplaceNotRequested => "-/+",
            Change::Start => ">",
            Change::Stop => "<",
        }
    }
}

/// One resource's part of the plan, as shown to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Block {
    pub address: Address,
    pub change: Change,
    pub reasons: Vec<Reason>,
    /// Unified-diff inputs for changed rendered files: (name, old, new).
    #[serde(skip)]
    pub diffs: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Summary {
    pub fn is_empty(&self) -> bool {
        self.add == 0 && self.change == 0 && self.destroy == 0
    }
}

/// A graph node: an action on an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub address: Address,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    /// Edges point from an action to one that must wait for it.
    pub graph: DiGraph<Step, ()>,
    pub blocks: Vec<Block>,
    pub summary: Summary,
    /// Things worth knowing that are not actions (e.g. orphans without
    /// `--prune`).
    pub notes: Vec<String>,
    /// The snapshots of the selected machines: observed facts, never a
    /// change.
    pub snapshots: Vec<MachineSnapshots>,
    /// The selected machines whose host could not be opened: nothing is
    /// planned for them, and the run fails once the others are done.
    pub unreachable: Vec<UnreachableMachine>,
}

/// A machine not planned because its host could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreachableMachine {
    pub address: Address,
    /// libvirt's reason.
    pub message: String,
}

impl UnreachableMachine {
    /// "host unreachable: <uri>: <libvirt's message>".
    pub fn reason(&self) -> String {
        format!(
            "host unreachable: {}: {}",
            self.address.uri().unwrap_or_default(),
            self.message
        )
    }
}

/// A machine's snapshots by name, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineSnapshots {
    pub address: Address,
    pub names: Vec<String>,
}

impl Plan {
    pub fn steps(&self) -> impl Iterator<Item = (NodeIndex, &Step)> {
        self.graph.node_indices().map(|i| (i, &self.graph[i]))
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The libvirt URIs the plan's machines are on, each once, in the
    /// order they first appear (steps, then unreachable machines).
    pub fn hosts(&self) -> Vec<&str> {
        let mut uris: Vec<&str> = Vec::new();
        let addresses = self.blocks.iter().map(|b| &b.address);
        let unreachable = self.unreachable.iter().map(|u| &u.address);
        for uri in addresses.chain(unreachable).filter_map(Address::uri) {
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
        uris
    }
}
