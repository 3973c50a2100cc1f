//! Records the git commit lvlab is built from for `lvlab --version`
//! (`LVLAB_GIT_COMMIT`: `git rev-parse --short HEAD`, or "unknown" outside a
//! git tree, e.g. a crate unpacked from a registry).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let own_tree = own_git_tree();
    let commit = own_tree
        .then(|| git(&["rev-parse", "--short", "HEAD"]))
        .flatten()
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LVLAB_GIT_COMMIT={commit}");
    if own_tree {
        for file in watched_git_files() {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
}

/// Whether the crate is the top of a git tree: an unpacked crate inside
/// some other repository (a home directory kept in git) must not take
/// that repository's commit.
fn own_git_tree() -> bool {
    let Some(top) = git(&["rev-parse", "--show-toplevel"]) else {
        return false;
    };
    let canonical = |path: &Path| path.canonicalize().ok();
    let here = std::env::var_os("CARGO_MANIFEST_DIR").and_then(|dir| canonical(Path::new(&dir)));
    here.is_some() && here == canonical(Path::new(&top))
}

/// What moves when HEAD does: HEAD itself (a checkout), the branch's ref
/// (a commit) and packed-refs. Only files that exist: cargo reruns the
/// script on every build for a missing one.
fn watched_git_files() -> Vec<PathBuf> {
    let (Some(git_dir), Some(common_dir)) = (
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) else {
        return Vec::new();
    };
    let mut files = vec![
        Path::new(&git_dir).join("HEAD"),
        Path::new(&common_dir).join("packed-refs"),
    ];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(Path::new(&common_dir).join(branch));
    }
    files.retain(|file| file.exists());
    files
}

/// git's one-line answer, or `None` when there is no git or no tree.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}
