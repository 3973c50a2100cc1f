//! The real-guest tier: two Debian 12 guests built here
//! (`scripts/e2e/build-image.sh`) booted by lvlab on `qemu:///session`
//! under TCG with passt NICs, then checked from the inside over SSH on
//! 127.0.0.1. Each has a second NIC with a static IPv4 address on an
//! isolated network the test defines (no forward, no DHCP, 198.18.0.0/24).
//!
//! The image goes through the real pipeline: the test serves it and its
//! `SHA512SUMS` over HTTP on 127.0.0.1, signs the checksum file with a key
//! it makes (GnuPG in a temporary home, detached `SHA512SUMS.gpg`) and
//! serves the public key too; `lvlab init` downloads and verifies it, and
//! the record beside the cached image and the domains' lvlab metadata must
//! name the key and the digest. Then `lvlab up --all --wait` boots both
//! guests and waits for their SSH; as each guest answers, the test logs in
//! and checks: hostname and FQDN, the user with the test's key and
//! passwordless sudo, each `runcmd` effect, the environment's `/etc/hosts`
//! snippet with both static addresses, the static address on its NIC and
//! the other guest reached by its `/etc/hosts` name, cloud-init done from
//! the NoCloud seed without errors, the extra disk written and read back, the shared directory mounted by its virtiofs
//! tag, the guest agent answering (and `lvlab status` showing the address
//! it reports), `lvlab ssh` and `ssh-config` with lvlab's host key checked
//! strictly; on `beta` (which has a console password) `lvlab passwd`, on
//! `alpha` a live `lvlab snapshot` created and reverted (a file written
//! after it gone, SSH and the virtiofs mount still working) and deleted.
//! Right after `up`, `plan` must show no change; `beta`'s `provision:`
//! list ran once, runs not again on a second apply and once more with
//! `--reprovision`. Then an ACPI `down` (no `--force`) and a `destroy
//! --force` that leaves nothing behind; last, one at a time on the same
//! image, `lvlab smoke` (a guest of its own), which must pass every step,
//! a one-off machine made by `createvm --wait`, logged into and
//! removed by `deletevm`, and one guest on a "remote" host (this machine's
//! `qemu:///system` through `qemu+ssh://` to an sshd the test starts on
//! loopback): the image uploaded once to the host's images pool, its disks
//! and seed volumes of its own pool attached by path, its root an overlay
//! of the upload, `up --wait`, `lvlab ssh` and `status` reaching it through
//! the URI's `ProxyCommand`, the sshd's log showing the logins, and
//! `destroy --force` and `images clean --force` leaving nothing of it.
//!
//! Ignored by the fast `cargo test`; `scripts/e2e.sh` builds (or finds) the
//! image and runs it:
//!
//! ```sh
//! LVLAB_E2E_IMAGE=/var/cache/lvlab-e2e/<digest>/lvlab-e2e-debian12.qcow2 \
//!     cargo test --test e2e_guest -- --ignored --nocapture
//! ```
//!
//! Knobs: `LVLAB_E2E_SSH_TIMEOUT` (seconds `up --wait` waits for the
//! guests' SSH, default 600); `LVLAB_E2E_ONLY=remote` runs `init` and the
//! remote guest alone (some 90 s instead of the whole tier);
//! `LVLAB_E2E_BREAK=mac|userdata` breaks guest `beta`'s seed on purpose (a
//! network-config matching a MAC the guest does not have, or a user-data
//! that is not `#cloud-config`) to show the failure messages.
//!
//! Every check says what it expected and what it found; all checks run and
//! fail together at the end. Each guest's serial console is kept in
//! `target/tmp/e2e-guest/<guest>.console.log`. A guard destroys the lab
//! even when a check fails.
//!
//! One boot serves every check (a TCG boot takes 50 to 85 s): this file
//! tells the run in order; the checks live by what they check, in
//! `image.rs` (the pipeline), `boot.rs` (`up --wait` and SSH),
//! `cloud_init.rs`, `identity.rs`, `network.rs`, `disks.rs`, `devices.rs`,
//! `access.rs` (ssh, ssh-config, passwd), `snapshots.rs` (inside each
//! guest, through `guest.rs`; the last two run checks kept in
//! `tests/support/`), `lifecycle.rs` (down and destroy), `smoke.rs`,
//! `oneoff.rs` and `remote.rs` (a guest each, one at a time after the
//! lab's); `lab.rs` makes the lab, `checks.rs` keeps the tally and
//! `figures.rs` prints the timings.

#[allow(dead_code)]
#[path = "../support/gpg.rs"]
mod gpg;
#[allow(dead_code)]
#[path = "../support/http.rs"]
mod http;
#[path = "../support/lab_manifest.rs"]
mod lab_manifest;
#[path = "../support/lvlab_run.rs"]
mod run;
// Checks other test files compile too; run here on real guests.
#[path = "../support/passwd_checks.rs"]
mod passwd_checks;
#[path = "../support/provision_checks.rs"]
mod provision_checks;
#[path = "../support/remote_host.rs"]
mod remote_host;
#[path = "../support/smoke_checks.rs"]
mod smoke_checks;
#[path = "../support/snapshot_checks.rs"]
mod snapshot_checks;
#[path = "../support/ssh_checks.rs"]
mod ssh_checks;

mod access;
mod boot;
mod checks;
mod cloud_init;
mod devices;
mod disks;
mod figures;
mod guest;
mod identity;
mod image;
mod lab;
mod lifecycle;
mod network;
mod oneoff;
mod remote;
mod smoke;
mod snapshots;

use std::path::{Path, PathBuf};

use checks::Checks;
use figures::Figures;
use lab::{IsolatedNetwork, Lab, GUESTS};

#[test]
#[ignore = "real-guest tier: run by scripts/e2e.sh (needs LVLAB_E2E_IMAGE)"]
fn two_real_guests_come_up_with_their_seed_applied() {
    let image = PathBuf::from(std::env::var("LVLAB_E2E_IMAGE").expect(
        "LVLAB_E2E_IMAGE must name the guest image: run scripts/e2e.sh, \
         or scripts/e2e/build-image.sh and pass the path it prints",
    ));
    assert!(image.is_file(), "no guest image at {}", image.display());
    let load_before = figures::load_average();
    // Declared before the lab: dropped after it has destroyed the guests.
    let network = IsolatedNetwork::start(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let lab = Lab::new(&image, &network);
    let mut checks = Checks::default();

    // The image through the real pipeline: download, checksum, signature.
    let init = image::init(&mut checks, &lab);
    if std::env::var("LVLAB_E2E_ONLY").as_deref() == Ok("remote") {
        remote::check(&mut checks, &lab);
        return checks.finish_expecting(&lab, remote::CHECKS);
    }

    let mut up = boot::up(&lab);
    image::check_reused(&mut checks, &lab);
    let status = lab.status();
    let passt_cpu = figures::passt_cpu(&status);
    let readiness = boot::readiness(&mut checks, &lab, &mut up, &status);
    boot::check_plan_after_up(&mut checks, &lab);

    eprintln!("in-guest checks:");
    for (guest, ready) in GUESTS.iter().zip(&readiness) {
        if boot::check_login(&mut checks, guest, ready) {
            let cloud_init = ready.cloud_init_output();
            guest::check_guest(&mut checks, &lab, guest, ready.port, &cloud_init);
        }
    }

    let down = lifecycle::check_down(&mut checks, &lab);
    lifecycle::check_destroy(&mut checks, &lab);
    // Its own guest, after the lab's are gone: not two boots at once.
    smoke::check(&mut checks, &lab);
    oneoff::check(&mut checks, &lab, &image);
    remote::check(&mut checks, &lab);

    let figures = Figures {
        init,
        down,
        passt_cpu,
        load_before,
    };
    figures.print(&up, &readiness);
    checks.finish(&lab);
}
