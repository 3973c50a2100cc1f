//! What lvlab asks of the kernel, as strace(1) sees it: where it looks for
//! virtiofsd (the system's places included, which a test cannot write),
//! that a boot disk copy is `copy_file_range`, and that `plan` spawns no
//! process per machine. Machines on libvirt's test driver, a tiny image.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use lab_manifest::LabManifest;

/// A lab of `machines` (each `- vm_name: NAME` plus its fields) on a
/// test-driver host, its image in the cache.
fn lab(machines: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
    let uri = format!("test://{}/state/empty.xml", env!("CARGO_MANIFEST_DIR"));
    LabManifest::tiny("lab", &uri, dir.path())
        .defaults(|d| d.tcg(128).user_network().no_password())
        .machines_yaml(machines)
        .write(dir.path());
    dir
}

/// `lvlab -C dir` under `strace -f -e trace=SYSCALLS`, writing `trace`.
fn under_strace(dir: &Path, syscalls: &str, trace: &Path) -> Command {
    // By its path: a test may give lvlab an empty PATH.
    let mut command = Command::new("/usr/bin/strace");
    command
        .args([
            "-f",
            "-qq",
            "-s",
            "256",
            "-e",
            format!("trace={syscalls}").as_str(),
            "-o",
        ])
        .arg(trace)
        .arg(env!("CARGO_BIN_EXE_lvlab"))
        .arg("-C")
        .arg(dir)
        .env("NO_COLOR", "1")
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(lvlab::apply::STATE_DIR_VAR, run::state_dir())
        .env_remove("LVLAB_LOG")
        .stdin(std::process::Stdio::null());
    command
}

/// `lvlab args` in `dir` under strace, which must succeed; the trace.
fn traced(dir: &Path, syscalls: &str, args: &[&str]) -> String {
    let trace = dir.join("strace.log");
    let out = under_strace(dir, syscalls, &trace)
        .args(args)
        .output()
        .expect("strace is installed by scripts/setup.sh");
    let (stdout, stderr) = run::texts(&out);
    assert!(out.status.success(), "lvlab {args:?}:\n{stdout}\n{stderr}");
    std::fs::read_to_string(trace).unwrap()
}

#[test]
fn virtiofsd_is_looked_for_in_usr_libexec_and_usr_lib_qemu() {
    let share = tempfile::tempdir().unwrap();
    let dir = lab(&format!(
        "      - vm_name: files\n        shared_directories: [{{source: {}, mount_tag: data}}]\n",
        share.path().display()
    ));
    // Nothing on PATH or in ~/.cargo/bin: the search goes on to the system's
    // places. Where there is no virtiofsd the plan fails, so its exit status
    // is not asked for here.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let trace = dir.path().join("strace.log");
    under_strace(dir.path(), "%file", &trace)
        .arg("plan")
        .env("PATH", &empty)
        .env("HOME", &empty)
        .output()
        .expect("strace is installed by scripts/setup.sh");
    let trace = std::fs::read_to_string(trace).unwrap();
    let mut places = vec![format!("\"{}/.cargo/bin/virtiofsd\"", empty.display())];
    // The search stops at the first virtiofsd it finds.
    places.push("\"/usr/libexec/virtiofsd\"".into());
    if !Path::new("/usr/libexec/virtiofsd").is_file() {
        places.push("\"/usr/lib/qemu/virtiofsd\"".into());
    }
    for place in places {
        assert!(trace.contains(&place), "{place} not looked at:\n{trace}");
    }
}

#[test]
fn a_boot_disk_is_copied_with_copy_file_range() {
    let dir = lab("      - vm_name: web\n");
    let trace = traced(
        dir.path(),
        "copy_file_range",
        &["apply", "--auto-approve", "--target", "stopped"],
    );
    let copies: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("copy_file_range(") && !l.contains("= -1"))
        .collect();
    assert!(
        !copies.is_empty(),
        "no successful copy_file_range:\n{trace}"
    );
    assert!(dir.path().join("vms/lab/web/disk0.qcow2").is_file());
}

/// Processes `lvlab plan` starts, itself excluded, for `machines`.
fn processes_of_plan(machines: &str) -> usize {
    let dir = lab(machines);
    let trace = traced(dir.path(), "execve", &["plan"]);
    trace
        .lines()
        .filter(|l| l.contains("execve(") && l.contains(") = 0"))
        .count()
        - 1
}

#[test]
fn plan_spawns_no_process_per_machine() {
    let one = processes_of_plan("      - vm_name: m0\n");
    let six: String = (0..6).map(|i| format!("      - vm_name: m{i}\n")).collect();
    assert_eq!(processes_of_plan(&six), one, "six machines, one");
}
