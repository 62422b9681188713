//! Human output: `file:line:col: severity[rule] Lxx message`, a code frame and the fix.

use std::fmt::Write;

use crate::Outcome;
use crate::finding::{Finding, Severity};
use crate::span::LineIndex;

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(&self, s: Severity) -> String {
        let code = match s {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        self.paint(code, s.as_str())
    }
}

pub(super) fn render(outcome: &Outcome, color: bool) -> String {
    let style = Style { on: color };
    let mut out = String::new();
    for finding in &outcome.findings {
        frame(&mut out, outcome, finding, &style);
    }
    let count = |s| outcome.findings.iter().filter(|f| f.severity == s).count();
    let files = outcome.files.len();
    let _ = writeln!(
        out,
        "{} finding{} ({} error, {} warning, {} info) in {files} file{}",
        outcome.findings.len(),
        if outcome.findings.len() == 1 { "" } else { "s" },
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
        if files == 1 { "" } else { "s" },
    );
    out
}

fn frame(out: &mut String, outcome: &Outcome, f: &Finding, style: &Style) {
    let lesson = f.lesson.map(|l| format!(" {l}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{}:{}:{}: {}{} {}",
        f.file.display(),
        f.location.line,
        f.location.column,
        style.severity(f.severity),
        style.paint("1", &format!("[{}]{lesson}", f.rule)),
        f.message,
    );
    if let Some(file) = outcome.files.iter().find(|lf| lf.path == f.file) {
        let index = LineIndex::new(&file.source);
        let line = index.line_text(&file.source, f.location.line);
        if !line.is_empty() {
            let number = f.location.line.to_string();
            let pad = " ".repeat(number.len());
            let width = if f.location.end_line == f.location.line {
                f.location
                    .end_column
                    .saturating_sub(f.location.column)
                    .max(1)
            } else {
                line.chars()
                    .count()
                    .saturating_sub(f.location.column - 1)
                    .max(1)
            };
            let lead: String = line
                .chars()
                .take(f.location.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, " {pad} |");
            let _ = writeln!(out, " {number} | {line}");
            let _ = writeln!(
                out,
                " {pad} | {lead}{}",
                style.paint("1;31", &"^".repeat(width))
            );
        }
    }
    let _ = writeln!(out, "   = fix: {}\n", f.fix);
}
