//! One-off machines: `createvm NAME DISTRO` and `deletevm NAME` through the
//! real binary. The round trip runs one small TCG domain on
//! `qemu:///session` with user-mode networking and a tiny blank image that
//! a host settings layer (`$LVLAB_CONFIG_ROOT/Lvlab.yml`) puts in place of
//! the catalog's `debian12`, so nothing is downloaded; the refusals run on
//! test-driver hosts.

#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lvlab::domain::OwnershipMark;
use lvlab::libvirt::Connection;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl lab";

/// A directory with a host settings layer, a public key and a base
/// directory for the one-off machines.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    /// Host settings that replace the catalog's `debian12` with a tiny
    /// local image (no checksum: nothing to fetch).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("tiny.qcow2");
        support::tiny_image(&image, "16M");
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/Lvlab.yml"),
            format!("images:\n  debian12:\n    image_url: {}\n", image.display()),
        )
        .unwrap();
        std::fs::write(dir.path().join("id.pub"), KEY).unwrap();
        Self { dir }
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("base")
    }

    /// lvlab with this directory's host-wide settings layer.
    fn command(&self, args: &[&str]) -> Command {
        let mut command: Command = run::lvlab(self.dir.path());
        command
            .env_remove("LVLAB_NO_HOST_CONFIG")
            .env(
                lvlab::manifest::CONFIG_ROOT_VAR,
                self.dir.path().join("etc"),
            )
            .args(args)
            .arg("--basedir")
            .arg(self.base());
        command
    }

    fn lvlab(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

/// `deletevm NAME --force` on `uri`, when dropped: the shared session
/// daemon is left clean even when the test failed half-way.
struct DeleteOnDrop<'h>(&'h Host, &'h str, &'h str);

impl Drop for DeleteOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .lvlab(&["deletevm", self.1, "--force", "--connect", self.2]);
    }
}

#[track_caller]
fn succeeded(out: &Output) -> (String, String) {
    let (stdout, stderr) = run::texts(out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[track_caller]
fn refused(out: &Output) -> String {
    let (stdout, stderr) = run::texts(out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    stderr
}

fn domain_xml(uri: &str, name: &str) -> Option<String> {
    let conn = Connection::open(uri).unwrap();
    let domain = conn.raw().lookup_domain_by_name(name).ok()?;
    Some(domain.xml_desc(0).unwrap())
}

#[test]
fn createvm_then_deletevm_round_trip_on_the_session_daemon() {
    let uri = "qemu:///session";
    let host = Host::new();
    let name = format!("oneoff{}.lab.example", std::process::id());
    let _cleanup = DeleteOnDrop(&host, &name, uri);
    let public_key = host.dir.path().join("id.pub");
    // One vCPU, 128 MiB, TCG, a user-mode NIC: no root, no network.
    let createvm = |distro: &str| {
        host.lvlab(&[
            "createvm",
            &name,
            distro,
            "--connect",
            uri,
            "--network-type",
            "user",
            "--domain-type",
            "qemu",
            "--cpu",
            "1",
            "--memory",
            "128M",
            "--disk-size",
            "64M",
            "--public-key",
            public_key.to_str().unwrap(),
        ])
    };
    let created = createvm("DEBIAN12");
    let (stdout, stderr) = succeeded(&created);
    assert!(stdout.contains(&name), "{stdout}\n{stderr}");

    // The domain is named exactly NAME, marked as a one-off machine whose
    // lab is its VM directory under <basedir>/oneoff/NAME/.
    let xml = domain_xml(uri, &name).expect("the domain is named exactly NAME");
    let mark = OwnershipMark::from_domain_xml(&xml).expect("lvlab's mark");
    assert!(mark.one_off, "{xml}");
    assert_eq!(
        (mark.environment.as_str(), mark.vm_name.as_str()),
        ("oneoff", name.as_str())
    );
    let vm_dir = host.base().join("oneoff").join(&name);
    assert_eq!(Path::new(&mark.vm_dir), vm_dir.canonicalize().unwrap());
    assert!(vm_dir.join("disk0.qcow2").is_file());
    assert!(vm_dir.join("cidata.iso").is_file());
    assert!(xml.contains("<memory unit='KiB'>131072</memory>"), "{xml}");

    // The same command again finds nothing to change.
    let again = createvm("debian12");
    let (stdout, _) = succeeded(&again);
    assert!(stdout.contains("No changes"), "{stdout}");

    let deleted = host.lvlab(&["deletevm", &name, "--force", "--connect", uri]);
    succeeded(&deleted);
    assert!(domain_xml(uri, &name).is_none(), "the domain is gone");
    assert!(!vm_dir.exists(), "its files are gone");
}

fn state(file: &str) -> String {
    format!("test://{}/state/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn deletevm_refuses_domains_lvlab_did_not_make() {
    let host = Host::new();
    let stderr = refused(&host.lvlab(&[
        "deletevm",
        "mail",
        "--force",
        "--connect",
        &state("foreign.xml"),
    ]));
    assert!(
        stderr.contains("domain mail on") && stderr.contains("not made by lvlab"),
        "{stderr}"
    );
}

#[test]
fn deletevm_refuses_a_manifests_machine_and_names_its_destroy() {
    let host = Host::new();
    let out = host.lvlab(&[
        "deletevm",
        "old_lab",
        "--force",
        "--connect",
        &state("other-lab.xml"),
    ]);
    let stderr = refused(&out);
    assert!(stderr.contains("is not this one-off machine"), "{stderr}");
    assert!(stderr.contains("lvlab destroy old --env lab"), "{stderr}");
}

#[test]
fn deletevm_of_a_name_with_nothing_is_an_error() {
    let host = Host::new();
    let stderr = refused(&host.lvlab(&[
        "deletevm",
        "nothing",
        "--force",
        "--connect",
        "test:///default",
    ]));
    assert!(
        stderr.contains("no domain nothing on test:///default"),
        "{stderr}"
    );
}

#[test]
fn createvm_checks_its_name_and_distro_with_a_suggestion() {
    let host = Host::new();
    let typo = host.lvlab(&[
        "createvm",
        "web",
        "debain12",
        "--connect",
        "test:///default",
    ]);
    assert!(refused(&typo).contains("did you mean `debian12`?"));
    let bad = host.lvlab(&[
        "createvm",
        "web_1",
        "debian12",
        "--connect",
        "test:///default",
    ]);
    assert!(refused(&bad).contains("not a valid one-off machine name"));
    // A home without ~/.ssh keys: no way to log in, so no machine.
    let no_key = host
        .command(&[
            "createvm",
            "web",
            "debian12",
            "--connect",
            "test:///default",
        ])
        .env("HOME", host.dir.path())
        .output()
        .unwrap();
    assert!(refused(&no_key).contains("--public-key"));
}
