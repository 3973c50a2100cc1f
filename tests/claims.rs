//! docs/claims.md points each promise of the README to what proves it: every
//! test, unit test, real-guest check and bench row it names must exist, so
//! that a rename or a dropped test cannot leave a promise pointing nowhere.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `tests/FILE.rs::name` and `src/FILE.rs::tests::name` references.
fn test_references(claims: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for word in claims.split(|c: char| c.is_whitespace() || c == ',') {
        let Some((file, name)) = word.split_once(".rs::") else {
            continue;
        };
        if !(file.starts_with("tests/") || file.starts_with("src/")) {
            continue;
        }
        let name = name.strip_prefix("tests::").unwrap_or(name);
        found.push((format!("{file}.rs"), name.to_string()));
    }
    found
}

/// The text between `open` and the next `close` after it, each time.
fn quoted<'a>(text: &'a str, open: &str, close: char) -> Vec<&'a str> {
    text.split(open)
        .skip(1)
        .filter_map(|rest| rest.split_once(close).map(|(inside, _)| inside))
        .collect()
}

/// Every source file of the real-guest tier (`tests/e2e_guest/`), and
/// the files of `tests/support/` it includes (`#[path = "../support/.."]`
/// in its main.rs), as one text: its checks live in the module of what
/// they check.
fn e2e_guest_sources() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e_guest");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 1, "{files:?}");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    files.extend(
        quoted(&main, "#[path = \"", '"')
            .into_iter()
            .map(|included| dir.join(included)),
    );
    files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

#[test]
fn every_test_check_and_bench_row_docs_claims_names_exists() {
    let claims = read("docs/claims.md");
    let references = test_references(&claims);
    assert!(references.len() > 150, "{}", references.len());
    let mut missing = Vec::new();
    for (file, name) in &references {
        if !read(file).contains(&format!("fn {name}(")) {
            missing.push(format!("{file}::{name}"));
        }
    }
    let e2e = e2e_guest_sources();
    for check in quoted(&claims, "e2e_guest \"", '"') {
        if !e2e.contains(&format!("\"{check}\"")) {
            missing.push(format!("e2e_guest check \"{check}\""));
        }
    }
    let readme = read("README.md");
    let (_, performance) = claims.split_once("## Performance").unwrap();
    let (performance, _) = performance.split_once("\n## ").unwrap();
    // Rows are in backticks; the README may abbreviate a sibling row as
    // `.sha512` after its first, so a row is found whole or as such a pair.
    let rows: Vec<&str> = performance
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|row| row.contains('.') && !row.contains(' '))
        .collect();
    assert!(rows.len() > 20, "{rows:?}");
    for row in rows {
        let (stem, last) = row.rsplit_once('.').unwrap();
        let whole = readme.contains(&format!("`{row}`"));
        let abbreviated =
            readme.contains(&format!("`{stem}.")) && readme.contains(&format!("`.{last}`"));
        if !whole && !abbreviated {
            missing.push(format!("bench row `{row}`"));
        }
    }
    assert!(
        missing.is_empty(),
        "named in docs/claims.md but missing: {missing:#?}"
    );
}
