//! Read a Python project: which files declare and lock its dependencies, which Python it needs,
//! which web framework and application it serves, its port, settings and data directories.
//!
//! [`detect`] gathers facts only; every fact carries the [`Source`] it came from so that the
//! plan built on top of it can explain itself. Decisions belong to `terrarium-plan`.

/// A lazily compiled static regex.
macro_rules! regex {
    ($name:ident, $re:expr) => {
        static $name: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new($re).expect("static regex"));
    };
}

mod code;
mod config;
mod context;
mod django;
mod error;
mod history;
mod lock;
mod manifest;
mod remembered;
mod requirements;
mod routes;
mod settings;
mod setup_py;
mod system;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use code::{App, AppObject, EnvVar, Framework, Interface};
pub use config::{COMPRESSIONS, Config, HealthcheckSetting, PLATFORMS, TEST_SERVICES};
pub use context::{ContextEntry, ContextKind, ContextRules};
pub use django::DjangoProject;
pub use error::DetectError;
pub use lock::{Artifact, Group, Hash, Lock, LockFormat, LockedPackage, Workspace};
pub use manifest::{ConsoleScript, DependencySource, ManifestFormat, Package, PythonConstraint};
pub use requirements::{RequirementLine, RequirementsFile};
pub use system::{
    DEFAULT_REPLICAS, Gateway, Job, Postgres, Route, System, SystemService, detect_system,
};
pub use writes::{Write, WriteReason};

/// Where a fact was found: a file relative to the project root, and the line when known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// The file, relative to the project root.
    pub file: PathBuf,
    /// The 1-based line, when the fact comes from one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Source {
    /// A fact from a whole file.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Source {
            file: file.into(),
            line: None,
        }
    }

    /// A fact from one line of a file.
    pub fn line(file: impl Into<PathBuf>, line: usize) -> Self {
        Source {
            file: file.into(),
            line: Some(line),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        Ok(())
    }
}

/// A value found in the project together with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fact<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Fact<T> {
    /// A fact with its source.
    pub fn new(value: T, source: Source) -> Self {
        Fact { value, source }
    }
}

/// A distribution name normalized per PEP 503 (lowercase, runs of `-_.` become `-`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PackageName(String);

impl PackageName {
    /// Normalize a distribution name.
    pub fn new(raw: &str) -> Self {
        let mut out = String::with_capacity(raw.len());
        let mut separator = false;
        for c in raw.trim().chars() {
            if matches!(c, '-' | '_' | '.') {
                separator = true;
            } else {
                if separator && !out.is_empty() {
                    out.push('-');
                }
                separator = false;
                out.extend(c.to_lowercase());
            }
        }
        PackageName(out)
    }

    /// The name a PEP 508 requirement string starts with (`pydantic` of `pydantic[email]>=2`),
    /// without parsing the rest: name-based detection needs no more, and a string that doesn't
    /// parse is reported by the tool that owns the file.
    pub fn of_requirement(spec: &str) -> Option<Self> {
        let name = spec
            .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .next()
            .unwrap_or_default()
            .trim();
        (!name.is_empty()).then(|| PackageName::new(name))
    }

    /// The normalized name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as wheel and `.dist-info` file names spell it: `my_app`.
    pub fn file_name(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything terrarium found in a project directory. Facts only; no decisions.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory.
    pub root: PathBuf,
    /// The project's name: `[project].name`, `[tool.poetry].name`, else the directory name.
    pub name: Fact<String>,
    /// The project's version (`[project].version`, `[tool.poetry].version`), when written down.
    pub version: Option<Fact<String>>,
    /// Constraints on the Python version, strongest first (`.python-version`, then
    /// `requires-python`, poetry's `python` dependency, Pipfile's `python_version`).
    pub python: Vec<Fact<PythonConstraint>>,
    /// How the dependencies are declared and locked.
    pub dependencies: DependencySource,
    /// Names of the runtime dependencies (declared and locked).
    pub runtime_packages: BTreeSet<PackageName>,
    /// Names of the development-only dependencies.
    pub dev_packages: BTreeSet<PackageName>,
    /// The PEP 508 requirements of the development dependency groups (PEP 735
    /// `[dependency-groups]`, uv's `dev-dependencies`), for installing them without a lock.
    pub dev_requirements: Vec<String>,
    /// The CPython feature versions `[project].classifiers` names (`Programming Language ::
    /// Python :: 3.12`): the ones the project says it supports, which `terrarium test --python
    /// all` runs on.
    pub python_classifiers: Vec<Fact<String>>,
    /// The project is itself an installable package (a `[build-system]` or `setup.py`).
    pub package: Option<Package>,
    /// Console scripts the project declares.
    pub scripts: Vec<Fact<ConsoleScript>>,
    /// Web applications found in the code.
    pub apps: Vec<Fact<App>>,
    /// Django facts, for a Django project.
    pub django: Option<DjangoProject>,
    /// Ports the code listens on (`app.run(port=…)`, a `PORT` default).
    pub ports: Vec<Fact<u16>>,
    /// Environment variables the code reads, with their defaults.
    pub env: Vec<Fact<EnvVar>>,
    /// Routes that look like health checks, best first.
    pub health_routes: Vec<Fact<String>>,
    /// Settings that name a data directory (`DATA_DIR`, `UPLOAD_DIR`, Django's `MEDIA_ROOT`).
    pub data_dirs: Vec<Fact<EnvVar>>,
    /// `[tool.terrarium]` or `terrarium.toml`.
    pub config: Config,
    /// The lines of the project's own `.dockerignore` (checked to be valid patterns).
    pub dockerignore: Option<Fact<Vec<String>>>,
    /// When the dependency declarations (or the lock) last changed, the commit time in git: the
    /// era what they don't pin is resolved as of.
    pub dependencies_changed: Option<Fact<jiff::Timestamp>>,
    /// The Python (`3.11`) `terrarium.lock` records from the last build.
    pub locked_python: Option<Fact<String>>,
    /// The packages whose releases the last build's resolution took from after the cut-off,
    /// each with the upload time of the file taken (`terrarium.lock`).
    pub locked_exclude_newer_package: Option<Fact<Vec<(String, jiff::Timestamp)>>>,
    /// Where the code writes under the project directory at run time.
    pub writes: Vec<Fact<Write>>,
    /// The project's `gunicorn.conf.py` files (gunicorn reads the one in its working
    /// directory unless told otherwise), each with the settings it assigns at top level.
    pub gunicorn_configs: Vec<Fact<Vec<String>>>,
}

impl Project {
    /// Whether a runtime dependency with this (normalized) name is declared or locked.
    pub fn depends_on(&self, name: &str) -> bool {
        self.runtime_packages.contains(&PackageName::new(name))
    }
}

/// Read the project in `root`. Errors name files as `root` joined with their path.
pub fn detect(root: &Path) -> Result<Project, DetectError> {
    detect_in(root, None).map_err(|err| err.under(root))
}

/// [`detect`], with the scan of the Python sources remembered in `records` (a directory of the
/// cache) and reused while none of the files and directories it read changed: the scan is most
/// of the work, so a command run again on an unchanged project reads one small record instead.
pub fn detect_remembered(root: &Path, records: &Path) -> Result<Project, DetectError> {
    detect_in(root, Some(records)).map_err(|err| err.under(root))
}

fn detect_in(root: &Path, records: Option<&Path>) -> Result<Project, DetectError> {
    if !root.is_dir() {
        return Err(DetectError::NoDirectory(root.to_path_buf()));
    }
    let manifests = manifest::read(root)?;
    if let Some(first) = manifests.workspace_members.first() {
        let members: Vec<String> = manifests
            .workspace_members
            .iter()
            .map(|m| m.display().to_string())
            .collect();
        return Err(DetectError::malformed(
            "pyproject.toml",
            None,
            format!(
                "a uv workspace root with no [project] of its own; its members are {}",
                members.join(", ")
            ),
            format!(
                "run terrarium on the member that is your service, e.g. {}",
                root.join(first).display()
            ),
        ));
    }
    let config = config::read(root, manifests.pyproject_text.as_deref())?;
    let sources = code::python_files(root);
    if manifests.is_empty() && sources.is_empty() {
        return Err(DetectError::NotPython(root.to_path_buf()));
    }
    let scan_sources = || {
        let scan = code::scan(root, &sources)?;
        Ok(remembered::Scanned {
            apps: scan.apps,
            ports: scan.ports,
            env: scan.env,
            health_routes: scan.health_routes,
            writes: scan.writes,
            django: django::detect(root, &sources)?,
        })
    };
    let scan = match records {
        Some(dir) => remembered::scan_remembered(dir, root, &sources, scan_sources)?,
        None => scan_sources()?,
    };
    let dockerignore = read_dockerignore(root)?;
    let django = scan.django;
    if let Some(django) = &django
        && !django.dir.as_os_str().is_empty()
        && manifests.is_empty()
        && manifest::declares_dependencies(&root.join(&django.dir))
    {
        return Err(DetectError::malformed(
            django.manage_py(),
            None,
            format!(
                "the service is in {}/ (its manage.py and dependencies are there), and this directory declares no dependencies",
                django.dir.display()
            ),
            format!("run terrarium on {}", root.join(&django.dir).display()),
        ));
    }

    let mut apps = scan.apps;
    if manifests.package.as_ref().is_some_and(|p| p.src_layout) {
        // An installed src layout imports from site-packages, not from src/.
        for app in &mut apps {
            if app.value.import_dir.as_deref() == Some("src") {
                app.value.import_dir = None;
            }
        }
    }
    if let Some(django) = &django {
        apps.push(django.app());
    }
    let frameworks: BTreeSet<Framework> = apps.iter().map(|a| a.value.framework).collect();
    if frameworks.len() > 1 && config.command.is_none() {
        return Err(DetectError::ConflictingApps {
            root: root.to_path_buf(),
            apps: apps
                .iter()
                .map(|a| format!("{} {} ({})", a.value.framework, a.value.target(), a.source))
                .collect(),
        });
    }

    let mut env = scan.env;
    dedup_env(&mut env);
    let writes = writes::with_sqlite_settings(scan.writes, &env);
    let data_dirs = env
        .iter()
        .filter(|fact| code::is_data_dir_setting(&fact.value))
        .cloned()
        .chain(django.iter().flat_map(|d| d.media_root.clone()))
        .collect();
    let mut ports = scan.ports;
    ports.extend(env.iter().filter_map(|fact| {
        let default = fact.value.default.as_deref()?;
        (fact.value.name == "PORT")
            .then(|| default.parse().ok())
            .flatten()
            .map(|port| Fact::new(port, fact.source.clone()))
    }));

    let name = manifests.name.clone().unwrap_or_else(|| {
        let dir = std::fs::canonicalize(root)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "app".to_string());
        Fact::new(dir, Source::file("."))
    });

    let dependencies_changed = history::last_change(root, &manifests.dependencies.files());
    let locked = history::locked(root);
    Ok(Project {
        locked_python: locked.python,
        locked_exclude_newer_package: locked.exclude_newer_package,
        gunicorn_configs: gunicorn_configs(root, &sources),
        dependencies_changed,
        root: root.to_path_buf(),
        name,
        version: manifests.version,
        python: manifests.python,
        dependencies: manifests.dependencies,
        runtime_packages: manifests.runtime_packages,
        dev_packages: manifests.dev_packages,
        dev_requirements: manifests.dev_requirements,
        python_classifiers: manifests.python_classifiers,
        package: manifests.package,
        scripts: manifests.scripts,
        apps,
        django,
        ports,
        env,
        health_routes: scan.health_routes,
        writes,
        data_dirs,
        config,
        dockerignore,
    })
}

/// The project's `.dockerignore`, its patterns checked (a bad one names its line).
fn read_dockerignore(root: &Path) -> Result<Option<Fact<Vec<String>>>, DetectError> {
    let file = Path::new(".dockerignore");
    let path = root.join(file);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| DetectError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    ContextRules::parse(text.lines(), file)?;
    Ok(Some(Fact::new(
        text.lines().map(str::to_owned).collect(),
        Source::file(file),
    )))
}

/// The `gunicorn.conf.py` files among `sources`, each with the lower-case names it assigns
/// (`bind`, `daemon`, `accesslog`, also in its `if` blocks): what gunicorn would take from it.
fn gunicorn_configs(root: &Path, sources: &[PathBuf]) -> Vec<Fact<Vec<String>>> {
    sources
        .iter()
        .filter(|rel| {
            rel.file_name()
                .is_some_and(|name| name == "gunicorn.conf.py")
        })
        .filter_map(|rel| {
            let text = std::fs::read_to_string(root.join(rel)).ok()?;
            let mut names: Vec<String> = text
                .lines()
                .map(str::trim_start)
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| {
                    let (name, _) = line.split_once('=')?;
                    let name = name.trim();
                    (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                        .then(|| name.to_owned())
                })
                .collect();
            names.sort();
            names.dedup();
            Some(Fact::new(names, Source::file(rel.clone())))
        })
        .collect()
}

/// Keep the first mention of each variable, but prefer one that has a default; without one,
/// a variable any mention needs is required. A variable whose mentions fall back to different
/// values (`DB_NAME` is `BASE_DIR / "hc.sqlite"` for SQLite and `"hc"` for PostgreSQL) keeps
/// no default: baking one in would override the code's other fallbacks.
fn dedup_env(env: &mut Vec<Fact<EnvVar>>) {
    let mut fallbacks: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for fact in env.iter() {
        let var = &fact.value;
        if var.computed_default || var.default.is_some() {
            fallbacks
                .entry(var.name.clone())
                .or_default()
                .insert(var.default.clone().filter(|_| !var.computed_default));
        }
    }
    let mut out: Vec<Fact<EnvVar>> = Vec::with_capacity(env.len());
    for fact in env.drain(..) {
        match out.iter_mut().find(|f| f.value.name == fact.value.name) {
            Some(existing) if existing.value.default.is_none() && fact.value.default.is_some() => {
                *existing = fact
            }
            Some(existing) if existing.value.default.is_none() && fact.value.required => {
                *existing = fact
            }
            Some(_) => {}
            None => out.push(fact),
        }
    }
    for fact in &mut out {
        let var = &mut fact.value;
        let values = fallbacks.get(&var.name);
        if values.is_some_and(|v| v.len() > 1 || v.contains(&None)) {
            var.default = None;
            var.required = false;
            var.computed_default = true;
        }
    }
    *env = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_normalize_per_pep_503() {
        assert_eq!(
            PackageName::new("Flask_SQLAlchemy").as_str(),
            "flask-sqlalchemy"
        );
        assert_eq!(
            PackageName::new("zope.interface").as_str(),
            "zope-interface"
        );
        assert_eq!(PackageName::new("a-_.b").as_str(), "a-b");
    }

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn a_service_below_a_directory_without_dependencies_is_named() {
        let dir = project(&[
            ("docker-compose.yml", "services: {}\n"),
            ("app/requirements.txt", "django==5.2.8\n"),
            (
                "app/manage.py",
                "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_a.settings')\n",
            ),
            ("app/site_a/__init__.py", ""),
            (
                "app/site_a/settings.py",
                "WSGI_APPLICATION = 'site_a.wsgi.application'\n",
            ),
            (
                "app/site_a/wsgi.py",
                "application = get_wsgi_application()\n",
            ),
        ]);
        let err = detect_in(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.starts_with("app/manage.py: the service is in app/")
                && err.contains("fix: run terrarium on"),
            "{err}"
        );
        let django = detect_in(&dir.path().join("app"), None)
            .unwrap()
            .django
            .unwrap();
        assert_eq!(django.dir, Path::new(""));
    }

    #[test]
    fn a_setting_with_different_fallbacks_keeps_none() {
        let var = |name: &str, default: Option<&str>, computed: bool| {
            Fact::new(
                EnvVar {
                    computed_default: computed,
                    ..EnvVar::optional(name, default.map(str::to_owned))
                },
                Source::line("settings.py", 1),
            )
        };
        let mut env = vec![
            var("DB_NAME", None, true),
            var("DB_NAME", Some("hc"), false),
            var("DB_USER", Some("postgres"), false),
            var("DB_USER", Some("root"), false),
            var("DB_HOST", Some(""), false),
            var("DB_HOST", Some(""), false),
            var("DEBUG", None, false),
            var("DEBUG", Some("0"), false),
        ];
        dedup_env(&mut env);
        let found: Vec<(&str, Option<&str>)> = env
            .iter()
            .map(|f| (f.value.name.as_str(), f.value.default.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("DB_NAME", None),
                ("DB_USER", None),
                ("DB_HOST", Some("")),
                ("DEBUG", Some("0")),
            ]
        );
        assert!(env.iter().all(|f| !f.value.required));
    }

    #[test]
    fn a_virtual_workspace_root_names_its_members() {
        let dir = project(&[
            (
                "pyproject.toml",
                "[tool.uv.workspace]\nmembers = [\"services/*\"]\n",
            ),
            ("uv.lock", "version = 1\n"),
            ("services/api/pyproject.toml", "[project]\nname = \"api\"\n"),
            ("services/notes.txt", ""),
        ]);
        let err = detect_in(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.starts_with("pyproject.toml: a uv workspace root with no [project] of its own; its members are services/api"),
            "{err}"
        );
    }

    #[test]
    fn a_workspace_member_installs_its_own_packages_from_the_lock_above() {
        let hash = "sha256:".to_string() + &"a".repeat(64);
        let wheel = |name: &str| {
            format!(
                "wheels = [{{ url = \"https://files.example/{name}-1.0-py3-none-any.whl\", hash = \"{hash}\" }}]\n"
            )
        };
        let lock = format!(
            "version = 1\n\n[[package]]\nname = \"api\"\nversion = \"0.1.0\"\nsource = {{ editable = \"api\" }}\ndependencies = [{{ name = \"flask\" }}]\n\n[[package]]\nname = \"worker\"\nversion = \"0.1.0\"\nsource = {{ editable = \"worker\" }}\ndependencies = [{{ name = \"celery\" }}]\n\n[[package]]\nname = \"flask\"\nversion = \"1.0\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\n{}\n[[package]]\nname = \"celery\"\nversion = \"1.0\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\n{}",
            wheel("flask"),
            wheel("celery")
        );
        let dir = project(&[
            (
                "pyproject.toml",
                "[tool.uv.workspace]\nmembers = [\"api\", \"worker\"]\n",
            ),
            ("uv.lock", &lock),
            (
                "api/pyproject.toml",
                "[project]\nname = \"api\"\ndependencies = [\"flask\"]\n",
            ),
            (
                "api/app.py",
                "from flask import Flask\napp = Flask(__name__)\n",
            ),
            (
                "worker/pyproject.toml",
                "[project]\nname = \"worker\"\ndependencies = [\"celery\"]\n",
            ),
        ]);
        let project = detect_in(&dir.path().join("api"), None).unwrap();
        let lock = project.dependencies.lock().unwrap();
        assert_eq!(lock.path, Path::new("../uv.lock"));
        let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["flask"]);
        let workspace = lock.workspace.as_ref().unwrap();
        assert_eq!(workspace.member, Path::new("api"));
        assert_eq!(workspace.members, [Path::new("api"), Path::new("worker")]);
    }
}
