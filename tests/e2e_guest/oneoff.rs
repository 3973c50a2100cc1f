//! `lvlab createvm` and `lvlab deletevm` on the tier's real image, after
//! the lab is gone: a one-off machine boots, answers on SSH with the
//! user and key it was given and the name it was called, and `deletevm`
//! leaves nothing behind. A host settings layer (`$LVLAB_CONFIG_ROOT`)
//! puts the image in place of the catalog's `debian12`, so nothing is
//! downloaded.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::checks::Checks;
use crate::lab::{ssh_as, text, Lab};
use crate::run;

const NAME: &str = "e2eoneoff";
const SESSION: &str = "qemu:///session";

/// How many checks [`check`] makes.
pub const CHECKS: usize = 3;

pub fn check(checks: &mut Checks, lab: &Lab, image: &Path) {
    let root = lab.dir.path().join("oneoff-host");
    let (etc, base) = (root.join("etc"), root.join("base"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("Lvlab.yml"),
        format!(
            "images:\n  debian12:\n    image_url: {}\n    os_variant: debian12\n",
            image.display()
        ),
    )
    .unwrap();
    let lvlab = |args: &[&str]| -> Output {
        run::lvlab(lab.dir.path())
            .env_remove("LVLAB_NO_HOST_CONFIG")
            .env(lvlab::manifest::CONFIG_ROOT_VAR, &etc)
            .args(args)
            .arg("--basedir")
            .arg(&base)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let pubkey = lab.dir.path().join("id_ed25519.pub");
    let created = lvlab(&[
        "createvm",
        NAME,
        "debian12",
        "--connect",
        SESSION,
        "--network-type",
        "passt",
        "--domain-type",
        "qemu",
        "--cpu",
        "1",
        "--memory",
        "768M",
        "--disk-size",
        "4G",
        "--public-key",
        pubkey.to_str().unwrap(),
        "--wait",
    ]);
    let answer = String::from_utf8_lossy(&created.stdout)
        .lines()
        .find_map(|line| {
            line.split_once(" answers on SSH after ")
                .map(|(_, rest)| rest.to_string())
        });
    checks.check(
        NAME,
        "`lvlab createvm --wait` boots a one-off machine that answers on SSH",
        created.status.success() && answer.is_some(),
        "exit 0 and `NAME answers on SSH after Ns: ssh -p PORT USER@127.0.0.1`",
        &text(&created),
    );
    let hostname = answer
        .as_deref()
        .and_then(|rest| rest.split_once(": ssh -p "))
        .and_then(|(_, hint)| hint.split_once(' '))
        .and_then(|(port, target)| {
            Some(ssh_as(
                &lab.key(),
                target.trim(),
                port.parse().ok()?,
                "hostname",
            ))
        });
    checks.check(
        NAME,
        "a one-off machine takes its key and its name",
        hostname.as_ref().is_some_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == NAME
        }),
        &format!("`hostname` over SSH with the lab's key says {NAME}"),
        &hostname
            .as_ref()
            .map(text)
            .unwrap_or_else(|| "no SSH endpoint".into()),
    );
    let deleted = lvlab(&["deletevm", NAME, "--force", "--connect", SESSION]);
    let domains = Command::new("virsh")
        .args(["-c", SESSION, "list", "--all", "--name"])
        .output()
        .unwrap();
    let left_domain = String::from_utf8_lossy(&domains.stdout)
        .lines()
        .any(|name| name.trim() == NAME);
    let left_dir = base.join("oneoff").join(NAME).exists();
    checks.check(
        NAME,
        "`lvlab deletevm` leaves no domain and no file of the machine",
        deleted.status.success() && !left_domain && !left_dir,
        "exit 0, no domain, no <basedir>/oneoff/NAME",
        &format!(
            "domain left: {left_domain}, directory left: {left_dir}\n{}",
            text(&deleted)
        ),
    );
}
