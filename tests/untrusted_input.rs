//! Input lvlab does not control, met through the binary: a checksum file
//! full of terminal escape sequences, and a manifest nested far too deep.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;

use std::path::Path;

use http::Server;
use lab_manifest::LabManifest;
use run::{lvlab, texts};

/// Clears the screen, sets the window title and turns text red.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{1b}[31m";

fn write_manifest(dir: &Path, image_url: &str, checksum_url: &str) {
    LabManifest::lab("lab", "test:///default", dir)
        .machine("m", |m| m.os("img"))
        .image("img", |i| i.url(image_url).checksum(checksum_url, "sha256"))
        .write(dir);
}

/// `lvlab init` against a server whose checksum file is `sums`; its stderr.
fn init_with_checksum_file(sums: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    server.put("img.qcow2", b"not really an image".to_vec());
    server.put("SHA256SUMS", sums.as_bytes().to_vec());
    write_manifest(
        dir.path(),
        &server.url("img.qcow2"),
        &server.url("SHA256SUMS"),
    );
    let out = lvlab(dir.path()).arg("init").output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!out.stderr.contains(&0x1b), "raw ESC on stderr: {stderr:?}");
    assert!(!out.stdout.contains(&0x1b), "raw ESC on stdout: {stdout:?}");
    stderr
}

#[test]
fn escape_sequences_in_a_checksum_files_first_line_are_escaped() {
    let stderr = init_with_checksum_file(&format!("{HOSTILE}not a checksum\n"));
    assert!(
        stderr.contains(
            "has no checksum lines at all (it starts with `\\u{1b}[2J\\u{1b}]0;owned\\u{7}"
        ),
        "{stderr}"
    );
}

#[test]
fn escape_sequences_in_listed_file_names_are_escaped() {
    let hex = "ab".repeat(32);
    let stderr = init_with_checksum_file(&format!(
        "{hex}  other{HOSTILE}.qcow2\n\\{hex}  line\\nbreak.qcow2\n"
    ));
    assert!(
        stderr.contains("is not listed in the checksum file"),
        "{stderr}"
    );
    assert!(stderr.contains("`other\\u{1b}[2J"), "{stderr}");
    // A name with a line break cannot forge a line of its own.
    assert!(stderr.contains("`line\\nbreak.qcow2`"), "{stderr}");
}

#[test]
fn control_characters_in_any_error_are_escaped() {
    // A machine name from the command line, echoed back by an error that
    // no code path escaped on its own: the backstop does.
    let dir = tempfile::tempdir().unwrap();
    write_manifest(
        dir.path(),
        "https://example.org/img.qcow2",
        "https://example.org/SHA256SUMS",
    );
    let out = lvlab(dir.path())
        .args(["cloudinit", &format!("m{HOSTILE}")])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!out.stderr.contains(&0x1b), "raw ESC on stderr: {stderr:?}");
    assert!(stderr.contains("m\\u{1b}[2J"), "{stderr}");
}

#[test]
fn a_manifest_nested_100k_deep_is_rejected_by_the_depth_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "environment:\n  - name: lab\n    machines: {}\n",
        "[".repeat(100_000)
    );
    std::fs::write(dir.path().join("Lvlab.yml"), text).unwrap();
    let start = std::time::Instant::now();
    let out = lvlab(dir.path()).arg("validate").output().unwrap();
    let took = start.elapsed();
    eprintln!("rejected in {took:?}");
    // serde_yaml alone took 22 s; the linear scan takes a fraction of one.
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the YAML nests more than 64 levels deep"),
        "{stderr}"
    );
    // The place the limit is passed: line 3, after three block levels.
    assert!(stderr.contains("Lvlab.yml:3:76"), "{stderr}");
    assert!(stderr.contains("too deep here"), "{stderr}");
}
