//! The image cache over time: `images refresh` beside the file a domain
//! uses, `images clean` sparing what is used (also through backing chains)
//! and what is not lvlab's, where `init` puts an image, and the built-in
//! catalog without a manifest.

use std::path::Path;
use std::process::Command;

use crate::gpg::Gpg;
use crate::lab::{
    failed, image_bytes, image_yaml, ok, publish_fedora_style, publish_plain, qcow2, sha256, Lab,
    MIB,
};

/// The URI of the libvirt test-driver host [`host_with_domain_on`] writes.
fn host_uri(lab: &Lab) -> String {
    format!("test://{}", lab.dir.path().join("host.xml").display())
}

/// A libvirt test-driver host whose one domain's disk is a qcow2 overlay
/// backed by `image`.
fn host_with_domain_on(lab: &Lab, image: &Path) {
    let overlay = lab.dir.path().join("vms/lab/m0/disk0.qcow2");
    std::fs::create_dir_all(overlay.parent().unwrap()).unwrap();
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(image)
        .arg(&overlay)
        .status()
        .unwrap();
    assert!(status.success());
    let state = lab.dir.path().join("host.xml");
    std::fs::write(
        &state,
        format!(
            "<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>\
             <cores>1</cores><threads>1</threads><active>1</active></cpu><memory>2097152</memory>\
             <domain type='test'><name>m0_lab</name><memory>524288</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
             <source file='{}'/><target dev='vda' bus='virtio'/></disk></devices></domain></node>",
            overlay.display()
        ),
    )
    .unwrap();
}

#[test]
fn refresh_downloads_a_new_published_image_beside_the_one_a_domain_uses() {
    let lab = Lab::new();
    let gpg = Gpg::new(&["fedora"]);
    let old = qcow2(&lab, "64M");
    let entry = publish_fedora_style(
        &lab,
        &gpg,
        "img",
        "cloud.qcow2",
        &old,
        "fedora",
        &["fedora"],
    );
    let old_path = lab.cache().join("cloud.qcow2");
    lab.write_manifest(&["img"], &entry, &host_uri(&lab));
    ok(&lab.lvlab(&["init"]));
    host_with_domain_on(&lab, &old_path);

    // Without --refresh nothing is asked, even though the publisher moved on.
    let new = qcow2(&lab, "65M");
    assert_ne!(old, new);
    publish_fedora_style(
        &lab,
        &gpg,
        "img",
        "cloud.qcow2",
        &new,
        "fedora",
        &["fedora"],
    );
    let before = lab.server().requests().len();
    ok(&lab.lvlab(&["init"]));
    assert_eq!(lab.server().requests().len(), before);

    let out = ok(&lab.lvlab(&["init", "--refresh"]));
    assert!(out.contains("kept, used by m0_lab"), "{out}");
    let new_name = format!("cloud-{}.qcow2", &sha256(&new)[..12]);
    assert_eq!(
        std::fs::read(&old_path).unwrap(),
        old,
        "the old image is untouched"
    );
    assert_eq!(std::fs::read(lab.cache().join(&new_name)).unwrap(), new);
    let record = lab.record("cloud.qcow2");
    assert_eq!(record["current"], new_name.as_str());
    assert_eq!(record["files"].as_object().unwrap().len(), 2);

    // images clean keeps the superseded image: a domain's backing chain uses it.
    let clean = ok(&lab.lvlab(&["images", "clean", "--force"]));
    assert!(clean.contains("keep"), "{clean}");
    assert!(old_path.exists());
}

#[test]
fn refresh_removes_a_superseded_image_no_domain_uses() {
    let lab = Lab::new();
    let old = image_bytes(30, MIB);
    let entry = publish_plain(&lab, "img", "c.qcow2", &old);
    lab.write_manifest(&["img"], &entry, "test:///default");
    ok(&lab.lvlab(&["init"]));
    let new = image_bytes(31, MIB);
    publish_plain(&lab, "img", "c.qcow2", &new);
    let out = ok(&lab.lvlab(&["init", "--refresh"]));
    assert!(out.contains("removed, no domain used it"), "{out}");
    assert!(!lab.cache().join("c.qcow2").exists());
    let current = lab.record("c.qcow2")["current"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(std::fs::read(lab.cache().join(current)).unwrap(), new);

    // An unchanged publisher: refresh confirms without downloading.
    let before = lab.server().requests_for("p/c.qcow2").len();
    let out = ok(&lab.lvlab(&["init", "--refresh"]));
    assert!(out.contains("still the published file"), "{out}");
    assert_eq!(lab.server().requests_for("p/c.qcow2").len(), before);
}

#[test]
fn a_machine_created_after_a_refresh_gets_its_disk_from_the_current_file() {
    let lab = Lab::new();
    let entry = publish_plain(&lab, "img", "c.qcow2", &qcow2(&lab, "64M"));
    lab.write_manifest(&["img"], &entry, "test:///default");
    ok(&lab.lvlab(&["init"]));
    publish_plain(&lab, "img", "c.qcow2", &qcow2(&lab, "65M"));
    ok(&lab.lvlab(&["init", "--refresh"]));
    let current = lab.record("c.qcow2")["current"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(current, "c.qcow2", "refresh moved `current`");

    let out = ok(&lab.lvlab(&["apply", "--auto-approve"]));
    assert!(out.contains("Apply complete!"), "{out}");
    // The boot disk is the image's size: 65 MiB is the refreshed file.
    let disk = lab.dir.path().join("vms/lab/m0/disk0.qcow2");
    assert_eq!(lvlab::storage::virtual_size(&disk).unwrap(), 65 << 20);
}

#[test]
fn clean_is_a_dry_run_by_default_and_spares_foreign_files() {
    let lab = Lab::new();
    let a = image_bytes(40, 1000);
    let b = image_bytes(41, 1000);
    let both = format!(
        "{}{}",
        publish_plain(&lab, "a", "a.qcow2", &a),
        publish_plain(&lab, "b", "b.qcow2", &b)
    );
    lab.write_manifest(&["a", "b"], &both, "test:///default");
    ok(&lab.lvlab(&["init"]));
    std::fs::write(lab.cache().join("notes.txt"), "mine").unwrap();
    std::fs::write(lab.cache().join("x.qcow2.rejected"), "bad").unwrap();
    // The manifest drops image b.
    lab.write_manifest(
        &["a"],
        &publish_plain(&lab, "a", "a.qcow2", &a),
        "test:///default",
    );
    let dry = ok(&lab.lvlab(&["images", "clean"]));
    assert!(
        dry.contains("would remove") && dry.contains("b.qcow2"),
        "{dry}"
    );
    assert!(lab.cache().join("b.qcow2").exists());
    let done = ok(&lab.lvlab(&["images", "clean", "--force"]));
    assert!(done.contains("removed"), "{done}");
    assert!(!lab.cache().join("b.qcow2").exists());
    assert!(!lab.cache().join("b.qcow2.lvlab.json").exists());
    assert!(!lab.cache().join("x.qcow2.rejected").exists());
    assert!(lab.cache().join("notes.txt").exists(), "not lvlab's file");
    assert!(lab.cache().join("a.qcow2").exists());
    assert!(lab.cache().join("a.qcow2.lvlab.json").exists());
}

#[test]
fn without_a_manifest_init_offers_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        )
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .arg("init")
        .output()
        .unwrap();
    let err = failed(&out);
    for key in ["debian13", "ubuntu24.04", "fedora44", "almalinux10"] {
        assert!(err.contains(key), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env(
            "LVLAB_STATE_DIR",
            std::env::temp_dir().join(format!("lvlab-test-state-{}", std::process::id())),
        )
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .args(["init", "nonesuch"])
        .output()
        .unwrap();
    assert!(failed(&out).contains("no image `nonesuch` in the built-in catalog"));
}

#[test]
fn backing_chains_are_read_from_qcow2_headers() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let status = Command::new("qemu-img")
            .current_dir(dir.path())
            .args(args)
            .status()
            .unwrap();
        assert!(status.success());
    };
    run(&["create", "-q", "-f", "qcow2", "base.qcow2", "16M"]);
    // A relative backing name, as qemu-img writes it, resolves beside the overlay.
    run(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        "base.qcow2",
        "mid.qcow2",
    ]);
    run(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        "mid.qcow2",
        "top.qcow2",
    ]);
    let chain = lvlab::observe::disks::backing_chain(&dir.path().join("top.qcow2"));
    let names: Vec<String> = chain
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["top.qcow2", "mid.qcow2", "base.qcow2"]);
}

#[test]
fn init_puts_an_image_no_machine_uses_in_the_environments_default_cache() {
    let lab = Lab::new();
    let used = image_bytes(70, 1000);
    let spare = image_bytes(71, 1000);
    let entries = format!(
        "{}{}",
        publish_plain(&lab, "used", "used.qcow2", &used),
        publish_plain(&lab, "spare", "spare.qcow2", &spare)
    );
    let own = lab.dir.path().join("own");
    // The one machine keeps its image elsewhere than config_defaults says.
    lab.manifest_on("test:///default")
        .machine("m0", |m| m.os("used").cloud_image_basedir(&own))
        .images_yaml(&entries)
        .write(lab.dir.path());
    let out = ok(&lab.lvlab(&["init"]));
    assert_eq!(
        std::fs::read(own.join("cloud-images/used.qcow2")).unwrap(),
        used
    );
    let placed = lab.cache().join("spare.qcow2");
    assert_eq!(std::fs::read(&placed).unwrap(), spare, "{out}");
    assert!(out.contains(&placed.display().to_string()), "{out}");
    assert!(!own.join("cloud-images/spare.qcow2").exists());
}

/// `init` plans through the plan's checks: a local image that is not there
/// is refused before any job runs, with the message `plan` gives.
#[test]
fn init_refuses_a_local_image_url_that_does_not_exist_as_plan_does() {
    let lab = Lab::new();
    let missing = lab.dir.path().join("source/tiny.qcow2");
    let entry = image_yaml("tiny", &[("image_url", missing.display().to_string())]);
    lab.write_manifest(&["tiny"], &entry, "test:///default");
    let err = failed(&lab.lvlab(&["init"]));
    let message = format!(
        "image tiny: {}, its image_url, does not exist",
        missing.display()
    );
    assert!(err.contains(&message), "{err}");
    assert!(!lab.cache().exists(), "no job ran: {err}");
    let plan = failed(&lab.lvlab(&["plan"]));
    assert!(plan.contains(&message), "{plan}");
}
