//! `lvlab capabilities` run as a user runs it: the built binary against
//! libvirt's test driver and against the real QEMU driver, whose answers are
//! checked against what `virsh` says about the same host.

use std::process::{Command, Output};

const SESSION: &str = "qemu:///session";

fn lvlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvlab"))
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("LVLAB_LOG")
        .output()
        .expect("the lvlab binary runs")
}

/// stdout of a run that must have succeeded.
fn stdout_of(args: &[&str]) -> String {
    let output = lvlab(args);
    assert!(
        output.status.success(),
        "lvlab {args:?} failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

fn empty_host_uri() -> String {
    format!("test://{}/state/empty.xml", env!("CARGO_MANIFEST_DIR"))
}

/// What `virsh -c qemu:///session ...` prints. The QEMU tests need libvirt's
/// QEMU driver; without it they fail and say so rather than pass unseen.
fn virsh_session(args: &[&str]) -> Output {
    Command::new("virsh")
        .arg("-c")
        .arg(SESSION)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run virsh ({err}): install libvirt-clients (scripts/setup.sh does)")
        })
}

fn virsh_session_ok(args: &[&str]) -> String {
    let output = virsh_session(args);
    assert!(
        output.status.success(),
        "`virsh -c {SESSION} {}` failed: {}\n\
         libvirt's QEMU driver is needed for this test: run scripts/setup.sh \
         (Debian: libvirt-daemon-driver-qemu, qemu-system-x86)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8(output.stdout).expect("virsh prints UTF-8")
}

/// The value after `label` in `virsh version`, e.g. "QEMU 10.0.2".
fn virsh_version_field(version: &str, label: &str) -> String {
    version
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` in virsh version:\n{version}"))
        .trim()
        .to_string()
}

fn line_starting<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"))
}

#[test]
fn test_driver_default_host() {
    let text = stdout_of(&["capabilities", "--connect", "test:///default"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("libvirt      test:///default (TEST 0.0.2, libvirt "),
        "{text}"
    );
    // libvirt's built-in default test host: 2 NUMA cells of 8 CPUs, 3 GiB
    // in nodeinfo, i686 guests of domain type "test" only.
    assert_eq!(lines[1], "host         i686, 16 CPUs, 3.0 GiB memory");
    assert_eq!(lines[2], "domain types test");
    assert_eq!(lines[3], "acceleration no KVM, no TCG (TEST driver)");
    assert_eq!(lines[4], "max vCPUs    32");
    assert_eq!(lines[5], "machine      unknown");
    assert!(lines[6].starts_with("osinfo       "), "{text}");
    assert_eq!(lines.len(), 7, "{text}");
}

#[test]
fn json_for_the_empty_state_file() {
    let uri = empty_host_uri();
    let text = stdout_of(&["capabilities", "--connect", &uri, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text).expect("stdout is JSON");
    let hosts = json.as_array().expect("a JSON array");
    assert_eq!(hosts.len(), 1);
    let host = &hosts[0];
    assert_eq!(host["uri"], uri.as_str());
    assert_eq!(host["driver"], "TEST");
    // From state/empty.xml: 1 socket x 3 cores x 2 threads, 6 GiB.
    assert_eq!(host["cpus"], 6);
    assert_eq!(host["memory_kib"], 6_291_456);
    assert_eq!(host["domain_types"], serde_json::json!(["test"]));
    assert_eq!(host["kvm"], false);
    assert_eq!(host["domain_type"], "test");
    assert!(host["machine"].is_null(), "{host}");
    assert!(host["uefi"].is_null(), "{host}");
}

#[test]
fn qemu_session_agrees_with_virsh() {
    let version = virsh_session_ok(&["version"]);
    let hypervisor = virsh_version_field(&version, "Running hypervisor:");
    let library = virsh_version_field(&version, "Using library:");
    assert!(hypervisor.starts_with("QEMU "), "{version}");

    let text = stdout_of(&["capabilities", "--connect", SESSION]);
    assert_eq!(
        line_starting(&text, "libvirt "),
        format!("libvirt      {SESSION} ({hypervisor}, {library})")
    );

    // virsh answers a kvm request only where KVM works; elsewhere it errors.
    let kvm = virsh_session(&["domcapabilities", "--virttype", "kvm"]);
    let expected = if kvm.status.success() {
        "acceleration KVM available"
    } else {
        "acceleration TCG only (no KVM): guests run under software emulation"
    };
    assert_eq!(line_starting(&text, "acceleration "), expected);

    let max_vcpus = virsh_session_ok(&["maxvcpus"]);
    assert_eq!(
        line_starting(&text, "max vCPUs "),
        format!("max vCPUs    {}", max_vcpus.trim())
    );
}

#[test]
fn qemu_session_is_the_default_uri() {
    virsh_session_ok(&["uri"]);
    let no_manifest_here = tempfile::tempdir().unwrap();
    let text = stdout_of(&[
        "-C",
        no_manifest_here.path().to_str().unwrap(),
        "capabilities",
    ]);
    assert!(
        text.starts_with(&format!("libvirt      {SESSION} (QEMU ")),
        "{text}"
    );
}

#[test]
fn unreachable_uri_is_an_error_naming_it() {
    let uri = "test:///nonexistent/file.xml";
    let output = lvlab(&["capabilities", "--connect", uri]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot connect to libvirt at {uri}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn without_connect_the_manifests_environments_are_asked_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Lvlab.yml");
    let uri = empty_host_uri();
    std::fs::write(
        &manifest,
        format!(
            "environment:
  - name: one
    libvirt_uri: {uri}
    machines: []
  - name: two
    libvirt_uri: {uri}
    machines: []
  - name: three
    libvirt_uri: test:///default
    machines: []
images: {{}}
"
        ),
    )
    .unwrap();
    let path = manifest.to_str().unwrap();
    let all: serde_json::Value =
        serde_json::from_str(&stdout_of(&["-f", path, "capabilities", "--json"])).unwrap();
    let uris: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, [uri.as_str(), "test:///default"]);
    let one: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "-f",
        path,
        "capabilities",
        "--json",
        "--env",
        "three",
    ]))
    .unwrap();
    assert_eq!(one[0]["uri"], "test:///default");
}
