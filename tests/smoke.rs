//! `lvlab smoke`: the host self-test. A blank disk never boots, so the
//! fast tier checks the failure path on real QEMU (SSH never answers
//! within a short `--wait-timeout`: the report names the step, exit 1, nothing
//! left behind) and what is refused before anything is made. The passing
//! run against a real guest is the real-guest tier's
//! (`tests/support/smoke_checks.rs::smoke_passes`). No test here reaches
//! past 127.0.0.1: every image is a local file.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/smoke_checks.rs"]
mod smoke_checks;
#[path = "support/tiny_image.rs"]
mod support;

use std::path::Path;

use lab_manifest::LabManifest;
use smoke_checks::{leftovers, run_smoke, STEPS};

const SESSION: &str = "qemu:///session";

fn lvlab_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lvlab"))
}

/// A manifest in `dir` whose image `tiny` is a blank local qcow2 with its
/// SHA256SUMS; no machine (the smoke test makes its own).
fn tiny_manifest(dir: &Path) {
    let image = dir.join("source/tiny.qcow2");
    support::tiny_image(&image, "16M");
    let sum = run::sha256_hex(&std::fs::read(&image).unwrap());
    std::fs::write(
        dir.join("source/SHA256SUMS"),
        format!("{sum}  tiny.qcow2\n"),
    )
    .unwrap();
    LabManifest::tiny("lab", SESSION, dir)
        .image("tiny", |i| {
            i.checksum(dir.join("source/SHA256SUMS").display(), "sha256")
        })
        .write(dir);
}

#[test]
fn a_guest_that_never_answers_fails_at_ssh_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    tiny_manifest(dir.path());
    let run = run_smoke(
        lvlab_binary(),
        dir.path(),
        &[
            "--image",
            "tiny",
            "--wait-timeout",
            "5",
            "--connect",
            SESSION,
        ],
    );
    let context = format!("{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(1), "{context}");
    let report = run.report.as_ref().expect("a JSON report");
    assert_eq!(report["passed"], false, "{context}");
    assert_eq!(report["image"], "tiny");
    assert_eq!(run.step_names(), STEPS, "{context}");
    for passed in ["host", "image", "up", "destroy"] {
        assert_eq!(run.step(passed).unwrap().0, "pass", "{passed}: {context}");
    }
    let (verdict, detail) = run.step("ssh").unwrap();
    assert_eq!(verdict, "fail", "{context}");
    assert!(
        detail.contains("not reachable on SSH within 5s"),
        "{detail}"
    );
    for skipped in ["login", "cloud-init", "hostname", "user", "key", "down"] {
        let (verdict, detail) = run.step(skipped).unwrap();
        assert_eq!(verdict, "skipped", "{skipped}: {context}");
        assert_eq!(detail, "`ssh` did not pass");
    }
    // The machine was this run's own, booted from the manifest's image,
    // which stays verified in the manifest's cache.
    let domain = run.domain().unwrap();
    assert!(
        domain.starts_with("smoke-") && domain.ends_with("_smoke"),
        "{domain}"
    );
    assert!(dir.path().join("cache/cloud-images/tiny.qcow2").is_file());
    assert!(run.stderr.contains("smoke: ssh"), "{}", run.stderr);
    assert_eq!(leftovers(&run, SESSION), Vec::<String>::new());
}

#[test]
fn the_test_driver_is_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    tiny_manifest(dir.path());
    let tmpdir = dir.path().join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let out = run::lvlab(dir.path())
        .args(["--connect", "test:///default", "smoke", "--image", "tiny"])
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    let (stdout, stderr) = run::texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("lvlab smoke: image tiny on test:///default (domain smoke-"));
    assert!(
        stdout.contains("host        FAIL  ")
            && stdout.contains("test:///default is libvirt's test driver, which runs no guests"),
        "{stdout}"
    );
    for later in ["image", "up", "ssh", "down", "destroy"] {
        assert!(
            stdout.contains(&format!("{later:<11} skipped")),
            "{later}: {stdout}"
        );
    }
    assert!(stdout.contains("FAILED at host"), "{stdout}");
    assert!(stdout.contains("hint: give a QEMU URI"), "{stdout}");
    // No image fetched, no directory left.
    assert!(!dir.path().join("cache/cloud-images/tiny.qcow2").exists());
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0);
}

#[test]
fn an_unknown_image_gets_a_suggestion_from_the_manifest_or_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    tiny_manifest(dir.path());
    let out = run::lvlab(dir.path())
        .args(["smoke", "--image", "tinny"])
        .output()
        .unwrap();
    let (_, stderr) = run::texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no image `tinny` in "), "{stderr}");
    assert!(stderr.contains("did you mean `tiny`?"), "{stderr}");

    let empty = tempfile::tempdir().unwrap();
    let out = run::lvlab(empty.path())
        .args(["smoke", "--image", "debain12"])
        .output()
        .unwrap();
    let (_, stderr) = run::texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no image `debain12` in the built-in catalog; did you mean `debian12`?"),
        "{stderr}"
    );
}
