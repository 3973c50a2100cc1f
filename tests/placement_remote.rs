//! One plan over this machine's `qemu:///session` and the test "remote"
//! host (`qemu+ssh://` through the test sshd to this machine's system
//! libvirtd): each host is observed through its own URI, and the plan
//! groups the machines by host. Plan only: nothing is made on either.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/remote_host.rs"]
mod remote_host;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;

use lab_manifest::LabManifest;
use remote_host::RemoteHost;

#[test]
fn a_plan_spans_the_local_session_and_a_remote_host() {
    let remote = RemoteHost::start();
    let remote_uri = remote.uri("system");
    let dir = tempfile::tempdir().unwrap();
    support::tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
    // A name no other lab on these daemons uses.
    let env = format!("placed{}", std::process::id());
    LabManifest::tiny(&env, "qemu:///session", dir.path())
        .defaults(|d| d.tcg(128).user_network().no_password())
        .machine("here", |m| m)
        .machine("there", |m| {
            // Its own images pool directory: what another test left in the
            // default one cannot change this plan.
            m.set("libvirt_uri", format!("'{remote_uri}'"))
                .set("pool_basedir", dir.path().join("pools").display())
        })
        .write(dir.path());

    let out = run::lvlab(dir.path()).arg("plan").output().unwrap();
    let (stdout, stderr) = run::texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let local = stdout
        .find("Host qemu:///session:")
        .unwrap_or_else(|| panic!("{stdout}"));
    let far = stdout
        .find(&format!("Host {remote_uri}:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let (first, second) = if local < far {
        (&stdout[local..far], &stdout[far..])
    } else {
        (&stdout[far..local], &stdout[local..])
    };
    let (local_part, far_part) = if local < far {
        (first, second)
    } else {
        (second, first)
    };
    assert!(local_part.contains(&format!("+ {env}.here")), "{stdout}");
    assert!(!local_part.contains(&format!("{env}.there")), "{stdout}");
    assert!(far_part.contains(&format!("+ {env}.there")), "{stdout}");
    // The remote machine's image goes to that host's images pool first.
    assert!(far_part.contains("+ image.tiny@qemu+ssh://"), "{stdout}");
    assert!(!local_part.contains("image.tiny@"), "{stdout}");
    assert!(stdout.contains("Plan: 3 to add"), "{stdout}");
    assert!(
        remote.logins() > 0,
        "the remote host was not reached through the test sshd:\n{}",
        remote.log()
    );
}
