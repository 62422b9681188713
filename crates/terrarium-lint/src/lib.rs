//! terrarium lint: Dockerfile, Compose and Kubernetes manifest parsers, rules that enforce the lessons in
//! `LESSONS.md` (plus the Dockerfile basics), inline ignores, configuration and formatters.
//!
//! The pipeline: discover files → parse (never fails: syntax problems become findings) →
//! rules → settings and ignores → findings → text, JSON, SARIF or GitHub output.

#![warn(missing_docs)]

pub mod compose;
pub mod config;
pub mod discover;
pub mod dockerfile;
pub mod error;
pub mod finding;
pub mod format;
pub mod kubernetes;
pub mod lint;
pub mod rules;
pub mod shell;
pub mod span;
pub mod suppress;

use std::path::PathBuf;

pub use config::Config;
pub use error::LintError;
pub use finding::{Finding, LessonId, Severity};
pub use format::{Format, render};
pub use lint::{FileKind, LintedFile, lint_source};
pub use rules::Rule;
pub use span::{Location, Span};

/// The result of linting a set of paths.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The files linted, in order.
    pub files: Vec<LintedFile>,
    /// Every finding, grouped by file in file order.
    pub findings: Vec<Finding>,
    /// Files that could not be read (exit code 2).
    pub errors: Vec<LintError>,
}

impl Outcome {
    /// Whether any finding is at or above `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= threshold)
    }
}

/// Lint files and directories. A missing path is an error; unreadable files are collected in
/// `Outcome::errors` and the other files are still linted.
pub fn lint_paths(paths: &[PathBuf], config: &Config) -> Result<Outcome, LintError> {
    let mut outcome = Outcome::default();
    for (path, kind) in discover::discover(paths)? {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(source) => {
                outcome.errors.push(LintError::Read { path, source });
                continue;
            }
        };
        match String::from_utf8(bytes) {
            Ok(source) => {
                outcome
                    .findings
                    .extend(lint_source(&path, &source, kind, config));
                outcome.files.push(LintedFile { path, source, kind });
            }
            Err(_) => {
                outcome.findings.push(lint::not_text(&path));
                outcome.files.push(LintedFile {
                    path,
                    source: String::new(),
                    kind,
                });
            }
        }
    }
    outcome
        .findings
        .extend(lint::lint_project(&outcome.files, config));
    let index: std::collections::HashMap<&std::path::Path, usize> = outcome
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_path(), i))
        .collect();
    let order = |f: &Finding| index.get(f.file.as_path()).copied().unwrap_or(usize::MAX);
    let mut findings = std::mem::take(&mut outcome.findings);
    findings.sort_by(|a, b| (order(a), a.location, a.rule).cmp(&(order(b), b.location, b.rule)));
    drop(index);
    outcome.findings = findings;
    Ok(outcome)
}
