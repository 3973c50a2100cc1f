//! The command line: argument definitions (clap derive) and one function per
//! command. Commands call into the library and render its results; errors are
//! rendered once, here, and every error exits 1, usage errors included.

#[macro_use]
mod examples;

mod apply;
mod capabilities;
mod classic;
mod cloudinit;
mod complete_names;
mod completions;
mod hosts;
mod human_ui;
mod image_set;
mod images;
mod init;
mod json_ui;
mod man;
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

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use complete_names::CompleteArgs;
pub use output::Printer;

/// Declarative libvirt labs: plan and apply VMs from an Lvlab.yml manifest.
#[derive(Debug, Parser)]
#[command(
    name = "lvlab",
    version,
    about,
    propagate_version = true,
    after_help = examples!(
        "lvlab validate" => "check ./Lvlab.yml and summarize each environment",
        "lvlab plan" => "what apply would change, and why",
        "lvlab up --all --wait" => "create and start every machine, wait for SSH",
    )
)]
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
    #[command(after_help = examples!(
        "lvlab validate" => "check ./Lvlab.yml: one summary line per environment",
        "lvlab -f examples/full/Lvlab.yml validate --show-resolved" =>
            "every machine with its defaults and settings files resolved",
        "lvlab validate --env test --json" => "one environment's summary as JSON",
    ))]
    Validate(validate::ValidateArgs),
    /// Show what the libvirt host offers: hypervisor, KVM or only TCG, limits
    #[command(after_help = examples!(
        "lvlab capabilities" => "each environment's host: versions, KVM or TCG, limits",
        "lvlab capabilities --connect qemu:///session --json" => "one host, as JSON",
        "lvlab capabilities --probe" => "start a throwaway guest to see that KVM really works",
    ))]
    Capabilities(capabilities::CapabilitiesArgs),
    /// Show what apply would change, and why
    #[command(after_help = examples!(
        "lvlab plan" => "what apply would change for every machine, and why",
        "lvlab plan web db --target stopped" => "what stopping two machines would take",
        "lvlab plan --detailed-exitcode --json > plan.json" =>
            "a CI drift check: exit 2 when the lab differs, the plan as JSON",
    ))]
    Plan(plan::PlanArgs),
    /// Carry out a plan (a saved one, or made now) after confirmation
    #[command(after_help = examples!(
        "lvlab apply" => "show the plan, ask, then carry it out",
        "lvlab apply lab.plan" => "carry out a plan saved by `lvlab plan --out lab.plan`",
        "lvlab apply --auto-approve --json" => "no question; one JSON object per line",
    ))]
    Apply(apply::ApplyArgs),
    /// Create and start machines (target running)
    #[command(after_help = examples!(
        "lvlab up --all --wait" => "every machine, then wait until each answers on SSH",
        "lvlab up web --env test" => "one machine of one environment",
    ))]
    Up(classic::UpArgs),
    /// Shut machines down, waiting for them to stop (target stopped)
    #[command(after_help = examples!(
        "lvlab down" => "ACPI shutdown of every deployed machine, and wait",
        "lvlab down web --timeout 30 --force" => "power web off if it has not stopped in 30 s",
    ))]
    Down(classic::DownArgs),
    /// Power off and undefine machines and delete their files (target absent)
    #[command(after_help = examples!(
        "lvlab destroy web" => "remove one machine and its files, after asking",
        "lvlab destroy --force" => "remove every machine without asking",
    ))]
    Destroy(classic::DestroyArgs),
    /// Create and start a one-off machine without a manifest: its domain is
    /// named exactly NAME, its files go to <basedir>/oneoff/NAME/
    #[command(after_help = examples!(
        "lvlab createvm scratch debian12" => "a Debian 12 machine named scratch on qemu:///system",
        "lvlab createvm db01 debian12 --ip4 10.0.0.5 --memory 4G" => "with a static address and 4 GiB",
        "lvlab createvm tmp debian12 --connect qemu:///session --network-type passt" =>
            "rootless, SSH forwarded on 127.0.0.1",
    ))]
    Createvm(oneoff::CreatevmArgs),
    /// Power off and undefine a one-off machine and delete its files;
    /// refuses domains lvlab did not make as one-off machines
    #[command(after_help = examples!(
        "lvlab deletevm scratch" => "remove scratch and its files, after asking",
        "lvlab deletevm tmp --force --connect qemu:///session" => "without asking",
    ))]
    Deletevm(oneoff::DeletevmArgs),
    /// Each machine's state, SSH address and image
    #[command(after_help = examples!(
        "lvlab status" => "a table: each machine's state, SSH address and image",
        "lvlab status --env test --json" => "one environment, as JSON",
    ))]
    Status(status::StatusArgs),
    /// Set a new console password in a running machine through its guest
    /// agent, and show it once
    #[command(after_help = examples!(
        "lvlab passwd web" => "a new password for the default user, shown once",
        "lvlab passwd web --user root" => "the same for root",
    ))]
    Passwd(passwd::PasswdArgs),
    /// Render a machine's cloud-init seed (meta-data, user-data,
    /// network-config and cidata.iso) into its directory, or print it
    #[command(after_help = examples!(
        "lvlab cloudinit web" => "write web's seed files and cidata.iso into its directory",
        "lvlab cloudinit web --stdout" => "print the three documents instead",
    ))]
    Cloudinit(cloudinit::CloudinitArgs),
    /// Download and verify images into the cache (the manifest's, or named
    /// ones; without a manifest, from the built-in catalog)
    #[command(after_help = examples!(
        "lvlab init" => "download and verify every image the manifest uses",
        "lvlab init debian12 --refresh" => "one image, asking its publisher again",
        "lvlab init --jobs 8" => "eight downloads at once",
    ))]
    Init(init::InitArgs),
    /// What the image caches hold, and cleaning them
    #[command(after_help = examples!(
        "lvlab images list" => "every cached file: image, size, verified, users",
        "lvlab images clean" => "what cleaning would remove (a dry run)",
        "lvlab images clean --force" => "remove it",
    ))]
    Images(images::ImagesArgs),
    /// Snapshots of machines: create, revert, delete, list
    #[command(after_help = examples!(
        "lvlab snapshot create before-upgrade --all" => "snapshot every deployed machine",
        "lvlab snapshot revert before-upgrade web" => "bring web back to it",
        "lvlab snapshot list" => "each machine's snapshots",
    ))]
    Snapshot(snapshot::SnapshotArgs),
    /// Self-test this host: boot a throwaway machine, check over SSH that
    /// cloud-init applied its seed, destroy it; a table of steps and times
    #[command(after_help = examples!(
        "lvlab smoke" => "the manifest's first image, else the catalog's debian12",
        "lvlab smoke --image fedora44 --json" => "another image, the report as JSON",
    ))]
    Smoke(smoke::SmokeArgs),
    /// Log into a machine with ssh (or run CMD there); ssh's exit code is
    /// lvlab's
    #[command(after_help = examples!(
        "lvlab ssh web" => "a login shell on web",
        "lvlab ssh web -- sudo salt-call state.apply" => "run one command there",
        "lvlab ssh web --print" => "show the ssh command line instead",
    ))]
    Ssh(ssh::SshArgs),
    /// Print `Host` blocks for ~/.ssh/config (or `ssh -F FILE`)
    #[command(after_help = examples!(
        "lvlab ssh-config > lab.ssh" => "then `ssh -F lab.ssh web` reaches web",
        "lvlab ssh-config web --strict-host-keys" => "check web's host key against lvlab's",
    ))]
    SshConfig(ssh::SshConfigArgs),
    /// The lab's name/address lines for /etc/hosts (printed, as a heredoc,
    /// or put into a file as a block a second run replaces)
    #[command(after_help = examples!(
        "lvlab hosts" => "print `address fqdn hostname` lines",
        "lvlab hosts --append /etc/hosts" => "put them into /etc/hosts as a block",
    ))]
    Hosts(hosts::HostsArgs),
    /// Print the JSON Schema of Lvlab.yml, for editors (yaml-language-server)
    #[command(after_help = examples!(
        "lvlab schema > lvlab.schema.json" =>
            "then `# yaml-language-server: $schema=lvlab.schema.json` atop Lvlab.yml",
        "lvlab schema | jq '.properties | keys'" => "the top-level keys",
    ))]
    Schema,
    /// Print a shell completion script (machine and environment names
    /// complete from the manifest in bash and zsh)
    #[command(after_help = examples!(
        "lvlab completions bash > ~/.local/share/bash-completion/completions/lvlab" =>
            "bash loads it for each new shell",
        "lvlab completions zsh > ~/.zfunc/_lvlab" =>
            "zsh loads it with fpath+=~/.zfunc before compinit",
        "lvlab completions fish > ~/.config/fish/completions/lvlab.fish" => "fish",
    ))]
    Completions(completions::CompletionsArgs),
    /// Write a man page per command (lvlab.1, lvlab-plan.1, ...)
    #[command(after_help = examples!(
        "lvlab man --dir ~/.local/share/man/man1" => "then `man lvlab-plan` shows plan's page",
        "lvlab man --dir /tmp/lvlab-man" => "then `man -l /tmp/lvlab-man/lvlab.1`",
    ))]
    Man(man::ManArgs),
}

/// What this process was asked to do.
#[derive(Debug)]
pub enum Invocation {
    Command(Box<Cli>),
    /// `lvlab __complete`, which the completion scripts call: kept out of
    /// [`Cli`], as clap_complete would offer even a hidden subcommand.
    Complete(CompleteArgs),
}

/// The command line of this process, parsed; `--version` says the commit
/// and the libvirt library too.
pub fn parse() -> Result<Invocation, clap::Error> {
    let mut matches = Cli::command()
        .long_version(long_version())
        .subcommand(CompleteArgs::augment_args(
            clap::Command::new(complete_names::SUBCOMMAND).hide(true),
        ))
        .try_get_matches()?;
    let invocation = match matches.subcommand() {
        Some((complete_names::SUBCOMMAND, words)) => {
            CompleteArgs::from_arg_matches(words).map(Invocation::Complete)
        }
        _ => Cli::from_arg_matches_mut(&mut matches).map(|cli| Invocation::Command(Box::new(cli))),
    };
    invocation.map_err(|err| err.format(&mut Cli::command()))
}

/// Answers `lvlab __complete`: names or nothing, never an error or a log.
pub fn complete(args: &CompleteArgs) -> ExitCode {
    complete_names::run(args, &Printer::new(true, true))
}

/// What `lvlab --version` prints after "lvlab ": the version, the git commit
/// it was built from, and the libvirt library it runs against (`-V` prints
/// the version alone).
pub fn long_version() -> String {
    let libvirt = crate::libvirt::library_version().unwrap_or_else(|| "unknown".into());
    format!(
        "{}\ncommit: {}\nlibvirt: {libvirt}",
        env!("CARGO_PKG_VERSION"),
        env!("LVLAB_GIT_COMMIT"),
    )
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
        Command::Completions(args) => completions::run(args, &printer),
        Command::Man(args) => man::run(args, &printer),
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
            for machine in &mut env.machines {
                machine.libvirt_uri = uri.to_string();
            }
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
