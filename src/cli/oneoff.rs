//! `lvlab createvm NAME DISTRO` and `lvlab deletevm NAME`: one-off machines
//! without a manifest ([`crate::oneoff`]), carried out by the same
//! operation as `up` and `destroy`, shown by the text view.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::apply::View;
use super::passwords::ShowPasswordsArg;
use super::reconcile_args::Session;
use super::wait::WaitArgs;
use super::{CliError, GlobalArgs, Printer};
use crate::desired::{Desired, DomainType};
use crate::manifest::HostSettings;
use crate::oneoff::{self, NetworkType, OneOffMachine};
use crate::plan::{Selection, Target};
use crate::reconcile::{Confirm, Operation};

#[derive(Debug, Args)]
pub struct CreatevmArgs {
    /// The machine's name: its libvirt domain is named exactly this, and
    /// an FQDN (`scratch.lab.example`) is also the guest's FQDN
    #[arg(value_name = "NAME")]
    pub name: String,
    /// An image key: the built-in catalog (`lvlab status` outside a lab
    /// lists it) or `images:` of the settings files
    #[arg(value_name = "DISTRO")]
    pub distro: String,
    /// A static IPv4 address, `IP[/PREFIX]` (prefix 24 when left out) or
    /// `NETWORK,IP[/PREFIX]`; `dhcp` or none: DHCP
    #[arg(long, value_name = "ADDRESS")]
    pub ip4: Option<String>,
    /// A static IPv6 address, `IP[/PREFIX]` (prefix 64 when left out)
    #[arg(long, value_name = "ADDRESS")]
    pub ip6: Option<String>,
    /// vCPUs [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu: Option<u32>,
    /// KVM, or QEMU's software emulation (`qemu`, TCG) where KVM is not
    /// offered or does not work [default: auto, as the manifest's
    /// `domain_type`]
    #[arg(long, value_enum, value_name = "TYPE")]
    pub domain_type: Option<DomainTypeArg>,
    /// Memory in MiB, or with a unit: 512M, 2G [default: 2048]
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// The boot disk's size, e.g. 20G
    #[arg(long, value_name = "SIZE", default_value = oneoff::DEFAULT_DISK_SIZE)]
    pub disk_size: String,
    /// The libvirt network [default: the settings' default_network, else
    /// `default`]
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// How the NIC is attached: a libvirt network, or user-mode networking
    /// that needs no host setup (`passt` forwards SSH from a free port on
    /// 127.0.0.1), for rootless qemu:///session
    #[arg(long, value_enum, default_value = "network")]
    pub network_type: NetworkTypeArg,
    /// The SSH public key to log in with [default: ~/.ssh/id_ed25519.pub,
    /// else ~/.ssh/id_rsa.pub]
    #[arg(long, value_name = "FILE.pub")]
    pub public_key: Option<PathBuf>,
    #[command(flatten)]
    pub basedir: BasedirArg,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub passwords: ShowPasswordsArg,
}

#[derive(Debug, Args)]
pub struct DeletevmArgs {
    /// The one-off machine's name (its domain's name)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Do not ask for confirmation
    #[arg(long, visible_alias = "yes", short = 'y')]
    pub force: bool,
    #[command(flatten)]
    pub basedir: BasedirArg,
}

#[derive(Debug, Args)]
pub struct BasedirArg {
    /// Where the image cache (`cloud-images/`) and the machine's files
    /// (`oneoff/NAME/`) live [default: /var/lib/libvirt/images/lvlab]
    #[arg(long, value_name = "DIR")]
    pub basedir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DomainTypeArg {
    Auto,
    Kvm,
    Qemu,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NetworkTypeArg {
    Network,
    User,
    Passt,
}

pub fn createvm(
    global: &GlobalArgs,
    args: &CreatevmArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let machine = OneOffMachine {
        name: args.name.clone(),
        distro: args.distro.clone(),
        libvirt_uri: uri(global),
        basedir: args.basedir.basedir.clone(),
        cpu: args.cpu,
        domain_type: args.domain_type.map(|t| match t {
            DomainTypeArg::Auto => DomainType::Auto,
            DomainTypeArg::Kvm => DomainType::Kvm,
            DomainTypeArg::Qemu => DomainType::Qemu,
        }),
        memory: args.memory.clone(),
        disk_size: Some(args.disk_size.clone()),
        network: args.network.clone(),
        network_type: match args.network_type {
            NetworkTypeArg::Network => NetworkType::Network,
            NetworkTypeArg::User => NetworkType::User,
            NetworkTypeArg::Passt => NetworkType::Passt,
        },
        ip4: args.ip4.clone(),
        ip6: args.ip6.clone(),
        public_key: args.public_key.clone(),
    };
    let desired = oneoff::desired(&machine, &host_settings(global))?;
    let session = session(global, desired);
    let mut operation = Operation::new(Target::Running, one(&args.name));
    operation.wait = args.wait.requested();
    View::Human(printer).run(&operation, &session, &session.lab()?, &args.passwords)
}

pub fn deletevm(
    global: &GlobalArgs,
    args: &DeletevmArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let desired = oneoff::to_delete(
        &args.name,
        &uri(global),
        args.basedir.basedir.clone(),
        &host_settings(global),
    )?;
    let session = session(global, desired);
    let lab = session.lab()?;
    oneoff::check_deletable(&lab)?;
    let mut operation = Operation::new(Target::Absent, one(&args.name));
    operation.confirm = (!args.force).then_some(Confirm::DESTROY);
    View::Human(printer).run(&operation, &session, &lab, &ShowPasswordsArg::default())
}

/// `--connect`, else the original's `qemu:///system`.
fn uri(global: &GlobalArgs) -> String {
    global
        .connect
        .clone()
        .unwrap_or_else(|| oneoff::DEFAULT_URI.to_string())
}

fn host_settings(global: &GlobalArgs) -> HostSettings {
    HostSettings::discover(global.config.as_deref())
}

fn session(global: &GlobalArgs, desired: Desired) -> Session {
    Session {
        // What the plan's "the lab matches ..." names.
        path: PathBuf::from("the command line"),
        desired,
        env: None,
        connect: global.connect.clone(),
    }
}

/// The one-off machine alone: never another domain of the environment.
fn one(name: &str) -> Selection {
    Selection {
        machines: vec![name.to_string()],
        ..Selection::default()
    }
}
