//! The scripts' own promises, run for real on a copy of the script in a
//! temporary tree: `scripts/test.sh` runs the Debian package tier, the
//! faults tier, then the real-guest tier, each unless its `LVLAB_SKIP_*` is
//! 1; `.ci/run` drops an inherited `LVLAB_SKIP_E2E`, `LVLAB_SKIP_FAULTS` and
//! `LVLAB_SKIP_PACKAGE` before it runs
//! `scripts/test.sh`; `scripts/soak.sh` asks cargo for 10000 cases per
//! property unless `PROPTEST_CASES` says otherwise. What they start (setup,
//! cargo, the tiers) is a stand-in that reports what it was given.
//! `benches/check.sh`'s remote targets are rows `benches/remote.sh` prints.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A copy of the repository's `script` at the same place under `tree`.
fn copy_script(tree: &Path, script: &str) {
    let to = tree.join(script);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(script), to).unwrap();
}

/// An executable shell script at `path` that prints what it was given.
fn reporter(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn ci_run_ignores_inherited_skips() {
    let tree = tempfile::tempdir().unwrap();
    copy_script(tree.path(), ".ci/run");
    reporter(
        &tree.path().join("scripts/test.sh"),
        "echo \"e2e=${LVLAB_SKIP_E2E-unset} faults=${LVLAB_SKIP_FAULTS-unset} \
         package=${LVLAB_SKIP_PACKAGE-unset}\"",
    );
    let out = run(Command::new("bash")
        .arg(tree.path().join(".ci/run"))
        .env("LVLAB_SKIP_E2E", "1")
        .env("LVLAB_SKIP_FAULTS", "1")
        .env("LVLAB_SKIP_PACKAGE", "1"));
    assert_eq!(out.trim(), "e2e=unset faults=unset package=unset");
}

/// `scripts/soak.sh` with `cargo` reporting its arguments and case count.
fn soak(cases: Option<&str>) -> String {
    let tree = tempfile::tempdir().unwrap();
    copy_script(tree.path(), "scripts/soak.sh");
    let bin = tree.path().join("bin");
    reporter(
        &bin.join("cargo"),
        "echo \"cargo $* with PROPTEST_CASES=$PROPTEST_CASES\"",
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut command = Command::new("bash");
    command
        .arg(tree.path().join("scripts/soak.sh"))
        .env("PATH", path)
        .env_remove("PROPTEST_CASES");
    if let Some(cases) = cases {
        command.env("PROPTEST_CASES", cases);
    }
    run(&mut command)
}

#[test]
fn soak_runs_10000_cases_per_property_unless_told() {
    let out = soak(None);
    assert!(
        out.contains("cargo test --test properties -- --test-threads 2 with PROPTEST_CASES=10000"),
        "{out}"
    );
    assert!(out.contains("passed, 10000 cases per property"), "{out}");
    let out = soak(Some("12"));
    assert!(out.contains("with PROPTEST_CASES=12"), "{out}");
}

/// The real `scripts/test.sh` in a tree where everything it runs reports
/// itself: setup, cargo, the quick bench rows and the three tiers.
fn test_sh(skips: &[&str]) -> String {
    let tree = tempfile::tempdir().unwrap();
    copy_script(tree.path(), "scripts/test.sh");
    std::fs::write(
        tree.path().join("scripts/setup.sh"),
        "setup_all() { :; }\nsay() { echo \"==> $*\"; }\n",
    )
    .unwrap();
    let bin = tree.path().join("bin");
    reporter(&bin.join("cargo"), "echo \"cargo $*\"");
    reporter(
        &tree.path().join("benches/check.sh"),
        "echo \"check.sh $*\"",
    );
    reporter(
        &tree.path().join("scripts/faults.sh"),
        "echo \"faults.sh $*\"",
    );
    reporter(&tree.path().join("scripts/e2e.sh"), "echo \"e2e.sh $*\"");
    reporter(
        &tree.path().join("scripts/package-test.sh"),
        "echo \"package-test.sh $*\"",
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut command = Command::new("bash");
    command
        .arg(tree.path().join("scripts/test.sh"))
        .env("PATH", path)
        .env_remove("LVLAB_SKIP_E2E")
        .env_remove("LVLAB_SKIP_FAULTS")
        .env_remove("LVLAB_SKIP_PACKAGE");
    for skip in skips {
        command.env(skip, "1");
    }
    run(&mut command)
}

#[test]
fn test_sh_runs_the_tiers_one_after_the_other_unless_skipped() {
    let out = test_sh(&[]);
    let find = |what: &str| out.find(what).unwrap_or_else(|| panic!("{what}: {out}"));
    let (quick_benches, package) = (find("check.sh --quick"), find("package-test.sh --no-setup"));
    let (faults, e2e) = (find("faults.sh --no-setup"), find("e2e.sh --no-setup"));
    assert!(
        find("cargo test") < quick_benches && quick_benches < package,
        "{out}"
    );
    assert!(package < faults && faults < e2e, "{out}");

    let out = test_sh(&["LVLAB_SKIP_PACKAGE"]);
    assert!(
        !out.contains("package-test.sh") && out.contains("faults.sh --no-setup"),
        "{out}"
    );
    assert!(
        out.contains("Debian package tier skipped (LVLAB_SKIP_PACKAGE=1)"),
        "{out}"
    );

    let out = test_sh(&["LVLAB_SKIP_FAULTS"]);
    assert!(
        !out.contains("faults.sh") && out.contains("e2e.sh --no-setup"),
        "{out}"
    );
    assert!(
        out.contains("fault-injection tier skipped (LVLAB_SKIP_FAULTS=1)"),
        "{out}"
    );

    let out = test_sh(&["LVLAB_SKIP_E2E"]);
    assert!(
        out.contains("faults.sh --no-setup") && !out.contains("e2e.sh"),
        "{out}"
    );
    assert!(
        out.contains("real-guest tier skipped (LVLAB_SKIP_E2E=1)"),
        "{out}"
    );
}

#[test]
fn every_remote_target_of_check_sh_is_a_row_remote_sh_prints() {
    let read = |script: &str| {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(script)).unwrap()
    };
    let (check, remote) = (read("benches/check.sh"), read("benches/remote.sh"));
    assert!(check.contains("bash benches/remote.sh | tee -a"), "{check}");
    let keys: Vec<&str> = check
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|key| key.starts_with("remote."))
        .collect();
    assert_eq!(
        keys.len(),
        2,
        "the upload and two-host plan goals: {keys:?}"
    );
    for key in keys {
        assert!(
            remote.contains(&format!("row {key} ")),
            "remote.sh prints no {key}"
        );
    }
}
