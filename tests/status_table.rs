//! `lvlab status` fits the terminal: at most min(terminal, 100) columns,
//! machine, state, address and uptime (the environment too when there are
//! several), long names cut with "…"; `-o wide` shows every column uncut;
//! `--json` keeps every field. The width comes from `COLUMNS` or, on a
//! terminal, from the terminal itself (a pty from `script`, sized with
//! `stty`), where states are coloured unless `NO_COLOR` is set. The host
//! is the test driver's `state/partly-deployed.xml`: `web` runs there, its
//! uptime unknown to libvirt.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/tiny_image.rs"]
mod support;
#[path = "support/terminal.rs"]
mod terminal;

use std::path::Path;

use lab_manifest::LabManifest;

const LONG: &str = "a-machine-named-far-too-long-for-any-terminal-column-of-a-table";

/// Environment `lab` (machines `web`, deployed and running, and [`LONG`])
/// and environment `staging` (machine `db`) on the same test host.
fn lab() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::tiny_image(&dir.path().join("cache/cloud-images/tiny.qcow2"), "16M");
    let state = format!("{}/state/partly-deployed.xml", env!("CARGO_MANIFEST_DIR"));
    let uri = format!("test://{state}");
    LabManifest::tiny("lab", &uri, dir.path())
        .lab_id("state-files")
        .defaults(|d| d.memory(256).cpu(1).user_network().no_password())
        .machine("web", |m| m)
        .machine(LONG, |m| m)
        .environment("staging", &uri)
        .machine("db", |m| m)
        .write(dir.path());
    dir
}

/// `lvlab status ARGS` with `COLUMNS=columns`: its stdout.
fn status(dir: &Path, columns: &str, args: &[&str]) -> String {
    let out = run::lvlab(dir)
        .arg("status")
        .args(args)
        .env("COLUMNS", columns)
        .output()
        .unwrap();
    let (stdout, stderr) = run::texts(&out);
    assert!(out.status.success(), "{stderr}");
    stdout
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn status_fits_80_and_100_columns_and_wide_shows_the_rest() {
    let lab = lab();
    let narrow = status(lab.path(), "80", &[]);
    assert!(widest(&narrow) <= 80, "wider than 80:\n{narrow}");
    let lines: Vec<&str> = narrow.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ENVIRONMENT", "MACHINE", "STATE", "ADDRESS", "UPTIME"],
        "{narrow}"
    );
    let web: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(web, ["lab", "web", "running", "-", "-"], "{narrow}");
    assert!(!narrow.contains(LONG), "{narrow}");
    let cut = lines[2].split_whitespace().nth(1).unwrap();
    assert!(
        cut.ends_with('…') && LONG.starts_with(cut.trim_end_matches('…')),
        "{narrow}"
    );
    assert!(
        lines[3].starts_with("staging") && lines[3].contains("undeployed"),
        "{narrow}"
    );

    let hundred = status(lab.path(), "100", &[]);
    assert!(widest(&hundred) <= 100, "wider than 100:\n{hundred}");
    assert!(widest(&hundred) > widest(&narrow), "{hundred}");
    // A wider terminal gets no wider table.
    assert_eq!(status(lab.path(), "200", &[]), hundred);

    let wide = status(lab.path(), "80", &["-o", "wide"]);
    assert!(wide.contains(LONG), "{wide}");
    assert!(widest(&wide) > 80, "{wide}");
    let header = wide.lines().next().unwrap();
    for column in ["DOMAIN", "CPU", "MEMORY", "SSH", "IMAGE"] {
        assert!(header.contains(column), "{wide}");
    }
    assert!(
        wide.contains("web_lab") && wide.contains("tiny (cached)"),
        "{wide}"
    );
}

#[test]
fn status_json_keeps_every_field_whatever_the_width() {
    let lab = lab();
    let json: serde_json::Value =
        serde_json::from_str(&status(lab.path(), "80", &["--json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{json}");
    let keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "environment",
        "machine",
        "domain",
        "host",
        "state",
        "vcpus",
        "memory_mib",
        "addresses",
        "ssh",
        "uptime_seconds",
        "image",
        "image_cached",
        "mount_tags",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(rows[1]["machine"], LONG);
    assert_eq!(rows[0]["uptime_seconds"], serde_json::Value::Null);
    let out = run::lvlab(lab.path())
        .args(["status", "--json", "-o", "wide"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "--json and -o conflict");
}

/// `lvlab status` on a terminal `columns` wide, with `NO_COLOR` as given:
/// what the terminal showed.
fn status_on_terminal(dir: &Path, columns: u16, no_color: bool) -> String {
    let (mut command, lvlab_args) = run::like_lvlab(dir, "sh");
    command.env_remove("COLUMNS").env_remove("NO_COLOR");
    if no_color {
        command.env("NO_COLOR", "1");
    }
    command
        .arg("-c")
        .arg(format!("stty rows 24 cols {columns} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_lvlab"))
        .args(lvlab_args)
        .arg("status");
    let (status, shown) = terminal::on_terminal(&command, None);
    assert!(status.success(), "{shown}");
    shown
}

/// `text` without its colour sequences (`ESC [ ... m`).
fn without_colour(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after.find('m').map_or(after.len(), |m| m + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn on_a_terminal_status_takes_its_width_and_colours_states_unless_no_color() {
    let lab = lab();
    let shown = status_on_terminal(lab.path(), 80, false);
    assert!(shown.contains("\x1b[32mrunning\x1b[0m"), "{shown:?}");
    let plain = without_colour(&shown);
    assert!(widest(&plain) <= 80, "wider than the terminal:\n{plain}");
    assert!(plain.contains('…'), "{plain}");
    let shown = status_on_terminal(lab.path(), 60, true);
    assert!(!shown.contains('\x1b'), "NO_COLOR: {shown:?}");
    assert!(widest(&shown) <= 60, "wider than the terminal:\n{shown}");
}
