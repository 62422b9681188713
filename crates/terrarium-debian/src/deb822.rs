//! deb822 control-file stanzas (Release, Packages, a package's `control`).

use std::io::BufRead;

use crate::error::Error;

/// One stanza: fields in file order. Continuation lines are joined with `\n`, keeping their
/// leading space, so the field can be written back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    fields: Vec<(String, String)>,
}

impl Stanza {
    /// The value of `name` (case-insensitive), trimmed of the space after the colon.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// All fields in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether the stanza has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The stanza as deb822 text, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.fields {
            out.push_str(key);
            out.push(':');
            if !value.is_empty() && !value.starts_with('\n') {
                out.push(' ');
            }
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

/// Reads stanzas one at a time from deb822 text, keeping only the fields `keep` accepts (all
/// when `None`) so large indices are parsed in little memory.
pub struct StanzaReader<R> {
    reader: R,
    file: String,
    line_no: usize,
    keep: Option<fn(&str) -> bool>,
    line: String,
}

impl<R: BufRead> StanzaReader<R> {
    /// Read from `reader`; `file` names it in errors.
    pub fn new(reader: R, file: impl Into<String>, keep: Option<fn(&str) -> bool>) -> Self {
        Self {
            reader,
            file: file.into(),
            line_no: 0,
            keep,
            line: String::new(),
        }
    }

    fn parse_error(&self, message: impl Into<String>) -> Error {
        Error::Parse {
            file: self.file.clone(),
            message: format!("line {}: {}", self.line_no, message.into()),
        }
    }

    /// The next stanza, or `None` at the end.
    pub fn next_stanza(&mut self) -> Result<Option<Stanza>, Error> {
        let mut stanza = Stanza::default();
        let mut keeping_last = false;
        let mut in_field = false;
        loop {
            self.line.clear();
            let n = self
                .reader
                .read_line(&mut self.line)
                .map_err(|err| self.parse_error(err.to_string()))?;
            if n == 0 {
                return Ok((!stanza.is_empty()).then_some(stanza));
            }
            self.line_no += 1;
            let line = self.line.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                if stanza.is_empty() {
                    in_field = false;
                    continue;
                }
                return Ok(Some(stanza));
            }
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if !in_field {
                    return Err(self.parse_error("continuation line without a field"));
                }
                if keeping_last && let Some((_, value)) = stanza.fields.last_mut() {
                    value.push('\n');
                    value.push_str(line);
                }
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(self.parse_error(format!("expected `Field: value`, found `{line}`")));
            };
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(self.parse_error(format!("invalid field name `{key}`")));
            }
            in_field = true;
            keeping_last = self.keep.is_none_or(|keep| keep(key));
            if keeping_last {
                stanza
                    .fields
                    .push((key.to_owned(), value.trim_start().to_owned()));
            }
        }
    }
}

/// Parse all stanzas of `text`.
pub fn parse_all(text: &str, file: &str) -> Result<Vec<Stanza>, Error> {
    let mut reader = StanzaReader::new(text.as_bytes(), file, None);
    let mut out = Vec::new();
    while let Some(stanza) = reader.next_stanza()? {
        out.push(stanza);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stanzas_with_continuations() {
        let text =
            "Package: a\nDescription: short\n long line\n .\n more\n\n\nPackage: b\nVersion: 1\n";
        let stanzas = parse_all(text, "Packages").unwrap();
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0].get("package"), Some("a"));
        assert_eq!(
            stanzas[0].get("Description"),
            Some("short\n long line\n .\n more")
        );
        assert_eq!(
            stanzas[0].to_text(),
            text.split("\n\n").next().unwrap().to_owned() + "\n"
        );
        assert_eq!(stanzas[1].get("Version"), Some("1"));
    }

    #[test]
    fn reports_malformed_lines_with_numbers() {
        let err = parse_all("Package: a\nno colon here\n", "Packages").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Packages: line 2: expected `Field: value`, found `no colon here`"
        );
        assert!(parse_all(" leading continuation\n", "x").is_err());
    }
}
