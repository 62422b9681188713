//! Errors of `terrarium build`; each says what to do.

use std::path::PathBuf;

/// Everything that can stop a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The plan's Python has no Debian runtime to build on; the plan's reason says why.
    #[error(
        "{reason}\n  fix: set `python` (or --distro) to a release a Debian runtime ships, or build with `terrarium init` and docker build"
    )]
    NoRuntime {
        /// The plan's reason for its runtime decision.
        reason: String,
    },
    /// The resolved runtime lacks what a Python runtime needs.
    #[error("{message}\n  fix: delete terrarium.lock and build again to re-resolve the runtime")]
    Runtime {
        /// What is missing.
        message: String,
    },
    /// A build step (Django's collectstatic, …) failed in the sandbox.
    #[error("build step `{step}` failed: {source}{blocked}\n  fix: {fix}")]
    BuildStep {
        /// The step.
        step: String,
        /// What happened (the step's last lines of output).
        source: Box<terrarium_sandbox::SandboxError>,
        /// A line naming the path the step could not write and why, or nothing.
        blocked: String,
        /// What to do.
        fix: String,
    },
    /// The image's own tools could not run at build time (bytecode, build steps, sdists).
    #[error(transparent)]
    Sandbox(#[from] terrarium_sandbox::SandboxError),
    /// The build context's `.dockerignore` rules or files cannot be read.
    #[error(transparent)]
    Context(#[from] terrarium_project::DetectError),
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
    /// Reading the image for its software bill of materials failed.
    #[error(transparent)]
    Sbom(#[from] terrarium_sbom::Error),
    /// A base image can't be used (not found, wrong digest, no Python, not linux/amd64, …).
    #[error("base {base}: {message}\n  fix: {fix}")]
    Base {
        /// The base as written.
        base: String,
        /// What is wrong.
        message: String,
        /// What to do.
        fix: String,
    },
    /// A platform other than this machine's needs code run for it (an sdist to compile, a
    /// build step that makes binaries, a base image), which terrarium never emulates.
    #[error("{platform}: {message}\n  fix: {fix}")]
    ForeignPlatform {
        /// The platform (`linux/arm64`).
        platform: String,
        /// What can't be done for it here.
        message: String,
        /// What to do.
        fix: String,
    },
    /// Pulling a base image from its registry failed.
    #[error(transparent)]
    Registry(#[from] terrarium_registry::Error),
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
            BuildError::NoRuntime { .. }
            | BuildError::Context(_)
            | BuildError::BadLockfile { .. }
            | BuildError::Dependencies { .. }
            | BuildError::Base { .. }
            | BuildError::ForeignPlatform { .. }
            | BuildError::SourceDateEpoch(_) => true,
            BuildError::Registry(err) => matches!(
                err,
                terrarium_registry::Error::NotFound { .. }
                    | terrarium_registry::Error::BadReference { .. }
                    | terrarium_registry::Error::WrongDigest { .. }
            ),
            BuildError::Wheels(err) => matches!(
                err,
                W::NoCompatibleWheel { .. }
                    | W::SdistOnly { .. }
                    | W::NoHash { .. }
                    | W::NotOnIndex { .. }
                    | W::Unresolvable { .. }
                    | W::Conflict { .. }
                    | W::Parse { .. }
                    | W::BadSdist { .. }
                    | W::SdistBuild { .. }
                    | W::NotReproducible { .. }
            ),
            _ => false,
        }
    }
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { path, source }
}
