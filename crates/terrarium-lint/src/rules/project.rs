//! Checks across files of one project: a dev Dockerfile that repeats the production
//! Dockerfile's build steps instead of sharing a base (L07).

use std::path::Path;

use super::{Emitter, RawFinding, Rule};
use crate::dockerfile::{Dockerfile, Kind};
use crate::finding::{LessonId, Severity};
use crate::span::Span;

/// Id of the duplicated-build rule.
pub const DUPLICATED_BUILD: &str = "duplicated-build";

pub(super) const RULES: &[Rule] = &[Rule {
    id: DUPLICATED_BUILD,
    lesson: Some(LessonId::new(7)),
    severity: Severity::Info,
    summary: "Dockerfile.dev repeats build steps of the production Dockerfile",
    rationale: "When dev and prod images install dependencies with copied RUN steps they drift \
                apart. Build both from one Dockerfile with a shared base stage (`FROM base AS \
                dev`, `FROM base AS prod`) or a shared base image.",
    bad: "# Dockerfile and Dockerfile.dev both contain\nRUN apt-get update && apt-get install -y --no-install-recommends libpq5\nRUN pip install --no-cache-dir -r requirements.txt",
    good: "FROM python:3.12-slim AS base\nRUN pip install --no-cache-dir -r requirements.txt\nFROM base AS dev\nFROM base AS prod",
    fix: "share a base stage or base image between the dev and production Dockerfiles",
    dockerfile: None,
    compose: None,
    kubernetes: None,
}];

fn normalized_runs(df: &Dockerfile) -> Vec<(String, Span)> {
    df.instructions
        .iter()
        .filter(|i| i.kind == Kind::Run)
        .map(|i| {
            let mut text = i
                .args_text()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            for doc in &i.heredocs {
                text.push('\n');
                text.push_str(&doc.body.text);
            }
            (text, i.span)
        })
        .filter(|(text, _)| text.len() >= 20)
        .collect()
}

/// Findings for `dev` when at least two of its RUN steps repeat RUN steps of `prod`.
pub fn duplicated_build(dev: &Dockerfile, prod: &Dockerfile, prod_path: &Path) -> Vec<RawFinding> {
    let prod_runs = normalized_runs(prod);
    let repeats: Vec<(Span, usize)> = normalized_runs(dev)
        .into_iter()
        .filter_map(|(text, span)| {
            let (_, prod_span) = prod_runs.iter().find(|(t, _)| *t == text)?;
            let (line, _) = prod.lines.position(&prod.source, prod_span.start);
            Some((span, line))
        })
        .collect();
    let mut out = Vec::new();
    let Some(rule) = super::by_id(DUPLICATED_BUILD) else {
        return out;
    };
    if repeats.len() < 2 {
        return out;
    }
    let locate = |span: Span| dev.lines.locate(&dev.source, span);
    let mut emitter = Emitter::new(rule, &locate, &mut out);
    for (span, line) in repeats {
        emitter.span(
            span,
            format!("this RUN repeats {} line {line}", prod_path.display()),
        );
    }
    out
}
