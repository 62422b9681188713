//! Manifests: pyproject.toml (PEP 621 and `[tool.poetry]`), Pipfile, requirements files,
//! `.python-version`, setup.py; and the choice of which of them drives the install.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

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
}

/// Everything read from manifests, before code is scanned.
#[derive(Debug, Default)]
pub(crate) struct Manifests {
    pub pyproject_text: Option<String>,
    pub name: Option<Fact<String>>,
    pub python: Vec<Fact<PythonConstraint>>,
    pub dependencies: DependencySource,
    pub runtime_packages: BTreeSet<PackageName>,
    pub dev_packages: BTreeSet<PackageName>,
    pub package: Option<Package>,
    pub scripts: Vec<Fact<ConsoleScript>>,
    pub src_layout: bool,
    found_any: bool,
}

impl Manifests {
    pub fn is_empty(&self) -> bool {
        !self.found_any
    }
}

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
    #[serde(rename = "requires-python")]
    requires_python: Option<Spanned<String>>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default, rename = "optional-dependencies")]
    optional_dependencies: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    scripts: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
struct BuildSystem {
    #[serde(rename = "build-backend")]
    build_backend: Option<String>,
}

#[derive(Deserialize, Default)]
struct ToolTable {
    poetry: Option<PoetryTable>,
    uv: Option<UvTable>,
}

#[derive(Deserialize)]
struct PoetryTable {
    name: Option<Spanned<String>>,
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
}

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

fn read_optional(root: &Path, rel: &str) -> Result<Option<String>, DetectError> {
    if !root.join(rel).is_file() {
        return Ok(None);
    }
    read_text(root, Path::new(rel)).map(Some)
}

/// Requirement name from a PEP 508 string; `None` for strings that don't parse (they are
/// reported by the tool that owns the file; here they only feed name-based detection).
fn requirement_name(spec: &str) -> Option<PackageName> {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = spec[..end].trim();
    (!name.is_empty()).then(|| PackageName::new(name))
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

/// Read every manifest and lock in `root`.
pub(crate) fn read(root: &Path) -> Result<Manifests, DetectError> {
    let mut m = Manifests::default();
    let pyproject_text = read_optional(root, "pyproject.toml")?;
    let pyproject: Option<PyProject> = match &pyproject_text {
        Some(text) => Some(toml::from_str(text).map_err(|err| {
            toml_error(
                Path::new("pyproject.toml"),
                text,
                &err,
                "fix the TOML syntax (see https://packaging.python.org/en/latest/specifications/pyproject-toml/)",
            )
        })?),
        None => None,
    };
    let pyproject_rel = Path::new("pyproject.toml");
    m.src_layout = root.join("src").is_dir();

    if let Some(text) = read_optional(root, ".python-version")? {
        let version = text
            .lines()
            .map(str::trim)
            .enumerate()
            .find(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        if let Some((index, version)) = version {
            let line = index + 1;
            let Some((major, minor)) = feature_version(version) else {
                return Err(DetectError::malformed(
                    ".python-version",
                    Some(line),
                    format!("`{version}` is not a Python version"),
                    "write a version such as 3.12 (pyenv or uv style)",
                ));
            };
            m.python.push(Fact::new(
                PythonConstraint {
                    specifiers: format!("=={major}.{minor}.*"),
                },
                Source::line(".python-version", line),
            ));
        }
    }

    let mut declared_main = BTreeSet::new();
    let mut declared_dev = BTreeSet::new();
    let mut unlocked_manifest = None;

    if let (Some(pyproject), Some(text)) = (&pyproject, &pyproject_text) {
        m.found_any = true;
        let spanned_line = |span: std::ops::Range<usize>| line_of(text, span.start);
        if let Some(project) = &pyproject.project {
            if let Some(name) = &project.name {
                m.name = Some(Fact::new(
                    name.get_ref().clone(),
                    Source::line(pyproject_rel, spanned_line(name.span())),
                ));
            }
            if let Some(requires) = &project.requires_python {
                let line = spanned_line(requires.span());
                if pep440_rs::VersionSpecifiers::from_str(requires.get_ref()).is_err() {
                    return Err(DetectError::malformed(
                        pyproject_rel,
                        Some(line),
                        format!(
                            "requires-python = {:?} is not a PEP 440 version specifier",
                            requires.get_ref()
                        ),
                        "write it like \">=3.11\"",
                    ));
                }
                m.python.push(Fact::new(
                    PythonConstraint {
                        specifiers: requires.get_ref().clone(),
                    },
                    Source::line(pyproject_rel, line),
                ));
            }
            declared_main.extend(
                project
                    .dependencies
                    .iter()
                    .filter_map(|d| requirement_name(d)),
            );
            declared_dev.extend(
                project
                    .optional_dependencies
                    .iter()
                    .filter(|(extra, _)| is_dev_group(extra))
                    .flat_map(|(_, deps)| deps.iter().filter_map(|d| requirement_name(d))),
            );
            for (name, target) in &project.scripts {
                m.scripts.push(Fact::new(
                    ConsoleScript {
                        name: name.clone(),
                        target: target.get_ref().clone(),
                    },
                    Source::line(pyproject_rel, spanned_line(target.span())),
                ));
            }
            if !project.dependencies.is_empty() {
                unlocked_manifest = Some((pyproject_rel.to_path_buf(), ManifestFormat::Pyproject));
            }
        }
        for (group, deps) in &pyproject.dependency_groups {
            if is_dev_group(group) {
                declared_dev.extend(
                    deps.iter()
                        .filter_map(|d| d.as_str())
                        .filter_map(requirement_name),
                );
            }
        }
        if let Some(uv) = &pyproject.tool.uv {
            declared_dev.extend(
                uv.dev_dependencies
                    .iter()
                    .filter_map(|d| requirement_name(d)),
            );
        }
        if let Some(poetry) = &pyproject.tool.poetry {
            if m.name.is_none()
                && let Some(name) = &poetry.name
            {
                m.name = Some(Fact::new(
                    name.get_ref().clone(),
                    Source::line(pyproject_rel, spanned_line(name.span())),
                ));
            }
            for (dep, spec) in &poetry.dependencies {
                if dep == "python" {
                    if let Some(text_spec) = spec.get_ref().as_str() {
                        let line = spanned_line(spec.span());
                        let specifiers = poetry_to_pep440(text_spec).ok_or_else(|| {
                            DetectError::malformed(
                                pyproject_rel,
                                Some(line),
                                format!("python = {text_spec:?} is not a version constraint terrarium understands"),
                                "write it like \"^3.11\" or \">=3.11,<3.14\"",
                            )
                        })?;
                        m.python.push(Fact::new(
                            PythonConstraint { specifiers },
                            Source::line(pyproject_rel, line),
                        ));
                    }
                } else {
                    declared_main.insert(PackageName::new(dep));
                }
            }
            declared_dev.extend(poetry.dev_dependencies.keys().map(|d| PackageName::new(d)));
            for (group, table) in &poetry.group {
                if is_dev_group(group) {
                    declared_dev.extend(table.dependencies.keys().map(|d| PackageName::new(d)));
                }
            }
            for (name, target) in &poetry.scripts {
                let target_text = match target.get_ref() {
                    toml::Value::String(s) => Some(s.clone()),
                    toml::Value::Table(t) => t
                        .get("reference")
                        .and_then(|r| r.as_str())
                        .map(str::to_string),
                    _ => None,
                };
                if let Some(target_text) = target_text {
                    m.scripts.push(Fact::new(
                        ConsoleScript {
                            name: name.clone(),
                            target: target_text,
                        },
                        Source::line(pyproject_rel, spanned_line(target.span())),
                    ));
                }
            }
            if !poetry.dependencies.is_empty() && pyproject.project.is_none() {
                unlocked_manifest = Some((pyproject_rel.to_path_buf(), ManifestFormat::Poetry));
            }
        }
        let poetry_package_mode = pyproject
            .tool
            .poetry
            .as_ref()
            .and_then(|p| p.package_mode)
            .unwrap_or(true);
        if let Some(build) = &pyproject.build_system
            && poetry_package_mode
        {
            m.package = Some(Package {
                build_backend: build.build_backend.clone(),
                src_layout: m.src_layout,
                source: Source::file(pyproject_rel),
            });
        }
    }
    if m.package.is_none() && root.join("setup.py").is_file() {
        m.found_any = true;
        m.package = Some(Package {
            build_backend: None,
            src_layout: m.src_layout,
            source: Source::file("setup.py"),
        });
    }

    // Pipfile.
    let pipfile_rel = Path::new("Pipfile");
    if let Some(text) = read_optional(root, "Pipfile")? {
        m.found_any = true;
        let pipfile: Pipfile = toml::from_str(&text).map_err(|err| {
            toml_error(
                pipfile_rel,
                &text,
                &err,
                "fix the TOML syntax of the Pipfile",
            )
        })?;
        declared_main.extend(pipfile.packages.keys().map(|k| PackageName::new(k)));
        declared_dev.extend(pipfile.dev_packages.keys().map(|k| PackageName::new(k)));
        if let Some(requires) = pipfile.requires
            && let Some(v) = requires.python_full_version.or(requires.python_version)
        {
            let version = v.get_ref().trim();
            let line = line_of(&text, v.span().start);
            match feature_version(version) {
                Some((major, minor)) => m.python.push(Fact::new(
                    PythonConstraint {
                        specifiers: format!("=={major}.{minor}.*"),
                    },
                    Source::line(pipfile_rel, line),
                )),
                // A bare major version (`3`) allows every feature release: no constraint.
                None if version.parse::<u64>().is_ok() => {}
                None => {
                    return Err(DetectError::malformed(
                        pipfile_rel,
                        Some(line),
                        format!("python_version = {version:?} is not a Python version"),
                        "write it like \"3.11\" under [requires]",
                    ));
                }
            }
        }
        if unlocked_manifest.is_none() && !pipfile.packages.is_empty() {
            unlocked_manifest = Some((pipfile_rel.to_path_buf(), ManifestFormat::Pipfile));
        }
    }

    // Locks, strongest first.
    let locked = if root.join("uv.lock").is_file() {
        Some((
            lock::read_uv_lock(root, Path::new("uv.lock"))?,
            Some(pyproject_rel),
        ))
    } else if let Some(pylock) = find_pylock(root) {
        Some((lock::read_pylock(root, &pylock)?, None))
    } else if root.join("poetry.lock").is_file() {
        Some((
            lock::read_poetry_lock(root, Path::new("poetry.lock"))?,
            Some(pyproject_rel),
        ))
    } else if root.join("Pipfile.lock").is_file() {
        Some((
            lock::read_pipfile_lock(root, Path::new("Pipfile.lock"))?,
            Some(pipfile_rel),
        ))
    } else {
        None
    };

    let requirements = find_requirements(root)?;
    let dependencies = if let Some((lock, manifest)) = locked {
        m.found_any = true;
        if let Some(manifest) = manifest
            && !root.join(manifest).is_file()
        {
            return Err(DetectError::malformed(
                &lock.path,
                None,
                format!("{} needs {} beside it", lock.format, manifest.display()),
                format!("add {} or remove the stale lock", manifest.display()),
            ));
        }
        m.runtime_packages.extend(lock.names(Group::Main));
        m.dev_packages.extend(lock.names(Group::Dev));
        DependencySource::Locked {
            lock,
            manifest: manifest.map(Path::to_path_buf),
        }
    } else if let Some((main, dev)) = requirements {
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
        DependencySource::Requirements {
            file: main,
            lock,
            dev,
        }
    } else if let Some((manifest, format)) = unlocked_manifest {
        DependencySource::Unlocked { manifest, format }
    } else {
        DependencySource::None
    };
    m.runtime_packages.extend(declared_main);
    m.dev_packages.extend(
        declared_dev
            .into_iter()
            .filter(|d| !m.runtime_packages.contains(d)),
    );
    m.dependencies = dependencies;
    m.pyproject_text = pyproject_text;
    Ok(m)
}

/// Extras and groups that hold development tools.
fn is_dev_group(name: &str) -> bool {
    matches!(
        name,
        "dev" | "develop" | "development" | "test" | "tests" | "testing" | "lint"
    )
}

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

/// `requirements.txt` (or the only `requirements*.txt`) and a dev file beside it.
fn find_requirements(
    root: &Path,
) -> Result<Option<(RequirementsFile, Option<RequirementsFile>)>, DetectError> {
    const MAIN: [&str; 3] = [
        "requirements.txt",
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
    let Some(main) = MAIN.iter().find(|p| root.join(p).is_file()) else {
        return Ok(None);
    };
    let main = requirements::read(root, Path::new(main))?;
    let dev = match DEV.iter().find(|p| root.join(p).is_file()) {
        Some(dev) => Some(requirements::read(root, Path::new(dev))?),
        None => None,
    };
    Ok(Some((main, dev)))
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

impl fmt::Display for PythonConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.specifiers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
