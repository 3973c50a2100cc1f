//! `lvlab passwd VM`: a new console password for a running machine of this
//! lab, set through its guest agent ([`crate::guest_agent`]) under the
//! environment's lock and shown once where console passwords may be shown.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::passwords::{ConsolePasswords, ShowPasswordsArg};
use super::reconcile_args::Session;
use super::{CliError, GlobalArgs, Printer};

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The machine's vm_name
    #[arg(value_name = "VM")]
    pub vm: String,

    /// Whose password (default: the machine's cloud-init user)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// The machine's environment (needed when several use the name)
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Wait up to SECONDS for another lvlab working on the same environment
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_timeout: u64,

    #[command(flatten)]
    pub passwords: ShowPasswordsArg,
}

pub fn run(
    global: &GlobalArgs,
    args: &PasswdArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let session = Session::load(global, args.env.clone())?;
    let desired = &session.desired;
    let machine = desired
        .machine(&args.vm, args.env.as_deref())
        .map_err(CliError::Other)?;
    let env = desired
        .environments
        .iter()
        .find(|e| e.name == machine.environment)
        .expect("a machine's environment is in the manifest");
    let user = args.user.as_deref().unwrap_or(&machine.cloud_init.user);
    // A password no one sees would lock the user out again.
    let passwords = ConsolePasswords::new(&args.passwords, true);
    if passwords.withheld() {
        return Err(CliError::Other(format!(
            "not setting a password for {user} in {} that no one would see: no terminal, \
             and no --show-passwords\n  hint: run it on a terminal, or pass --show-passwords \
             (the password goes to stderr)",
            machine.vm_name
        )));
    }
    let password = crate::guest_agent::new_console_password(
        env,
        machine,
        user,
        Duration::from_secs(args.lock_timeout),
    )?;
    printer.out(&format!(
        "{} ({}): password of {user} set through the guest agent",
        machine.vm_name, machine.environment
    ));
    passwords.show_new(&machine.vm_name, user, &password);
    Ok(ExitCode::SUCCESS)
}
