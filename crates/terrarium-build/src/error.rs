//! Errors of `terrarium build`; each says what to do.

use std::path::PathBuf;

/// Everything that can stop a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The project needs a Python that neither supported Debian release ships.
    #[error(
        "{constraint}: terrarium build provides CPython 3.11 (--distro bookworm) and 3.13 (--distro \
         trixie), and the project allows neither\n  fix: allow 3.11 or 3.13 in requires-python (or \
         `python` in [tool.terrarium]), or build with `terrarium init` and docker build"
    )]
    NoDistro {
        /// The constraint and where it was written.
        constraint: String,
    },
    /// The asked-for distro's Python is not allowed by the project.
    #[error(
        "--distro {distro} provides CPython {python}, which {constraint} does not allow\n  fix: \
         choose the other --distro, or relax the constraint"
    )]
    DistroMismatch {
        /// The distro asked for.
        distro: String,
        /// Its Python.
        python: String,
        /// The project's constraint and where it was written.
        constraint: String,
    },
    /// `terrarium.lock` cannot be read.
    #[error("{}: {message}\n  fix: delete it and build again to re-resolve", path.display())]
    BadLockfile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The project's dependencies cannot be installed as declared.
    #[error("{file}: {message}\n  fix: {fix}")]
    Dependencies {
        /// The manifest.
        file: String,
        /// What is wrong.
        message: String,
        /// What to do.
        fix: String,
    },
    /// `SOURCE_DATE_EPOCH` is malformed.
    #[error(transparent)]
    SourceDateEpoch(#[from] terrarium_image::BadSourceDateEpoch),
    /// The Debian side failed (signature, hash, network, offline).
    #[error(transparent)]
    Debian(#[from] terrarium_debian::Error),
    /// The wheels side failed (hash, platform, sdist-only, network, offline).
    #[error(transparent)]
    Wheels(#[from] terrarium_wheels::Error),
    /// Writing layers, the image or an output failed.
    #[error(transparent)]
    Image(#[from] terrarium_image::Error),
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl BuildError {
    /// Whether the error is the user's input (project, lock, flags) being wrong, as opposed to
    /// the network, the disk or terrarium failing.
    pub fn is_input_error(&self) -> bool {
        use terrarium_wheels::Error as W;
        match self {
            BuildError::NoDistro { .. }
            | BuildError::DistroMismatch { .. }
            | BuildError::BadLockfile { .. }
            | BuildError::Dependencies { .. }
            | BuildError::SourceDateEpoch(_) => true,
            BuildError::Wheels(err) => matches!(
                err,
                W::NoCompatibleWheel { .. }
                    | W::SdistOnly { .. }
                    | W::NoHash { .. }
                    | W::NotOnIndex { .. }
                    | W::Unresolvable { .. }
                    | W::Parse { .. }
            ),
            _ => false,
        }
    }
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { path, source }
}
