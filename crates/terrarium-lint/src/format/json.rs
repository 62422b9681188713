//! JSON output; the shape is described by `schema/lint-report.schema.json`.

use serde_json::{Value, json};

use super::path_string;
use crate::Outcome;
use crate::finding::Severity;

pub(super) fn render(outcome: &Outcome) -> String {
    let findings: Vec<Value> = outcome
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule,
                "lesson": f.lesson.map(|l| l.to_string()),
                "severity": f.severity,
                "file": path_string(&f.file),
                "line": f.location.line,
                "column": f.location.column,
                "end_line": f.location.end_line,
                "end_column": f.location.end_column,
                "message": f.message,
                "fix": f.fix,
            })
        })
        .collect();
    let count = |s| outcome.findings.iter().filter(|f| f.severity == s).count();
    let report = json!({
        "tool": "terrarium",
        "version": env!("CARGO_PKG_VERSION"),
        "files": outcome.files.iter().map(|f| path_string(&f.path)).collect::<Vec<_>>(),
        "findings": findings,
        "summary": {
            "error": count(Severity::Error),
            "warning": count(Severity::Warning),
            "info": count(Severity::Info),
        },
    });
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}
