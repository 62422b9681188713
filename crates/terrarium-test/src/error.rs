//! Why `terrarium test` could not run a suite: each error says what to do.

/// A failure before or around the tests (a failing test is an [`crate::Outcome`], not this).
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// A Python the user asked for that terrarium cannot provide natively.
    #[error(
        "CPython {python}: terrarium builds test images only on the Pythons Debian ships ({known})\n  fix: pick from those, or drop --python to use the project's own"
    )]
    UnknownPython {
        /// What was asked for.
        python: String,
        /// The Pythons terrarium can provide.
        known: String,
    },
    /// A Python the project's constraints exclude.
    #[error(
        "CPython {python} is excluded by the project's Python constraint `{constraint}` ({source_file})\n  fix: widen the constraint, or pick a Python it allows ({allowed})"
    )]
    Excluded {
        /// The Python asked for.
        python: String,
        /// The constraint.
        constraint: String,
        /// Where it is written (`pyproject.toml:5`).
        source_file: String,
        /// The Pythons it allows that terrarium can provide.
        allowed: String,
    },
    /// `--python all` and no Python terrarium provides is allowed.
    #[error(
        "no Python terrarium can provide ({known}) is allowed by the project's constraints ({constraints})\n  fix: widen `requires-python`, or list a Python terrarium provides in the classifiers"
    )]
    NoPython {
        /// The Pythons terrarium can provide.
        known: String,
        /// The project's constraints with their files.
        constraints: String,
    },
    /// A service the tests need never became healthy.
    #[error(
        "the test service `{service}` did not become healthy ({state}); its last log lines:\n{logs}\n  fix: check the image (`{image}`) and its settings, or give it longer with --service-timeout"
    )]
    Unhealthy {
        /// The service (`postgres`).
        service: String,
        /// Its image.
        image: String,
        /// What the engine said (`unhealthy`, `exited (1)`, `still starting after 60 s`).
        state: String,
        /// The last lines of its log.
        logs: String,
    },
    /// The plan has no Debian runtime to build the test image on.
    #[error(
        "no Debian runtime for the test image: {reason}\n  fix: pick a Python Debian ships with --python"
    )]
    NoRuntime {
        /// Why the plan has none.
        reason: String,
    },
    /// The test image could not be built.
    #[error(transparent)]
    Build(#[from] terrarium_build::BuildError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] terrarium_engine::EngineError),
    /// The image could not be written for loading.
    #[error(transparent)]
    Image(#[from] terrarium_image::Error),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl TestError {
    /// Whether the user has something to fix in the input (exit code 2) rather than the
    /// environment failing.
    pub fn is_input_error(&self) -> bool {
        match self {
            TestError::UnknownPython { .. }
            | TestError::Excluded { .. }
            | TestError::NoPython { .. } => true,
            TestError::Build(err) => err.is_input_error(),
            _ => false,
        }
    }
}

/// An [`TestError::Io`] for `path`.
pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TestError + '_ {
    move |source| TestError::Io {
        path: path.display().to_string(),
        source,
    }
}
