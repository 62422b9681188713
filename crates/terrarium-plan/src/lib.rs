//! The [`Plan`]: every decision terrarium makes for a project (Python version, base image,
//! dependency install, server, command, port, user, environment, volumes, health check) with
//! the reason for each, so `terrarium plan` can explain itself and `[tool.terrarium]` can
//! override any of it. Rendering Dockerfiles and building images both start from a `Plan`.

mod decide;
mod json;
mod system;
pub mod tools;

use std::fmt;
use std::path::PathBuf;

use terrarium_project::{DependencySource, Source};

pub use decide::{PlanOptions, plan};
pub use json::to_json;
pub use system::{ServicePlan, SystemPlan, plan_system};

/// Why a project cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Nothing to run: no web application, console script or configured command.
    #[error("{}: found no web application (Flask, Django, FastAPI, Starlette, Quart) and no console script to run\n  fix: set `command` in [tool.terrarium] (pyproject.toml) or terrarium.toml, e.g. command = [\"gunicorn\", \"myapp:app\"]", .0.display())]
    NoEntrypoint(PathBuf),
    /// No known Python release satisfies the project's constraints.
    #[error(
        "{location}: no supported Python release satisfies {constraint:?} (terrarium knows {known})\n  fix: relax the constraint, or set `python` and `base` in [tool.terrarium]"
    )]
    NoPython {
        /// The constraint.
        constraint: String,
        /// Where it was written.
        location: Source,
        /// The releases terrarium knows.
        known: String,
    },
    /// The dependencies are declared in a form that can't be installed reproducibly as is.
    #[error("{file}: {message}\n  fix: {fix}")]
    Dependencies {
        /// The manifest.
        file: String,
        /// What is wrong.
        message: String,
        /// What to do.
        fix: String,
    },
}

/// Where a decision came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Read from the project's files.
    Detected,
    /// terrarium's default: nothing in the project said otherwise.
    Default,
    /// Set by the user in `[tool.terrarium]`, `terrarium.toml` or a command-line flag.
    Config,
}

/// One decision: its value, why, where it came from and the files that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<T> {
    /// The decided value.
    pub value: T,
    /// Why, in one sentence.
    pub reason: String,
    /// Detected, default or configured.
    pub origin: Origin,
    /// The files (and lines) the decision rests on.
    pub sources: Vec<Source>,
}

impl<T> Decision<T> {
    fn new(value: T, origin: Origin, reason: impl Into<String>, sources: Vec<Source>) -> Self {
        Decision {
            value,
            reason: reason.into(),
            origin,
            sources,
        }
    }
}

/// A CPython feature release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PythonVersion {
    /// Major version (3).
    pub major: u64,
    /// Minor version.
    pub minor: u64,
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The application server that runs the app in production (L02).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Server {
    /// gunicorn, optionally with an ASGI worker class.
    Gunicorn {
        /// The worker class (`uvicorn.workers.UvicornWorker`) for ASGI apps.
        #[serde(skip_serializing_if = "Option::is_none")]
        worker_class: Option<String>,
    },
    /// uvicorn with worker processes.
    Uvicorn,
    /// Hypercorn.
    Hypercorn,
    /// The project's own console script.
    ConsoleScript {
        /// The script.
        name: String,
    },
    /// A command given in the configuration.
    Configured,
}

/// A user id and group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// The UID (never 0).
    pub uid: u32,
    /// The GID.
    pub gid: u32,
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// An environment variable of the service, as the image and compose file document it (L10).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvSetting {
    /// Its name.
    pub name: String,
    /// The default; `None` when the service requires it to be set.
    pub default: Option<String>,
    /// Looks like a secret: never written into an image or a committed file (L22).
    pub secret: bool,
    /// The code has no fallback: the service fails without it.
    pub required: bool,
}

/// A directory whose data must outlive the container (L09).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Volume {
    /// The path inside the container.
    pub path: String,
    /// The setting that points the service at it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// Something terrarium could not decide on its own, and the key that settles it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unsettled {
    /// What is undecided or risky.
    pub message: String,
    /// The `[tool.terrarium]` key (or command) that settles it.
    pub key: String,
}

/// Every decision for one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The project name, usable in image and compose names.
    pub name: String,
    /// The project directory.
    pub root: PathBuf,
    /// The Python feature release.
    pub python: Decision<PythonVersion>,
    /// The base image of generated Dockerfiles.
    pub base_image: Decision<String>,
    /// How third-party dependencies are installed.
    pub dependencies: Decision<DependencySource>,
    /// Pinned packages added to the install (a server the project doesn't depend on).
    pub added_packages: Decision<Vec<String>>,
    /// The production server.
    pub server: Decision<Server>,
    /// The production command, exec form (L02, L19).
    pub command: Decision<Vec<String>>,
    /// The development command: the framework's auto-reloading server on 0.0.0.0 (L16).
    pub dev_command: Decision<Vec<String>>,
    /// The port the service listens on.
    pub port: Decision<u16>,
    /// The user the production container runs as (L11).
    pub user: Decision<User>,
    /// The service's settings (L10).
    pub env: Decision<Vec<EnvSetting>>,
    /// Data directories (L09).
    pub volumes: Decision<Vec<Volume>>,
    /// The health-check path, if the service has one (L18).
    pub healthcheck: Decision<Option<String>>,
    /// Extra Debian packages needed at run time.
    pub system_packages: Decision<Vec<String>>,
    /// The project itself is a package and gets installed.
    pub install_project: Decision<bool>,
    /// Commands run at build time, after the source is in place (Django's collectstatic).
    pub build_steps: Decision<Vec<Vec<String>>>,
    /// The reverse-proxy image used when a proxy is asked for (L03).
    pub proxy_image: Decision<String>,
    /// The PostgreSQL image used when a database is asked for.
    pub postgres_image: Decision<String>,
    /// What terrarium could not decide, with the key that settles it.
    pub unsettled: Vec<Unsettled>,
}

impl Plan {
    /// The files the dependency install needs, copied before the source (L06).
    pub fn dependency_files(&self) -> Vec<PathBuf> {
        self.dependencies.value.files()
    }
}
