//! Errors from reading a project: each names the file, the line when there is one, and the fix.

use std::path::PathBuf;

/// Why a project could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The project directory does not exist or is not a directory.
    #[error("{}: no such project directory (pass the directory that holds your pyproject.toml or requirements.txt)", .0.display())]
    NoDirectory(PathBuf),
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is malformed; `line` is 1-based when known.
    #[error("{}{}: {message}\n  fix: {fix}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
        /// What to do about it.
        fix: String,
    },
    /// Nothing in the directory looks like a Python project.
    #[error("{}: no Python project found (no pyproject.toml, requirements*.txt, Pipfile, setup.py or *.py files)\n  fix: run terrarium in the directory of your Python service", .0.display())]
    NotPython(PathBuf),
    /// Two frameworks claim to be the service and nothing says which one to serve.
    #[error("{}: found more than one web application: {}\n  fix: choose one with `command` in [tool.terrarium] (pyproject.toml) or terrarium.toml", root.display(), apps.join(", "))]
    ConflictingApps {
        /// The project directory.
        root: PathBuf,
        /// The candidates, each with where it was found.
        apps: Vec<String>,
    },
}

impl DetectError {
    /// A malformed-file error at a 1-based line.
    pub fn malformed(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        DetectError::Malformed {
            path: path.into(),
            line,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl DetectError {
    /// Name files as the user reaches them: relative to the project root they passed.
    pub(crate) fn under(self, root: &std::path::Path) -> Self {
        if root == std::path::Path::new(".") {
            return self;
        }
        match self {
            DetectError::Read { path, source } => DetectError::Read {
                path: root.join(path),
                source,
            },
            DetectError::Malformed {
                path,
                line,
                message,
                fix,
            } => DetectError::Malformed {
                path: root.join(path),
                line,
                message,
                fix,
            },
            other => other,
        }
    }
}

/// Read a project file, `rel` under `root`, as UTF-8 text. Bytes that are not UTF-8 are a
/// [`DetectError::Malformed`] at the line where they start, so the user can find them.
pub(crate) fn read_text(
    root: &std::path::Path,
    rel: &std::path::Path,
) -> Result<String, DetectError> {
    let bytes = std::fs::read(root.join(rel)).map_err(|source| DetectError::Read {
        path: rel.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|err| {
        let valid = err.utf8_error().valid_up_to();
        let line = err
            .as_bytes()
            .iter()
            .take(valid)
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        DetectError::malformed(
            rel,
            Some(line),
            "the file is not UTF-8 text",
            "save it as UTF-8 (or regenerate it with the tool that wrote it)",
        )
    })
}

/// The 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Turn a TOML parse error into a [`DetectError::Malformed`] with its line.
pub fn toml_error(
    path: &std::path::Path,
    text: &str,
    err: &toml::de::Error,
    fix: &str,
) -> DetectError {
    let line = err.span().map(|span| line_of(text, span.start));
    DetectError::malformed(path, line, err.message().trim().to_string(), fix)
}
