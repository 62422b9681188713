//! Positions in source text: byte spans and the 1-based line/column locations shown to users.

use serde::Serialize;

/// A byte range `start..end` in one file's source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (swapped if given in the wrong order).
    pub fn new(start: usize, end: usize) -> Self {
        if start <= end {
            Span { start, end }
        } else {
            Span {
                start: end,
                end: start,
            }
        }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A 1-based line and column range, columns counted in Unicode code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// Line of the first character (1-based).
    pub line: usize,
    /// Column of the first character (1-based).
    pub column: usize,
    /// Line of the last character (1-based).
    pub end_line: usize,
    /// Column just past the last character (1-based, exclusive).
    pub end_column: usize,
}

impl Location {
    /// A location covering a single point.
    pub fn point(line: usize, column: usize) -> Self {
        Location {
            line,
            column,
            end_line: line,
            end_column: column + 1,
        }
    }
}

/// Maps byte offsets of a source text to lines and columns.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index the line starts of `source`.
    pub fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// Number of lines (a trailing newline does not start a new line of its own).
    pub fn line_count(&self) -> usize {
        self.starts.len()
    }

    /// Byte offset where 1-based `line` starts, if it exists.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        line.checked_sub(1)
            .and_then(|i| self.starts.get(i))
            .copied()
    }

    /// 1-based line and column of the byte `offset` in `source`.
    pub fn position(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(source, offset.min(source.len()));
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line.saturating_sub(1)];
        let column = source.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        (line.max(1), column)
    }

    /// The location of `span` in `source`.
    pub fn locate(&self, source: &str, span: Span) -> Location {
        let (line, column) = self.position(source, span.start);
        let (end_line, mut end_column) = self.position(source, span.end);
        if end_line == line && end_column <= column {
            end_column = column + 1;
        }
        Location {
            line,
            column,
            end_line,
            end_column,
        }
    }

    /// The text of 1-based `line` without its line ending.
    pub fn line_text<'s>(&self, source: &'s str, line: usize) -> &'s str {
        let Some(start) = self.line_start(line) else {
            return "";
        };
        let end = self.line_start(line + 1).unwrap_or(source.len());
        source
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns() {
        let src = "FROM a\nRUN é x\n";
        let idx = LineIndex::new(src);
        assert_eq!(idx.position(src, 0), (1, 1));
        assert_eq!(idx.position(src, 7), (2, 1));
        // "x" comes after a two-byte character: column counts characters.
        assert_eq!(idx.position(src, 13), (2, 6));
        assert_eq!(idx.line_text(src, 2), "RUN é x");
        assert_eq!(idx.locate(src, Span::new(7, 10)).end_column, 4);
    }
}
