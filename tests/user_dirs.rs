//! Where lvlab keeps its per-user things, for root and for another user:
//! the lock's state directory when `LVLAB_STATE_DIR` is unset, and the
//! built-in catalog's image cache. Another user is `nobody` (65534), by
//! `setpriv`; root's `/run` is a tmpfs of a private mount namespace
//! (`unshare`), so the host's `/run/lvlab` is never touched.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lab_manifest::LabManifest;

const NOBODY: u32 = 65534;

/// A directory tree that `nobody` owns, with a manifest whose one machine
/// needs nothing under `--target absent` on `test:///default`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let home = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        LabManifest::tiny("lab", "test:///default", home.path())
            .image("tiny", |i| i.url(home.path().join("tiny.qcow2").display()))
            .machine("web", |m| m)
            .write(home.path());
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Hands everything under the home to `nobody`.
    fn give_away(&self) {
        let status = Command::new("chown")
            .args(["-R", &format!("{NOBODY}:{NOBODY}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `lvlab args` as `nobody`, with only `env` (and PATH) set.
    fn as_nobody(&self, env: &[(&str, PathBuf)], args: &[&str]) -> Output {
        self.give_away();
        let mut command = Command::new("setpriv");
        command
            .args([
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".into(),
            ])
            .arg(env!("CARGO_BIN_EXE_lvlab"));
        self.run(command, env, args)
    }

    fn run(&self, mut command: Command, env: &[(&str, PathBuf)], args: &[&str]) -> Output {
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LVLAB_NO_HOST_CONFIG", "1")
            .env("NO_COLOR", "1")
            .current_dir(self.path());
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }
}

#[track_caller]
fn stdout_of(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// The lock files in `dir`, which must be lvlab's state directory (0700).
#[track_caller]
fn locks_in(dir: &Path) -> Vec<String> {
    let mode = std::fs::metadata(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lock"))
        .collect()
}

const APPLY: &[&str] = &["apply", "--auto-approve", "--target", "absent"];

#[test]
fn a_user_locks_in_xdg_runtime_dir_else_in_local_state() {
    let home = Home::new();
    let runtime = home.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let env = [
        ("HOME", home.path().to_path_buf()),
        ("XDG_RUNTIME_DIR", runtime.clone()),
    ];
    stdout_of(&home.as_nobody(&env, APPLY));
    assert_eq!(locks_in(&runtime.join("lvlab")).len(), 1);
    assert!(!home.path().join(".local/state").exists());

    stdout_of(&home.as_nobody(&env[..1], APPLY));
    assert_eq!(locks_in(&home.path().join(".local/state/lvlab")).len(), 1);
}

#[test]
fn root_locks_in_run_lvlab() {
    let home = Home::new();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs lvlab-test /run && \"$0\" \"$@\" && \
             stat -c '%a %U' /run/lvlab && ls /run/lvlab",
        )
        .arg(env!("CARGO_BIN_EXE_lvlab"));
    let env = [("HOME", home.path().to_path_buf())];
    let shown = stdout_of(&home.run(command, &env, APPLY));
    let listed: Vec<&str> = shown
        .lines()
        .skip_while(|line| *line != "700 root")
        .collect();
    assert!(
        listed.len() == 2 && listed[1].starts_with("test____default.lab."),
        "{shown}"
    );
    assert!(!home.path().join(".local/state").exists(), "{shown}");
}

#[test]
fn a_users_catalog_cache_is_in_xdg_data_home_else_in_local_share() {
    let home = Home::new();
    std::fs::remove_file(home.path().join("Lvlab.yml")).unwrap();
    let share = home.path().join(".local/share/lvlab/cloud-images");
    let data = home.path().join("data");
    for dir in [&share, &data.join("lvlab/cloud-images")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("stray.qcow2"), "x").unwrap();
    }
    // Without a manifest, `images list` reads the catalog's cache.
    let listed = |env: &[(&str, PathBuf)]| {
        let json: serde_json::Value = serde_json::from_str(&stdout_of(
            &home.as_nobody(env, &["images", "list", "--json"]),
        ))
        .unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|file| PathBuf::from(file["path"].as_str().unwrap()))
            .collect::<Vec<_>>()
    };
    let env = [
        ("HOME", home.path().to_path_buf()),
        ("XDG_DATA_HOME", data.clone()),
    ];
    assert_eq!(listed(&env), [data.join("lvlab/cloud-images/stray.qcow2")]);
    assert_eq!(listed(&env[..1]), [share.join("stray.qcow2")]);
}
