//! Output formats: human text with code frames, JSON, SARIF 2.1.0 and GitHub annotations.

mod github;
mod json;
mod sarif;
mod text;

use std::str::FromStr;

use crate::Outcome;

/// How to print findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: a code frame per finding, colours on a terminal.
    Text,
    /// JSON, see `schema/lint-report.schema.json`.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// GitHub Actions workflow commands (annotations).
    Github,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" | "human" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "sarif" => Ok(Format::Sarif),
            "github" => Ok(Format::Github),
            other => Err(format!(
                "unknown format `{other}` (expected text, json, sarif or github)"
            )),
        }
    }
}

/// Render `outcome` in `format`. `color` applies to text only.
pub fn render(format: Format, outcome: &Outcome, color: bool) -> String {
    match format {
        Format::Text => text::render(outcome, color),
        Format::Json => json::render(outcome),
        Format::Sarif => sarif::render(outcome),
        Format::Github => github::render(outcome),
    }
}

/// A path as a portable string with forward slashes.
fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}
