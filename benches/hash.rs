//! Throughput of the hasher a download runs (`TrailingHasher`, reading the
//! `.partial` back from the page cache on its own thread) against
//! `openssl dgst` and RustCrypto's `sha2` on the same file, and the time of
//! a whole download through lvlab's fetcher (a local file copied to a
//! `.partial`, hashed behind the writes and flushed: the path `init` takes
//! for a `file://` image; benches/images.sh times the HTTP one).
//!
//! Run: `cargo bench --bench hash [-- FILE] [--quick]`. Without FILE it
//! hashes a file of random bytes it writes first (1 GiB, 256 MiB with
//! `--quick`). Each figure is the best of 3. Prints `key = value unit`
//! rows that benches/check.sh compares with the README's targets.

#[path = "support/report.rs"]
mod report;
use report::{quick, row};

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lvlab::desired::{ChecksumAlgorithm, Source};
use lvlab::images::hash::{TrailingHasher, BUFFER_SIZE};
use lvlab::images::progress::Silent;
use lvlab::images::{FetchOptions, Fetcher};
use sha2::Digest;

const ROUNDS: usize = 3;

fn best(mut step: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed()
        })
        .min()
        .unwrap()
}

/// The download's hasher over a file that is already whole.
fn trailing(path: &Path, algorithm: ChecksumAlgorithm, size: u64) {
    let hasher = TrailingHasher::start(path, algorithm, size).expect("hasher starts");
    std::hint::black_box(hasher.finish().expect("hash"));
}

fn openssl(path: &Path, flag: &str) {
    let status = Command::new("openssl")
        .args(["dgst", flag])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl dgst {flag} failed");
}

fn sha2_crate<D: Digest>(path: &Path) {
    let mut file = File::open(path).expect("readable file");
    let mut hasher = D::new();
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        let n = file.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    std::hint::black_box(hasher.finalize());
}

fn download(fetcher: &Fetcher, path: &Path, partial: &Path, algorithm: Option<ChecksumAlgorithm>) {
    let source = Source::File(path.to_path_buf());
    let done = fetcher
        .download(&source, partial, algorithm, "bench", &Silent)
        .expect("download");
    assert_eq!(done.digest.is_some(), algorithm.is_some());
    std::fs::remove_file(partial).expect("remove the .partial");
}

/// A file of `mib` MiB of random bytes in `dir`.
fn random_file(dir: &Path, mib: usize) -> PathBuf {
    let path = dir.join("random.img");
    let mut out = File::create(&path).expect("create the file");
    let mut urandom = File::open("/dev/urandom").expect("/dev/urandom");
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        urandom.read_exact(&mut chunk).expect("random bytes");
        out.write_all(&chunk).expect("write the file");
    }
    path
}

fn main() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary directory");
    let file = match std::env::args().skip(1).find(|a| !a.starts_with("--")) {
        Some(file) => PathBuf::from(file),
        None => random_file(work.path(), if quick() { 256 } else { 1024 }),
    };
    let size = std::fs::metadata(&file).expect("readable file").len();
    let mb = size as f64 / 1e6;
    let mbs = |d: Duration| mb / d.as_secs_f64();
    openssl(&file, "-sha256"); // into the page cache
    let fetcher = Fetcher::new(FetchOptions::default()).expect("HTTP client");
    let partial = work.path().join("copy.partial");
    let plain = best(|| download(&fetcher, &file, &partial, None));
    let of = format!("{:.0} MiB", size as f64 / 1048576.0);
    row(
        "download.none",
        plain.as_secs_f64(),
        "s",
        &format!("local file -> .partial, {of}, no digest"),
    );
    for (algorithm, name, flag) in [
        (ChecksumAlgorithm::Sha256, "sha256", "-sha256"),
        (ChecksumAlgorithm::Sha512, "sha512", "-sha512"),
    ] {
        let verified = best(|| download(&fetcher, &file, &partial, Some(algorithm)));
        row(
            &format!("download.{name}"),
            verified.as_secs_f64(),
            "s",
            &format!("local file -> .partial, {of}, {name} behind the writes"),
        );
        let adds = 100.0 * (verified.as_secs_f64() / plain.as_secs_f64() - 1.0);
        row(
            &format!("download.verify_adds.{name}"),
            adds,
            "%",
            "what hashing adds to a local download",
        );
        let ours = mbs(best(|| trailing(&file, algorithm, size)));
        let theirs = mbs(best(|| openssl(&file, flag)));
        let crate_sha2 = mbs(best(|| match algorithm {
            ChecksumAlgorithm::Sha256 => sha2_crate::<sha2::Sha256>(&file),
            ChecksumAlgorithm::Sha512 => sha2_crate::<sha2::Sha512>(&file),
        }));
        row(
            &format!("hash.lvlab.{name}"),
            ours,
            "MB/s",
            &format!("TrailingHasher, {of} from the page cache"),
        );
        row(
            &format!("hash.openssl.{name}"),
            theirs,
            "MB/s",
            &format!("openssl dgst {flag}, same file"),
        );
        row(
            &format!("hash.sha2.{name}"),
            crate_sha2,
            "MB/s",
            "RustCrypto sha2 0.10, same file",
        );
        row(
            &format!("hash.lvlab_vs_openssl.{name}"),
            ours / theirs,
            "x",
            "lvlab's throughput / openssl's",
        );
        row(
            &format!("hash.sha2_vs_openssl.{name}"),
            crate_sha2 / theirs,
            "x",
            "sha2's throughput / openssl's",
        );
    }
}
