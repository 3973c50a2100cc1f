//! Hash throughput of lvlab's streaming hasher against `openssl dgst` on the
//! same file, in the same run. `cargo bench --bench hash -- FILE` (the file
//! should be in the page cache: run it twice, or `cat FILE >/dev/null`).
//! Not a criterion bench: it prints figures for the README.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use lvlab::desired::ChecksumAlgorithm;
use lvlab::images::hash::hash_file;

fn main() {
    let Some(file) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench --bench hash -- FILE");
        return;
    };
    let file = PathBuf::from(file);
    let size = std::fs::metadata(&file).expect("readable file").len() as f64;
    for (algorithm, flag) in [
        (ChecksumAlgorithm::Sha256, "-sha256"),
        (ChecksumAlgorithm::Sha512, "-sha512"),
    ] {
        let mut ours = f64::MAX;
        let mut theirs = f64::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            hash_file(&file, algorithm, &mut |_| {}).expect("hash");
            ours = ours.min(start.elapsed().as_secs_f64());
            let start = Instant::now();
            let status = Command::new("openssl")
                .args(["dgst", flag])
                .arg(&file)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(status.success());
            theirs = theirs.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{flag:8} lvlab {:7.0} MB/s ({ours:.2} s)   openssl dgst {:7.0} MB/s   lvlab/openssl {:.2}",
            size / ours / 1e6,
            size / theirs / 1e6,
            theirs / ours
        );
    }
}
