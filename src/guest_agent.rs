//! What lvlab asks of a running guest through qemu-guest-agent (libvirt's
//! `virDomainSetUserPassword`): a new console password for a user who lost
//! the one shown at creation. Only this lab's own machines, and only
//! running ones: the agent lives in the guest.
//!
//! Only the SHA-512 crypt hash travels (`VIR_DOMAIN_PASSWORD_ENCRYPTED`,
//! the agent's `chpasswd -e`); the plain text stays with the caller, who
//! shows it once. Nothing is recorded: the seed keeps the hash of the
//! creation-time password, so a re-render neither rolls the new one back
//! nor counts as drift, and cloud-init sets users once per instance
//! (`iid-<domain>`, which never changes), so a reboot keeps it too.

use std::time::Duration;

use crate::apply::{EnvironmentLock, LockError};
use crate::cloudinit::password::OneTimePassword;
use crate::cloudinit::CloudInitError;
use crate::desired::{ConsolePassword, EnvironmentSpec, MachineSpec};
use crate::host::Host;
use crate::libvirt::{Connection, LibvirtError};
use crate::observe::{domains, PowerState};

#[derive(Debug, thiserror::Error)]
pub enum GuestAgentError {
    #[error(
        "machine {vm_name} has `password: false` in the manifest: it has no console password \
         to set\n  hint: remove `password: false` (the next `--replace` then shows a generated \
         one), or log in with the SSH key"
    )]
    PasswordDisabled { vm_name: String },
    #[error("{vm_name} is not deployed (lvlab up {vm_name} creates it)")]
    NotDeployed { vm_name: String },
    #[error("domain {domain} on {uri} was not made by lvlab: lvlab changes only machines it made")]
    Foreign { domain: String, uri: String },
    #[error(
        "domain {domain} on {uri} belongs to another lab ({owner}): lvlab changes only this \
         lab's machines"
    )]
    OtherLab {
        domain: String,
        uri: String,
        owner: String,
    },
    #[error(
        "{vm_name} is {state}: the guest agent answers only in a running machine\n  hint: \
         `lvlab up {vm_name}` starts it"
    )]
    NotRunning {
        vm_name: String,
        state: &'static str,
    },
    #[error(
        "cannot set the password of {user} in {vm_name}: {message}\n  hint: qemu-guest-agent \
         must run in the guest (lvlab's images have it; in the guest: `systemctl status \
         qemu-guest-agent`); a machine that has just started may need a few more seconds"
    )]
    Agent {
        vm_name: String,
        user: String,
        message: String,
    },
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Hash(#[from] CloudInitError),
}

/// `lvlab passwd`: a new password for `user` in `machine` (of `env`), set
/// under the environment's lock (waiting up to `lock_timeout` for another
/// lvlab); the plain text, for the caller to show once.
pub fn new_console_password(
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    user: &str,
    lock_timeout: Duration,
) -> Result<OneTimePassword, GuestAgentError> {
    let host = Host::open(&machine.libvirt_uri)?;
    let _lock = EnvironmentLock::acquire(
        &crate::apply::state_dir()?,
        host.canonical_uri(),
        &env.name,
        lock_timeout,
    )?;
    let password = OneTimePassword::generate()?;
    set_console_password(&host.connection(), env, machine, user, &password)?;
    Ok(password)
}

/// Sets `user`'s password in `machine` (of `env`, on `conn`) to `password`,
/// once the domain is this lab's and running.
pub fn set_console_password(
    conn: &Connection,
    env: &EnvironmentSpec,
    machine: &MachineSpec,
    user: &str,
    password: &OneTimePassword,
) -> Result<(), GuestAgentError> {
    if machine.cloud_init.password == ConsolePassword::Disabled {
        return Err(GuestAgentError::PasswordDisabled {
            vm_name: machine.vm_name.clone(),
        });
    }
    require_running_machine(conn, env, machine)?;
    let hash = password.hash()?;
    let domain = conn
        .raw()
        .lookup_domain_by_name(&machine.domain_name)
        .map_err(|err| conn.error("look up a domain", err))?;
    domain
        .set_user_password(user, &hash, virt::sys::VIR_DOMAIN_PASSWORD_ENCRYPTED)
        .map_err(|err| GuestAgentError::Agent {
            vm_name: machine.vm_name.clone(),
            user: user.to_string(),
            message: err.message().to_string(),
        })
}

/// The machine's domain exists, carries this lab's mark for it, and runs.
fn require_running_machine(
    conn: &Connection,
    env: &EnvironmentSpec,
    machine: &MachineSpec,
) -> Result<(), GuestAgentError> {
    let domain = &machine.domain_name;
    let found = domains::find(conn, domain)?.ok_or_else(|| GuestAgentError::NotDeployed {
        vm_name: machine.vm_name.clone(),
    })?;
    let uri = conn.uri().to_string();
    match &found.mark {
        None => {
            return Err(GuestAgentError::Foreign {
                domain: domain.clone(),
                uri,
            })
        }
        Some(mark) if !env.owns_machine(mark, machine) => {
            return Err(GuestAgentError::OtherLab {
                domain: domain.clone(),
                uri,
                owner: mark.owner(),
            })
        }
        Some(_) => {}
    }
    if found.state != PowerState::Running {
        return Err(GuestAgentError::NotRunning {
            vm_name: machine.vm_name.clone(),
            state: found.state.label(),
        });
    }
    Ok(())
}
