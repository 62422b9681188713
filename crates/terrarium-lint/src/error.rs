//! Errors that stop linting a path: the user has to fix their input or command line (exit 2).

use std::path::PathBuf;

/// Something terrarium lint could not read or understand.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A path could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A path given on the command line does not exist.
    #[error("{} does not exist; pass a Dockerfile, a compose file or a directory", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// Walking a directory failed.
    #[error("cannot list files under {}: {message}", path.display())]
    Walk {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The lint settings are invalid.
    #[error("invalid lint settings in {}: {message}", path.display())]
    Config {
        /// The settings file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `--explain` or a setting named a rule that does not exist.
    #[error("unknown rule `{0}`; `terrarium lint --list-rules` shows the rule ids")]
    UnknownRule(String),
}
