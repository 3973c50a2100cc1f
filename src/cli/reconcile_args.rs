//! What plan, apply and the classic commands share: which machines, which
//! environment, which target; and the loaded manifest with its lab.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, GlobalArgs};
use crate::desired::Desired;
use crate::manifest;
use crate::plan::{Selection, Target};
use crate::reconcile::Lab;

#[derive(Debug, Args, Clone)]
pub struct Selectors {
    /// Machines to act on (default: all)
    #[arg(value_name = "VM")]
    pub vms: Vec<String>,

    /// The state to reach
    #[arg(long, value_enum, default_value = "running")]
    pub target: Target,

    /// Only this environment
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Destroy and create VM again (to apply changes that need a new disk or seed)
    #[arg(long, value_name = "VM")]
    pub replace: Vec<String>,

    /// Also destroy lvlab's domains that the manifest no longer names
    #[arg(long)]
    pub prune: bool,

    /// Take over domains under this lab's names that another lab's mark
    /// names (another checkout, environment or lab_id); never unmarked ones
    #[arg(long)]
    pub adopt: bool,

    /// Run VM's `provision:` list again (a changed list runs only so)
    #[arg(long, value_name = "VM")]
    pub reprovision: Vec<String>,
}

impl Selectors {
    pub fn request(&self) -> (Target, Selection) {
        (
            self.target,
            Selection {
                machines: self.vms.clone(),
                replace: self.replace.clone(),
                prune: self.prune,
                images_only: false,
                images: Vec::new(),
                adopt: self.adopt,
                reprovision: self.reprovision.clone(),
            },
        )
    }

    /// The manifest, once every machine named on the command line is in it.
    pub fn session(&self, global: &GlobalArgs) -> Result<Session, CliError> {
        let session = Session::load(global, self.env.clone())?;
        session.require_machines(&self.vms)?;
        session.require_machines(&self.replace)?;
        session.require_machines(&self.reprovision)?;
        Ok(session)
    }
}

/// The manifest as loaded for one command, and the environment selector.
pub struct Session {
    pub path: PathBuf,
    pub desired: Desired,
    pub env: Option<String>,
    /// `--connect`: the URI every environment uses instead of its own.
    pub connect: Option<String>,
}

impl Session {
    pub fn load(global: &GlobalArgs, env: Option<String>) -> Result<Self, CliError> {
        Self::open(
            manifest::manifest_path(global.file.as_deref()),
            env,
            global.config.as_deref(),
            global.connect.clone(),
        )
    }

    /// The manifest at `path`, with the settings file `config` over it, on
    /// the libvirt at `connect` when given.
    pub fn open(
        path: PathBuf,
        env: Option<String>,
        config: Option<&std::path::Path>,
        connect: Option<String>,
    ) -> Result<Self, CliError> {
        let desired = super::load_manifest(&path, config, connect.as_deref())?;
        let session = Self {
            path,
            desired,
            env,
            connect,
        };
        session
            .desired
            .environments(session.env.as_deref())
            .map_err(CliError::Other)?;
        Ok(session)
    }

    /// The selected environments with their hypervisors open.
    pub fn lab(&self) -> Result<Lab<'_>, CliError> {
        let environments = self
            .desired
            .environments(self.env.as_deref())
            .map_err(CliError::Other)?;
        Ok(Lab::open(&self.desired, environments)?)
    }

    /// Each of `names` must be a machine of the selected environments; a
    /// near miss gets a suggestion.
    pub fn require_machines(&self, names: &[String]) -> Result<(), CliError> {
        self.desired
            .check_machine_names(names, self.env.as_deref())
            .map_err(CliError::Other)
    }

    pub fn manifest_name(&self) -> String {
        self.path.display().to_string()
    }
}
