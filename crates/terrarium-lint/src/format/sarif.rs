//! SARIF 2.1.0 output, as GitHub code scanning reads it.

use serde_json::{Value, json};

use super::path_string;
use crate::Outcome;
use crate::finding::Severity;
use crate::rules;

/// A SARIF artifact URI: relative paths stay relative (GitHub resolves them against the
/// repository root); absolute paths become `file://` URIs.
fn artifact_uri(path: &std::path::Path) -> String {
    let text = path_string(path);
    let encoded: String = text
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '%' => "%25".to_string(),
            '#' => "%23".to_string(),
            '?' => "%3F".to_string(),
            c => c.to_string(),
        })
        .collect();
    if path.is_absolute() {
        format!("file://{encoded}")
    } else {
        encoded
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

pub(super) fn render(outcome: &Outcome) -> String {
    let all = rules::all();
    let descriptors: Vec<Value> = all
        .iter()
        .map(|r| {
            let lesson = r.lesson.map(|l| format!("{l}: {}", l.title()));
            let mut tags = vec!["dockerfile".to_string()];
            if let Some(l) = r.lesson {
                tags.push(l.to_string());
            }
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.rationale },
                "help": {
                    "text": format!("{}\n\nBad:\n{}\n\nGood:\n{}\n\nFix: {}", lesson.unwrap_or_default(), r.bad, r.good, r.fix),
                },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": { "tags": tags },
            })
        })
        .collect();
    let results: Vec<Value> = outcome
        .findings
        .iter()
        .map(|f| {
            let index = all.iter().position(|r| r.id == f.rule).unwrap_or(0);
            let mut properties = json!({ "fix": f.fix });
            if let Some(l) = f.lesson {
                properties["lesson"] = json!(l.to_string());
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": artifact_uri(&f.file) },
                        "region": {
                            "startLine": f.location.line,
                            "startColumn": f.location.column,
                            "endLine": f.location.end_line,
                            "endColumn": f.location.end_column,
                        },
                    },
                }],
                "properties": properties,
            })
        })
        .collect();
    let report = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "terrarium",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://example.invalid/terrarium",
                    "rules": descriptors,
                },
            },
            "columnKind": "unicodeCodePoints",
            "artifacts": outcome.files.iter().map(|f| json!({ "location": { "uri": artifact_uri(&f.path) } })).collect::<Vec<_>>(),
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_uris() {
        assert_eq!(
            artifact_uri(std::path::Path::new("app/Dockerfile")),
            "app/Dockerfile"
        );
        assert_eq!(
            artifact_uri(std::path::Path::new("/srv/my app/Dockerfile")),
            "file:///srv/my%20app/Dockerfile"
        );
    }
}
