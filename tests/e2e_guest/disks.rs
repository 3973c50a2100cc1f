//! The extra disk: present at its size, and written and read back.

use crate::checks::Checks;
use crate::guest::GuestShell;
use crate::lab::EXTRA_DISK_BYTES;

pub fn check(checks: &mut Checks, shell: &GuestShell) {
    let vm = shell.guest.vm;
    let run = |command: &str| shell.run(command);

    let disks = run("lsblk -b -d -n -o NAME,SIZE,TYPE,RO");
    let extra = disks.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() == 4
            && cols[1] == EXTRA_DISK_BYTES.to_string()
            && cols[2] == "disk"
            && cols[3] == "0"
    });
    checks.check(
        vm,
        "extra disk",
        extra,
        &format!("a {EXTRA_DISK_BYTES}-byte disk, not read-only, in `lsblk`"),
        &disks,
    );
    // Written and read back past the guest's page cache.
    let device = disks
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() == 4 && cols[1] == EXTRA_DISK_BYTES.to_string())
        .map_or("missing".to_string(), |cols| cols[0].to_string());
    let written = run(&format!(
        "sudo -n sh -c 'head -c 1048576 /dev/urandom > /tmp/lvlab-block \
         && dd if=/tmp/lvlab-block of=/dev/{device} bs=1M count=1 oflag=direct conv=fsync status=none \
         && dd if=/dev/{device} bs=1M count=1 iflag=direct status=none | cmp - /tmp/lvlab-block \
         && echo same'"
    ));
    checks.check(
        vm,
        "extra disk written",
        written == "same",
        &format!("1 MiB written to /dev/{device} reads back the same"),
        &written,
    );
}
