//! Downloads over a misbehaving network: resumed with a range request,
//! restarted when the server ignores it or the partial is another file's,
//! a 404 and a stalled server named as such, several images at once.

use std::time::{Duration, Instant};

use crate::http::Behaviour;
use crate::lab::{failed, image_bytes, ok, publish_plain, Lab, MIB};

#[test]
fn a_download_cut_mid_file_resumes_with_a_range_request() {
    let lab = Lab::new();
    let bytes = image_bytes(4, 3 * MIB);
    let entry = publish_plain(&lab, "img", "cut.qcow2", &bytes);
    lab.server()
        .behave("p/cut.qcow2", Behaviour::CutAfter(MIB + 5));
    lab.write_manifest(&["img"], &entry, "test:///default");
    let out = ok(&lab.lvlab(&["init"]));
    assert!(out.contains("resumed at"), "{out}");
    let requests = lab.server().requests_for("p/cut.qcow2");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={}-", MIB + 5).as_str())
    );
    assert_eq!(std::fs::read(lab.cache().join("cut.qcow2")).unwrap(), bytes);
}

/// A lab whose server publishes `bytes` as `p/<name>` (SHA-256 listed)
/// and whose cache holds `partial` as an earlier run's `<name>.partial`.
fn lab_with_partial(name: &str, bytes: &[u8], partial: &[u8]) -> Lab {
    let lab = Lab::new();
    let entry = publish_plain(&lab, "img", name, bytes);
    lab.write_manifest(&["img"], &entry, "test:///default");
    std::fs::create_dir_all(lab.cache()).unwrap();
    std::fs::write(lab.cache().join(format!("{name}.partial")), partial).unwrap();
    lab
}

#[test]
fn a_416_restarts_cleanly_and_a_complete_partial_needs_no_body() {
    let bytes = image_bytes(5, 2 * MIB);
    // A stale partial the server cannot resume: restart from zero.
    let lab = lab_with_partial("r.qcow2", &bytes, &image_bytes(99, MIB));
    lab.server()
        .behave("p/r.qcow2", Behaviour::RangeNotSatisfiable);
    ok(&lab.lvlab(&["init"]));
    let requests = lab.server().requests_for("p/r.qcow2");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].range.is_some() && requests[1].range.is_none());
    assert_eq!(std::fs::read(lab.cache().join("r.qcow2")).unwrap(), bytes);

    // A partial that already holds everything: 416 with the same length.
    let lab = lab_with_partial("r.qcow2", &bytes, &bytes);
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests_for("p/r.qcow2").len(), 1);
    assert_eq!(std::fs::read(lab.cache().join("r.qcow2")).unwrap(), bytes);
}

#[test]
fn a_server_that_ignores_range_restarts_the_file() {
    let bytes = image_bytes(6, 2 * MIB);
    // Garbage in the partial: appending the full answer to it would not verify.
    let lab = lab_with_partial("i.qcow2", &bytes, &image_bytes(98, MIB));
    lab.server().behave("p/i.qcow2", Behaviour::IgnoreRange);
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests_for("p/i.qcow2").len(), 1);
    assert_eq!(std::fs::read(lab.cache().join("i.qcow2")).unwrap(), bytes);
}

#[test]
fn a_resumed_partial_of_another_file_is_downloaded_again_whole() {
    let bytes = image_bytes(7, 2 * MIB);
    // An earlier run's partial of a file the publisher has since replaced:
    // the resumed bytes hash wrong, so lvlab fetches the whole file once more.
    let lab = lab_with_partial("o.qcow2", &bytes, &image_bytes(97, MIB));
    let out = ok(&lab.lvlab(&["init"]));
    let requests = lab.server().requests_for("p/o.qcow2");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].range.as_deref(),
        Some(format!("bytes={MIB}-").as_str())
    );
    assert_eq!(requests[1].range, None);
    assert_eq!(std::fs::read(lab.cache().join("o.qcow2")).unwrap(), bytes);
    assert!(!lab.cache().join("o.qcow2.rejected").exists(), "{out}");
}

#[test]
fn a_404_names_the_url_the_status_and_where_to_put_the_file() {
    let lab = Lab::new();
    let bytes = image_bytes(7, 1000);
    let entry = publish_plain(&lab, "img", "gone.qcow2", &bytes);
    lab.server().behave("p/gone.qcow2", Behaviour::Status(404));
    lab.write_manifest(&["img"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    assert!(err.contains(&lab.url("p/gone.qcow2")), "{err}");
    assert!(err.contains("HTTP 404 Not Found"), "{err}");
    let path = lab.cache().join("gone.qcow2");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(!path.exists());
    // 404 is final: no retries.
    assert_eq!(lab.server().requests_for("p/gone.qcow2").len(), 1);

    // Placing the file by hand, as the hint says, works and verifies it.
    std::fs::write(&path, &bytes).unwrap();
    let out = ok(&lab.lvlab(&["init"]));
    assert!(out.contains("found in the cache"), "{out}");
}

#[test]
fn a_stalled_server_times_out_and_retries_are_bounded() {
    let lab = Lab::new();
    let entry = publish_plain(&lab, "img", "slow.qcow2", &image_bytes(8, MIB));
    for _ in 0..3 {
        lab.server()
            .behave("p/slow.qcow2", Behaviour::Stall(Duration::from_secs(4)));
    }
    lab.write_manifest(&["img"], &entry, "test:///default");
    let start = Instant::now();
    let err = failed(&lab.lvlab_env(
        &["init"],
        &[("LVLAB_HTTP_TIMEOUT", "0.3"), ("LVLAB_HTTP_RETRIES", "1")],
    ));
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains("after 2 attempts"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(lab.server().requests_for("p/slow.qcow2").len(), 2);
    assert!(!lab.cache().join("slow.qcow2").exists());
}

#[test]
fn several_images_download_in_parallel_then_need_no_server() {
    let mut lab = Lab::new();
    let mut entries = String::new();
    let keys = ["a1", "a2", "a3", "a4"];
    let mut all = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let bytes = image_bytes(20 + i as u64, 2 * MIB);
        let name = format!("{key}.qcow2");
        entries.push_str(&publish_plain(&lab, key, &name, &bytes));
        lab.server().behave(&format!("p/{name}"), Behaviour::Slow);
        all.push((name, bytes));
    }
    lab.write_manifest(&keys, &entries, "test:///default");
    let out = ok(&lab.lvlab(&["init", "--jobs", "4"]));
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(lab.server().max_concurrent() >= 2, "transfers overlapped");
    for (name, bytes) in &all {
        assert_eq!(&std::fs::read(lab.cache().join(name)).unwrap(), bytes);
    }

    // Verified images need no request: the server is gone.
    lab.server.take().unwrap().stop();
    let out = ok(&lab.lvlab(&["init"]));
    assert_eq!(out.matches("no request made").count(), 4, "{out}");

    let list: serde_json::Value =
        serde_json::from_str(&ok(&lab.lvlab(&["images", "list", "--json"]))).unwrap();
    let images: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "image")
        .collect();
    assert_eq!(images.len(), 4);
    for row in images {
        assert_eq!(row["verified"], true);
        assert_eq!(row["current"], true);
        assert_eq!(row["machines"].as_array().unwrap().len(), 1);
        assert_eq!(row["size"], 2 * MIB);
    }
}
