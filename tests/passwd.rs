//! `lvlab passwd VM`: which machines it may touch (this lab's, running),
//! where the new password is shown (the `--show-passwords` rules), that it
//! changes nothing a plan sees, and libvirt's error with the hint when no
//! guest agent answers (a real QEMU guest with nothing to boot). The test
//! driver accepts set-user-password for a running domain and keeps
//! nothing; the real-guest check that the new password logs in is in
//! `tests/support/passwd_checks.rs`.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/passwd_checks.rs"]
mod passwd_checks;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/session_lab.rs"]
mod session_lab;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::Path;
use std::process::Output;

use lab_manifest::LabManifest;
use run::{lvlab, texts};
use session_lab::SessionLab;

/// A manifest for the state file `host` (under state/ or absolute): machine
/// `web` (and `db`, never deployed) of environment `lab`, owned through
/// `lab_id: state-files`, with `password` as the console password setting.
fn lab(dir: &Path, host: &str, password: Option<bool>) {
    let host = if host.starts_with('/') {
        host.to_string()
    } else {
        format!("{}/state/{host}", env!("CARGO_MANIFEST_DIR"))
    };
    LabManifest::tiny("lab", &format!("test://{host}"), dir)
        .lab_id("state-files")
        .defaults(|d| {
            let d = d.cloud_init("user", "admin");
            match password {
                Some(password) => d.cloud_init("password", password),
                None => d,
            }
        })
        .machine("web", |m| m)
        .machine("db", |m| m)
        .write(dir);
}

fn passwd(dir: &Path, args: &[&str]) -> Output {
    lvlab(dir).arg("passwd").args(args).output().unwrap()
}

/// The password in a `New console password for ...` line on stderr.
fn shown_password(stderr: &str) -> &str {
    passwd_checks::shown_password(stderr).unwrap_or_else(|| panic!("no password shown: {stderr}"))
}

#[test]
fn a_running_machine_of_this_lab_gets_a_new_password_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path(), "partly-deployed.xml", None);
    let plan_before = lvlab(dir.path()).arg("plan").output().unwrap();

    let out = passwd(dir.path(), &["web", "--show-passwords"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout, "web (lab): password of admin set through the guest agent\n",
        "the password never goes to stdout without a terminal"
    );
    let first = shown_password(&stderr).to_string();
    assert!(
        stderr.contains("New console password for web (user admin): "),
        "{stderr}"
    );
    assert_eq!(first.len(), 20);

    let out = passwd(dir.path(), &["web", "--user", "root", "--show-passwords"]);
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("(user root): "), "{stderr}");
    assert_ne!(shown_password(&stderr), first, "a fresh password each time");

    // Nothing is recorded: the seed keeps its hash, the plan is the same.
    let plan_after = lvlab(dir.path()).arg("plan").output().unwrap();
    assert_eq!(texts(&plan_before), texts(&plan_after));
    assert!(!dir.path().join("vms").exists(), "passwd wrote no files");
}

#[test]
fn without_a_terminal_or_show_passwords_no_password_is_set() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path(), "partly-deployed.xml", None);
    let out = passwd(dir.path(), &["web"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(
            "error: not setting a password for admin in web that no one would see: no \
             terminal, and no --show-passwords\n  hint: run it on a terminal, or pass \
             --show-passwords"
        ),
        "{stderr}"
    );
}

/// `lvlab passwd args` must fail with `expected` in its error.
#[track_caller]
fn refused(dir: &Path, args: &[&str], expected: &str) {
    let out = passwd(dir, args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(!stderr.contains("New console password"), "{stderr}");
}

#[test]
fn only_running_machines_this_lab_made_are_touched() {
    let dir = tempfile::tempdir().unwrap();
    let show = "--show-passwords";
    lab(dir.path(), "partly-deployed.xml", None);
    refused(dir.path(), &["wbe", show], "no machine `wbe` in");
    refused(
        dir.path(),
        &["db", show],
        "db is not deployed (lvlab up db creates it)",
    );

    lab(dir.path(), "foreign.xml", None);
    refused(dir.path(), &["web", show], "domain web_lab on test://");
    refused(dir.path(), &["web", show], "was not made by lvlab");

    // other-lab.xml's old_lab is machine `old` of `lab` in another checkout.
    let other = std::fs::read_to_string(dir.path().join("Lvlab.yml"))
        .unwrap()
        .replace("foreign.xml", "other-lab.xml")
        .replace("    lab_id: state-files\n", "")
        .replace("vm_name: web", "vm_name: old");
    std::fs::write(dir.path().join("Lvlab.yml"), other).unwrap();
    refused(
        dir.path(),
        &["old", show],
        "belongs to another lab (machine old of environment lab, VM directory /nonexistent/other-lab/vms/lab/old)",
    );

    // The domain of partly-deployed.xml, shut off.
    let host = std::fs::read_to_string(format!(
        "{}/state/partly-deployed.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace(
        "<memory unit='MiB'>256</memory>",
        "<memory unit='MiB'>256</memory><test:runstate \
         xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>5</test:runstate>",
    );
    let off = dir.path().join("shut-off.xml");
    std::fs::write(&off, host).unwrap();
    lab(dir.path(), off.to_str().unwrap(), None);
    refused(
        dir.path(),
        &["web", show],
        "web is shut off: the guest agent answers only in a running machine\n  hint: `lvlab up web` starts it",
    );

    lab(dir.path(), "partly-deployed.xml", Some(false));
    refused(
        dir.path(),
        &["web", show],
        "machine web has `password: false` in the manifest",
    );
}

#[test]
fn no_guest_agent_gives_libvirts_error_and_the_hint() {
    // A real QEMU guest with a blank disk: it runs, but no agent ever
    // answers.
    let lab = SessionLab::empty("passwd");
    lab.cache_tiny_image();
    lab.manifest()
        .machine("mute", |m| m.no_interfaces())
        .write(lab.dir.path());
    lab.ok(&["up", "--all", "--show-passwords"]);
    let out = lab.run(&["passwd", "mute", "--show-passwords"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: cannot set the password of tiny in mute: "),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("agent"),
        "libvirt's error: {stderr}"
    );
    assert!(
        stderr.contains("hint: qemu-guest-agent must run in the guest"),
        "{stderr}"
    );
    assert!(!stderr.contains("New console password"), "{stderr}");
}

#[test]
fn passwd_waits_for_the_environments_lock() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path(), "partly-deployed.xml", None);
    let uri = format!(
        "test://{}/state/partly-deployed.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let held = lvlab::apply::EnvironmentLock::acquire(
        &run::state_dir(),
        &uri,
        "lab",
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    refused(
        dir.path(),
        &["web", "--show-passwords", "--lock-timeout", "1"],
        &format!(
            "another lvlab (PID {}) is changing environment lab on {uri}",
            std::process::id()
        ),
    );
    drop(held);
    let out = passwd(dir.path(), &["web", "--show-passwords"]);
    assert!(out.status.success(), "{:?}", texts(&out));
}

#[test]
fn the_real_guest_check_verifies_lvlabs_hashes_with_openssl() {
    let password = lvlab::cloudinit::password::OneTimePassword::generate().unwrap();
    let hash = password.hash().unwrap();
    assert_eq!(
        passwd_checks::crypt_like(&hash, password.reveal()).unwrap(),
        hash
    );
    assert_ne!(passwd_checks::crypt_like(&hash, "wrong").unwrap(), hash);
    assert!(passwd_checks::crypt_like("$1$md5$x", "pw").is_err());
}
