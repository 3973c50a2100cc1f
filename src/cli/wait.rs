//! `--wait` and `--wait-timeout`: the arguments only; the wait itself is the
//! operation's ([`crate::reconcile::Operation::wait`]).

use std::time::Duration;

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// After applying, wait until every started machine answers on SSH
    #[arg(long)]
    pub wait: bool,

    /// How long --wait, and a provisioning, waits for SSH (software
    /// emulation boots slowly)
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait_timeout: u64,
}

impl WaitArgs {
    /// How long to wait, when `--wait` was given.
    pub fn requested(&self) -> Option<Duration> {
        self.wait.then(|| self.timeout())
    }

    /// How long `--wait` (and a provisioning step) waits for SSH.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.wait_timeout)
    }
}
