//! The test "remote" host itself: lvlab reaches this machine's libvirtd
//! through `qemu+ssh://` to an sshd the test starts on loopback, and the
//! sshd's log shows the login. The remote-host tests build on this.

#[path = "support/remote_host.rs"]
mod remote_host;

use std::process::Command;

use remote_host::RemoteHost;

#[test]
fn capabilities_over_qemu_ssh_log_in_through_the_test_sshd() {
    let remote = RemoteHost::start();
    assert_eq!(remote.logins(), 0);
    let output = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env("NO_COLOR", "1")
        .args(["--connect", &remote.uri("system"), "capabilities"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("qemu"), "{stdout}");
    assert!(
        remote.logins() >= 1,
        "the connection did not go through the test sshd:\n{}",
        remote.log()
    );
}
