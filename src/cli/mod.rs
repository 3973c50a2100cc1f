//! The command line: argument definitions (clap derive) and one function per
//! command. Commands call into the library and render its results; errors are
//! rendered once, here, and every error exits 1, usage errors included.

mod apply;
mod capabilities;
mod classic;
mod cloudinit;
mod hosts;
mod human_ui;
mod image_set;
mod images;
mod init;
mod json_ui;
mod oneoff;
mod output;
mod passwd;
mod passwords;
mod plan;
mod progress;
mod reconcile_args;
mod schema;
mod smoke;
mod snapshot;
mod ssh;
mod status;
mod validate;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use output::Printer;

/// Declarative libvirt labs: plan and apply VMs from an Lvlab.yml manifest.
#[derive(Debug, Parser)]
#[command(name = "lvlab", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Manifest to read (default: Lvlab.yml in the working directory)
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// A settings file merged over the manifest (after /etc/Lvlab.yml and
    /// ~/.Lvlab.yml): networks, default_network, default_vm_username,
    /// runcmd, user_data, images
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Change to DIR before doing anything else
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Use the libvirt at URI for every selected environment, whatever its
    /// `libvirt_uri` says (e.g. another host, or a test:///FILE host)
    #[arg(long, value_name = "URI", global = true)]
    pub connect: Option<String>,

    /// Give up opening a libvirt connection after SECS seconds (default
    /// 30); calls on an open connection are not limited, as a first define
    /// or a TCG start can be slow
    #[arg(
        long,
        value_name = "SECS",
        global = true,
        env = "LVLAB_LIBVIRT_TIMEOUT",
        value_parser = parse_seconds
    )]
    pub libvirt_timeout: Option<std::time::Duration>,

    /// More log output on stderr (-v: debug, -vv: trace)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Never color output (also: the NO_COLOR environment variable)
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and check the manifest; print a summary per environment
    Validate(validate::ValidateArgs),
    /// Show what the libvirt host offers: hypervisor, KVM or only TCG, limits
    Capabilities(capabilities::CapabilitiesArgs),
    /// Show what apply would change, and why
    Plan(plan::PlanArgs),
    /// Carry out a plan (a saved one, or made now) after confirmation
    Apply(apply::ApplyArgs),
    /// Create and start machines (target running)
    Up(classic::UpArgs),
    /// Shut machines down, waiting for them to stop (target stopped)
    Down(classic::DownArgs),
    /// Power off and undefine machines and delete their files (target absent)
    Destroy(classic::DestroyArgs),
    /// Create and start a one-off machine without a manifest: its domain is
    /// named exactly NAME, its files go to <basedir>/oneoff/NAME/
    Createvm(oneoff::CreatevmArgs),
    /// Power off and undefine a one-off machine and delete its files;
    /// refuses domains lvlab did not make as one-off machines
    Deletevm(oneoff::DeletevmArgs),
    /// Each machine's state, SSH address and image
    Status(status::StatusArgs),
    /// Set a new console password in a running machine through its guest
    /// agent, and show it once
    Passwd(passwd::PasswdArgs),
    /// Render a machine's cloud-init seed (meta-data, user-data,
    /// network-config and cidata.iso) into its directory, or print it
    Cloudinit(cloudinit::CloudinitArgs),
    /// Download and verify images into the cache (the manifest's, or named
    /// ones; without a manifest, from the built-in catalog)
    Init(init::InitArgs),
    /// What the image caches hold, and cleaning them
    Images(images::ImagesArgs),
    /// Snapshots of machines: create, revert, delete, list
    Snapshot(snapshot::SnapshotArgs),
    /// Self-test this host: boot a throwaway machine, check over SSH that
    /// cloud-init applied its seed, destroy it; a table of steps and times
    Smoke(smoke::SmokeArgs),
    /// Log into a machine with ssh (or run CMD there); ssh's exit code is
    /// lvlab's
    Ssh(ssh::SshArgs),
    /// Print `Host` blocks for ~/.ssh/config (or `ssh -F FILE`)
    SshConfig(ssh::SshConfigArgs),
    /// The lab's name/address lines for /etc/hosts (printed, as a heredoc,
    /// or put into a file as a block a second run replaces)
    Hosts(hosts::HostsArgs),
    /// Print the JSON Schema of Lvlab.yml, for editors (yaml-language-server)
    Schema,
}

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let printer = Printer::new(cli.global.no_color, cli.global.quiet);
    init_logging(&cli.global, &printer);
    if let Some(dir) = &cli.global.directory {
        if let Err(err) = std::env::set_current_dir(dir) {
            printer.error(&format!("error: cannot change to {}: {err}", dir.display()));
            return ExitCode::from(1);
        }
    }
    if let Some(timeout) = cli.global.libvirt_timeout {
        crate::libvirt::set_connect_timeout(timeout);
    }
    let result = match &cli.command {
        Command::Validate(args) => validate::run(&cli.global, args, &printer),
        Command::Capabilities(args) => capabilities::run(&cli.global, args, &printer),
        Command::Plan(args) => plan::run(&cli.global, args, &printer),
        Command::Apply(args) => apply::run(&cli.global, args, &printer),
        Command::Up(args) => classic::up(&cli.global, args, &printer),
        Command::Down(args) => classic::down(&cli.global, args, &printer),
        Command::Destroy(args) => classic::destroy(&cli.global, args, &printer),
        Command::Createvm(args) => oneoff::createvm(&cli.global, args, &printer),
        Command::Deletevm(args) => oneoff::deletevm(&cli.global, args, &printer),
        Command::Status(args) => status::run(&cli.global, args, &printer),
        Command::Passwd(args) => passwd::run(&cli.global, args, &printer),
        Command::Cloudinit(args) => cloudinit::run(&cli.global, args, &printer),
        Command::Init(args) => init::run(&cli.global, args, &printer),
        Command::Images(args) => images::run(&cli.global, args, &printer),
        Command::Snapshot(args) => snapshot::run(&cli.global, args, &printer),
        Command::Smoke(args) => smoke::run(&cli.global, args, &printer),
        Command::Ssh(args) => ssh::ssh(&cli.global, args, &printer),
        Command::SshConfig(args) => ssh::ssh_config(&cli.global, args, &printer),
        Command::Hosts(args) => hosts::run(&cli.global, args, &printer),
        Command::Schema => schema::run(&printer),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            printer.error(&err.render(printer.color_stderr()));
            ExitCode::from(1)
        }
    }
}

/// Prints a command line clap rejected and returns its exit code: 0 for
/// `--help` and `--version`, 1 for a usage error. clap's own 2 would read as
/// "changes pending" to `plan --detailed-exitcode` in CI.
pub fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    // Nothing useful is left to do when stdout or stderr is gone.
    let _ = err.print();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// A positive number of seconds, fractions allowed (`0.5`).
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "`{text}` is out of range: give more than 0 and at most 86400 seconds"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// The manifest to read; `None` when none was named and there is no
/// Lvlab.yml here.
fn manifest_here(global: &GlobalArgs) -> Option<PathBuf> {
    let path = crate::manifest::manifest_path(global.file.as_deref());
    (global.file.is_some() || path.exists()).then_some(path)
}

/// The manifest at `path` with the host-wide settings files and the
/// `--config` file `config`, and `--connect` (`connect`) replacing every
/// environment's `libvirt_uri`: the one place both are applied.
fn load_manifest(
    path: &std::path::Path,
    config: Option<&std::path::Path>,
    connect: Option<&str>,
) -> Result<crate::desired::Desired, CliError> {
    let host = crate::manifest::HostSettings::discover(config);
    let mut desired = crate::manifest::load(path, &host)?;
    if let Some(uri) = connect {
        for env in &mut desired.environments {
            env.libvirt_uri = uri.to_string();
        }
    }
    Ok(desired)
}

fn init_logging(global: &GlobalArgs, printer: &Printer) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "lvlab=debug",
        (false, _) => "lvlab=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LVLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(printer.color_stderr())
        .without_time()
        .try_init();
}

/// Any error a command can end with. Each variant renders itself once.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    CloudInit(#[from] crate::cloudinit::CloudInitError),
    #[error(transparent)]
    Libvirt(#[from] crate::libvirt::LibvirtError),
    #[error(transparent)]
    Reconcile(#[from] crate::reconcile::ReconcileError),
    #[error(transparent)]
    Lock(#[from] crate::apply::LockError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Operation(#[from] crate::reconcile::OperationError),
    #[error(transparent)]
    SavedPlan(#[from] crate::plan::saved::SavedPlanError),
    #[error(transparent)]
    Image(Box<crate::images::ImageError>),
    #[error(transparent)]
    GuestAgent(#[from] crate::guest_agent::GuestAgentError),
    #[error(transparent)]
    OneOff(crate::oneoff::OneOffError),
    #[error(transparent)]
    Deployed(#[from] crate::reconcile::DeployedError),
    #[error(transparent)]
    Ssh(#[from] crate::access::ssh::SshCommandError),
    #[error(transparent)]
    LocalSeed(#[from] crate::rendering::LocalSeedError),
    #[error(transparent)]
    Init(#[from] crate::reconcile::init::InitError),
    #[error(transparent)]
    Probe(#[from] crate::kvm_probe::run::ProbeError),
    #[error("{0}")]
    Other(String),
}

impl From<crate::images::ImageError> for CliError {
    fn from(err: crate::images::ImageError) -> Self {
        CliError::Image(Box::new(err))
    }
}

impl From<crate::oneoff::OneOffError> for CliError {
    fn from(err: crate::oneoff::OneOffError) -> Self {
        match err {
            crate::oneoff::OneOffError::Manifest(err) => CliError::Manifest(err),
            other => CliError::OneOff(other),
        }
    }
}

impl CliError {
    fn render(&self, color: bool) -> String {
        match self {
            CliError::Manifest(err) => err.render(color),
            // The backstop for text from outside that no error escaped.
            other => crate::escape::escape_controls_by_line(&format!("error: {other}")),
        }
    }
}
