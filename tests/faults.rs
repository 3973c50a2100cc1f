//! The fault-injection tier: lvlab is killed, its disk fills up, its
//! libvirt daemon dies, and the next apply must still converge with nothing
//! left behind.
//!
//! - SIGKILL at every step boundary of `up` and of `destroy` over a
//!   5-machine lab on `qemu:///session` (blank disks, TCG, no NIC). The
//!   boundaries are read from lvlab's own log
//!   (`LVLAB_LOG=lvlab::apply::executor=debug`: `step started: ...`,
//!   `step finished: ...` on stderr), not guessed with sleeps.
//! - `up` with the VM directory on a tmpfs that fills up half-way.
//! - The system libvirtd (which serves `qemu:///session` to root) killed
//!   during an `up`, then restarted.
//!
//! After each fault: one more apply, then `plan --detailed-exitcode` exits
//! 0; after a final `destroy`, no domain, QEMU process, VM directory or
//! temporary file (`*.partial`, `*.tmp`) of the lab remains.
//!
//! Ignored by the fast `cargo test`: it needs root (tmpfs, libvirtd), and
//! killing libvirtd breaks every session lab of the machine for a moment,
//! so it never runs beside another tier. `scripts/faults.sh` runs it:
//!
//! ```sh
//! cargo test --test faults -- --ignored --test-threads=1 --nocapture
//! ```

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;
use support::tiny_image;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab_manifest::LabManifest;

const MACHINES: usize = 5;
/// Where the log names step boundaries, and the lines it writes there.
const STEP_LOG: &str = "lvlab::apply::executor=debug";
const STARTED: &str = "step started: ";
const FINISHED: &str = "step finished: ";
/// Longest any single lvlab run of this tier may take before it counts as
/// a hang.
const RUN_BOUND: Duration = Duration::from_secs(120);

/// A 5-machine lab on `qemu:///session` whose VM directory is `vms`.
struct Lab {
    dir: tempfile::TempDir,
    vms: PathBuf,
    env: String,
}

impl Lab {
    /// A lab named `name` and the test's PID, its VMs under `vms` (or the
    /// lab's own directory).
    fn new(name: &str, vms: Option<&Path>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lvlab-faults.")
            .tempdir_in("/var/tmp")
            .unwrap();
        let vms = vms.map_or_else(|| dir.path().join("vms"), Path::to_path_buf);
        let env = format!("{name}{}", std::process::id());
        tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
        let mut manifest = LabManifest::tiny(&env, "qemu:///session", dir.path())
            .defaults(|d| d.tcg(128).disk_image_basedir(&vms).no_password());
        for n in 1..=MACHINES {
            manifest = manifest.machine(&format!("m{n}"), |m| m.no_interfaces());
        }
        manifest.write(dir.path());
        Self { dir, vms, env }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = run::lvlab(self.dir.path());
        command.args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = run::texts(&out);
        assert!(
            out.status.success(),
            "lvlab {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    }

    /// `plan --detailed-exitcode` (with `extra` arguments) finds nothing
    /// to do.
    #[track_caller]
    fn assert_converged(&self, extra: &[&str]) {
        let mut args = vec!["plan", "--detailed-exitcode"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let (stdout, stderr) = run::texts(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "lvlab {args:?}:\n{stdout}\n{stderr}\nfiles of the lab: {:?}",
            files_under(&self.vms.join(&self.env))
        );
    }

    /// The lab's domains libvirt knows.
    fn domains(&self) -> Vec<String> {
        let out = Command::new("virsh")
            .args(["-c", "qemu:///session", "list", "--all", "--name"])
            .output()
            .expect("virsh (libvirt-clients) is installed by scripts/setup.sh");
        let suffix = format!("_{}", self.env);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(&suffix))
            .map(str::to_string)
            .collect()
    }

    /// QEMU processes running one of the lab's guests, known to libvirt or
    /// not.
    fn qemu_processes(&self) -> Vec<String> {
        let out = Command::new("pgrep")
            .args(["-a", "-f", &format!("guest=m[0-9]+_{},", self.env)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// After a `destroy`: nothing of the lab remains anywhere.
    #[track_caller]
    fn assert_nothing_left(&self) {
        assert_eq!(self.domains(), Vec::<String>::new(), "domains left");
        assert_eq!(self.qemu_processes(), Vec::<String>::new(), "QEMU left");
        let env_dir = self.vms.join(&self.env);
        assert!(
            !env_dir.exists(),
            "{} left, holding {:?}",
            env_dir.display(),
            files_under(&env_dir)
        );
        let temporary: Vec<PathBuf> = [self.dir.path(), &self.vms]
            .iter()
            .flat_map(|dir| files_under(dir))
            .filter(|f| {
                let name = f.file_name().unwrap().to_string_lossy();
                name.ends_with(".partial") || name.ends_with(".tmp")
            })
            .collect();
        assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
    }
}

impl Drop for Lab {
    /// Leaves the shared daemon clean even when a check failed.
    fn drop(&mut self) {
        let _ = self.run(&["destroy", "--force"]);
    }
}

/// Every file under `dir`, recursively (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// A running lvlab whose stderr is read line by line.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    deadline: Instant,
}

impl Watched {
    /// `lvlab args` logging its step boundaries.
    fn spawn(lab: &Lab, args: &[&str]) -> Self {
        let mut child = lab
            .command(args)
            .env("LVLAB_LOG", STEP_LOG)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stderr: Vec::new(),
            deadline: Instant::now() + RUN_BOUND,
        }
    }

    /// The next stderr line; `None` once lvlab closed its stderr.
    fn next_line(&mut self) -> Option<String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.stderr.push(line.clone());
                Some(line)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                panic!(
                    "lvlab hung for {RUN_BOUND:?}; its stderr:\n{}",
                    self.stderr.join("\n")
                );
            }
        }
    }

    /// Reads until the `nth` line (from 1) starting with `marker` after
    /// the log level and target; false when lvlab ended first.
    fn wait_for(&mut self, marker: &str, nth: usize, mut also: impl FnMut(&str) -> bool) -> bool {
        let mut seen = 0;
        while let Some(line) = self.next_line() {
            if boundary(&line, marker) && also(&line) {
                seen += 1;
                if seen == nth {
                    return true;
                }
            }
        }
        false
    }

    /// SIGKILL, then reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Reads stderr to its end and waits for lvlab's exit status.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        while self.next_line().is_some() {}
        let status = self.child.wait().unwrap();
        (status, self.stderr.join("\n"))
    }
}

/// Whether `line` is the log's `marker` line (`DEBUG target: marker...`).
fn boundary(line: &str, marker: &str) -> bool {
    line.split_once(": ")
        .is_some_and(|(_, rest)| rest.starts_with(marker))
}

/// Where a run is killed: on the `nth` line starting with `marker`.
#[derive(Clone, Copy, Debug)]
struct KillPoint {
    marker: &'static str,
    nth: usize,
}

/// Every step start of a run of `steps` steps, and the moment its last
/// step finished (before lvlab reports).
fn kill_points(steps: usize) -> Vec<KillPoint> {
    let mut points: Vec<KillPoint> = (1..=steps)
        .map(|nth| KillPoint {
            marker: STARTED,
            nth,
        })
        .collect();
    points.push(KillPoint {
        marker: FINISHED,
        nth: steps,
    });
    points
}

/// How many steps `lvlab args` runs, from a whole run's log.
fn count_steps(lab: &Lab, args: &[&str]) -> usize {
    let (status, stderr) = Watched::spawn(lab, args).finish();
    assert!(status.success(), "lvlab {args:?}:\n{stderr}");
    stderr.lines().filter(|l| boundary(l, STARTED)).count()
}

/// Runs `lvlab args` and SIGKILLs it at `point`.
#[track_caller]
fn kill_at(lab: &Lab, args: &[&str], point: KillPoint) {
    let mut run = Watched::spawn(lab, args);
    let reached = run.wait_for(point.marker, point.nth, |_| true);
    assert!(
        reached,
        "lvlab {args:?} ended before {point:?}:\n{}",
        run.stderr.join("\n")
    );
    run.kill();
}

#[test]
#[ignore = "fault-injection tier (root, real QEMU): scripts/faults.sh"]
fn sigkill_at_every_step_boundary_of_up_and_destroy_converges() {
    let lab = Lab::new("kill", None);
    let up = ["up", "--all"];
    let destroy = ["destroy", "--force"];
    let up_steps = count_steps(&lab, &up);
    let destroy_steps = count_steps(&lab, &destroy);
    assert!(
        up_steps >= MACHINES && destroy_steps >= MACHINES,
        "at least one step per machine: up {up_steps}, destroy {destroy_steps}"
    );
    let (up_points, destroy_points) = (kill_points(up_steps), kill_points(destroy_steps));
    let (mut kills, mut converged) = (0, 0);
    for cycle in 0..up_points.len().max(destroy_points.len()) {
        // From nothing: a killed up, then one more converges.
        if let Some(&point) = up_points.get(cycle) {
            kill_at(&lab, &up, point);
            kills += 1;
        }
        lab.ok(&up);
        lab.assert_converged(&[]);
        assert_eq!(lab.domains().len(), MACHINES);
        if up_points.get(cycle).is_some() {
            converged += 1;
        }
        // From the whole lab: a killed destroy, then one more removes all.
        if let Some(&point) = destroy_points.get(cycle) {
            kill_at(&lab, &destroy, point);
            kills += 1;
        }
        lab.ok(&destroy);
        lab.assert_converged(&["--target", "absent"]);
        lab.assert_nothing_left();
        if destroy_points.get(cycle).is_some() {
            converged += 1;
        }
    }
    eprintln!(
        "faults: SIGKILL at {kills} step boundaries ({} of `up`, {} of `destroy`, \
         {MACHINES} machines): {converged} converged",
        up_points.len(),
        destroy_points.len()
    );
    assert_eq!(converged, kills);
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lvlab-faults-tmpfs.")
            .tempdir_in("/var/tmp")
            .unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs (needs root)");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system but for about `keep` bytes.
    fn fill_leaving(&self, keep: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let free = free_bytes(self.path());
        let file = std::fs::File::create(&filler).unwrap();
        // tmpfs allocates on write, not on set_len: write it out.
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut writer = std::io::BufWriter::new(file);
        let mut left = free.saturating_sub(keep);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            std::io::Write::write_all(&mut writer, &chunk[..n]).unwrap();
            left -= n as u64;
        }
        std::io::Write::flush(&mut writer).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df --output=avail")
}

#[test]
#[ignore = "fault-injection tier (root, real QEMU): scripts/faults.sh"]
fn a_disk_full_half_way_fails_clearly_then_converges() {
    let tmpfs = Tmpfs::mount("16M");
    let lab = Lab::new("full", Some(tmpfs.path()));
    // Room for one or two of the five machines (some 600 KiB each).
    let filler = tmpfs.fill_leaving(1024 * 1024);
    let out = lab.run(&["up", "--all"]);
    let (stdout, stderr) = run::texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let said = format!("{stdout}\n{stderr}");
    assert!(
        said.contains("no space left on "),
        "names the cause and the path:\n{said}"
    );
    assert!(!said.contains("qemu-utils"), "no misleading hint:\n{said}");
    assert!(!said.contains("panicked"), "{said}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    eprintln!(
        "faults: on a full disk, lvlab said:\n  {}",
        errors.join("\n  ")
    );
    assert!(
        lab.domains().len() < MACHINES,
        "the disk filled before every machine was made: {said}"
    );

    std::fs::remove_file(filler).unwrap();
    lab.ok(&["up", "--all"]);
    lab.assert_converged(&[]);
    assert_eq!(lab.domains().len(), MACHINES);
    lab.ok(&["destroy", "--force"]);
    lab.assert_nothing_left();
    eprintln!("faults: a disk full half-way through `up`: failed clearly, converged");
}

const LIBVIRTD_SOCKET: &str = "/var/run/libvirt/libvirt-sock";

/// The live libvirtd processes (a killed one may linger as a zombie until
/// PID 1 reaps it: that one is gone).
fn libvirtd_pids() -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-x", "libvirtd"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // The state follows the parenthesised command name.
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            })
        })
        .map(str::to_string)
        .collect()
}

/// Waits until no libvirtd is alive, for up to `bound`.
fn libvirtd_gone(bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while !libvirtd_pids().is_empty() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Whether `qemu:///session` answers.
fn libvirt_answers() -> bool {
    Command::new("virsh")
        .args(["-c", "qemu:///session", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts the system libvirtd the way scripts/setup.sh does, and waits
/// until it answers.
fn start_libvirtd() -> Result<(), String> {
    if libvirt_answers() {
        return Ok(());
    }
    if libvirtd_gone(Duration::from_secs(10)) {
        // Its guests outlive it: keep the test's variables out of the
        // daemon that will run them.
        let status = Command::new("libvirtd")
            .arg("-d")
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| ["PATH", "HOME", "LANG"].contains(&k.as_str())))
            .status()
            .map_err(|e| format!("libvirtd -d: {e}"))?;
        if !status.success() {
            return Err(format!("libvirtd -d: {status}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(Path::new(LIBVIRTD_SOCKET).exists() && libvirt_answers()) {
        if Instant::now() > deadline {
            return Err(format!(
                "libvirtd did not answer on {LIBVIRTD_SOCKET} within 30 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Brings libvirtd back when dropped, whatever happened in between.
struct LibvirtdBack;

impl Drop for LibvirtdBack {
    fn drop(&mut self) {
        // No panic here: this may run while a failed check unwinds.
        if let Err(err) = start_libvirtd() {
            eprintln!("faults: could not bring libvirtd back: {err}");
        }
    }
}

#[test]
#[ignore = "fault-injection tier (root, real QEMU): scripts/faults.sh"]
fn libvirtd_killed_mid_apply_fails_clearly_then_converges() {
    start_libvirtd().unwrap();
    let lab = Lab::new("daemon", None);
    let back = LibvirtdBack;
    let mut up = Watched::spawn(&lab, &["up", "--all"]);
    // Kill the daemon once the first domain is being started.
    let reached = up.wait_for(STARTED, 1, |line| line.ends_with(": start"));
    assert!(reached, "no start step:\n{}", up.stderr.join("\n"));
    let pids = libvirtd_pids();
    assert!(!pids.is_empty(), "libvirtd runs");
    let killed = Command::new("kill")
        .arg("-KILL")
        .args(&pids)
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL libvirtd {pids:?}");
    assert!(libvirtd_gone(Duration::from_secs(10)), "libvirtd died");
    let (status, stderr) = up.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("qemu:///session"),
        "the error names the URI:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let said: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("DEBUG")).collect();
    eprintln!(
        "faults: with libvirtd killed, lvlab said:\n  {}",
        said.join("\n  ")
    );

    drop(back);
    assert!(libvirt_answers(), "libvirtd is back");
    lab.ok(&["up", "--all"]);
    lab.assert_converged(&[]);
    assert_eq!(lab.domains().len(), MACHINES);
    lab.ok(&["destroy", "--force"]);
    lab.assert_nothing_left();
    eprintln!("faults: libvirtd killed during `up`: failed clearly, converged after its restart");
}
