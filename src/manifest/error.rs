//! Manifest errors: each problem names the key path, where it is in the file,
//! what is wrong and how to fix it. Rendered once by the CLI, with the source
//! line and a caret under the culprit.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use super::source::{KeyPath, Location, SourceMap, Target};

/// One thing wrong with the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: KeyPath,
    pub target: Target,
    pub message: String,
    /// Short text under the caret, e.g. "did you mean `memory`?".
    pub label: Option<String>,
    pub hint: Option<String>,
    /// The source line is not shown (it holds a secret, e.g. a private
    /// key); the report gives only its place.
    pub conceal_source: bool,
}

impl Problem {
    /// A problem with the value at `path`.
    pub fn value(path: KeyPath, message: impl Into<String>) -> Self {
        Self {
            path,
            target: Target::Value,
            message: message.into(),
            label: None,
            hint: None,
            conceal_source: false,
        }
    }

    /// A problem with the key at `path` itself (unknown, misplaced).
    pub fn key(path: KeyPath, message: impl Into<String>) -> Self {
        Self {
            target: Target::Key,
            ..Self::value(path, message)
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Report the place but never the source text there.
    pub fn conceal_source(mut self) -> Self {
        self.conceal_source = true;
        self
    }
}

/// Everything wrong with a manifest and the settings files merged with it,
/// ready to render. Each problem is placed in the file it came from.
#[derive(Debug)]
pub struct ManifestError {
    located: Vec<Located>,
}

#[derive(Debug)]
struct Located {
    file: PathBuf,
    text: Arc<str>,
    problem: Problem,
    location: Option<Location>,
}

impl ManifestError {
    /// Problems found in `text`, placed with `map`, in file order. A
    /// problem found twice (a default's, through each machine) shows once.
    pub fn new(file: &Path, text: &str, map: &SourceMap, problems: Vec<Problem>) -> Self {
        let text: Arc<str> = Arc::from(text);
        let mut located: Vec<Located> = Vec::new();
        for problem in problems {
            if located.iter().any(|seen| seen.problem == problem) {
                continue;
            }
            located.push(Located {
                location: map.locate(&problem.path, problem.target),
                file: file.to_path_buf(),
                text: Arc::clone(&text),
                problem,
            });
        }
        located.sort_by_key(|l| l.location.map(|loc| (loc.line, loc.column)));
        Self { located }
    }

    /// A problem at a known place (a YAML syntax error has no key path).
    pub fn at(file: &Path, text: &str, problem: Problem, location: Option<Location>) -> Self {
        Self {
            located: vec![Located {
                file: file.to_path_buf(),
                text: Arc::from(text),
                problem,
                location,
            }],
        }
    }

    /// The file itself could not be read.
    pub fn unreadable(file: &Path, problem: Problem) -> Self {
        Self::at(file, "", problem, None)
    }

    /// One error holding the problems of all `errors`, in order; `None`
    /// when there are none.
    pub fn join(errors: impl IntoIterator<Item = ManifestError>) -> Option<Self> {
        let located: Vec<Located> = errors.into_iter().flat_map(|e| e.located).collect();
        (!located.is_empty()).then_some(Self { located })
    }

    /// The report as a person reads it, colored or plain.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut out = String::new();
        for located in &self.located {
            out.push_str(&render_one(&renderer, located));
            out.push('\n');
        }
        if self.located.len() > 1 {
            out.push_str(&format!(
                "{} problems in {}\n",
                self.located.len(),
                self.files().join(" and ")
            ));
        }
        out
    }

    /// The files the problems are in, each once, in order.
    fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = Vec::new();
        for located in &self.located {
            let file = located.file.display().to_string();
            if !files.contains(&file) {
                files.push(file);
            }
        }
        files
    }
}

fn render_one(renderer: &Renderer, located: &Located) -> String {
    let Located {
        file,
        text,
        problem,
        location: at,
    } = located;
    let path = file.display().to_string();
    let title = Level::ERROR.primary_title(problem.message.as_str());
    let head = match *at {
        Some(loc) if problem.conceal_source => title.element(Level::NOTE.message(format!(
            "at {path}:{}:{} (the text there is not shown)",
            loc.line, loc.column
        ))),
        Some(loc) => {
            let label = problem.label.as_deref().unwrap_or("");
            title.element(
                Snippet::source(&**text)
                    .path(path.as_str())
                    .line_start(1)
                    .annotation(
                        AnnotationKind::Primary
                            .span(loc.bytes.0..loc.bytes.1.max(loc.bytes.0 + 1))
                            .label(label),
                    ),
            )
        }
        None => title.element(Level::NOTE.message(format!("in {path}"))),
    };
    let mut report = vec![head];
    if !problem.path.is_root() {
        report.push(Group::with_title(
            Level::NOTE.secondary_title(format!("key: {}", problem.path)),
        ));
    }
    if let Some(hint) = &problem.hint {
        report.push(Group::with_title(
            Level::HELP.secondary_title(hint.as_str()),
        ));
    }
    renderer.render(&report)
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for Located {
            file,
            problem,
            location,
            ..
        } in &self.located
        {
            match location {
                Some(loc) => write!(f, "{}:{}:{}: ", file.display(), loc.line, loc.column)?,
                None => write!(f, "{}: ", file.display())?,
            }
            writeln!(f, "{} (at {})", problem.message, problem.path)?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// The known name closest to `unknown`, when it is close enough to be a typo.
pub fn did_you_mean<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let known = ["vm_name", "memory", "cpu", "disks"];
        assert_eq!(did_you_mean("memroy", &known), Some("memory"));
        assert_eq!(did_you_mean("vmname", &known), Some("vm_name"));
        assert_eq!(did_you_mean("bananas", &known), None);
    }

    #[test]
    fn renders_file_line_column_path_caret_and_hint() {
        let text = "images:\n  x:\n    image_url: http://a/\n";
        let map = SourceMap::build(text);
        let path = KeyPath::root().key("images").key("x").key("image_url");
        let problem = Problem::value(path, "bad URL")
            .label("ends in `/`")
            .hint("name the file");
        let err = ManifestError::new(Path::new("Lvlab.yml"), text, &map, vec![problem]);
        let out = err.render(false);
        assert!(out.contains("error: bad URL"), "{out}");
        assert!(out.contains("Lvlab.yml:3:16"), "{out}");
        assert!(out.contains("^^^^^^^^^ ends in `/`"), "{out}");
        assert!(out.contains("key: images.x.image_url"), "{out}");
        assert!(out.contains("help: name the file"), "{out}");
    }

    #[test]
    fn a_concealed_problem_gives_the_place_but_not_the_text() {
        let text = "cloud_init:\n  pubkey: \"secret-text\"\n";
        let map = SourceMap::build(text);
        let path = KeyPath::root().key("cloud_init").key("pubkey");
        let problem = Problem::value(path, "a private key").conceal_source();
        let err = ManifestError::new(Path::new("Lvlab.yml"), text, &map, vec![problem]);
        let out = err.render(false);
        assert!(out.contains("at Lvlab.yml:2:11"), "{out}");
        assert!(!out.contains("secret-text"), "{out}");
        assert!(!err.to_string().contains("secret-text"), "{err}");
    }
}
