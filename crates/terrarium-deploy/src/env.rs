//! The operator's settings: the process environment first, then the system's `.env` (what
//! `terrarium init` wrote, with its generated secrets), the same order Compose reads them in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A `.env` file that can't be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A line that is not `NAME=value`.
    #[error(
        "{}:{line}: not a `NAME=value` line\n  fix: write one setting per line as NAME=value, comments start with #",
        path.display()
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// The file exists but can't be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Settings from `.env`, looked up after the process environment.
#[derive(Debug, Clone, Default)]
pub struct DotEnv {
    values: BTreeMap<String, String>,
}

impl DotEnv {
    /// Read `dir/.env`; a missing file is empty.
    pub fn load(dir: &Path) -> Result<DotEnv, EnvError> {
        let path = dir.join(".env");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(EnvError::Io { path, source }),
        };
        DotEnv::parse(&text, &path)
    }

    /// Parse `.env` text (`NAME=value`, `export NAME=value`, `#` comments, optional quotes).
    pub fn parse(text: &str, path: &Path) -> Result<DotEnv, EnvError> {
        let mut values = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((name, value)) = line.split_once('=') else {
                return Err(EnvError::Malformed {
                    path: path.to_path_buf(),
                    line: index + 1,
                });
            };
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(EnvError::Malformed {
                    path: path.to_path_buf(),
                    line: index + 1,
                });
            }
            let value = value.trim();
            let value = [('"', '"'), ('\'', '\'')]
                .iter()
                .find_map(|(open, close)| {
                    value
                        .strip_prefix(*open)
                        .and_then(|v| v.strip_suffix(*close))
                })
                .unwrap_or(value);
            values.insert(name.to_string(), value.to_string());
        }
        Ok(DotEnv { values })
    }

    /// A setting: the process environment wins over `.env`; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.values.get(name).cloned())
            .filter(|v| !v.is_empty())
    }

    /// A setting from `.env` only (never the process environment).
    pub fn file_value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_quotes_and_comments() {
        let env = DotEnv::parse(
            "# local\nA=1\nexport B=\"two words\"\nC='x=y'\n\nEMPTY=\n",
            Path::new(".env"),
        )
        .unwrap();
        assert_eq!(env.file_value("A"), Some("1"));
        assert_eq!(env.file_value("B"), Some("two words"));
        assert_eq!(env.file_value("C"), Some("x=y"));
        assert_eq!(env.file_value("EMPTY"), None);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = DotEnv::parse("A=1\noops\n", Path::new("/s/.env"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/s/.env:2: not a `NAME=value` line"),
            "{err}"
        );
    }
}
