//! GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` line per finding.

use std::fmt::Write;

use super::path_string;
use crate::Outcome;
use crate::finding::Severity;

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

pub(super) fn render(outcome: &Outcome) -> String {
    let mut out = String::new();
    for f in &outcome.findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let title = match f.lesson {
            Some(l) => format!("{} ({l})", f.rule),
            None => f.rule.to_string(),
        };
        let _ = writeln!(
            out,
            "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            escape_property(&path_string(&f.file)),
            f.location.line,
            f.location.column,
            f.location.end_line,
            f.location.end_column,
            escape_property(&title),
            escape_data(&format!("{}\nfix: {}", f.message, f.fix)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
        assert_eq!(escape_data("x\ny"), "x%0Ay");
    }
}
