//! lvlab run the way a user runs it: the production download settings
//! (every `LVLAB_HTTP_*` removed, so the built-in timeouts, retries and
//! backoff apply), no proxy between it and the loopback test server, no
//! host-wide settings files of the machine, no colour, no terminal on
//! stdin, and its locks in a state directory of the test run, never the
//! host's `/run/lvlab`.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lvlab::desired::ChecksumAlgorithm;
use lvlab::images::hash::StreamHasher;

/// `lvlab -C dir`.
pub fn lvlab(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lvlab"));
    command
        .arg("-C")
        .arg(dir)
        .env("NO_COLOR", "1")
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(lvlab::apply::STATE_DIR_VAR, state_dir())
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .stdin(Stdio::null());
    for var in [
        "LVLAB_HTTP_CONNECT_TIMEOUT",
        "LVLAB_HTTP_TIMEOUT",
        "LVLAB_HTTP_RETRIES",
        "LVLAB_HTTP_BACKOFF_MS",
        "LVLAB_LOG",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        command.env_remove(var);
    }
    command
}

/// `program` (a script, a shell) with the environment [`lvlab`] gives
/// lvlab, for the lvlab it runs itself; and the arguments [`lvlab`] gives
/// (`-C dir`), to pass on to it.
pub fn like_lvlab(dir: &Path, program: &str) -> (Command, Vec<std::ffi::OsString>) {
    let lvlab = lvlab(dir);
    let mut command = Command::new(program);
    for (key, value) in lvlab.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.stdin(Stdio::null());
    let args = lvlab.get_args().map(ToOwned::to_owned).collect();
    (command, args)
}

/// The state directory (locks) every lvlab of this test process shares,
/// as lvlabs on one host do.
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id()))
}

/// stdout and stderr of a finished run, for assertions and their messages.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut hasher = StreamHasher::new(ChecksumAlgorithm::Sha256);
    hasher.update(bytes);
    hasher.finish()
}
