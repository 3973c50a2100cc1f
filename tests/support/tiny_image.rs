//! A small blank qcow2 standing in for a cloud image, for tests that need
//! an image file but no operating system in it; and bytes for image files
//! whose content matters.

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

/// Deterministic bytes that neither compress, repeat within a file nor
/// read as zeroes (qemu-img skips those); `seed` picks which.
#[allow(dead_code)]
pub fn image_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
