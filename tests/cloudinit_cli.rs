//! `lvlab cloudinit` as a user runs it: sections on stdout, a seed written
//! into the machine's directory, the one-time password shown once and
//! never stored, and clear errors with exit 1.

use std::path::Path;
use std::process::{Command, Output};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA lab@example";

fn manifest(dir: &Path, pubkey: &str) -> String {
    let text = format!(
        r#"
environment:
  - name: lab
    config_defaults:
      os: debian12
      disk_image_basedir: {base}
      cloud_init:
        pubkey: {pubkey}
    machines:
      - vm_name: web
        interfaces:
          - ip4: 10.0.0.5/24
            ip4gw: 10.0.0.1
      - vm_name: twin
  - name: other
    config_defaults:
      os: debian12
      disk_image_basedir: {base}
      cloud_init:
        pubkey: {pubkey}
        password: false
    machines:
      - vm_name: twin
images:
  debian12:
    image_url: https://example.org/debian-12-genericcloud-amd64.qcow2
"#,
        base = dir.join("vms").display()
    );
    let path = dir.join("Lvlab.yml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn lvlab(manifest: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .args(["-f", manifest, "cloudinit"])
        .args(args)
        .env_remove("LVLAB_LOG")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn stdout_prints_the_three_sections_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(dir.path(), KEY);
    let out = lvlab(&file, &["web", "--stdout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let positions: Vec<usize> = [
        "--- meta-data ---\n",
        "--- user-data ---\n",
        "--- network-config ---\n",
    ]
    .iter()
    .map(|s| {
        text.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in\n{text}"))
    })
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(
        text.starts_with("--- meta-data ---\ninstance-id: \"iid-web_lab\"\n"),
        "{text}"
    );
    assert!(
        text.contains("#cloud-config\nhostname: \"web\"\n"),
        "{text}"
    );
    assert!(text.contains("via: \"10.0.0.1\""), "{text}");
    // Without a terminal the fresh password is not shown, and one note
    // says so; with --show-passwords it goes to stderr, beside the
    // documents, never into them.
    assert!(
        stderr(&out).contains("note: 1 console password was set and not shown"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("Console password for"));
    let shown = lvlab(&file, &["web", "--stdout", "--show-passwords"]);
    assert_eq!(
        stderr(&shown)
            .matches("Console password for web (user ")
            .count(),
        1,
        "{}",
        stderr(&shown)
    );
    assert!(!stdout(&shown).contains("Console password"));
    assert!(!dir.path().join("vms").exists(), "--stdout writes nothing");
}

#[test]
fn the_seed_is_written_once_with_its_password_shown_once_and_stored_only_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(dir.path(), KEY);
    let out = lvlab(&file, &["web", "--show-passwords"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let vm_dir = dir.path().join("vms/lab/web");
    for name in ["meta-data", "user-data", "network-config", "cidata.iso"] {
        assert!(
            text.contains(&vm_dir.join(name).display().to_string()),
            "{text}"
        );
    }
    assert!(text.contains("digest sha256:"), "{text}");
    // Not on stdout without a terminal: on stderr, as asked.
    let line = stderr(&out)
        .lines()
        .find(|l| l.starts_with("Console password for web"))
        .unwrap_or_else(|| panic!("{}", stderr(&out)))
        .to_string();
    let password = line.split(": ").nth(1).unwrap().split(' ').next().unwrap();
    assert_eq!(password.len(), 20, "{line}");
    assert!(!text.contains(password));
    for entry in std::fs::read_dir(&vm_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes
            .windows(password.len())
            .any(|w| w == password.as_bytes()));
    }
    let iso = std::fs::read(vm_dir.join("cidata.iso")).unwrap();

    // Again: the recorded hash is reused, so nothing changes and no new
    // password is made.
    let again = lvlab(&file, &["web", "--show-passwords"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        !stderr(&again).contains("Console password"),
        "{}",
        stderr(&again)
    );
    assert_eq!(iso, std::fs::read(vm_dir.join("cidata.iso")).unwrap());
}

#[test]
fn a_name_in_two_environments_needs_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(dir.path(), KEY);
    let out = lvlab(&file, &["twin", "--stdout"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--env"), "{}", stderr(&out));
    let out = lvlab(&file, &["twin", "--env", "other", "--stdout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("passwd"), "password: false");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn an_unknown_machine_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(dir.path(), KEY);
    let out = lvlab(&file, &["nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no machine `nope`"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn the_public_key_is_read_from_its_file_and_a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("id_test.pub");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let file = manifest(dir.path(), &key_file.display().to_string());
    let out = lvlab(&file, &["web", "--stdout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("      - \"{KEY}\"\n")),
        "{}",
        stdout(&out)
    );

    std::fs::remove_file(&key_file).unwrap();
    let out = lvlab(&file, &["web"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&key_file.display().to_string()), "{err}");
    assert!(err.contains("No such file"), "{err}");
    assert!(!dir.path().join("vms/lab/web").exists());
}

#[test]
fn a_private_key_file_is_refused_and_never_written_or_shown() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("id_ed25519");
    std::fs::write(
        &private,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE/SECRET-BODY/AAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let file = manifest(dir.path(), &private.display().to_string());
    for args in [&["web", "--stdout"][..], &["web"][..]] {
        let out = lvlab(&file, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let (out_text, err) = (stdout(&out), stderr(&out));
        assert!(
            err.contains(&format!(
                "{} is a private key; use {}.pub",
                private.display(),
                private.display()
            )),
            "{err}"
        );
        assert!(
            !err.contains("SECRET-BODY") && !out_text.contains("SECRET-BODY"),
            "{out_text}\n{err}"
        );
    }
    assert!(!dir.path().join("vms/lab/web").exists(), "no seed written");

    // The same file as the key of a plan on a host where the machines fit:
    // refused the same way.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("10.0.0.", "192.168.122.")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .args([
            "-f",
            &file,
            "--connect",
            "test:///default",
            "plan",
            "--env",
            "lab",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (out_text, err) = (stdout(&out), stderr(&out));
    assert!(err.contains("is a private key"), "{out_text}\n{err}");
    assert!(
        !err.contains("SECRET-BODY") && !out_text.contains("SECRET-BODY"),
        "{out_text}\n{err}"
    );
}
