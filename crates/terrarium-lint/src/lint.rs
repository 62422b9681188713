//! Linting one file: parse, run the rules for its kind, apply settings and inline ignores.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::finding::Finding;
use crate::rules::{
    self, ComposeContext, DockerfileContext, Emitter, KubernetesContext, PARSE_ERROR, RawFinding,
};
use crate::span::{Location, Span};
use crate::suppress::Suppressions;
use crate::{compose, dockerfile, kubernetes};

/// What kind of file a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// A Dockerfile or Containerfile.
    Dockerfile,
    /// A Compose file.
    Compose,
    /// Kubernetes manifests (YAML with top-level `apiVersion` and `kind`).
    Kubernetes,
}

impl FileKind {
    /// Recognise lintable files by name: `Dockerfile`, `Dockerfile.*`, `*.Dockerfile`,
    /// `Containerfile*`, `compose*.y(a)ml`, `docker-compose*.y(a)ml`.
    pub fn from_name(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_str()?;
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".dockerignore") {
            return None;
        }
        let yaml = lower.ends_with(".yml") || lower.ends_with(".yaml");
        if yaml && (lower.starts_with("compose") || lower.starts_with("docker-compose")) {
            return Some(FileKind::Compose);
        }
        let docker = lower == "dockerfile"
            || lower.starts_with("dockerfile.")
            || lower.ends_with(".dockerfile")
            || lower == "containerfile"
            || lower.starts_with("containerfile.");
        docker.then_some(FileKind::Dockerfile)
    }

    /// A YAML file that is not named like a Compose file but holds Kubernetes manifests.
    pub fn sniff(path: &Path) -> Option<FileKind> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "yml" | "yaml") {
            return None;
        }
        let source = std::fs::read_to_string(path).ok()?;
        kubernetes::looks_like(&source).then_some(FileKind::Kubernetes)
    }

    /// The kind of a file named explicitly by the user: Kubernetes manifests by their content,
    /// other YAML is Compose, anything else is a Dockerfile.
    pub fn for_explicit(path: &Path) -> FileKind {
        FileKind::from_name(path)
            .or_else(|| FileKind::sniff(path))
            .unwrap_or_else(|| {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if matches!(ext, "yml" | "yaml") {
                    FileKind::Compose
                } else {
                    FileKind::Dockerfile
                }
            })
    }
}

/// A file that was linted, kept for output (code frames, SARIF artifacts).
#[derive(Debug, Clone)]
pub struct LintedFile {
    /// The path as given or discovered.
    pub path: PathBuf,
    /// Its text.
    pub source: String,
    /// Dockerfile, Compose or Kubernetes.
    pub kind: FileKind,
}

/// Lint one file's text.
pub fn lint_source(path: &Path, source: &str, kind: FileKind, config: &Config) -> Vec<Finding> {
    let mut raw = Vec::new();
    let parse_rule = rules::by_id(PARSE_ERROR);
    let suppressions = match kind {
        FileKind::Dockerfile => {
            let df = dockerfile::parse(source);
            let locate = |span: Span| df.lines.locate(&df.source, span);
            if let Some(rule) = parse_rule {
                for err in &df.errors {
                    raw.push(RawFinding {
                        rule,
                        location: locate(err.span),
                        severity: rule.severity,
                        message: err.message.clone(),
                        fix: Some(err.fix.clone()),
                    });
                }
            }
            let cx = DockerfileContext::new(&df, path, config);
            for rule in rules::all() {
                if let Some(check) = rule.dockerfile.filter(|_| !config.is_disabled(rule.id)) {
                    check(&cx, &mut Emitter::new(rule, &locate, &mut raw));
                }
            }
            Suppressions::for_dockerfile(&df)
        }
        FileKind::Compose => {
            match compose::parse(source) {
                Ok(file) => {
                    let cx = ComposeContext {
                        file: &file,
                        path,
                        dev_file: rules::is_dev_file(path),
                        config,
                    };
                    let locate = |_: Span| Location::point(1, 1);
                    for rule in rules::all() {
                        if let Some(check) = rule.compose.filter(|_| !config.is_disabled(rule.id)) {
                            check(&cx, &mut Emitter::new(rule, &locate, &mut raw));
                        }
                    }
                }
                Err(err) => raw.extend(yaml_error(&err)),
            }
            Suppressions::for_yaml(source)
        }
        FileKind::Kubernetes => {
            match kubernetes::parse(source) {
                Ok(file) => {
                    let cx = KubernetesContext {
                        file: &file,
                        path,
                        config,
                    };
                    let locate = |_: Span| Location::point(1, 1);
                    for rule in rules::all() {
                        if let Some(check) =
                            rule.kubernetes.filter(|_| !config.is_disabled(rule.id))
                        {
                            check(&cx, &mut Emitter::new(rule, &locate, &mut raw));
                        }
                    }
                }
                Err(err) => raw.extend(yaml_error(&err)),
            }
            Suppressions::for_yaml(source)
        }
    };
    raw.extend(invalid_ignores(&suppressions));
    finish(path, raw, &suppressions, config)
}

/// A YAML file that can't be parsed, as a `parse-error` finding.
fn yaml_error(err: &compose::ComposeError) -> Option<RawFinding> {
    rules::by_id(PARSE_ERROR).map(|rule| RawFinding {
        rule,
        location: err.at,
        severity: rule.severity,
        message: err.message.clone(),
        fix: Some(err.fix.clone()),
    })
}

/// Findings for ignore comments that name rules that do not exist.
fn invalid_ignores(suppressions: &Suppressions) -> Vec<RawFinding> {
    let Some(rule) = rules::by_id(rules::INVALID_IGNORE) else {
        return Vec::new();
    };
    suppressions
        .mentions
        .iter()
        .filter(|(id, _)| id != "all" && rules::by_id(id).is_none())
        .map(|(id, line)| {
            let hint = rules::closest(id)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            RawFinding {
                rule,
                location: Location::point(*line, 1),
                severity: rule.severity,
                message: format!("`{id}` is not a rule id{hint}"),
                fix: None,
            }
        })
        .collect()
}

/// Apply settings and inline ignores to raw findings and sort them.
pub(crate) fn finish(
    path: &Path,
    raw: Vec<RawFinding>,
    suppressions: &Suppressions,
    config: &Config,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = raw
        .into_iter()
        .filter(|r| !config.is_disabled(r.rule.id))
        .filter(|r| !suppressions.covers(r.rule.id, r.location.line))
        .map(|r| Finding {
            rule: r.rule.id,
            lesson: r.rule.lesson,
            severity: config
                .severity
                .get(r.rule.id)
                .copied()
                .unwrap_or(r.severity),
            file: path.to_path_buf(),
            location: r.location,
            message: r.message,
            fix: r.fix.unwrap_or_else(|| r.rule.fix.to_string()),
        })
        .collect();
    findings.sort_by(|a, b| (a.location, a.rule).cmp(&(b.location, b.rule)));
    findings.dedup();
    findings
}

/// Cross-file checks over the linted files: a dev Dockerfile next to a production one.
pub fn lint_project(files: &[LintedFile], config: &Config) -> Vec<Finding> {
    let dockerfiles: Vec<&LintedFile> = files
        .iter()
        .filter(|f| f.kind == FileKind::Dockerfile)
        .collect();
    let mut findings = Vec::new();
    for dev in dockerfiles.iter().filter(|f| rules::is_dev_path(&f.path)) {
        let siblings = dockerfiles
            .iter()
            .filter(|f| f.path.parent() == dev.path.parent() && !rules::is_dev_path(&f.path));
        let Some(prod) = siblings.min_by_key(|f| {
            (
                f.path.file_name().is_none_or(|n| n != "Dockerfile"),
                f.path.clone(),
            )
        }) else {
            continue;
        };
        let dev_tree = dockerfile::parse(&dev.source);
        let prod_tree = dockerfile::parse(&prod.source);
        let raw = rules::project::duplicated_build(&dev_tree, &prod_tree, &prod.path);
        findings.extend(finish(
            &dev.path,
            raw,
            &Suppressions::for_dockerfile(&dev_tree),
            config,
        ));
    }
    findings
}

/// A finding for a file that is not UTF-8 text.
pub fn not_text(path: &Path) -> Finding {
    Finding {
        rule: PARSE_ERROR,
        lesson: None,
        severity: crate::finding::Severity::Error,
        file: path.to_path_buf(),
        location: Location::point(1, 1),
        message: "the file is not UTF-8 text".to_string(),
        fix: "save the file as UTF-8".to_string(),
    }
}
