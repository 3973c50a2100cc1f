//! Secrets through the real binary on `qemu:///session` (machines defined,
//! never started: `--target stopped`): a console password is shown the
//! moment its seed is written (on a terminal, given by `script`), never on
//! stdout without one; plans redact password hashes; every seed file is
//! 0600; `destroy` removes the temporary files an interrupted run left, so
//! `plan --target absent` converges.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod run;
#[path = "support/session_lab.rs"]
mod session_lab;
#[path = "support/tiny_image.rs"]
mod support;

use session_lab::SessionLab;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

/// `secret` gets a generated console password, `open` has none.
impl SessionLab {
    fn new(name: &str) -> Self {
        let lab = Self::empty(name);
        lab.cache_tiny_image();
        lab.write_manifest("/bin/bash");
        lab
    }

    fn write_manifest(&self, shell: &str) {
        self.manifest()
            .defaults(|d| d.cloud_init("shell", shell))
            .machine("secret", |m| m.no_interfaces())
            .machine("open", |m| m.no_interfaces().no_password())
            .write(self.dir.path());
    }

    /// `lvlab args` with a terminal on stdin, stdout and stderr: what it
    /// printed, both streams as the terminal shows them.
    fn on_terminal(&self, args: &[&str]) -> (Option<i32>, String) {
        self.on_terminal_but(args, "")
    }

    /// [`SessionLab::on_terminal`] with a shell redirection (`>FILE`, `2>FILE`)
    /// that takes one stream off the terminal.
    fn on_terminal_but(&self, args: &[&str], redirect: &str) -> (Option<i32>, String) {
        let command = std::iter::once(env!("CARGO_BIN_EXE_lvlab").to_string())
            .chain(["-C".into(), self.dir.path().display().to_string()])
            .chain(args.iter().map(|a| a.to_string()))
            .chain(std::iter::once(redirect.to_string()))
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .env("NO_COLOR", "1")
            .env("LVLAB_NO_HOST_CONFIG", "1")
            .output()
            .expect("script (bsdutils) gives the child a terminal");
        let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        (out.status.code(), text)
    }

    fn vm_dir(&self, vm: &str) -> PathBuf {
        self.dir.path().join("vms").join(&self.env).join(vm)
    }

    fn recorded_hash(&self) -> String {
        let user_data = std::fs::read_to_string(self.vm_dir("secret").join("user-data")).unwrap();
        lvlab::cloudinit::password::recorded_hash(&user_data).expect(&user_data)
    }
}

/// The password of a `Console password for VM (user U): PASSWORD ...` line.
fn shown_password(text: &str, vm: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("Console password for {vm} ")))?;
    Some(line.split(": ").nth(1)?.split(' ').next()?.to_string())
}

/// Whether `password` is the one `hash` was made from, by glibc's crypt.
fn matches_hash(password: &str, hash: &str) -> bool {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
        ])
        .args([password, hash])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

#[test]
fn on_a_terminal_the_password_is_shown_as_its_seed_is_written() {
    let lab = SessionLab::new("pwtty");
    let (code, text) = lab.on_terminal(&[
        "apply",
        "--target",
        "stopped",
        "--auto-approve",
        "--parallelism",
        "1",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let password = shown_password(&text, "secret").unwrap_or_else(|| panic!("{text}"));
    assert!(matches_hash(&password, &lab.recorded_hash()), "{text}");
    // Shown as the seed is written, before anything after it runs: an
    // apply that fails or is killed later has shown it already.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    let shown = at("Console password for secret");
    assert!(at(&format!("{}.secret: build seed ISO...", lab.env)) < shown);
    assert!(
        shown < at(&format!("{}.secret: define domain...", lab.env)),
        "{text}"
    );
    assert!(shown < at("Apply complete!"), "{text}");
    assert_eq!(text.matches("Console password for").count(), 1, "{text}");
}

#[test]
fn an_apply_that_fails_has_shown_the_password_before_it_reports_the_failure() {
    let lab = SessionLab::new("pwfail");
    // `open`'s disk cannot be moved into place: a directory holds its name.
    let blocker = lab.vm_dir("open").join("disk0.qcow2");
    std::fs::create_dir_all(&blocker).unwrap();
    std::fs::write(blocker.join("keep"), "x").unwrap();
    let (code, text) = lab.on_terminal(&["apply", "--target", "stopped", "--auto-approve"]);
    assert_eq!(code, Some(1), "{text}");
    let password = shown_password(&text, "secret").unwrap_or_else(|| panic!("{text}"));
    assert!(matches_hash(&password, &lab.recorded_hash()), "{text}");
    let shown = text.find("Console password for secret").unwrap();
    let failure = text
        .find(&format!("error: {}.open: create disk", lab.env))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(shown < failure, "{text}");
    assert_eq!(text.matches("Console password for").count(), 1, "{text}");
    std::fs::remove_dir_all(&blocker).unwrap();
}

#[test]
fn the_password_goes_to_whichever_stream_is_a_terminal() {
    let apply = ["apply", "--target", "stopped", "--auto-approve"];
    for (stream, redirect) in [("stderr", ">"), ("stdout", "2>")] {
        let lab = SessionLab::new(&format!("pw{stream}"));
        let file = lab.dir.path().join("off-terminal.txt");
        let (code, shown) = lab.on_terminal_but(&apply, &format!("{redirect}{}", file.display()));
        // On stderr the line may follow a progress bar's on the screen.
        let shown = shown.replace("Console password for", "\nConsole password for");
        let off = std::fs::read_to_string(&file).unwrap();
        assert_eq!(code, Some(0), "{shown}\n{off}");
        let password = shown_password(&shown, "secret")
            .unwrap_or_else(|| panic!("on the terminal ({stream}): {shown}\n{off}"));
        assert!(matches_hash(&password, &lab.recorded_hash()), "{shown}");
        assert!(
            !off.contains(&password) && !off.contains("Console password"),
            "{stream} alone on the terminal, the other stream has none: {off}"
        );
    }
}

#[test]
fn without_a_terminal_no_password_reaches_stdout_and_seed_files_are_private() {
    let lab = SessionLab::new("pwpipe");
    let out = lab.run(&["apply", "--target", "stopped", "--auto-approve"]);
    let (stdout, stderr) = run::texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("Console password"), "{stdout}");
    assert!(!stderr.contains("Console password"), "{stderr}");
    assert_eq!(
        stderr
            .matches("note: 1 console password was set and not shown")
            .count(),
        1,
        "{stderr}"
    );
    for vm in ["secret", "open"] {
        for name in ["meta-data", "user-data", "network-config", "cidata.iso"] {
            let path = lab.vm_dir(vm).join(name);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }

    // Asked for: on stderr, still never on stdout.
    let lab = SessionLab::new("pwshow");
    let out = lab.run(&[
        "apply",
        "--target",
        "stopped",
        "--auto-approve",
        "--show-passwords",
    ]);
    shown_once_on_stderr(&lab, &out);
}

#[test]
fn up_shows_passwords_on_stderr_when_asked_without_a_terminal() {
    let lab = SessionLab::new("pwup");
    let out = lab.run(&["up", "--all", "--show-passwords"]);
    let stderr = shown_once_on_stderr(&lab, &out);
    assert!(!stderr.contains("set and not shown"), "{stderr}");
}

/// The run succeeded and showed `secret`'s console password (the one its
/// seed's hash is of) on stderr only, and none for `open`; its stderr.
#[track_caller]
fn shown_once_on_stderr(lab: &SessionLab, out: &std::process::Output) -> String {
    let (stdout, stderr) = run::texts(out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let password = shown_password(&stderr, "secret").unwrap_or_else(|| panic!("{stderr}"));
    assert!(matches_hash(&password, &lab.recorded_hash()));
    assert!(!stdout.contains(&password) && !stdout.contains("Console password"));
    assert!(shown_password(&stderr, "open").is_none(), "{stderr}");
    stderr
}

#[test]
fn plans_show_a_seed_change_without_the_password_hash() {
    let lab = SessionLab::new("pwplan");
    let out = lab.run(&["apply", "--target", "stopped", "--auto-approve"]);
    assert!(out.status.success(), "{:?}", run::texts(&out));
    let hash = lab.recorded_hash();
    lab.write_manifest("/bin/sh");

    let out = lab.run(&["plan", "--target", "stopped"]);
    let (text, stderr) = run::texts(&out);
    assert!(out.status.success(), "{text}\n{stderr}");
    assert!(text.contains("-    shell: \"/bin/bash\""), "{text}");
    assert!(text.contains("     passwd: (sensitive)"), "{text}");
    assert!(!text.contains(&hash), "{text}");
    let digest = hash.rsplit('$').next().unwrap();
    assert!(!text.contains(digest), "{text}");

    let out = lab.run(&["plan", "--target", "stopped", "--json"]);
    let (json, stderr) = run::texts(&out);
    assert!(out.status.success(), "{json}\n{stderr}");
    assert!(!json.contains(digest), "{json}");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let secret = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"]["vm_name"] == "secret")
        .unwrap_or_else(|| panic!("{json}"));
    let diff = secret["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["file"] == "user-data")
        .unwrap_or_else(|| panic!("{json}"));
    let lines: Vec<&str> = diff["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(lines.contains(&"     passwd: (sensitive)"), "{lines:#?}");
    assert!(lines.contains(&"+    shell: \"/bin/sh\""), "{lines:#?}");

    let saved = lab.dir.path().join("seed.plan");
    let out = lab.run(&[
        "plan",
        "--target",
        "stopped",
        "--out",
        saved.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", run::texts(&out));
    let saved = std::fs::read_to_string(&saved).unwrap();
    assert!(saved.contains("passwd: (sensitive)"), "{saved}");
    assert!(!saved.contains(digest), "{saved}");
}

#[test]
fn destroy_removes_an_interrupted_runs_temporaries_and_absent_converges() {
    let lab = SessionLab::new("pwtemp");
    let out = lab.run(&["apply", "--target", "stopped", "--auto-approve"]);
    assert!(out.status.success(), "{:?}", run::texts(&out));
    let dir = lab.vm_dir("secret");
    // What a killed `up` leaves: a disk being built, a file being written.
    std::fs::write(dir.join("disk0.qcow2.partial"), "half a disk").unwrap();
    std::fs::write(dir.join("user-data.0123456789abcdef.tmp"), "half").unwrap();

    let out = lab.run(&["destroy", "--force"]);
    let (stdout, stderr) = run::texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !dir.exists(),
        "{:?}",
        std::fs::read_dir(&dir).map(|d| d.count())
    );
    assert!(!lab.dir.path().join("vms").join(&lab.env).exists());
    let plan = lab.run(&["plan", "--target", "absent", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{:?}", run::texts(&plan));
}
