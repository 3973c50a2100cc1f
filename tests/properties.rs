//! Property tests (proptest) for the parsers of text lvlab does not write
//! itself and for the YAML it writes: the manifest loader, the checksum
//! file parser and the cloud-init YAML emitter. The default case count
//! keeps the fast tier quick; `scripts/soak.sh` runs the same properties
//! with many more cases (`PROPTEST_CASES`).

use std::path::Path;

use lvlab::cloudinit::yaml::{block_document, quote, yaml_filter};
use lvlab::desired::ChecksumAlgorithm;
use lvlab::escape::escape_controls;
use lvlab::images::checksums::{self, ChecksumEntry};
use proptest::prelude::*;
use serde_yaml::{Mapping, Value};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const FAST_CASES: u32 = 64;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FAST_CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The README's case count, counted as proptest runs it: 64 per property in
/// the fast tier, `PROPTEST_CASES` when set (as `scripts/soak.sh` does).
#[test]
fn a_property_runs_64_cases_unless_proptest_cases_says_otherwise() {
    let expected = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let ran = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&any::<u8>(), |_| {
            ran.set(ran.get() + 1);
            Ok(())
        })
        .unwrap();
    assert_eq!(ran.get(), expected);
}

// ---- manifest loader ----------------------------------------------------

/// Pieces of manifests, including the ones that confuse parsers: anchors,
/// merges, tags, flow collections, block scalars, odd indentation.
const FRAGMENTS: &[&str] = &[
    "environment:",
    "images:",
    "machines:",
    "- name: lab",
    "- vm_name: a",
    "name:",
    "vm_name:",
    "libvirt_uri: test:///default",
    "config_defaults:",
    "memory: 512",
    "cpu: 2",
    "os:",
    "image_url:",
    "checksum_url:",
    "interfaces:",
    "network: default",
    "ip: 10.0.0.5/24",
    "cloud_init:",
    "pubkey:",
    "user_data:",
    "runcmd:",
    "x-base: &b",
    "<<: *b",
    "*b",
    "&a",
    "!!str",
    "!tag",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "- ",
    "? ",
    "|",
    ">-",
    "#",
    "'",
    "\"",
    "~",
    "null",
    "yes",
    "0x1f",
    "1e3",
    "-1",
    "2001-12-14",
    "---",
    "...",
    "%YAML 1.2",
    "\t",
    "\u{1b}",
    "\u{feff}",
    "é",
    "\\",
];

fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
        2 => (0usize..8).prop_map(|n| format!("\n{}", " ".repeat(n))),
        1 => Just(" ".to_string()),
        1 => "[a-z0-9_.-]{1,8}",
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.join(" "))
}

/// A YAML value tree, `depth` levels at most, with strings that hold
/// brackets, quotes, `#` and line breaks (serde_yaml writes those as
/// quoted or block scalars).
fn value_tree(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        "[ -~\n]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 64, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            proptest::collection::vec(("[a-z_]{1,6}", inner), 0..4).prop_map(|pairs| {
                Value::Mapping(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (Value::String(k), v))
                        .collect::<Mapping>(),
                )
            }),
        ]
    })
}

fn manifest_path() -> &'static Path {
    Path::new("/nonexistent/lab/Lvlab.yml")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_loader_never_panics_on_any_text(text in any::<String>()) {
        let _ = lvlab::manifest::load_str(&text, manifest_path());
    }

    #[test]
    fn the_loader_never_panics_on_yaml_like_text(text in yamlish()) {
        let _ = lvlab::manifest::load_str(&text, manifest_path());
    }

    /// Any YAML serde_yaml writes, nested up to 24 levels, is never taken
    /// for too deep: the depth check counts less than the truth, never more.
    #[test]
    fn the_depth_check_never_rejects_what_serde_yaml_writes(tree in value_tree(24)) {
        let document = Value::Mapping(
            [(Value::String("environment".into()), tree)].into_iter().collect(),
        );
        let text = serde_yaml::to_string(&document).unwrap();
        if let Err(err) = lvlab::manifest::load_str(&text, manifest_path()) {
            prop_assert!(!err.to_string().contains("levels deep"), "{}\n{}", text, err);
        }
    }
}

// ---- checksum files -----------------------------------------------------

/// A file name as checksum files list them: anything on one line that a
/// GNU line keeps as it is (no leading backslash escape form).
fn file_name() -> impl Strategy<Value = String> {
    "[^\n\r]{1,40}"
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("[0-9a-fA-F]{64}").unwrap(),
        proptest::string::string_regex("[0-9a-fA-F]{128}").unwrap(),
    ]
}

/// One line in one of the styles the parser reads, and the entry it means.
fn checksum_line() -> impl Strategy<Value = (String, ChecksumEntry)> {
    let tag = proptest::sample::select(&["SHA256", "SHA512", "SHA2-256", "SHA-512"][..]);
    (0u8..4, tag, file_name(), digest()).prop_map(|(style, tag, file, digest)| {
        let (line, tag) = match style {
            0 => (format!("{digest}  {file}"), None),
            1 => (format!("{digest} *{file}"), None),
            2 => (format!("{tag} ({file}) = {digest}"), Some(tag.to_string())),
            _ => (format!("{tag}({file})= {digest}"), Some(tag.to_string())),
        };
        let entry = ChecksumEntry {
            tag,
            file,
            digest: digest.to_ascii_lowercase(),
        };
        (line, entry)
    })
}

/// Lines the parser skips between checksum lines.
fn filler() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_string()),
        "# [^\n]{0,30}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_checksum_parser_never_panics(text in any::<String>(), name in any::<String>()) {
        let _ = checksums::parse(&text);
        let _ = checksums::find(&text, &name, ChecksumAlgorithm::Sha256);
        let _ = checksums::find(&text, &name, ChecksumAlgorithm::Sha512);
    }

    #[test]
    fn generated_checksum_files_parse_back(
        lines in proptest::collection::vec((filler(), checksum_line()), 0..12),
        crlf in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        let mut expected = Vec::new();
        for (filler, (line, entry)) in lines {
            text.push_str(&filler);
            text.push_str(end);
            text.push_str(&line);
            text.push_str(end);
            expected.push(entry);
        }
        prop_assert_eq!(checksums::parse(&text), expected, "{:?}", text);
    }
}

// ---- cloud-init YAML emitter ----------------------------------------------

/// Values the emitter writes and YAML reads back exactly: strings of any
/// characters, integers, finite floats, booleans, null, and nested maps
/// and sequences with any string keys.
fn emitted_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::Number(f.into())),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Sequence),
            proptest::collection::vec((any::<String>(), inner), 0..5).prop_map(|pairs| {
                Value::Mapping(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (Value::String(k), v))
                        .collect::<Mapping>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_string_quoted_reads_back_unchanged(text in any::<String>()) {
        let back: Value = serde_yaml::from_str(&quote(&text)).unwrap();
        prop_assert_eq!(back, Value::String(text));
    }

    #[test]
    fn the_yaml_filter_reads_back_unchanged(items in proptest::collection::vec(any::<String>(), 0..6)) {
        let value = minijinja::Value::from(items.clone());
        let text = yaml_filter(&value).unwrap().to_string();
        let back: Vec<String> = serde_yaml::from_str(&text).unwrap();
        prop_assert_eq!(back, items);
    }

    #[test]
    fn block_documents_read_back_unchanged(tree in emitted_tree()) {
        let text = block_document(&tree).unwrap();
        let back: Value = serde_yaml::from_str(&text)
            .map_err(|err| TestCaseError::fail(format!("{err}\n{text}")))?;
        prop_assert_eq!(back, tree, "{}", text);
    }
}

// ---- escaping text from outside -------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// No control character survives, and text without any (or any
    /// bidirectional override) is untouched.
    #[test]
    fn escaped_text_holds_no_control_characters(text in any::<String>()) {
        let escaped = escape_controls(&text);
        prop_assert!(!escaped.chars().any(char::is_control), "{:?}", escaped);
        let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if !text.chars().any(|c| c.is_control() || bidi(c)) {
            prop_assert_eq!(escaped.as_ref(), text.as_str());
        }
    }
}
