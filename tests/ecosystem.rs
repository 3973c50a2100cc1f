//! lvlab as the shell, man and a packager meet it: the completion scripts
//! loaded in a real bash and zsh (commands from clap, machine and
//! environment names from the manifest through `lvlab __complete`), the man
//! pages rendered by man(1), the examples every command's `--help` ends
//! with (each one a command line clap accepts), and `--version`.

#[path = "support/lab_manifest.rs"]
mod lab_manifest;
#[path = "support/lvlab_run.rs"]
mod lvlab_run;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use lab_manifest::LabManifest;
use lvlab_run::{lvlab, texts};

/// Two environments: `lab` with web and db, `test` with cache.
fn two_environments(dir: &Path) -> PathBuf {
    LabManifest::tiny("lab", "test:///default", dir)
        .machine("web", |m| m)
        .machine("db", |m| m)
        .environment("test", "test:///default")
        .machine("cache", |m| m)
        .write(dir)
}

fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// `lvlab completions SHELL`, written to `dir/SHELL`.
fn completion_script(dir: &Path, shell: &str) -> PathBuf {
    let path = dir.join(shell);
    std::fs::write(&path, stdout_of(lvlab(dir).args(["completions", shell]))).unwrap();
    path
}

/// A shell run in `dir` with the lvlab under test first on PATH, as the
/// completion scripts call `lvlab` by the name typed.
fn shell(program: &str, dir: &Path) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_lvlab")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("PATH", path)
        .env("LVLAB_NO_HOST_CONFIG", "1")
        .env_remove("LVLAB_LOG");
    command
}

#[test]
fn bash_completes_commands_and_the_manifests_names() {
    let dir = tempfile::tempdir().unwrap();
    two_environments(dir.path());
    let script = completion_script(dir.path(), "bash");
    let elsewhere = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Lvlab.yml");
    // complete WORD...: what TAB offers with the cursor after the last WORD.
    let program = r#"
        source "$1"
        complete -p lvlab
        complete_line() {
            COMP_WORDS=("$@")
            COMP_CWORD=$(($# - 1))
            COMPREPLY=()
            _lvlab_names lvlab "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
            echo "[$*] ${COMPREPLY[*]}"
        }
        complete_line lvlab pl
        complete_line lvlab snap
        complete_line lvlab ssh ''
        complete_line lvlab plan w
        complete_line lvlab snapshot create clean ''
        complete_line lvlab plan --env ''
        complete_line lvlab up --env test ''
        cd "$2"
        complete_line lvlab -f "$3" destroy ''
        complete_line lvlab destroy ''
    "#;
    let out = stdout_of(shell("bash", dir.path()).args([
        "-c".as_ref(),
        program.as_ref(),
        "bash".as_ref(),
        script.as_os_str(),
        elsewhere.path().as_os_str(),
        manifest.as_os_str(),
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains(" -F _lvlab_names ") && lines[0].ends_with(" lvlab"),
        "{out}"
    );
    let manifest = manifest.display();
    let expected = [
        "[lvlab pl] plan".to_string(),
        "[lvlab snap] snapshot".into(),
        "[lvlab ssh ] cache db web".into(),
        "[lvlab plan w] web".into(),
        "[lvlab snapshot create clean ] cache db web".into(),
        "[lvlab plan --env ] lab test".into(),
        "[lvlab up --env test ] cache".into(),
        format!("[lvlab -f {manifest} destroy ] cache db web"),
    ];
    for line in &expected {
        assert!(lines.contains(&line.as_str()), "{line}:\n{out}");
    }
    // No manifest here: no names (and no error), but clap's completion.
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("[lvlab destroy ] ") && last.contains("--force") && !last.contains("web"),
        "{out}"
    );
}

#[test]
fn zsh_registers_the_script_and_offers_the_manifests_names() {
    let dir = tempfile::tempdir().unwrap();
    two_environments(dir.path());
    let script = completion_script(dir.path(), "zsh");
    // compadd and clap's function stand in for zsh's completion system,
    // which runs only inside a completion widget of an interactive shell.
    let program = r#"
        autoload -Uz compinit && compinit -u -D
        source "$1"
        print -r -- "registered: $_comps[lvlab]"
        compadd() { [[ $1 == -a ]] && print -r -- "offered: ${(P)2}" }
        _lvlab_clap() { print -r -- "clap's completion" }
        words=(lvlab ssh ''); CURRENT=3; _lvlab
        words=(lvlab plan --env ''); CURRENT=4; _lvlab
        words=(lvlab pl); CURRENT=2; _lvlab
    "#;
    let zsh = shell("zsh", dir.path())
        .args(["-f", "-c", program, "zsh"])
        .arg(&script)
        .output()
        .expect("zsh (scripts/setup.sh installs it)");
    let (out, err) = texts(&zsh);
    assert!(zsh.status.success(), "{out}\n{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "registered: _lvlab",
            "offered: cache db web",
            "offered: lab test",
            "clap's completion"
        ],
        "{err}"
    );
    // The whole script, clap's part included, is valid zsh.
    let check = Command::new("zsh").arg("-n").arg(&script).output().unwrap();
    assert!(check.status.success(), "{}", texts(&check).1);
}

#[test]
fn every_shell_gets_a_script_naming_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = std::fs::read_to_string(completion_script(dir.path(), shell)).unwrap();
        for name in visible_commands(&lvlab::cli::Cli::command()) {
            let leaf = name.rsplit(' ').next().unwrap();
            assert!(script.contains(leaf), "{shell}: no {leaf}");
        }
        // Only the bash and zsh glue calls the helper; no script offers it.
        for line in script.lines().filter(|line| line.contains("__complete")) {
            assert!(
                line.trim_start().starts_with('#') || line.contains("__complete -- "),
                "{shell} offers the helper: {line}"
            );
        }
    }
}

#[test]
fn the_name_helper_is_silent_without_a_manifest_or_with_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    for manifest in [None, Some("environment: [unclosed")] {
        if let Some(text) = manifest {
            std::fs::write(dir.path().join("Lvlab.yml"), text).unwrap();
        }
        let out = lvlab(dir.path())
            .args(["__complete", "--", "ssh", ""])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(texts(&out), (String::new(), String::new()), "{manifest:?}");
    }
}

/// Every command a user can ask `--help` of, as its words after `lvlab`
/// ("" for lvlab itself): clap's subcommands, less the hidden ones and
/// clap's own `help`.
fn visible_commands(command: &clap::Command) -> Vec<String> {
    let mut names = vec![String::new()];
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        for rest in visible_commands(sub) {
            names.push(format!("{} {rest}", sub.get_name()).trim().to_string());
        }
    }
    names
}

/// The examples of a `--help` text: the command lines under its closing
/// "Examples:".
fn examples_of(help: &str) -> Vec<String> {
    let (_, section) = help
        .rsplit_once("\nExamples:\n")
        .unwrap_or_else(|| panic!("no Examples section: {help}"));
    // Nothing after them: each line a command line or what it does.
    assert!(
        section
            .lines()
            .all(|line| line.starts_with("  lvlab") || line.starts_with("      ")),
        "the help does not end with its examples:\n{help}"
    );
    section
        .lines()
        .filter(|line| line.starts_with("  lvlab ") || *line == "  lvlab")
        .map(|line| line.trim().to_string())
        .collect()
}

/// The words of an example's command line up to a shell operator.
fn lvlab_words(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .take_while(|word| !matches!(*word, ">" | ">>" | "|" | "&&" | ";"))
        .collect()
}

/// The subcommands a parsed command line chose, as "snapshot create".
fn subcommand_path(matches: &clap::ArgMatches) -> String {
    let mut path = Vec::new();
    let mut matches = matches;
    while let Some((name, sub)) = matches.subcommand() {
        path.push(name);
        matches = sub;
    }
    path.join(" ")
}

#[test]
fn every_commands_help_ends_with_examples_that_parse() {
    let dir = tempfile::tempdir().unwrap();
    let commands = visible_commands(&lvlab::cli::Cli::command());
    assert!(commands.len() > 20, "{commands:?}");
    for name in commands {
        let help = stdout_of(
            lvlab(dir.path())
                .args(name.split_whitespace())
                .arg("--help"),
        );
        let examples = examples_of(&help);
        assert!(
            (2..=3).contains(&examples.len()),
            "`lvlab {name} --help` has {} examples:\n{help}",
            examples.len()
        );
        for example in &examples {
            let matches = lvlab::cli::Cli::command()
                .try_get_matches_from(lvlab_words(example))
                .unwrap_or_else(|err| {
                    panic!("`{example}` of `lvlab {name} --help` does not parse:\n{err}")
                });
            // lvlab's own examples may show any command, a group's (images,
            // snapshot) those of its subcommands.
            let path = subcommand_path(&matches);
            assert!(
                format!("{path} ").starts_with(format!("{name} ").trim_start()),
                "`{example}` runs `lvlab {path}`, not `lvlab {name}`"
            );
        }
    }
}

fn man_page(dir: &Path, page: &str) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.join(page))
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("MAN_KEEP_FORMATTING")
        .output()
        .expect("man (man-db; scripts/setup.sh installs it)");
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{page}: {stderr}"
    );
    stdout
}

#[test]
fn man_writes_a_page_per_command_that_man_renders_with_its_examples() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let listed = stdout_of(lvlab(dir.path()).arg("man").arg("--dir").arg(&pages));
    let mut expected: Vec<String> = visible_commands(&lvlab::cli::Cli::command())
        .iter()
        .map(|name| format!("{}.1", format!("lvlab {name}").trim().replace(' ', "-")))
        .collect();
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, expected);
    assert_eq!(listed.lines().count(), expected.len(), "{listed}");
    assert!(written.contains(&"lvlab-snapshot-create.1".to_string()));

    let plan = man_page(&pages, "lvlab-plan.1");
    for text in [
        "lvlab-plan - Show what apply would change, and why",
        "--detailed-exitcode",
        "EXAMPLES",
        "lvlab plan --detailed-exitcode --json > plan.json",
        "a CI drift check: exit 2 when the lab differs, the plan as JSON",
    ] {
        assert!(plan.contains(text), "no {text:?} in:\n{plan}");
    }
    for page in &written {
        let text = man_page(&pages, page);
        assert!(text.contains("EXAMPLES"), "{page}:\n{text}");
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= 80, "{page} is {widest} columns wide:\n{text}");
    }
}

/// What `virsh version` says of the libvirt library it uses, as `x.y.z`.
fn virsh_library_version() -> String {
    let out = Command::new("virsh")
        .args(["-c", "test:///default", "version"])
        .output()
        .expect("virsh (libvirt-clients; scripts/setup.sh installs it)");
    let text = texts(&out).0;
    let line = text
        .lines()
        .find(|line| line.starts_with("Using library: libvirt "))
        .unwrap_or_else(|| panic!("{text}"));
    line.trim_start_matches("Using library: libvirt ")
        .trim()
        .to_string()
}

fn git_head() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| texts(&out).0.trim().to_string())
}

#[test]
fn version_names_the_commit_and_the_libvirt_library() {
    let dir = tempfile::tempdir().unwrap();
    let long = stdout_of(lvlab(dir.path()).arg("--version"));
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(
        lines[0],
        concat!("lvlab ", env!("CARGO_PKG_VERSION")),
        "{long}"
    );
    let commit = lines[1]
        .strip_prefix("commit: ")
        .unwrap_or_else(|| panic!("{long}"));
    match git_head() {
        Some(head) => assert_eq!(commit, head),
        None => assert_eq!(commit, "unknown"),
    }
    assert_eq!(lines[2], format!("libvirt: {}", virsh_library_version()));
    assert_eq!(lines.len(), 3, "{long}");
    let short = stdout_of(lvlab(dir.path()).arg("-V"));
    assert_eq!(short.trim(), lines[0]);
}
