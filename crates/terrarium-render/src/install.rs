//! The build-stage steps that install a project's dependencies, one recipe per lock format.
//! Every recipe ends in `uv pip install` from a pinned, hash-checked list where the project
//! provides one (L13); the tools that read each lock format are pinned too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use terrarium_plan::{Plan, tools};
use terrarium_project::{DependencySource, LockFormat, ManifestFormat};

/// Which image an install is for: production (main dependencies, into `/install`) or
/// development (with dev tools, into the image's own site-packages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageKind {
    Production,
    Development,
}

impl ImageKind {
    fn uv_install(self) -> &'static str {
        match self {
            ImageKind::Production => "uv pip install --system --prefix /install",
            ImageKind::Development => "uv pip install --system",
        }
    }
}

/// What the Dockerfile does to install dependencies.
pub(crate) struct InstallSteps {
    /// Pinned tools installed with uv before anything else (poetry, pipenv).
    pub tools: Vec<String>,
    /// `COPY` groups: sources and the directory they go to, manifests first (L06).
    pub copies: Vec<(Vec<PathBuf>, String)>,
    /// Shell commands of the dependency `RUN`, joined with `&&`.
    pub commands: Vec<String>,
    /// Comment lines written just before that `RUN`.
    pub notes: Vec<String>,
}

const REQUIREMENTS: &str = "/tmp/requirements.txt";

/// Pure-Python build backends whose cut-off is lifted to the Python's release.
const BUILD_TOOLS: [&str; 2] = ["setuptools", "wheel"];

/// The steps for `plan` and `target`.
pub(crate) fn steps(plan: &Plan, target: ImageKind) -> InstallSteps {
    // What the project leaves unpinned is resolved as of its era, as `terrarium build` does;
    // for a project that pins everything, that is what building its source distributions
    // needs (the setuptools of a 2020 lock's day, not today's, builds a 2020 `setup.py`).
    let mut install = match plan.exclude_newer.value {
        Some(cutoff) => format!("{} --exclude-newer {cutoff}", target.uv_install()),
        None => target.uv_install().to_owned(),
    };
    // Packages with a later cut-off of their own. Build tools no older than the Python they
    // run on, as `terrarium build` resolves every build requirement (uv can only lift the
    // cut-off per package: the pure-Python backends, since one with compiled parts lacking a
    // wheel for this Python is skipped anyway); and the releases `terrarium build` took from
    // after the cut-off because no earlier one has a wheel for this Python (uv's cut-off is a
    // hard limit).
    let mut own_cutoff = BTreeMap::new();
    if let Some(floor) = plan
        .build_requires_cutoff()
        .filter(|floor| Some(*floor) != plan.exclude_newer.value)
    {
        for tool in BUILD_TOOLS {
            own_cutoff.insert(tool, floor);
        }
    }
    for (name, moment) in &plan.exclude_newer_package {
        let entry = own_cutoff.entry(name.as_str()).or_insert(*moment);
        *entry = (*entry).max(*moment);
    }
    for (name, moment) in own_cutoff {
        install.push_str(&format!(" --exclude-newer-package {name}={moment}"));
    }
    let dev = target == ImageKind::Development;
    let mut tools = Vec::new();
    let mut commands = Vec::new();
    let mut notes = Vec::new();
    if plan.exclude_newer.value.is_some() && plan.dependencies.value.has_unpinned() {
        notes.push(if plan.exclude_newer_package.is_empty() {
            "What the project doesn't pin is resolved as of its era (--exclude-newer). Where no \
             release before it installs on this Python, `terrarium build` takes a later one and \
             records it in terrarium.lock; if uv fails on an old release here, run `terrarium \
             build` once, then `terrarium init --force`."
                .to_owned()
        } else {
            let names: Vec<&str> = plan
                .exclude_newer_package
                .iter()
                .map(|(name, _)| name.as_str())
                .collect();
            format!(
                "What the project doesn't pin is resolved as of its era (--exclude-newer), except \
                 {}: no release before it installs on this Python, so these are the later ones \
                 `terrarium build` took (terrarium.lock).",
                names.join(", ")
            )
        });
    }
    let files = plan.dependency_files();
    match &plan.dependencies.value {
        DependencySource::Requirements {
            file,
            lock,
            dev: dev_file,
        } => {
            let hashes = if lock.is_some() && !dev {
                " --require-hashes"
            } else {
                ""
            };
            let mut command = format!("{install}{hashes} -r {}", file.path.display());
            if let (true, Some(dev_file)) = (dev, dev_file) {
                if !dev_file.includes.contains(&file.path) {
                    command = format!(
                        "{install} -r {} -r {}",
                        file.path.display(),
                        dev_file.path.display()
                    );
                } else {
                    command = format!("{install} -r {}", dev_file.path.display());
                }
            }
            commands.push(command);
        }
        DependencySource::Locked { lock, .. } => match lock.format {
            LockFormat::UvLock => {
                let groups = if dev { "" } else { " --no-dev" };
                let what = match &lock.workspace {
                    // The member's own dependencies, none of the workspace's packages.
                    Some(workspace) => {
                        format!(" --package {} --no-emit-workspace", workspace.package)
                    }
                    None => " --no-emit-project".to_string(),
                };
                commands.push(format!(
                    "uv export --frozen{groups}{what} --no-header --output-file {REQUIREMENTS}"
                ));
                commands.push(format!(
                    "{install} --require-hashes --no-deps -r {REQUIREMENTS}"
                ));
            }
            LockFormat::PoetryLock => {
                let versions = lock_tools(plan);
                tools.push(format!("poetry=={}", versions.poetry));
                tools.push(format!("poetry-plugin-export=={}", versions.poetry_export));
                let groups = if dev { "--all-groups" } else { "--only main" };
                commands.push(format!(
                    "poetry export --format requirements.txt {groups} --output {REQUIREMENTS}"
                ));
                commands.push(format!(
                    "{install} --require-hashes --no-deps -r {REQUIREMENTS}"
                ));
            }
            LockFormat::PipfileLock => {
                tools.push(format!("pipenv=={}", lock_tools(plan).pipenv));
                let groups = if dev { " --dev" } else { "" };
                commands.push(format!(
                    "pipenv requirements{groups} --hash > {REQUIREMENTS}"
                ));
                commands.push(format!(
                    "{install} --require-hashes --no-deps -r {REQUIREMENTS}"
                ));
            }
            LockFormat::Pylock | LockFormat::Requirements => {
                commands.push(format!("{install} -r {}", lock.path.display()));
            }
        },
        DependencySource::Unlocked {
            format: ManifestFormat::Pyproject,
            requirements,
            ..
        } if plan.uv_refuses_pyproject.is_some() => {
            // uv refuses to read a pyproject.toml whose `requires-python` is not PEP 440.
            let words: Vec<String> = requirements.iter().map(|r| shell_word(r)).collect();
            commands.push(format!("{install} {}", words.join(" ")));
        }
        DependencySource::Unlocked {
            format: format @ (ManifestFormat::SetupPy | ManifestFormat::Poetry),
            requirements,
            ..
        } => {
            // Read from setup.py's literals (running it needs the whole source, and git for
            // setuptools-scm, which the dependency step is cached without, L06), or from
            // [tool.poetry.dependencies] in PEP 508, which uv can't read from pyproject.toml.
            notes.push(match format {
                ManifestFormat::Poetry => "terrarium: ignore=unpinned-pip pyproject.toml declares \
                     ranges, not pins, and there is no poetry.lock: lock them (`poetry lock`) to \
                     pin every version (L13)"
                    .to_owned(),
                _ => "terrarium: ignore=unpinned-pip setup.py declares ranges, not pins: lock \
                     them (`uv pip compile setup.py -o requirements.txt`) to pin every version \
                     (L13)"
                    .to_owned(),
            });
            let words: Vec<String> = requirements.iter().map(|r| shell_word(r)).collect();
            commands.push(format!("{install} {}", words.join(" ")));
        }
        DependencySource::Unlocked { manifest, .. } => {
            commands.push(format!("{install} -r {}", manifest.display()));
        }
        DependencySource::None => {}
    }
    if !plan.added_packages.value.is_empty() {
        // Pinned by terrarium: no cut-off, like `terrarium build` for exact pins.
        commands.push(format!(
            "{} {}",
            target.uv_install(),
            plan.added_packages
                .value
                .iter()
                .map(|requirement| shell_word(requirement))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if target == ImageKind::Production && plan.dependencies.value != DependencySource::None {
        notes.push(
            "A dependency that imports pkg_resources without declaring setuptools gets the last \
             setuptools that has it, checked by hash (the runtime stage removes the base's own), \
             as `terrarium build` does."
                .to_owned(),
        );
        commands.push(pkg_resources_check());
    }
    let files = match plan.workspace() {
        // Paths from the workspace root, the build context: its pyproject.toml and uv.lock,
        // and every member's pyproject.toml (uv reads them with the lock).
        Some(workspace) => [PathBuf::from("pyproject.toml"), PathBuf::from("uv.lock")]
            .into_iter()
            .chain(workspace.members.iter().map(|m| m.join("pyproject.toml")))
            .collect(),
        None => files,
    };
    InstallSteps {
        tools,
        copies: group_by_directory(&files),
        commands,
        notes,
    }
}

/// Finds, in the site-packages under the directory it is given, a module that imports
/// `pkg_resources` on a line not right after `try:`, and exits 0 when one does and setuptools
/// (which ships `pkg_resources`) is not installed there: `terrarium build`'s rule, for the
/// Dockerfile's `/install`.
const PKG_RESOURCES_SCAN: &str = r#"import re,sys,pathlib as P;s=list(P.Path(sys.argv[1]).glob("lib/python*/site-packages"));x=re.compile(r"^(?!\s*try:\s*$).*\n\s*(import pkg_resources|from pkg_resources[ .])",re.M);sys.exit(1 if not s or (s[0]/"setuptools").exists() else 0 if any(x.search("\n"+f.read_text(errors="ignore")) for f in s[0].rglob("*.py")) else 1)"#;

/// The build stage's step that adds the last setuptools with `pkg_resources`, verified by its
/// hash, when an installed dependency imports it without declaring setuptools (as `terrarium
/// build` does; the runtime stage removes the base's own setuptools).
fn pkg_resources_check() -> String {
    let requirement = format!(
        "{} --hash=sha256:{}",
        terrarium_plan::SETUPTOOLS_WITH_PKG_RESOURCES,
        tools::SETUPTOOLS_WITH_PKG_RESOURCES_SHA256
    );
    format!(
        "if python -c '{PKG_RESOURCES_SCAN}' /install; then echo '{requirement}' > /tmp/setuptools.txt && {} --require-hashes --no-deps -r /tmp/setuptools.txt; fi",
        ImageKind::Production.uv_install()
    )
}

/// `requirement` as one shell word: quoted when it holds characters the shell would read
/// (`setuptools<82` would be a redirection).
pub(crate) fn shell_word(requirement: &str) -> String {
    if requirement
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.=+:/@".contains(c))
    {
        requirement.to_owned()
    } else {
        format!("'{}'", requirement.replace('\'', r"'\''"))
    }
}

/// Where the project's source is in the build context: `.`, or a workspace member's
/// directory (`api/`) when the context is the workspace root.
pub(crate) fn source(plan: &Plan) -> String {
    plan.workspace()
        .map_or_else(|| ".".to_string(), |w| format!("{}/", w.member.display()))
}

/// The command that installs the project itself, after its source is copied.
/// A version from git (setuptools-scm) is given as the plan's, since `.git` stays out of the
/// build context.
pub(crate) fn project_install(plan: &Plan, target: ImageKind) -> String {
    let env = match &plan.install_project.value {
        Some(install) if install.scm_version => format!(
            "SETUPTOOLS_SCM_PRETEND_VERSION={} ",
            shell_word(&install.version)
        ),
        _ => String::new(),
    };
    match target {
        ImageKind::Production => format!("{env}{} --no-deps .", target.uv_install()),
        ImageKind::Development => format!("{env}{} --no-deps --editable .", target.uv_install()),
    }
}

/// The lock tools that run on the plan's Python.
fn lock_tools(plan: &Plan) -> tools::LockTools {
    tools::lock_tools(plan.python.value.major, plan.python.value.minor)
}

/// `COPY a b ./` flattens; files in subdirectories get a `COPY` per directory.
fn group_by_directory(files: &[PathBuf]) -> Vec<(Vec<PathBuf>, String)> {
    let mut groups: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let dir = file
            .parent()
            .filter(|p| *p != Path::new(""))
            .map(|p| format!("{}/", p.display()))
            .unwrap_or_else(|| "./".to_string());
        groups.entry(dir).or_default().push(file.clone());
    }
    groups
        .into_iter()
        .map(|(dir, files)| (files, dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkg_resources_check_installs_setuptools_by_hash_into_install() {
        let check = pkg_resources_check();
        assert!(check.starts_with("if python -c '"), "{check}");
        assert!(
            !PKG_RESOURCES_SCAN.contains('\''),
            "single-quoted in the shell"
        );
        assert!(!PKG_RESOURCES_SCAN.contains('\n'), "one Dockerfile line");
        assert!(
            check.ends_with(
                "' /install; then echo 'setuptools==81.0.0 --hash=sha256:fdd925d5c5d9f62e4b74b30d6dd7828ce236fd6ed998a08d81de62ce5a6310d6' > /tmp/setuptools.txt && uv pip install --system --prefix /install --require-hashes --no-deps -r /tmp/setuptools.txt; fi"
            ),
            "{check}"
        );
    }

    #[test]
    fn requirements_are_single_shell_words() {
        assert_eq!(shell_word("gunicorn==23.0.0"), "gunicorn==23.0.0");
        assert_eq!(shell_word("setuptools<82"), "'setuptools<82'");
        assert_eq!(shell_word("uvicorn[standard]"), "'uvicorn[standard]'");
    }

    #[test]
    fn copies_keep_directories() {
        let groups = group_by_directory(&[
            PathBuf::from("requirements.txt"),
            PathBuf::from("requirements/base.txt"),
            PathBuf::from("pyproject.toml"),
        ]);
        assert_eq!(
            groups,
            vec![
                (
                    vec![
                        PathBuf::from("requirements.txt"),
                        PathBuf::from("pyproject.toml")
                    ],
                    "./".to_string()
                ),
                (
                    vec![PathBuf::from("requirements/base.txt")],
                    "requirements/".to_string()
                ),
            ]
        );
    }
}
