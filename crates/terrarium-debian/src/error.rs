//! Errors of the Debian client. Each says what went wrong, where, and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong talking to the Debian archive or unpacking packages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// InRelease carries no valid signature from a trusted Debian archive key.
    #[error(
        "{suite}: InRelease signature check failed: {reason}. The file is not signed by a Debian \
         archive key shipped with terrarium; it may be tampered with or the mirror is broken \
         (retry, or use another mirror; an old terrarium may lack a newer archive key: update it)"
    )]
    BadSignature {
        /// The suite.
        suite: String,
        /// Why.
        reason: String,
    },
    /// The signed Release file has expired (`Valid-Until` is in the past).
    #[error(
        "{suite}: the signed Release expired at {valid_until}; the mirror is stale (try another \
         mirror) or the system clock is wrong\n  fix: for a mirror frozen on purpose (a snapshot), \
         set TERRARIUM_ALLOW_EXPIRED_INDEX=1 to use it anyway (signatures are still checked)"
    )]
    Expired {
        /// The suite.
        suite: String,
        /// When it expired.
        valid_until: String,
    },
    /// The signed Release describes a different suite than requested.
    #[error("{expected}: the signed Release is for `{actual}`; the mirror serves the wrong suite")]
    WrongSuite {
        /// What was asked for.
        expected: String,
        /// What was served.
        actual: String,
    },
    /// A file needed from the signed Release is not listed in it.
    #[error("{suite}: `{file}` is not listed in the signed Release; the mirror lacks it")]
    NotInRelease {
        /// The suite.
        suite: String,
        /// The file.
        file: String,
    },
    /// A metadata file (Release, Packages, control) is malformed.
    #[error("{file}: {message}")]
    Parse {
        /// Which file.
        file: String,
        /// What is wrong (with a line number where known).
        message: String,
    },
    /// A .deb archive is malformed.
    #[error("{file}: not a valid .deb: {message}; delete it from the cache and rebuild")]
    BadDeb {
        /// Which package file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A requested package does not exist in the indices.
    #[error(
        "package `{0}` is not in the Debian indices for this suite and architecture; check the name"
    )]
    UnknownPackage(String),
    /// No version of a package satisfies a dependency.
    #[error(
        "cannot satisfy `{dependency}` (needed by {needed_by}): {reason}; this suite cannot install \
         that package set"
    )]
    Unsatisfiable {
        /// The dependency as written in the index.
        dependency: String,
        /// The package that depends on it.
        needed_by: String,
        /// Why it cannot be satisfied.
        reason: String,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The image crate failed: a download (network, 404, truncation, size or sha256 mismatch,
    /// offline with the file missing), the cache, or layer writing.
    #[error(transparent)]
    Image(#[from] terrarium_image::Error),
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
