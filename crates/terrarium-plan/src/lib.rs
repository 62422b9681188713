//! The [`Plan`]: every decision terrarium makes for a project (Python version, base image,
//! dependency install, server, command, port, user, environment, volumes, health check) with
//! the reason for each, so `terrarium plan` can explain itself and `[tool.terrarium]` can
//! override any of it. Rendering Dockerfiles and building images both start from a `Plan`.

pub mod build;
mod context;
mod decide;
mod json;
mod python;
mod system;
pub mod tools;

use std::fmt;
use std::path::PathBuf;

use terrarium_debian::{Architecture, Distro};
use terrarium_project::{ConsoleScript, ContextRules, DependencySource, DetectError, Source};

pub use context::DEFAULT_IGNORES;
pub use decide::{PlanOptions, SETUPTOOLS_WITH_PKG_RESOURCES, is_secret, plan};
pub use json::to_json;
pub use python::{PinnedRelease, tag_python};
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
    /// No Python terrarium can provide has a wheel (or a source distribution) for every binary
    /// package the project pins.
    #[error(
        "no Python release has wheels for every package the project pins, and some publish no source distribution to build:\n{pythons}\n  fix: pin releases that publish wheels for one of these Pythons, or set `python` in [tool.terrarium]"
    )]
    NoWheels {
        /// Per Python, the two or three pins that rule it out.
        pythons: String,
    },
    /// `--distro` names a Debian release whose CPython the project does not allow.
    #[error(
        "Debian {distro} ships CPython {python}, which the project does not allow ({constraint})\n  fix: choose another --distro, or relax the constraint"
    )]
    DistroMismatch {
        /// The distro asked for.
        distro: String,
        /// Its CPython.
        python: String,
        /// The project's constraints, with their files and lines.
        constraint: String,
    },
    /// The base image's tag names a Python the project does not allow.
    #[error(
        "the base {base} runs CPython {python} (its tag says so), which the project does not allow ({constraint})\n  fix: choose a base whose tag names an allowed Python (python:3.X-slim-bookworm), or relax the constraint"
    )]
    BaseMismatch {
        /// The base as written.
        base: String,
        /// The Python its tag names.
        python: String,
        /// The project's constraints, with their files and lines.
        constraint: String,
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
    /// The code has no fallback: the service fails without it. A setting with neither a
    /// default nor this is optional: documented, passed through when set.
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
    /// Files under the project that live in this volume through a symbolic link, because the
    /// code writes them at a fixed path no setting moves (Django's `BASE_DIR / "db.sqlite3"`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<VolumeLink>,
}

/// A symbolic link from the read-only project into a volume: `/app/db.sqlite3` →
/// `/data/db.sqlite3`. Both back ends make it, so the code's fixed path lands on the volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeLink {
    /// The link, an absolute path under the project (`/app/db.sqlite3`).
    pub path: String,
    /// Where it points, an absolute path in the volume (`/data/db.sqlite3`).
    pub target: String,
}

/// The project installed in the image as a package: what `pip install .` gives, decided once
/// for the Dockerfile and the native build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProjectInstall {
    /// The distribution name as file names spell it (`my_app`).
    pub distribution: String,
    /// Its version; `0` when the project doesn't write one down.
    pub version: String,
    /// Where its import packages live in the image: `/app`, or `/app/src` for a src layout.
    pub import_root: String,
    /// The console scripts it declares.
    pub scripts: Vec<ConsoleScript>,
    /// Its version comes from git (setuptools-scm, hatch-vcs): a Dockerfile build, whose
    /// context has no `.git`, gives `version` instead.
    pub scm_version: bool,
}

/// The short name of the volume that holds a data directory, for compose files and
/// `terrarium run`: its last path component, other characters as `-` (`/var/lib/my app` →
/// `my-app`, `/` → `data`).
pub fn volume_name(path: &str) -> String {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() { "data".into() } else { name }
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
    /// The project's version, for the image's labels, when it writes one down.
    pub version: Option<String>,
    /// The project directory.
    pub root: PathBuf,
    /// The Python feature release.
    pub python: Decision<PythonVersion>,
    /// Requirements the project does not pin are resolved as of this moment (files uploaded
    /// later are ignored), on both back ends; `None` when the lock pins everything or nothing
    /// dates the project.
    pub exclude_newer: Decision<Option<jiff::Timestamp>>,
    /// Packages with a later cut-off of their own: the releases the last `terrarium build`
    /// took from after [`exclude_newer`](Self::exclude_newer) (its resolver gives way where no
    /// earlier release has a wheel for the Python), each with the upload time of the file it
    /// took, so the generated Dockerfile's uv installs the same ones. Explained in
    /// `exclude_newer`'s reason; empty without a cut-off.
    pub exclude_newer_package: Vec<(String, jiff::Timestamp)>,
    /// `[project]`'s `requires-python` when it is not PEP 440 (Poetry's `^3.13`): uv refuses
    /// to read that `pyproject.toml`, so the generated Dockerfile names the requirements
    /// itself instead of `-r pyproject.toml` (and the project is installed only when needed).
    pub uv_refuses_pyproject: Option<String>,
    /// The base image of generated Dockerfiles.
    pub base_image: Decision<String>,
    /// The base image `terrarium build` puts its layers on (`python:3.12-slim-bookworm`,
    /// `docker://NAME`, `oci:DIR`) when one is set; `None`: the runtime assembled from Debian
    /// packages ([`runtime`](Self::runtime)).
    pub build_base: Decision<Option<String>>,
    /// The Debian release whose CPython `terrarium build` assembles the runtime from; `None`
    /// when no release terrarium builds on ships the planned Python (the reason says so).
    pub runtime: Decision<Option<Distro>>,
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
    /// Extra Debian packages needed at run time (the configuration's, and the libraries of
    /// dependencies built from source that the known-needs table lists).
    pub system_packages: Decision<Vec<String>>,
    /// Debian packages (besides a compiler and Python's headers) needed to build dependencies
    /// that ship only a source distribution: the configuration's `build-packages` and the
    /// known-needs table's entries for such dependencies.
    pub build_packages: Decision<Vec<String>>,
    /// The project itself is a package and gets installed: how.
    pub install_project: Decision<Option<ProjectInstall>>,
    /// Commands run at build time, after the source is in place (Django's collectstatic).
    pub build_steps: Decision<Vec<Vec<String>>>,
    /// What the build context leaves out (`.dockerignore` rules, Docker semantics), the same
    /// for `docker build` and `terrarium build`.
    pub context: Decision<Vec<String>>,
    /// The reverse-proxy image used when a proxy is asked for (L03).
    pub proxy_image: Decision<String>,
    /// The PostgreSQL image used when a database is asked for.
    pub postgres_image: Decision<String>,
    /// The platforms `terrarium build` makes images for (`--platform`, `platforms`; default
    /// this machine's). Generated Dockerfiles build for the engine's platform.
    pub platforms: Decision<Vec<Architecture>>,
    /// What terrarium could not decide, with the key that settles it.
    pub unsettled: Vec<Unsettled>,
}

/// Variables every image sets for Python itself, whatever the service reads.
pub const PYTHON_ENV: &[(&str, &str)] = &[
    // Logs reach `docker logs` at once, not when a buffer fills (L14).
    ("PYTHONUNBUFFERED", "1"),
    // The root is read-only at run time: never try to write bytecode there (L09).
    ("PYTHONDONTWRITEBYTECODE", "1"),
];

/// Variables the image's runtime owns; a setting of the same name is never baked over them.
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "HOME",
    "SSL_CERT_FILE",
    "PYTHONHOME",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
];

/// How Docker probes the service's health (L18): the same in the Dockerfile's `HEALTHCHECK`
/// and in a native image's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The probe, exec form: the image's own Python fetching the health route (no curl needed).
    pub command: Vec<String>,
    /// Seconds between probes.
    pub interval_secs: u64,
    /// Seconds before a probe counts as failed.
    pub timeout_secs: u64,
    /// Seconds of start-up during which failures don't count.
    pub start_period_secs: u64,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
}

impl Plan {
    /// The cut-off for the build requirements of source distributions: the plan's era, but
    /// never before the planned CPython came out. A build tool older than the interpreter
    /// doesn't run on it (setuptools 40.8, the legacy backend's floor, calls an `HTMLParser`
    /// method 3.9 removed), and one that doesn't install a wheel for it is built anyway.
    /// `None` when nothing is cut off.
    pub fn build_requires_cutoff(&self) -> Option<jiff::Timestamp> {
        let era = self.exclude_newer.value?;
        Some(match python::released(self.python.value) {
            Some(released) if released > era => released,
            _ => era,
        })
    }

    /// The files the dependency install needs, copied before the source (L06).
    pub fn dependency_files(&self) -> Vec<PathBuf> {
        self.dependencies.value.files()
    }

    /// The uv workspace the project is a member of, when its lock is the workspace's: a
    /// Dockerfile's build context is then the workspace root, where the lock is.
    pub fn workspace(&self) -> Option<&terrarium_project::Workspace> {
        self.dependencies.value.lock()?.workspace.as_ref()
    }

    /// The health probe, when the service has a health route.
    pub fn healthcheck_probe(&self) -> Option<Healthcheck> {
        let path = self.healthcheck.value.as_ref()?;
        Some(Healthcheck {
            command: vec![
                "python".into(),
                "-c".into(),
                format!(
                    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{}{}', timeout=4)",
                    self.port.value, path
                ),
            ],
            interval_secs: 30,
            timeout_secs: 5,
            start_period_secs: 10,
            retries: 3,
        })
    }

    /// The environment the plan bakes into the image, after the runtime's own (`PATH`,
    /// `LANG`): Python's switches, then every setting that has a default and is not secret.
    /// Secrets and required settings are documented, never written (L10, L22).
    pub fn image_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = PYTHON_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for setting in &self.env.value {
            if setting.secret || RESERVED_ENV.contains(&setting.name.as_str()) {
                continue;
            }
            if let Some(default) = &setting.default {
                env.push((setting.name.clone(), default.clone()));
            }
        }
        env
    }

    /// The settings the image documents but doesn't set: secrets, required and optional ones
    /// without a default.
    pub fn documented_env(&self) -> Vec<&EnvSetting> {
        self.env
            .value
            .iter()
            .filter(|s| s.secret || s.default.is_none())
            .collect()
    }

    /// What build steps run with besides the image's environment: a placeholder for every
    /// setting the image must be given at run time, and every secret (a production branch of
    /// the settings may need one: `SECRET_KEY = env("SECRET_KEY")` when not DEBUG), so settings
    /// code that reads one at import (`os.environ["DJANGO_ALLOWED_HOSTS"].split()`) can be
    /// imported at build time. Never a real value, and obviously not one; never in the image.
    pub fn build_placeholders(&self) -> Vec<(String, String)> {
        self.documented_env()
            .into_iter()
            .filter(|s| s.required || s.secret)
            .map(|s| {
                (
                    s.name.clone(),
                    format!(
                        "terrarium-build-placeholder-{}",
                        s.name.to_ascii_lowercase()
                    ),
                )
            })
            .collect()
    }

    /// The build context's rules, compiled.
    pub fn context_rules(&self) -> Result<ContextRules, DetectError> {
        ContextRules::parse(
            self.context.value.iter().map(String::as_str),
            std::path::Path::new(".dockerignore"),
        )
    }
}
