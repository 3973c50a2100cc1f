//! Booting the lab: `lvlab up --all --wait` read line by line as it runs,
//! each guest logged into as soon as `up` says it answers on SSH, and
//! cloud-init waited for.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::checks::Checks;
use crate::image;
use crate::lab::{ssh, text, virsh, Guest, Lab, GUESTS, USER};
use crate::run;

pub fn ssh_timeout() -> Duration {
    let secs = std::env::var("LVLAB_E2E_SSH_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// What one guest's readiness thread measured.
pub struct Readiness {
    pub vm: &'static str,
    pub port: u16,
    /// Seconds from the start of `up` to `up --wait` saying the guest
    /// answers on SSH (as the test read the line).
    pub ssh_ready: Result<f64, String>,
    /// Seconds from the start of `up` to a working login with the key.
    pub login: Result<f64, String>,
    /// Seconds from the start of `up` to `cloud-init status --wait`
    /// returning, and what it printed.
    pub cloud_init: Result<(f64, String), String>,
}

/// Cloud-init's table of network devices from the guest's console, the
/// first place to look when SSH never answered.
pub fn console_net_info(console: &Path) -> String {
    let Ok(bytes) = std::fs::read(console) else {
        return format!("(no console log at {})", console.display());
    };
    let log = String::from_utf8_lossy(&bytes);
    let rows: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("Net device info"))
        .take_while(|l| !l.contains("Route"))
        .filter(|l| l.contains("ci-info: |"))
        .filter_map(|l| l.split("ci-info: ").nth(1))
        .collect();
    if rows.is_empty() {
        "(the console shows no cloud-init network table)".into()
    } else {
        format!("network devices per cloud-init:\n{}", rows.join("\n"))
    }
}

/// `up --wait`'s line for a guest that answers:
/// `<vm> answers on SSH after <N>s: ssh -p <port> <user>@127.0.0.1`.
fn parse_answer(line: &str) -> Option<(String, u16, String)> {
    let (vm, rest) = line.split_once(" answers on SSH after ")?;
    let hint = rest.split_once(": ")?.1;
    let words: Vec<&str> = hint.split_whitespace().collect();
    match words.as_slice() {
        ["ssh", "-p", port, target] => {
            let user = target.strip_suffix("@127.0.0.1")?;
            Some((vm.to_string(), port.parse().ok()?, user.to_string()))
        }
        _ => None,
    }
}

/// After `up --wait` said the guest answers: log in with the test's key,
/// then wait for cloud-init to finish.
fn after_answer(
    vm: &'static str,
    port: u16,
    key: PathBuf,
    started: Instant,
    answered: f64,
) -> Readiness {
    let mut ready = Readiness {
        vm,
        port,
        ssh_ready: Ok(answered),
        login: Err("never tried".into()),
        cloud_init: Err("could not log in".into()),
    };
    // sshd starts after cloud-init's init stage made the user: a login
    // should work at once; a few tries absorb a slow first handshake.
    for attempt in 1..=3 {
        let out = ssh(&key, port, "true");
        if out.status.success() {
            ready.login = Ok(started.elapsed().as_secs_f64());
            break;
        }
        ready.login = Err(format!(
            "ssh exit {:?}: {}",
            out.status.code(),
            text(&out).trim()
        ));
        if attempt < 3 {
            std::thread::sleep(Duration::from_secs(5));
        }
    }
    if ready.login.is_err() {
        return ready;
    }
    let out = ssh(&key, port, "cloud-init status --wait --long");
    let at = started.elapsed().as_secs_f64();
    eprintln!("{vm}: cloud-init finished after {at:.0} s");
    ready.cloud_init = Ok((at, text(&out)));
    ready
}

/// What `lvlab up --all --wait` did, read line by line as it ran.
pub struct Up {
    /// Seconds from the start of `up` until both domains ran.
    pub running: Option<f64>,
    /// Seconds from the start of `up` until it exited.
    pub exited: f64,
    pub output: Output,
    /// The readiness of each guest that answered, by name.
    pub answered: Vec<Readiness>,
    /// When each guest's console showed sshd started.
    pub sshd_started: Vec<(&'static str, Arc<OnceLock<f64>>)>,
}

/// Runs `lvlab up --all --wait`; while it waits, records the consoles (and
/// breaks a seed when asked), and as each guest's answer line comes, logs
/// into that guest on the port the line names.
pub fn up_and_wait(lab: &Lab, started: Instant) -> Up {
    let timeout = ssh_timeout().as_secs().to_string();
    let mut child = run::lvlab(lab.dir.path())
        .args(["up", "--all", "--wait", "--wait-timeout", &timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        all
    });
    let key = lab.key();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut checks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            eprintln!("  | {line}");
            if let Some((vm, port, user)) = parse_answer(&line) {
                let at = started.elapsed().as_secs_f64();
                let guest = GUESTS.iter().find(|g| g.vm == vm);
                match guest {
                    Some(guest) if user == USER => {
                        let key = key.clone();
                        let vm = guest.vm;
                        checks.push(std::thread::spawn(move || {
                            after_answer(vm, port, key, started, at)
                        }));
                    }
                    _ => eprintln!("  (unexpected guest or user in `{line}`)"),
                }
            }
            lines.push(line);
        }
        let answered: Vec<Readiness> = checks.into_iter().map(|c| c.join().unwrap()).collect();
        (lines, answered)
    });

    // Both domains running: record their consoles, break a seed if asked.
    let mut running = None;
    let mut sshd_started = Vec::new();
    while running.is_none() {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let out = virsh(&["list", "--state-running", "--name"]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        if GUESTS
            .iter()
            .all(|g| listed.lines().any(|l| l.trim() == lab.domain(g.vm)))
        {
            running = Some(started.elapsed().as_secs_f64());
            if let Ok(how) = std::env::var("LVLAB_E2E_BREAK") {
                lab.break_seed(&how);
            }
            sshd_started = lab.record_consoles(started);
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let status = child.wait().unwrap();
    let exited = started.elapsed().as_secs_f64();
    let (lines, answered) = reader.join().unwrap();
    let mut stdout = lines.join("\n").into_bytes();
    stdout.push(b'\n');
    Up {
        running,
        exited,
        output: Output {
            status,
            stdout,
            stderr: errors.join().unwrap(),
        },
        answered,
        sshd_started,
    }
}

/// `lvlab up --all --wait`, which must succeed or fail only on SSH.
pub fn up(lab: &Lab) -> Up {
    let started = Instant::now();
    let up = up_and_wait(lab, started);
    if !up.output.status.success()
        && !String::from_utf8_lossy(&up.output.stderr).contains("not reachable on SSH")
    {
        panic!("lvlab up --all --wait failed:\n{}", text(&up.output));
    }
    eprintln!(
        "lvlab up --all --wait returned after {:.1} s (domains running after {})",
        up.exited,
        up.running.map_or("-".into(), |s| format!("{s:.1} s"))
    );
    up
}

/// Each guest's readiness, in [`GUESTS`]' order: running, with the SSH
/// port `lvlab status` shows, and `up --wait`'s answer naming that port
/// (or why it never answered). The domain's image mark is checked in the
/// same pass.
pub fn readiness(
    checks: &mut Checks,
    lab: &Lab,
    up: &mut Up,
    status: &[serde_json::Value],
) -> Vec<Readiness> {
    let mut readiness = Vec::new();
    let mut answered = std::mem::take(&mut up.answered);
    for guest in &GUESTS {
        let row = status
            .iter()
            .find(|r| r["machine"] == guest.vm)
            .unwrap_or_else(|| panic!("{} missing from lvlab status", guest.vm));
        assert_eq!(row["state"], "running", "{row}");
        let port: u16 = row["ssh"]
            .as_str()
            .and_then(|s| s.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no SSH port for {} in status: {row}", guest.vm));
        image::check_image_mark(checks, lab, guest.vm);
        match answered.iter().position(|r| r.vm == guest.vm) {
            Some(i) => {
                let ready = answered.remove(i);
                checks.check(
                    guest.vm,
                    "`up --wait` names the SSH port",
                    ready.port == port,
                    &format!("port {port}, as `lvlab status` shows"),
                    &format!("port {}", ready.port),
                );
                readiness.push(ready);
            }
            None => {
                let console = lab.logs.join(format!("{}.console.log", guest.vm));
                let why = format!(
                    "`lvlab up --all --wait` did not say it answers; it said: {}\n{}",
                    String::from_utf8_lossy(&up.output.stderr).trim(),
                    console_net_info(&console)
                );
                readiness.push(Readiness {
                    vm: guest.vm,
                    port,
                    ssh_ready: Err(why),
                    login: Err("SSH was never reachable".into()),
                    cloud_init: Err("SSH was never reachable".into()),
                });
            }
        }
    }
    readiness
}

/// The guest answered on SSH and the test's key logs in: whether the
/// in-guest checks can run.
pub fn check_login(checks: &mut Checks, guest: &Guest, ready: &Readiness) -> bool {
    let port = ready.port;
    let steps = [
        (
            "SSH reachable",
            &ready.ssh_ready,
            format!("`lvlab up --all --wait` says it answers on 127.0.0.1:{port}"),
        ),
        (
            "SSH login with the test's key",
            &ready.login,
            format!("`ssh -p {port} {USER}@127.0.0.1` logs in with the key"),
        ),
    ];
    // In order, and no further than the first that failed.
    steps.iter().all(|(check, result, expected)| {
        let why = result.as_ref().err().map_or("", String::as_str);
        checks.check(guest.vm, check, result.is_ok(), expected, why)
    })
}

impl Readiness {
    /// What `cloud-init status --wait --long` printed, or why it did not run.
    pub fn cloud_init_output(&self) -> String {
        self.cloud_init
            .as_ref()
            .map(|(_, out)| out.clone())
            .unwrap_or_else(|e| e.clone())
    }
}

/// Right after `up`: the plan (through the same library `up` applied
/// with) has nothing left to do for the running lab.
pub fn check_plan_after_up(checks: &mut Checks, lab: &Lab) {
    let out = lab.lvlab(&["plan", "--json", "--detailed-exitcode"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let empty = |field: &str| plan[field].as_array().is_some_and(Vec::is_empty);
    checks.check(
        "lab",
        "`plan --json` after `up` shows no change",
        out.status.code() == Some(0) && empty("actions") && empty("changes"),
        "exit 0 (`--detailed-exitcode`), no `actions` and no `changes`",
        &format!("exit {:?}: {}", out.status.code(), text(&out)),
    );
}
