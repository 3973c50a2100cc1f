//! A small blank qcow2 standing in for a cloud image, for tests that need
//! an image file but no operating system in it.

use std::path::Path;
use std::process::Command;

/// Makes `path` (and its directories) a blank qcow2 of `size` (`16M`).
pub fn tiny_image(path: &Path, size: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let made = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(size)
        .status()
        .expect("qemu-img (qemu-utils) is installed by scripts/setup.sh");
    assert!(made.success(), "qemu-img create {}", path.display());
}
