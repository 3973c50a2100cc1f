//! Plan-time checks against the observed host, as a user meets them through
//! the binary: test-driver hosts from `state/`, reached with `--connect`
//! whatever the manifest's `libvirt_uri` says.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/tiny_image.rs"]
mod support;
use lab_manifest::LabManifest;
use support::tiny_image;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `test:///<absolute path>` of a state file.
fn host(state: &str) -> String {
    format!("test://{}", repo("state").join(state).display())
}

fn lvlab(manifest: &Path, args: &[&str]) -> Output {
    lvlab_in(manifest, args, |_| {})
}

/// Runs the binary on `manifest`; `setup` adjusts the environment.
fn lvlab_in(manifest: &Path, args: &[&str], setup: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lvlab"));
    command
        .arg("-f")
        .arg(manifest)
        .args(args)
        .env("NO_COLOR", "1")
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        )
        .env_remove("LVLAB_LOG")
        .stdin(Stdio::null());
    setup(&mut command);
    command.output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn static_addresses_of_the_original_on_the_stock_default_network_are_a_note() {
    let manifest = repo("tests/manifests/original/static-on-default.yml");
    let uri = host("stock-default-network.xml");
    let out = lvlab(&manifest, &["--connect", &uri, "plan"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let note = stdout
        .lines()
        .find(|l| l.starts_with("Note: network default"))
        .unwrap_or_else(|| panic!("a note on the DHCP range in {stdout}"));
    for part in [
        format!("network default on {uri} hands out 192.168.122.2-192.168.122.254 by DHCP"),
        "192.168.122.10 (salt.local), 192.168.122.11 (web.local)".into(),
        format!("virsh -c {uri} net-edit default"),
        "add ip-dhcp-host".into(),
        format!("{uri} cannot list DHCP leases, so there was no check"),
    ] {
        assert!(note.contains(&part), "{part:?} in {note}");
    }
    assert!(
        stdout.ends_with("Plan: 3 to add, 0 to change, 0 to destroy.\n"),
        "{stdout}"
    );
}

/// A lab of five machines on a 6-CPU, 6 GiB test host (32 vCPUs at most),
/// each with its own problems.
fn troubled(dir: &Path) -> PathBuf {
    let nowhere = dir.join("nowhere");
    LabManifest::tiny("lab", "qemu:///system", dir)
        .defaults(|d| d.cpu(1).memory(256).no_password())
        .machine("wide", |m| m.cpu(64))
        .machine("huge", |m| m.memory(8192))
        .machine("shares", |m| {
            let share = format!("[{{source: {}, mount_tag: data}}]", nowhere.display());
            m.set("shared_directories", share)
        })
        .machine("lost", |m| m.set("interfaces", "[{network: lab-net}]"))
        .machine("astray", |m| {
            m.cpu(40)
                .set("interfaces", "[{ip4: 10.9.9.9/24, ip4gw: 10.9.9.1}]")
        })
        .write(dir)
}

#[test]
fn every_host_problem_of_every_machine_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = troubled(dir.path());
    let uri = host("stock-default-network.xml");
    let base = dir.path().display();
    let out = lvlab(&manifest, &["--connect", &uri, "plan"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "no plan: {stdout}");
    let expected = [
        format!("image tiny: {base}/source/tiny.qcow2, its image_url, does not exist"),
        format!("machine wide asks for 64 vCPUs; test guests on {uri} can have at most 32"),
        format!("machine huge asks for 8192 MiB of memory; the host at {uri} has 6144 MiB"),
        format!("machine shares shares {base}/nowhere, which does not exist"),
        format!("machine lost needs libvirt network lab-net, which {uri} does not have"),
        "machine astray asks for 40 vCPUs".to_string(),
        "machine astray, interface eth0: 10.9.9.9 is outside network default's subnet 192.168.122.0/24"
            .to_string(),
    ];
    for problem in &expected {
        assert!(stderr.contains(problem.as_str()), "{problem:?} in {stderr}");
    }
    assert!(
        stderr.starts_with(&format!(
            "error: {} problems stop this plan:",
            expected.len()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint: set `cpu` to 32 or less"), "{stderr}");
}

#[test]
fn shared_directories_without_virtiofsd_are_a_plan_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = troubled(dir.path());
    std::fs::create_dir_all(dir.path().join("nowhere")).unwrap();
    tiny_image(&dir.path().join("source/tiny.qcow2"), "16M");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let uri = host("stock-default-network.xml");
    // Nothing on PATH or in ~/.cargo/bin: virtiofsd is found only where
    // the system installs it.
    let out = lvlab_in(&manifest, &["--connect", &uri, "plan", "shares"], |c| {
        c.env("PATH", &empty).env("HOME", &empty);
    });
    let (stdout, stderr) = text(&out);
    let system_virtiofsd = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"]
        .iter()
        .any(|p| Path::new(p).is_file());
    if system_virtiofsd {
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stderr.contains("machine shares shares directories, but no virtiofsd was found"),
            "{stderr}"
        );
    }
}

#[test]
fn virtiofsd_is_found_on_path_and_in_cargo_bin() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = troubled(dir.path());
    std::fs::create_dir_all(dir.path().join("nowhere")).unwrap();
    tiny_image(&dir.path().join("source/tiny.qcow2"), "16M");
    let empty = dir.path().join("empty");
    let on_path = dir.path().join("bin");
    let home = dir.path().join("home");
    for bin in [&on_path, &home.join(".cargo/bin")] {
        std::fs::create_dir_all(bin).unwrap();
        std::fs::write(bin.join("virtiofsd"), "").unwrap();
    }
    std::fs::create_dir_all(&empty).unwrap();
    let uri = host("stock-default-network.xml");
    let plan = |path: &Path, home: &Path| {
        lvlab_in(&manifest, &["--connect", &uri, "plan", "shares"], |c| {
            c.env("PATH", path).env("HOME", home);
        })
    };
    // Without it in either place, only a system-wide virtiofsd is found;
    // where there is none, the plan fails: what the two places change.
    let system_virtiofsd = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"]
        .iter()
        .any(|p| Path::new(p).is_file());
    if !system_virtiofsd {
        assert_eq!(plan(&empty, &empty).status.code(), Some(1));
    }
    for (path, home, place) in [(&on_path, &empty, "PATH"), (&empty, &home, "~/.cargo/bin")] {
        let out = plan(path, home);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{place}: {stdout}\n{stderr}");
    }
}

#[test]
fn connect_replaces_every_environments_libvirt_uri() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = troubled(dir.path());
    let uri = host("empty.xml");
    // The manifest's qemu:///system is never asked: `validate` shows the
    // URI in use, `status` and `capabilities` report on the test host.
    let out = lvlab(&manifest, &["--connect", &uri, "validate"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(&uri), "{stdout}");
    assert!(!stdout.contains("qemu:///system"), "{stdout}");
    let out = lvlab(&manifest, &["status", "--connect", &uri]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("undeployed"), "{stdout}");
    let out = lvlab(&manifest, &["--connect", &uri, "capabilities", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json[0]["uri"], uri.as_str());
    assert_eq!(json[0]["driver"], "TEST");
    // The host in use decides the checks: empty.xml has no `default`.
    let out = lvlab(&manifest, &["--connect", &uri, "plan", "wide"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!(
            "needs libvirt network default, which {uri} does not have"
        )),
        "{stderr}"
    );
}

#[test]
fn a_saved_plan_records_the_uri_it_was_made_for() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = troubled(dir.path());
    let uri = host("stock-default-network.xml");
    let saved = dir.path().join("plan.json");
    let saved_arg = saved.display().to_string();
    // Nothing to do for an absent target on an empty host: a plan that
    // applies without side effects.
    let out = lvlab(
        &manifest,
        &[
            "--connect",
            &uri,
            "plan",
            "--target",
            "absent",
            "--out",
            &saved_arg,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(json["connect"], uri.as_str());

    // Without --connect it goes to the recorded URI, not qemu:///system.
    let out = lvlab(&manifest, &["apply", &saved_arg]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    let other = host("empty.xml");
    let out = lvlab(&manifest, &["--connect", &other, "apply", &saved_arg]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "was made for --connect {uri}, not --connect {other}"
        )),
        "{stderr}"
    );
}

/// How one example is planned: the settings file it is meant to be used
/// with (`--config`) and the test-driver host whose networks it names.
struct Example {
    config: Option<&'static str>,
    host: &'static str,
}

/// What each example needs that its header says to make first, made in a
/// copy of the example's directory with HOME pointing into it.
fn prepare_example(name: &str, source: &Path, dir: &Path) -> Example {
    let home = dir.join("home");
    let stock = Example {
        config: None,
        host: "stock-default-network.xml",
    };
    match name {
        "demo" => {
            // scripts/demo.sh makes the key; its image comes from the
            // server the script runs, which plan does not ask.
            std::fs::create_dir_all(dir.join(".lvlab")).unwrap();
            std::fs::write(
                dir.join(".lvlab/id_ed25519.pub"),
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl demo\n",
            )
            .unwrap();
            stock
        }
        "full" => {
            for share in ["src/salt-states", "src/salt-pillar"] {
                std::fs::create_dir_all(home.join(share)).unwrap();
            }
            user_key(&home);
            // Where `cargo install virtiofsd` puts it; plan only looks.
            std::fs::create_dir_all(home.join(".cargo/bin")).unwrap();
            std::fs::write(home.join(".cargo/bin/virtiofsd"), "").unwrap();
            stock
        }
        "original" => {
            // Its header: used with its settings file, on a host with the
            // bridged network that file describes.
            std::fs::copy(source.join("host.yml"), dir.join("host.yml")).unwrap();
            user_key(&home);
            Example {
                config: Some("host.yml"),
                host: "bridged.xml",
            }
        }
        "provision" => {
            // Its script is the example's own file.
            std::fs::create_dir_all(dir.join("scripts")).unwrap();
            std::fs::copy(source.join("scripts/web.sh"), dir.join("scripts/web.sh")).unwrap();
            user_key(&home);
            stock
        }
        "two-hosts" => {
            // `--connect` puts both hosts' machines on the test host; db
            // keeps its pool storage (decided by its own remote URI).
            user_key(&home);
            stock
        }
        other => panic!("examples/{other}: say here what it needs before it plans"),
    }
}

fn user_key(home: &Path) {
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(
        home.join(".ssh/id_ed25519.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me\n",
    )
    .unwrap();
}

/// Every manifest under examples/ and docs/ (docs/ keeps fragments in its
/// prose and points to examples/ for complete manifests).
fn manifests() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![repo("examples"), repo("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_example_validates_and_plans_on_a_test_host() {
    let files = manifests();
    assert!(files.len() >= 2, "{files:?}");
    let mut settings_files = Vec::new();
    let mut planned = Vec::new();
    for manifest in &files {
        if settings_files.contains(manifest) {
            continue;
        }
        let source = manifest.parent().unwrap();
        let name = source.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(manifest.file_name().unwrap());
        std::fs::copy(manifest, &copy).unwrap();
        let example = prepare_example(&name, source, dir.path());
        let mut global = Vec::new();
        if let Some(config) = example.config {
            settings_files.push(source.join(config));
            global = vec!["--config".to_string(), config.to_string()];
        }
        let uri = host(example.host);
        let home = dir.path().join("home");
        for command in [vec!["validate"], vec!["--connect", &uri, "plan"]] {
            let args: Vec<&str> = global.iter().map(String::as_str).chain(command).collect();
            let out = lvlab_in(&copy, &args, |c| {
                c.env("HOME", &home).current_dir(dir.path());
            });
            let (stdout, stderr) = text(&out);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{} {args:?}:\n{stdout}{stderr}",
                manifest.display()
            );
        }
        planned.push(manifest.clone());
    }
    // Every YAML file is a manifest that was planned or the settings file of
    // one (`Lvlab.yml` sorts before any lower-case settings file name, so a
    // settings file is known by the time the loop reaches it).
    for file in &files {
        assert!(
            planned.contains(file) || settings_files.contains(file),
            "{} is neither planned nor an example's settings file",
            file.display()
        );
    }
}
