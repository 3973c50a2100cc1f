//! The plan: what must change to bring the observed world to the desired
//! state for a target, as a dependency graph of actions, each with its
//! reasons. A plan is a value: [`check`] first vets the request against the
//! observed host (every problem at once), then [`build`] makes the plan;
//! both read plain data and never touch libvirt or the disk. `text` and
//! `json` render it; apply walks it.

mod build;
mod checks;
mod diff;
mod json;
pub mod saved;
mod text;

use std::path::PathBuf;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use crate::domain::{FieldChange, SpecFields};
pub use build::{build, PlanError, PlanInput};
pub use checks::{check, is_selected, lease_collision, CheckInput, Feasible, Problem, Problems};
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
    /// Take over domains under wanted names that another lab's mark names
    /// (never unmarked ones): the define rewrites the mark.
    #[serde(default)]
    pub adopt: bool,
}

/// Everything the rendering of a desired machine produced, for comparison
/// with what was recorded when it was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMachine {
    pub fields: SpecFields,
    pub spec_digest: String,
    /// The domain definition, as defined.
    pub definition: String,
    /// The cloud-init seed it boots with.
    pub seed: crate::cloudinit::Seed,
    /// The osinfo variant recorded in the definition.
    pub os_variant: crate::observe::osinfo::OsVariant,
}

/// The thing an action is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Address {
    Image {
        key: String,
        path: PathBuf,
    },
    Machine {
        environment: String,
        vm_name: String,
        domain: String,
    },
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Image { key, .. } => write!(f, "image.{key}"),
            Address::Machine {
                environment,
                vm_name,
                ..
            } => write!(f, "{environment}.{vm_name}"),
        }
    }
}

/// One step. Plain data: the apply side decides how each is carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Download the image, checking its checksum while the bytes arrive,
    /// after the checksum file's OpenPGP signature (when configured).
    DownloadImage {
        checksum: bool,
        signature: bool,
    },
    CreateDisk {
        index: usize,
        path: PathBuf,
    },
    BuildSeed,
    DefineDomain,
    /// Define again over the existing domain: in-place changes.
    RedefineDomain,
    StartDomain,
    /// Resume a paused domain.
    ResumeDomain,
    /// ACPI shutdown, waiting for the guest to stop.
    ShutdownDomain,
    PowerOffDomain,
    UndefineDomain,
    /// The machine's directory, and the environment's once empty.
    RemoveFiles {
        dir: PathBuf,
    },
}

impl Action {
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
            Action::CreateDisk { path, .. } => format!(
                "create disk {}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            Action::BuildSeed => "build seed ISO".into(),
            Action::DefineDomain => "define domain".into(),
            Action::RedefineDomain => "update domain definition".into(),
            Action::StartDomain => "start".into(),
            Action::ResumeDomain => "resume".into(),
            Action::ShutdownDomain => "shut down".into(),
            Action::PowerOffDomain => "power off".into(),
            Action::UndefineDomain => "undefine domain".into(),
            Action::RemoveFiles { .. } => "remove files".into(),
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
    NotRunning {
        state: String,
    },
    /// Suspended outside lvlab (`virsh suspend`).
    Paused,
    Running,
    TargetAbsent,
    NotInManifest,
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
}

impl Plan {
    pub fn steps(&self) -> impl Iterator<Item = (NodeIndex, &Step)> {
        self.graph.node_indices().map(|i| (i, &self.graph[i]))
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }
}
