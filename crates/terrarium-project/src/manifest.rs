//! Manifests: pyproject.toml (PEP 621 and `[tool.poetry]`), Pipfile, requirements files,
//! `.python-version`, setup.py; and the choice of which of them drives the install.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{DetectError, line_of, read_text, toml_error};
use crate::lock::{self, Group, Lock};
use crate::requirements::{self, RequirementsFile};
use crate::{Fact, PackageName, Source};

/// A constraint on the Python version, as PEP 440 specifiers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PythonConstraint {
    /// The specifiers (`>=3.11`); an exact `.python-version` becomes `==3.12.*`.
    pub specifiers: String,
}

impl PythonConstraint {
    /// Whether a Python `major.minor` satisfies the constraint.
    pub fn allows(&self, major: u64, minor: u64) -> bool {
        let Ok(specifiers) = pep440_rs::VersionSpecifiers::from_str(&self.specifiers) else {
            return false;
        };
        // A feature release satisfies `>=3.11.4` when some patch release of it does.
        [0, 99]
            .iter()
            .any(|patch| specifiers.contains(&pep440_rs::Version::new([major, minor, *patch])))
    }
}

impl fmt::Display for PythonConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.specifiers)
    }
}

/// How the project's third-party dependencies are declared, and locked when they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DependencySource {
    /// A requirements file; `lock` is set when every requirement is pinned and hashed.
    Requirements {
        /// The main requirements file.
        file: RequirementsFile,
        /// The same file read as a lock, when fully hashed.
        lock: Option<Lock>,
        /// A development requirements file (`requirements-dev.txt`), if any.
        dev: Option<RequirementsFile>,
    },
    /// A lock file (uv.lock, poetry.lock, pylock.toml, Pipfile.lock).
    Locked {
        /// The lock.
        lock: Lock,
        /// The manifest the lock's tool reads beside it (pyproject.toml or Pipfile).
        manifest: Option<PathBuf>,
    },
    /// Declared but not locked: `[project].dependencies`, `[tool.poetry]` or a Pipfile.
    Unlocked {
        /// The manifest.
        manifest: PathBuf,
        /// Which kind of declaration it is (only PEP 621 can be installed without a lock).
        format: ManifestFormat,
        /// The PEP 508 requirements of `[project].dependencies` (empty for other formats).
        requirements: Vec<String>,
    },
    /// No third-party dependencies declared anywhere.
    #[default]
    None,
}

impl DependencySource {
    /// The lock, when the dependencies are locked.
    pub fn lock(&self) -> Option<&Lock> {
        match self {
            DependencySource::Requirements { lock, .. } => lock.as_ref(),
            DependencySource::Locked { lock, .. } => Some(lock),
            _ => None,
        }
    }

    /// Whether some requirement is left for the installer to resolve: no lock pins everything.
    pub fn has_unpinned(&self) -> bool {
        match self {
            DependencySource::Requirements { lock, .. } => lock.is_none(),
            DependencySource::Unlocked { .. } => true,
            DependencySource::Locked { .. } | DependencySource::None => false,
        }
    }

    /// The files an install needs, relative to the project root (copied before the source, L06).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = match self {
            DependencySource::Requirements { file, dev, .. } => {
                let mut files = vec![file.path.clone()];
                files.extend(file.includes.iter().cloned());
                if let Some(dev) = dev {
                    files.push(dev.path.clone());
                    files.extend(dev.includes.iter().cloned());
                }
                files
            }
            DependencySource::Locked { lock, manifest } => manifest
                .iter()
                .cloned()
                .chain([lock.path.clone()])
                .collect(),
            DependencySource::Unlocked { manifest, .. } => vec![manifest.clone()],
            DependencySource::None => Vec::new(),
        };
        let mut seen = BTreeSet::new();
        files.retain(|f| seen.insert(f.clone()));
        files
    }

    /// A short description for plans: "uv.lock (hashed)".
    pub fn describe(&self) -> String {
        match self {
            DependencySource::Requirements { file, lock, .. } => format!(
                "{}{}",
                file.path.display(),
                if lock.is_some() {
                    " (pinned, hashed)"
                } else {
                    ""
                }
            ),
            DependencySource::Locked { lock, .. } => format!("{}", lock.path.display()),
            DependencySource::Unlocked { manifest, .. } => {
                format!("{} (not locked)", manifest.display())
            }
            DependencySource::None => "no dependencies".to_string(),
        }
    }
}

/// How unlocked dependencies are declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManifestFormat {
    /// PEP 621 `[project].dependencies`.
    Pyproject,
    /// `[tool.poetry.dependencies]` without a `[project]` table.
    Poetry,
    /// A Pipfile.
    Pipfile,
    /// `install_requires` of a `setup.py`, read as literals.
    SetupPy,
}

/// A console script the project declares (`[project.scripts]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsoleScript {
    /// The command name.
    pub name: String,
    /// `module:function`.
    pub target: String,
}

/// The project is an installable distribution.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Package {
    /// Its build backend, when `[build-system]` names one.
    pub build_backend: Option<String>,
    /// Its import packages live under `src/`.
    pub src_layout: bool,
    /// What makes it a package (`pyproject.toml` `[build-system]`, `setup.py`).
    pub source: Source,
    /// Its version comes from git through setuptools-scm (or hatch-vcs): building it without
    /// `.git` needs the version given (`SETUPTOOLS_SCM_PRETEND_VERSION`).
    pub scm_version: bool,
    /// Its backend finds code to put in a wheel: configured, in `src/`, or named like the
    /// project. `false` for a backend that only looks for a package named like the project
    /// (hatchling, flit, poetry-core, uv_build) when there is none: its pyproject.toml only
    /// declares dependencies, and building it fails.
    pub finds_code: bool,
    /// `[project]`'s `requires-python` when it is not PEP 440 (Poetry's `^3.13`, read the
    /// Poetry way for the Python choice): the backend copies it into the wheel's
    /// `Requires-Python`, which uv refuses to build or install and pip only warns about.
    pub invalid_requires_python: Option<Fact<String>>,
}

/// Everything read from manifests, before code is scanned.
#[derive(Debug, Default)]
pub(crate) struct Manifests {
    pub pyproject_text: Option<String>,
    pub name: Option<Fact<String>>,
    pub version: Option<Fact<String>>,
    pub python: Vec<Fact<PythonConstraint>>,
    pub dependencies: DependencySource,
    pub runtime_packages: BTreeSet<PackageName>,
    pub dev_packages: BTreeSet<PackageName>,
    pub dev_requirements: Vec<String>,
    pub python_classifiers: Vec<Fact<String>>,
    pub package: Option<Package>,
    pub scripts: Vec<Fact<ConsoleScript>>,
    pub src_layout: bool,
    /// The members of the uv workspace this directory is the virtual root of (a
    /// `[tool.uv.workspace]` and no `[project]`): the services are in them.
    pub workspace_members: Vec<PathBuf>,
    found_any: bool,
}

impl Manifests {
    pub fn is_empty(&self) -> bool {
        !self.found_any
    }
}

const PYPROJECT: &str = "pyproject.toml";
const PIPFILE: &str = "Pipfile";
const PYTHON_VERSION: &str = ".python-version";
const SETUP_PY: &str = "setup.py";

/// Names declared in manifests, and the manifest that would drive an install without a lock.
#[derive(Default)]
struct Declared {
    main: BTreeSet<PackageName>,
    dev: BTreeSet<PackageName>,
    dev_requirements: Vec<String>,
    unlocked: Option<(PathBuf, ManifestFormat)>,
    /// `[tool.poetry.dependencies]` as PEP 508, for an install without poetry.lock.
    poetry_requirements: Vec<String>,
}

impl Declared {
    /// Install from `manifest` when nothing stronger was declared before it.
    fn unlocked_default(&mut self, manifest: &str, format: ManifestFormat) {
        self.unlocked
            .get_or_insert_with(|| (PathBuf::from(manifest), format));
    }
}

/// Whether `dir` declares dependencies of its own (a manifest, lock or requirements file that
/// reads cleanly).
pub(crate) fn declares_dependencies(dir: &Path) -> bool {
    read(dir).is_ok_and(|m| !m.is_empty())
}

/// Read every manifest and lock in `root`.
///
/// Each format has its own function below; this one fixes the order they are read in (which
/// decides which error is reported first, and the order of the Python constraints) and picks
/// the [`DependencySource`]: a lock, else requirements files, else an unlocked manifest.
pub(crate) fn read(root: &Path) -> Result<Manifests, DetectError> {
    let mut m = Manifests::default();
    let mut declared = Declared::default();
    let pyproject_text = read_optional(root, PYPROJECT)?;
    let pyproject = pyproject_text.as_deref().map(parse_pyproject).transpose()?;
    m.src_layout = root.join("src").is_dir();

    m.python.extend(read_python_version(root)?);

    if let (Some(pyproject), Some(text)) = (&pyproject, &pyproject_text) {
        m.found_any = true;
        if pyproject.project.is_none()
            && let Some(workspace) = pyproject
                .tool
                .uv
                .as_ref()
                .and_then(|uv| uv.workspace.as_ref())
        {
            m.workspace_members = workspace_members(root, workspace);
        }
        if let Some(project) = &pyproject.project {
            read_pep621(project, text, &mut m, &mut declared)?;
        }
        read_dependency_groups(pyproject, &mut declared);
        if let Some(poetry) = &pyproject.tool.poetry {
            read_poetry(
                poetry,
                pyproject.project.is_some(),
                text,
                &mut m,
                &mut declared,
            )?;
        }
        m.package = build_system_package(pyproject, text, root, m.src_layout);
        m.version = pyproject
            .project
            .as_ref()
            .and_then(|p| p.version.clone())
            .or_else(|| {
                pyproject
                    .tool
                    .poetry
                    .as_ref()
                    .and_then(|p| p.version.clone())
            })
            .map(|v| Fact::new(v, Source::file(PYPROJECT)));
    }
    let mut setup_requires = Vec::new();
    let mut setup_requirements_file = None;
    if let Some(text) = read_optional(root, SETUP_PY)? {
        m.found_any = true;
        let setup = crate::setup_py::read(&text);
        if m.package.is_none() {
            m.package = Some(Package {
                build_backend: None,
                src_layout: m.src_layout,
                source: Source::file(SETUP_PY),
                scm_version: setup.scm_version,
                finds_code: true,
                invalid_requires_python: None,
            });
        }
        if m.name.is_none() {
            m.name = setup.name.map(|n| Fact::new(n, Source::file(SETUP_PY)));
        }
        if let Some(requires) = setup.install_requires.filter(|r| !r.is_empty()) {
            declared.main.extend(
                requires
                    .iter()
                    .filter_map(|r| PackageName::of_requirement(r)),
            );
            declared.unlocked_default(SETUP_PY, ManifestFormat::SetupPy);
            setup_requires = requires;
        }
        setup_requirements_file = setup
            .requirements_file
            .filter(|file| root.join(file).is_file());
    }

    if let Some(text) = read_optional(root, PIPFILE)? {
        m.found_any = true;
        read_pipfile(&text, &mut m, &mut declared)?;
    }

    let project_name = pyproject
        .as_ref()
        .and_then(|p| p.project.as_ref())
        .and_then(|p| p.name.as_ref())
        .map(|n| n.get_ref().clone());
    let locked = match read_lock(root)? {
        Some(locked) => Some(locked),
        None => find_workspace(root, project_name.as_deref())?
            .map(|(rel, workspace)| {
                lock::read_uv_workspace_lock(root, &rel, workspace).map(|l| (l, Some(PYPROJECT)))
            })
            .transpose()?,
    };
    let requirements = find_requirements(root, setup_requirements_file.as_deref())?;
    let pep621 = pyproject
        .as_ref()
        .and_then(|p| p.project.as_ref())
        .map(|p| p.dependencies.clone())
        .unwrap_or_default();
    m.dependencies = dependency_source(
        root,
        locked,
        requirements,
        declared.unlocked,
        (pep621, setup_requires, declared.poetry_requirements),
        &mut m,
    )?;
    m.runtime_packages.extend(declared.main);
    m.dev_requirements = declared.dev_requirements;
    m.dev_packages.extend(
        declared
            .dev
            .into_iter()
            .filter(|d| !m.runtime_packages.contains(d)),
    );
    m.pyproject_text = pyproject_text;
    Ok(m)
}

/// Where `span` of `text` starts, as a source in `file`.
fn source_at(file: &str, text: &str, span: std::ops::Range<usize>) -> Source {
    Source::line(file, line_of(text, span.start))
}

// .python-version ---------------------------------------------------------------------------

/// `.python-version` (pyenv, uv): its first version line becomes `==MAJOR.MINOR.*`.
fn read_python_version(root: &Path) -> Result<Option<Fact<PythonConstraint>>, DetectError> {
    let Some(text) = read_optional(root, PYTHON_VERSION)? else {
        return Ok(None);
    };
    let version = text
        .lines()
        .map(str::trim)
        .enumerate()
        .find(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((index, version)) = version else {
        return Ok(None);
    };
    let line = index + 1;
    let Some((major, minor)) = feature_version(version) else {
        return Err(DetectError::malformed(
            PYTHON_VERSION,
            Some(line),
            format!("`{version}` is not a Python version"),
            "write a version such as 3.12 (pyenv or uv style)",
        ));
    };
    Ok(Some(Fact::new(
        PythonConstraint {
            specifiers: format!("=={major}.{minor}.*"),
        },
        Source::line(PYTHON_VERSION, line),
    )))
}

// pyproject.toml ----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct PyProject {
    project: Option<ProjectTable>,
    #[serde(rename = "build-system")]
    build_system: Option<BuildSystem>,
    #[serde(default, rename = "dependency-groups")]
    dependency_groups: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    tool: ToolTable,
}

#[derive(Deserialize)]
struct ProjectTable {
    name: Option<Spanned<String>>,
    version: Option<String>,
    #[serde(rename = "requires-python")]
    requires_python: Option<Spanned<String>>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default, rename = "optional-dependencies")]
    optional_dependencies: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    scripts: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    classifiers: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
struct BuildSystem {
    #[serde(rename = "build-backend")]
    build_backend: Option<String>,
    #[serde(default)]
    requires: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ToolTable {
    poetry: Option<PoetryTable>,
    uv: Option<UvTable>,
}

#[derive(Deserialize)]
struct PoetryTable {
    name: Option<Spanned<String>>,
    version: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default, rename = "dev-dependencies")]
    dev_dependencies: BTreeMap<String, toml::Value>,
    #[serde(default)]
    group: BTreeMap<String, PoetryGroup>,
    #[serde(default)]
    scripts: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(rename = "package-mode")]
    package_mode: Option<bool>,
}

#[derive(Deserialize)]
struct PoetryGroup {
    #[serde(default)]
    dependencies: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct UvTable {
    #[serde(default, rename = "dev-dependencies")]
    dev_dependencies: Vec<String>,
    workspace: Option<UvWorkspaceTable>,
}

#[derive(Deserialize)]
struct UvWorkspaceTable {
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

fn parse_pyproject(text: &str) -> Result<PyProject, DetectError> {
    toml::from_str(text).map_err(|err| {
        toml_error(
            Path::new(PYPROJECT),
            text,
            &err,
            "fix the TOML syntax (see https://packaging.python.org/en/latest/specifications/pyproject-toml/)",
        )
    })
}

/// PEP 621 `[project]`: name, `requires-python`, dependencies, dev extras, console scripts.
fn read_pep621(
    project: &ProjectTable,
    text: &str,
    m: &mut Manifests,
    declared: &mut Declared,
) -> Result<(), DetectError> {
    if let Some(name) = &project.name {
        m.name = Some(Fact::new(
            name.get_ref().clone(),
            source_at(PYPROJECT, text, name.span()),
        ));
    }
    if let Some(requires) = &project.requires_python {
        m.python.push(requires_python(requires, text)?);
    }
    m.python_classifiers
        .extend(project.classifiers.iter().filter_map(|c| {
            let version = c
                .get_ref()
                .strip_prefix("Programming Language :: Python :: ")?
                .trim();
            let (major, minor) = version.split_once('.')?;
            (major.parse::<u64>().is_ok() && minor.parse::<u64>().is_ok())
                .then(|| Fact::new(version.to_string(), source_at(PYPROJECT, text, c.span())))
        }));
    declared.main.extend(
        project
            .dependencies
            .iter()
            .filter_map(|d| PackageName::of_requirement(d)),
    );
    declared.dev.extend(
        project
            .optional_dependencies
            .iter()
            .filter(|(extra, _)| is_dev_group(extra))
            .flat_map(|(_, deps)| deps.iter().filter_map(|d| PackageName::of_requirement(d))),
    );
    for (name, target) in &project.scripts {
        m.scripts.push(Fact::new(
            ConsoleScript {
                name: name.clone(),
                target: target.get_ref().clone(),
            },
            source_at(PYPROJECT, text, target.span()),
        ));
    }
    if !project.dependencies.is_empty() {
        declared.unlocked = Some((PathBuf::from(PYPROJECT), ManifestFormat::Pyproject));
    }
    Ok(())
}

/// `requires-python`, which must be PEP 440 specifiers.
fn requires_python(
    requires: &Spanned<String>,
    text: &str,
) -> Result<Fact<PythonConstraint>, DetectError> {
    let source = source_at(PYPROJECT, text, requires.span());
    if pep440_rs::VersionSpecifiers::from_str(requires.get_ref()).is_err() {
        // Poetry's syntax (`^3.13`) slips into `[project]` in projects Poetry 2 manages; Poetry
        // reads it, so terrarium does too rather than refusing the project.
        if let Some(specifiers) = poetry_to_pep440(requires.get_ref()) {
            return Ok(Fact::new(PythonConstraint { specifiers }, source));
        }
        return Err(DetectError::malformed(
            PYPROJECT,
            source.line,
            format!(
                "requires-python = {:?} is not a PEP 440 version specifier",
                requires.get_ref()
            ),
            "write it like \">=3.11\"",
        ));
    }
    Ok(Fact::new(
        PythonConstraint {
            specifiers: requires.get_ref().clone(),
        },
        source,
    ))
}

/// PEP 735 `[dependency-groups]` and uv's `[tool.uv] dev-dependencies`: development names.
fn read_dependency_groups(pyproject: &PyProject, declared: &mut Declared) {
    for (group, deps) in &pyproject.dependency_groups {
        if is_dev_group(group) {
            let requirements = deps.iter().filter_map(|d| d.as_str());
            declared
                .dev
                .extend(requirements.clone().filter_map(PackageName::of_requirement));
            declared
                .dev_requirements
                .extend(requirements.map(str::to_string));
        }
    }
    if let Some(uv) = &pyproject.tool.uv {
        declared.dev.extend(
            uv.dev_dependencies
                .iter()
                .filter_map(|d| PackageName::of_requirement(d)),
        );
        declared
            .dev_requirements
            .extend(uv.dev_dependencies.iter().cloned());
    }
}

/// `[tool.poetry]`: name (unless `[project]` has one), the `python` dependency, dependencies,
/// dev dependencies and groups, scripts. Poetry drives an unlocked install only without
/// a `[project]` table.
fn read_poetry(
    poetry: &PoetryTable,
    has_project: bool,
    text: &str,
    m: &mut Manifests,
    declared: &mut Declared,
) -> Result<(), DetectError> {
    if m.name.is_none()
        && let Some(name) = &poetry.name
    {
        m.name = Some(Fact::new(
            name.get_ref().clone(),
            source_at(PYPROJECT, text, name.span()),
        ));
    }
    for (dep, spec) in &poetry.dependencies {
        if dep == "python" {
            m.python.extend(poetry_python(spec, text)?);
        } else {
            declared.main.insert(PackageName::new(dep));
        }
    }
    declared
        .dev
        .extend(poetry.dev_dependencies.keys().map(|d| PackageName::new(d)));
    for (group, table) in &poetry.group {
        if is_dev_group(group) {
            declared
                .dev
                .extend(table.dependencies.keys().map(|d| PackageName::new(d)));
        }
    }
    for (name, target) in &poetry.scripts {
        if let Some(target_text) = poetry_script_target(target.get_ref()) {
            m.scripts.push(Fact::new(
                ConsoleScript {
                    name: name.clone(),
                    target: target_text,
                },
                source_at(PYPROJECT, text, target.span()),
            ));
        }
    }
    if !poetry.dependencies.is_empty() && !has_project {
        declared.unlocked = Some((PathBuf::from(PYPROJECT), ManifestFormat::Poetry));
        declared.poetry_requirements = poetry_requirements(poetry, text)?;
    }
    Ok(())
}

/// `[tool.poetry.dependencies]` as PEP 508 requirements, for an install without poetry.lock:
/// `fastapi = "^0.109.1"` is `fastapi>=0.109.1,<0.110`, a table's `extras` and `markers` are
/// kept, optional ones (extras of the project) are left out. A git, path or URL source, or
/// several constraints, can't be said in PEP 508 here: an error naming its line.
fn poetry_requirements(poetry: &PoetryTable, text: &str) -> Result<Vec<String>, DetectError> {
    let mut out = Vec::new();
    for (name, spec) in &poetry.dependencies {
        if name == "python" {
            continue;
        }
        let line = line_of(text, spec.span().start);
        let refuse = |what: &str| {
            DetectError::malformed(
                PYPROJECT,
                Some(line),
                format!("[tool.poetry.dependencies] {name}: {what}, and there is no poetry.lock"),
                "run `poetry lock` and commit poetry.lock",
            )
        };
        let (version, extras, markers) = match spec.get_ref() {
            toml::Value::String(version) => (version.as_str(), Vec::new(), None),
            toml::Value::Table(table) => {
                if table.get("optional").and_then(toml::Value::as_bool) == Some(true) {
                    continue;
                }
                if ["git", "path", "url", "file"]
                    .iter()
                    .any(|key| table.contains_key(*key))
                {
                    return Err(refuse("a git, path or URL source"));
                }
                let extras: Vec<&str> = table
                    .get("extras")
                    .and_then(toml::Value::as_array)
                    .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
                    .unwrap_or_default();
                (
                    table
                        .get("version")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("*"),
                    extras,
                    table.get("markers").and_then(toml::Value::as_str),
                )
            }
            _ => return Err(refuse("several constraints")),
        };
        let mut requirement = name.clone();
        if !extras.is_empty() {
            requirement.push_str(&format!("[{}]", extras.join(",")));
        }
        let version = version.trim();
        if version != "*" && !version.is_empty() {
            let Some(specifiers) = poetry_to_pep440(version) else {
                return Err(refuse(&format!("`{version}` is not a version constraint")));
            };
            requirement.push_str(&specifiers);
        }
        if let Some(markers) = markers {
            requirement.push_str(&format!(" ; {markers}"));
        }
        out.push(requirement);
    }
    Ok(out)
}

/// Poetry's `python = "^3.11"` as PEP 440; a table (`{ version = … }`) is not read.
fn poetry_python(
    spec: &Spanned<toml::Value>,
    text: &str,
) -> Result<Option<Fact<PythonConstraint>>, DetectError> {
    let Some(constraint) = spec.get_ref().as_str() else {
        return Ok(None);
    };
    let source = source_at(PYPROJECT, text, spec.span());
    let specifiers = poetry_to_pep440(constraint).ok_or_else(|| {
        DetectError::malformed(
            PYPROJECT,
            source.line,
            format!("python = {constraint:?} is not a version constraint terrarium understands"),
            "write it like \"^3.11\" or \">=3.11,<3.14\"",
        )
    })?;
    Ok(Some(Fact::new(PythonConstraint { specifiers }, source)))
}

/// A Poetry script: `"module:function"` or `{ reference = "module:function", … }`.
fn poetry_script_target(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Table(t) => t
            .get("reference")
            .and_then(|r| r.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// Convert a Poetry version constraint (`^3.11`, `~3.11`, `>=3.10,<3.13`, `3.11.*`) to PEP 440.
fn poetry_to_pep440(spec: &str) -> Option<String> {
    let spec = spec.trim();
    let bump = |v: &str, caret: bool| -> Option<String> {
        let parts: Vec<u64> = v
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let upper = match (caret, parts.as_slice()) {
            (true, [major, ..]) if *major > 0 => format!("{}", major.checked_add(1)?),
            (true, [0, minor, ..]) => format!("0.{}", minor.checked_add(1)?),
            (false, [major, minor, ..]) => format!("{major}.{}", minor.checked_add(1)?),
            (_, [major]) => format!("{}", major.checked_add(1)?),
            _ => return None,
        };
        Some(format!(">={v},<{upper}"))
    };
    let parts: Option<Vec<String>> = spec
        .split(',')
        .map(|part| {
            let part = part.trim();
            if let Some(v) = part.strip_prefix('^') {
                bump(v.trim(), true)
            } else if let Some(v) = part.strip_prefix("~=") {
                Some(format!("~={}", v.trim()))
            } else if let Some(v) = part.strip_prefix('~') {
                bump(v.trim(), false)
            } else if part.starts_with(|c: char| c.is_ascii_digit()) {
                Some(format!("=={part}"))
            } else {
                Some(part.to_string())
            }
        })
        .collect();
    let joined = parts?.join(",");
    pep440_rs::VersionSpecifiers::from_str(&joined)
        .ok()
        .map(|_| joined)
}

/// Backends that package only what is named like the project unless told otherwise.
const NAME_DISCOVERING_BACKENDS: [&str; 5] = [
    "hatchling.build",
    "flit_core.buildapi",
    "poetry.core.masonry.api",
    // Poetry's own backend before poetry-core (Poetry 1.0 and older).
    "poetry.masonry.api",
    "uv_build",
];

/// Whether the backend of `pyproject` (its `text`, in `root`) finds code to package.
fn finds_code(pyproject: &PyProject, text: &str, root: &Path, src_layout: bool) -> bool {
    static SELECTION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?m)^\s*(?:packages|py-modules|only-include|include|module-name|\[tool\.flit\.module\])\s*[=\]]?",
        )
        .expect("static regex")
    });
    let backend = pyproject
        .build_system
        .as_ref()
        .and_then(|b| b.build_backend.as_deref())
        .unwrap_or_default();
    if src_layout || !NAME_DISCOVERING_BACKENDS.contains(&backend) || SELECTION.is_match(text) {
        return true;
    }
    let name = pyproject
        .project
        .as_ref()
        .and_then(|p| p.name.as_ref())
        .or_else(|| pyproject.tool.poetry.as_ref().and_then(|p| p.name.as_ref()))
        .map(|n| n.get_ref().clone());
    let Some(name) = name else {
        return true;
    };
    let module = PackageName::new(&name).file_name();
    root.join(&module).is_dir() || root.join(format!("{module}.py")).is_file()
}

/// A `[build-system]` makes the project a package, unless Poetry's `package-mode = false`.
fn build_system_package(
    pyproject: &PyProject,
    text: &str,
    root: &Path,
    src_layout: bool,
) -> Option<Package> {
    let poetry_package_mode = pyproject
        .tool
        .poetry
        .as_ref()
        .and_then(|p| p.package_mode)
        .unwrap_or(true);
    let build = pyproject.build_system.as_ref()?;
    let scm = |name: &str| {
        let name = name.to_ascii_lowercase().replace('_', "-");
        name.starts_with("setuptools-scm") || name.starts_with("hatch-vcs")
    };
    poetry_package_mode.then(|| Package {
        build_backend: build.build_backend.clone(),
        src_layout,
        source: Source::file(PYPROJECT),
        scm_version: build.requires.iter().any(|r| scm(r)),
        finds_code: finds_code(pyproject, text, root, src_layout),
        invalid_requires_python: pyproject
            .project
            .as_ref()
            .and_then(|p| p.requires_python.as_ref())
            .filter(|r| pep440_rs::VersionSpecifiers::from_str(r.get_ref()).is_err())
            .map(|r| Fact::new(r.get_ref().clone(), source_at(PYPROJECT, text, r.span()))),
    })
}

// Pipfile -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Pipfile {
    #[serde(default)]
    packages: BTreeMap<String, toml::Value>,
    #[serde(default, rename = "dev-packages")]
    dev_packages: BTreeMap<String, toml::Value>,
    requires: Option<PipfileRequires>,
}

#[derive(Deserialize)]
struct PipfileRequires {
    python_version: Option<Spanned<String>>,
    python_full_version: Option<Spanned<String>>,
}

/// A Pipfile: `[packages]`, `[dev-packages]` and `[requires]`'s Python version. It drives an
/// unlocked install when pyproject.toml declared nothing.
fn read_pipfile(text: &str, m: &mut Manifests, declared: &mut Declared) -> Result<(), DetectError> {
    let pipfile: Pipfile = toml::from_str(text).map_err(|err| {
        toml_error(
            Path::new(PIPFILE),
            text,
            &err,
            "fix the TOML syntax of the Pipfile",
        )
    })?;
    declared
        .main
        .extend(pipfile.packages.keys().map(|k| PackageName::new(k)));
    declared
        .dev
        .extend(pipfile.dev_packages.keys().map(|k| PackageName::new(k)));
    if let Some(requires) = pipfile.requires
        && let Some(version) = requires.python_full_version.or(requires.python_version)
    {
        m.python.extend(pipfile_python(&version, text)?);
    }
    if !pipfile.packages.is_empty() {
        declared.unlocked_default(PIPFILE, ManifestFormat::Pipfile);
    }
    Ok(())
}

/// `python_version = "3.11"` (or `python_full_version`) as `==3.11.*`.
fn pipfile_python(
    version: &Spanned<String>,
    text: &str,
) -> Result<Option<Fact<PythonConstraint>>, DetectError> {
    let source = source_at(PIPFILE, text, version.span());
    let version = version.get_ref().trim();
    match feature_version(version) {
        Some((major, minor)) => Ok(Some(Fact::new(
            PythonConstraint {
                specifiers: format!("=={major}.{minor}.*"),
            },
            source,
        ))),
        // A bare major version (`3`) allows every feature release: no constraint.
        None if version.parse::<u64>().is_ok() => Ok(None),
        None => Err(DetectError::malformed(
            PIPFILE,
            source.line,
            format!("python_version = {version:?} is not a Python version"),
            "write it like \"3.11\" under [requires]",
        )),
    }
}

// requirements files ------------------------------------------------------------------------

/// `requirements.txt` (or the only `requirements*.txt`) and a dev file beside it.
fn find_requirements(
    root: &Path,
    named_by_setup_py: Option<&str>,
) -> Result<Option<(RequirementsFile, Option<RequirementsFile>)>, DetectError> {
    const MAIN: [&str; 5] = [
        "requirements.txt",
        "requirements/requirements.txt",
        "requirements/production.txt",
        "requirements/prod.txt",
        "requirements/base.txt",
    ];
    const DEV: [&str; 5] = [
        "requirements-dev.txt",
        "dev-requirements.txt",
        "requirements_dev.txt",
        "requirements/dev.txt",
        "requirements-test.txt",
    ];
    let Some(main) = MAIN
        .iter()
        .copied()
        .chain(named_by_setup_py)
        .find(|p| root.join(p).is_file())
    else {
        return Ok(None);
    };
    let main = requirements::read(root, Path::new(main))?;
    let dev = match DEV.iter().find(|p| root.join(p).is_file()) {
        Some(dev) => Some(requirements::read(root, Path::new(dev))?),
        None => None,
    };
    Ok(Some((main, dev)))
}

// Locks and the dependency source -----------------------------------------------------------

/// The strongest lock present (uv.lock, pylock.toml, poetry.lock, Pipfile.lock), with the
/// manifest its tool needs beside it.
fn read_lock(root: &Path) -> Result<Option<(Lock, Option<&'static str>)>, DetectError> {
    let present = |name: &str| root.join(name).is_file();
    Ok(if present("uv.lock") {
        Some((
            lock::read_uv_lock(root, Path::new("uv.lock"))?,
            Some(PYPROJECT),
        ))
    } else if let Some(pylock) = find_pylock(root) {
        Some((lock::read_pylock(root, &pylock)?, None))
    } else if present("poetry.lock") {
        Some((
            lock::read_poetry_lock(root, Path::new("poetry.lock"))?,
            Some(PYPROJECT),
        ))
    } else if present("Pipfile.lock") {
        Some((
            lock::read_pipfile_lock(root, Path::new("Pipfile.lock"))?,
            Some(PIPFILE),
        ))
    } else {
        None
    })
}

/// How many directories up a uv workspace root may be (`api/` is one below it).
const WORKSPACE_DEPTH: usize = 3;

/// The uv workspace `root` is a member of, when the project has no lock of its own: a
/// directory up from it with a `uv.lock` and a `pyproject.toml` whose `[tool.uv.workspace]`
/// members include it. Returns the lock's path relative to `root` and the workspace.
fn find_workspace(
    root: &Path,
    name: Option<&str>,
) -> Result<Option<(PathBuf, lock::Workspace)>, DetectError> {
    let (Some(name), Ok(here)) = (name, std::fs::canonicalize(root)) else {
        return Ok(None);
    };
    let mut up = PathBuf::new();
    for ancestor in here.ancestors().skip(1).take(WORKSPACE_DEPTH) {
        up.push("..");
        if !ancestor.join("uv.lock").is_file() {
            continue;
        }
        let rel = up.join(PYPROJECT);
        let Some(text) = read_optional(root, &rel.to_string_lossy())? else {
            continue;
        };
        let pyproject: PyProject = toml::from_str(&text)
            .map_err(|err| toml_error(&rel, &text, &err, "fix the TOML syntax"))?;
        let Some(workspace) = pyproject.tool.uv.and_then(|uv| uv.workspace) else {
            continue;
        };
        let members = workspace_members(ancestor, &workspace);
        let Ok(member) = here.strip_prefix(ancestor) else {
            continue;
        };
        if !members.iter().any(|m| m == member) {
            continue;
        }
        return Ok(Some((
            up.join("uv.lock"),
            lock::Workspace {
                root: up.clone(),
                member: member.to_path_buf(),
                package: PackageName::new(name),
                members,
            },
        )));
    }
    Ok(None)
}

/// The member directories of a uv workspace rooted at `dir`: each `members` pattern (`api`,
/// `packages/*`) matched against directories that hold a `pyproject.toml`, less `exclude`.
fn workspace_members(dir: &Path, workspace: &UvWorkspaceTable) -> Vec<PathBuf> {
    let matching = |patterns: &[String]| -> Vec<PathBuf> {
        let mut found = Vec::new();
        for pattern in patterns {
            let mut paths = vec![PathBuf::new()];
            for part in pattern.trim_end_matches('/').split('/') {
                paths = paths
                    .into_iter()
                    .flat_map(|path| {
                        if !part.contains('*') {
                            return vec![path.join(part)];
                        }
                        std::fs::read_dir(dir.join(&path))
                            .map(|entries| {
                                entries
                                    .filter_map(Result::ok)
                                    .filter(|e| e.path().is_dir())
                                    .map(|e| e.file_name().to_string_lossy().into_owned())
                                    .filter(|n| wildcard_match(part, n))
                                    .map(|n| path.join(n))
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect();
            }
            found.extend(paths);
        }
        found
    };
    let excluded = matching(&workspace.exclude);
    let mut members: Vec<PathBuf> = matching(&workspace.members)
        .into_iter()
        .filter(|m| dir.join(m).join(PYPROJECT).is_file() && !excluded.contains(m))
        .collect();
    members.sort();
    members.dedup();
    members
}

/// `*` matches any run of characters in one path component.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// `pylock.toml`, else the first `pylock.NAME.toml`.
fn find_pylock(root: &Path) -> Option<PathBuf> {
    if root.join("pylock.toml").is_file() {
        return Some(PathBuf::from("pylock.toml"));
    }
    let mut named: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| PathBuf::from(e.file_name()))
        .filter(|p| {
            let name = p.to_string_lossy();
            name.starts_with("pylock.") && name.ends_with(".toml")
        })
        .collect();
    named.sort();
    named.into_iter().next()
}

/// How the dependencies are installed: from the lock, else the requirements files, else the
/// unlocked manifest. Records the locked or required names in `m`.
fn dependency_source(
    root: &Path,
    locked: Option<(Lock, Option<&'static str>)>,
    requirements: Option<(RequirementsFile, Option<RequirementsFile>)>,
    unlocked: Option<(PathBuf, ManifestFormat)>,
    (pep621, setup_py, poetry): (Vec<String>, Vec<String>, Vec<String>),
    m: &mut Manifests,
) -> Result<DependencySource, DetectError> {
    if let Some((lock, manifest)) = locked {
        m.found_any = true;
        if let Some(manifest) = manifest
            && !root.join(manifest).is_file()
        {
            return Err(DetectError::malformed(
                &lock.path,
                None,
                format!("{} needs {manifest} beside it", lock.format),
                format!("add {manifest} or remove the stale lock"),
            ));
        }
        m.runtime_packages.extend(lock.names(Group::Main));
        m.dev_packages.extend(lock.names(Group::Dev));
        return Ok(DependencySource::Locked {
            lock,
            manifest: manifest.map(PathBuf::from),
        });
    }
    if let Some((main, dev)) = requirements {
        m.found_any = true;
        m.runtime_packages
            .extend(main.requirements.iter().map(|r| r.name.clone()));
        if let Some(dev) = &dev {
            m.dev_packages
                .extend(dev.requirements.iter().map(|r| r.name.clone()));
        }
        let lock = if main.requirements.iter().any(|r| !r.hashes.is_empty()) {
            Some(lock::from_requirements(&main, Group::Main)?)
        } else {
            None
        };
        return Ok(DependencySource::Requirements {
            file: main,
            lock,
            dev,
        });
    }
    Ok(match unlocked {
        Some((manifest, format)) => DependencySource::Unlocked {
            manifest,
            format,
            requirements: match format {
                ManifestFormat::Pyproject => pep621,
                ManifestFormat::SetupPy => setup_py,
                ManifestFormat::Poetry => poetry,
                ManifestFormat::Pipfile => Vec::new(),
            },
        },
        None => DependencySource::None,
    })
}

// Helpers -----------------------------------------------------------------------------------

/// The text of `rel` under `root`, when that file exists.
fn read_optional(root: &Path, rel: &str) -> Result<Option<String>, DetectError> {
    if !root.join(rel).is_file() {
        return Ok(None);
    }
    read_text(root, Path::new(rel)).map(Some)
}

/// The `major.minor` of a dotted numeric version (`3.12`, `3.12.4`); `None` unless it has at
/// least two parts and every part is a number.
fn feature_version(version: &str) -> Option<(u64, u64)> {
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [major, minor, ..] => Some((*major, *minor)),
        _ => None,
    }
}

/// Extras and groups that hold development tools.
fn is_dev_group(name: &str) -> bool {
    matches!(
        name,
        "dev" | "develop" | "development" | "test" | "tests" | "testing" | "lint"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poetry_syntax_in_requires_python_is_read_the_poetry_way() {
        let text = "[project]\nname = \"x\"\nrequires-python = \"^3.13\"\n";
        let raw: PyProject = toml::from_str(text).unwrap();
        let requires = raw.project.unwrap().requires_python.unwrap();
        let fact = requires_python(&requires, text).unwrap();
        assert_eq!(fact.value.specifiers, ">=3.13,<4");
        assert_eq!(fact.source.line, Some(3));
        let text = "[project]\nname = \"x\"\nrequires-python = \"three\"\n";
        let raw: PyProject = toml::from_str(text).unwrap();
        let requires = raw.project.unwrap().requires_python.unwrap();
        assert!(requires_python(&requires, text).is_err());
    }

    #[test]
    fn poetry_constraints_convert() {
        assert_eq!(poetry_to_pep440("^3.11").as_deref(), Some(">=3.11,<4"));
        assert_eq!(poetry_to_pep440("~3.11").as_deref(), Some(">=3.11,<3.12"));
        assert_eq!(
            poetry_to_pep440(">=3.10,<3.13").as_deref(),
            Some(">=3.10,<3.13")
        );
        assert_eq!(poetry_to_pep440("3.11.*").as_deref(), Some("==3.11.*"));
        assert!(poetry_to_pep440("^three").is_none());
    }

    #[test]
    fn poetry_constraint_at_the_integer_limit_is_refused_not_overflowed() {
        // `major + 1` once overflowed (a panic in debug builds).
        assert!(poetry_to_pep440("^18446744073709551615").is_none());
        assert!(poetry_to_pep440("^0.18446744073709551615").is_none());
        assert!(poetry_to_pep440("~3.18446744073709551615").is_none());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[tool.poetry]\nname = \"x\"\n[tool.poetry.dependencies]\npython = \"^18446744073709551615\"\n",
        )
        .unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("pyproject.toml:4: python = ") && err.contains("fix:"),
            "{err}"
        );
    }

    #[test]
    fn a_backend_that_finds_no_package_named_like_the_project_finds_no_code() {
        let hatch = "[project]\nname = \"microblog-api\"\nversion = \"1.0\"\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), hatch).unwrap();
        std::fs::create_dir(dir.path().join("api")).unwrap();
        assert!(!read(dir.path()).unwrap().package.unwrap().finds_code);
        // Named like the project: found.
        std::fs::create_dir(dir.path().join("microblog_api")).unwrap();
        assert!(read(dir.path()).unwrap().package.unwrap().finds_code);
        // Configured: found.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(
            other.path().join("pyproject.toml"),
            format!("{hatch}\n[tool.hatch.build.targets.wheel]\npackages = [\"api\"]\n"),
        )
        .unwrap();
        assert!(read(other.path()).unwrap().package.unwrap().finds_code);
        // setuptools discovers packages by itself.
        let setuptools = tempfile::tempdir().unwrap();
        std::fs::write(
            setuptools.path().join("pyproject.toml"),
            hatch.replace("hatchling.build", "setuptools.build_meta"),
        )
        .unwrap();
        assert!(read(setuptools.path()).unwrap().package.unwrap().finds_code);
        // Poetry's backend from before poetry-core, on a project that keeps its code in `app/`.
        let poetry = tempfile::tempdir().unwrap();
        std::fs::write(
            poetry.path().join("pyproject.toml"),
            "[tool.poetry]\nname = \"realworld-api\"\nversion = \"0.1.0\"\n\n\
             [tool.poetry.dependencies]\npython = \"^3.9\"\n\n[build-system]\n\
             requires = [\"poetry>=1.0\"]\nbuild-backend = \"poetry.masonry.api\"\n",
        )
        .unwrap();
        std::fs::create_dir(poetry.path().join("app")).unwrap();
        assert!(!read(poetry.path()).unwrap().package.unwrap().finds_code);
    }

    #[test]
    fn python_version_files_name_the_line_of_the_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".python-version"), "# pinned\n\n3.12.4\n").unwrap();
        let m = read(dir.path()).unwrap();
        assert_eq!(m.python[0].value.specifiers, "==3.12.*");
        assert_eq!(m.python[0].source.line, Some(3));
        std::fs::write(dir.path().join(".python-version"), "# pinned\nsystem\n").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with(".python-version:2: `system`"), "{err}");
    }

    #[test]
    fn pipfile_python_version_must_be_a_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Pipfile"),
            "[packages]\nflask = \"*\"\n[requires]\npython_version = \"3.x\"\n",
        )
        .unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("Pipfile:4: python_version = \"3.x\"") && err.contains("fix:"),
            "{err}"
        );
        std::fs::write(
            dir.path().join("Pipfile"),
            "[packages]\nflask = \"*\"\n[requires]\npython_version = \"3\"\n",
        )
        .unwrap();
        assert!(read(dir.path()).unwrap().python.is_empty());
    }

    #[test]
    fn python_constraint_allows_feature_releases() {
        let c = PythonConstraint {
            specifiers: ">=3.11.4,<3.13".into(),
        };
        assert!(c.allows(3, 11));
        assert!(c.allows(3, 12));
        assert!(!c.allows(3, 13));
        assert!(!c.allows(3, 10));
    }
}
