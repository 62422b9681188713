//! Lock files: uv.lock, poetry.lock, pylock.toml (PEP 751), Pipfile.lock and hashed
//! requirements files, read into one model of pinned packages with their artifacts and hashes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::PackageName;
use crate::error::{DetectError, line_of, read_text, toml_error};
use crate::requirements::RequirementsFile;

/// A content hash as written in a lock (`sha256:…`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Hash {
    /// The algorithm, lowercase (`sha256`).
    pub algorithm: String,
    /// The hex digest, lowercase.
    pub digest: String,
}

impl Hash {
    /// Parse `ALGORITHM:HEX` (also `ALGORITHM=HEX`); `None` when malformed.
    pub fn parse(text: &str) -> Option<Hash> {
        let (algorithm, digest) = text.split_once([':', '='])?;
        let algorithm = algorithm.trim().to_ascii_lowercase();
        let digest = digest.trim().to_ascii_lowercase();
        let known_len = match algorithm.as_str() {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            "md5" => 32,
            _ => return None,
        };
        (digest.len() == known_len && digest.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(Hash { algorithm, digest })
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.digest)
    }
}

/// The kind of lock a project uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockFormat {
    /// A requirements file with every requirement pinned and hashed.
    Requirements,
    /// uv's `uv.lock`.
    UvLock,
    /// Poetry's `poetry.lock`.
    PoetryLock,
    /// PEP 751 `pylock.toml`.
    Pylock,
    /// Pipenv's `Pipfile.lock`.
    PipfileLock,
}

impl fmt::Display for LockFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockFormat::Requirements => "requirements.txt",
            LockFormat::UvLock => "uv.lock",
            LockFormat::PoetryLock => "poetry.lock",
            LockFormat::Pylock => "pylock.toml",
            LockFormat::PipfileLock => "Pipfile.lock",
        })
    }
}

/// Which dependency group a locked package belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Needed at run time.
    Main,
    /// Only for development (tests, linters, reloaders).
    Dev,
}

/// A file a locked package can be installed from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Artifact {
    /// The file name (`flask-3.0.3-py3-none-any.whl`), when the lock names it.
    pub filename: Option<String>,
    /// Where to download it, when the lock says.
    pub url: Option<String>,
    /// Its hash, when the lock records one.
    pub hash: Option<Hash>,
}

/// One pinned package of a lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockedPackage {
    /// The distribution name, normalized.
    pub name: PackageName,
    /// The pinned version.
    pub version: String,
    /// Main or dev.
    pub group: Group,
    /// An environment marker limiting where it is installed.
    pub marker: Option<String>,
    /// The files it can be installed from.
    pub artifacts: Vec<Artifact>,
}

/// A lock file read into pinned packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The format.
    pub format: LockFormat,
    /// The file, relative to the project root.
    pub path: PathBuf,
    /// The packages, sorted by name.
    pub packages: Vec<LockedPackage>,
    /// The uv workspace whose lock this is, when the project is one of its members.
    pub workspace: Option<Workspace>,
}

/// A uv workspace the project is a member of: one `uv.lock` at the workspace root locks every
/// member, and the project installs what its own package needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The workspace root, relative to the project (`..`).
    pub root: PathBuf,
    /// The project's directory, relative to the workspace root (`api`).
    pub member: PathBuf,
    /// The project's package in the lock.
    pub package: PackageName,
    /// Every member's directory, relative to the workspace root: uv reads their
    /// `pyproject.toml` with the lock.
    pub members: Vec<PathBuf>,
}

impl Lock {
    /// Names of the packages in a group.
    pub fn names(&self, group: Group) -> BTreeSet<PackageName> {
        self.packages
            .iter()
            .filter(|p| p.group == group)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Whether every package has at least one hashed artifact.
    pub fn fully_hashed(&self) -> bool {
        self.packages
            .iter()
            .all(|p| p.artifacts.iter().any(|a| a.hash.is_some()))
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(
    rel: &Path,
    text: &str,
    fix: &str,
) -> Result<T, DetectError> {
    toml::from_str(text).map_err(|err| toml_error(rel, text, &err, fix))
}

fn sorted(format: LockFormat, path: &Path, mut packages: Vec<LockedPackage>) -> Lock {
    packages.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
    Lock {
        format,
        path: path.to_path_buf(),
        packages,
        workspace: None,
    }
}

/// Read a hashed requirements file as a lock: every requirement must be pinned with `==`.
pub fn from_requirements(file: &RequirementsFile, group: Group) -> Result<Lock, DetectError> {
    let mut packages = Vec::new();
    for req in &file.requirements {
        let Some(version) = req.pinned_version() else {
            return Err(DetectError::malformed(
                &file.path,
                Some(req.line),
                format!("`{}` has hashes but is not pinned with ==", req.name),
                "pin it (`name==version`) or regenerate the file with `uv pip compile --generate-hashes`",
            ));
        };
        packages.push(LockedPackage {
            name: req.name.clone(),
            version: version.to_string(),
            group,
            marker: req.marker.clone(),
            artifacts: req
                .hashes
                .iter()
                .map(|h| Artifact {
                    filename: None,
                    url: None,
                    hash: Some(h.clone()),
                })
                .collect(),
        });
    }
    Ok(sorted(LockFormat::Requirements, &file.path, packages))
}

#[derive(Deserialize)]
struct UvLockFile {
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Deserialize)]
struct UvPackage {
    name: Spanned<String>,
    version: Option<String>,
    #[serde(default)]
    source: BTreeMap<String, toml::Value>,
    #[serde(default)]
    dependencies: Vec<UvDependency>,
    #[serde(default, rename = "dev-dependencies")]
    dev_dependencies: BTreeMap<String, Vec<UvDependency>>,
    #[serde(default, rename = "optional-dependencies")]
    optional_dependencies: BTreeMap<String, Vec<UvDependency>>,
    sdist: Option<UvArtifact>,
    #[serde(default)]
    wheels: Vec<UvArtifact>,
}

#[derive(Deserialize)]
struct UvDependency {
    name: String,
    marker: Option<String>,
    /// The extras the edge asks for (`psycopg[binary]`): their optional dependencies come too.
    #[serde(default)]
    extra: Vec<String>,
}

#[derive(Deserialize)]
struct UvArtifact {
    url: Option<String>,
    hash: Option<String>,
}

impl UvArtifact {
    fn artifact(&self) -> Artifact {
        Artifact {
            filename: self
                .url
                .as_deref()
                .and_then(|u| u.rsplit('/').next())
                .map(str::to_string),
            url: self.url.clone(),
            hash: self.hash.as_deref().and_then(Hash::parse),
        }
    }
}

/// Read `uv.lock`. Packages reachable from the project's dependencies are main; those reachable
/// only from its dev dependency groups are dev. The project itself is left out.
pub fn read_uv_lock(root: &Path, rel: &Path) -> Result<Lock, DetectError> {
    read_uv_lock_of(root, rel, None)
}

/// Read the `uv.lock` of a uv workspace (`rel`, up from `root`) for one member: what its own
/// package needs is main, its dev groups dev; the other members and what only they need are
/// left out.
pub fn read_uv_workspace_lock(
    root: &Path,
    rel: &Path,
    workspace: Workspace,
) -> Result<Lock, DetectError> {
    let mut lock = read_uv_lock_of(root, rel, Some(&workspace.package))?;
    lock.workspace = Some(workspace);
    Ok(lock)
}

fn read_uv_lock_of(
    root: &Path,
    rel: &Path,
    member: Option<&PackageName>,
) -> Result<Lock, DetectError> {
    let text = read_text(root, rel)?;
    let file: UvLockFile = parse_toml(rel, &text, "regenerate it with `uv lock`")?;
    let is_local = |p: &UvPackage| {
        p.source.contains_key("editable")
            || p.source.contains_key("virtual")
            || p.source.contains_key("directory")
    };
    let by_name: BTreeMap<PackageName, &UvPackage> = file
        .package
        .iter()
        .map(|p| (PackageName::new(p.name.get_ref()), p))
        .collect();
    let roots: Vec<&UvPackage> = file
        .package
        .iter()
        .filter(|p| is_local(p))
        .filter(|p| member.is_none_or(|m| PackageName::new(p.name.get_ref()) == *m))
        .collect();
    if let Some(member) = member
        && roots.is_empty()
    {
        return Err(DetectError::malformed(
            rel,
            None,
            format!("the workspace lock has no package `{member}` (this project's name)"),
            "run `uv lock` at the workspace root",
        ));
    }
    let main = reachable(&by_name, roots.iter().flat_map(|p| p.dependencies.iter()));
    let dev = reachable(
        &by_name,
        roots
            .iter()
            .flat_map(|p| {
                p.dev_dependencies
                    .values()
                    .chain(p.optional_dependencies.values())
            })
            .flatten(),
    );
    let mut packages = Vec::new();
    for package in file.package.iter().filter(|p| !is_local(p)) {
        let name = PackageName::new(package.name.get_ref());
        let (group, condition) = match (main.get(&name), dev.get(&name)) {
            (Some(condition), _) => (Group::Main, Some(condition)),
            (None, Some(condition)) => (Group::Dev, Some(condition)),
            (None, None) if roots.is_empty() => (Group::Main, None),
            // Another member's, or the workspace's own tools: not this project's.
            (None, None) if member.is_some() => continue,
            (None, None) => (Group::Dev, None),
        };
        let Some(version) = package.version.clone() else {
            return Err(DetectError::malformed(
                rel,
                Some(line_of(&text, package.name.span().start)),
                format!("package `{}` has no version", package.name.get_ref()),
                "regenerate it with `uv lock`",
            ));
        };
        packages.push(LockedPackage {
            name,
            version,
            group,
            marker: condition.and_then(Condition::marker),
            artifacts: package
                .wheels
                .iter()
                .chain(package.sdist.iter())
                .map(UvArtifact::artifact)
                .collect(),
        });
    }
    Ok(sorted(LockFormat::UvLock, rel, packages))
}

/// When a package is installed: on every platform, or only where one of these markers holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Always,
    AnyOf(BTreeSet<String>),
}

impl Condition {
    /// More alternatives than this are not worth tracking: install everywhere.
    const LIMIT: usize = 16;

    fn through(&self, edge: Option<&str>) -> Condition {
        match (self, edge) {
            (condition, None) => condition.clone(),
            (Condition::Always, Some(marker)) => Condition::AnyOf([marker.to_string()].into()),
            (Condition::AnyOf(markers), Some(marker)) => Condition::AnyOf(
                markers
                    .iter()
                    .map(|m| format!("({m}) and ({marker})"))
                    .collect(),
            ),
        }
    }

    /// Merge another path's condition in; true when this changed.
    fn absorb(&mut self, other: &Condition) -> bool {
        let merged = match (&*self, other) {
            (Condition::Always, _) => return false,
            (_, Condition::Always) => Condition::Always,
            (Condition::AnyOf(a), Condition::AnyOf(b)) => {
                let union: BTreeSet<String> = a.union(b).cloned().collect();
                if union.len() > Self::LIMIT {
                    Condition::Always
                } else {
                    Condition::AnyOf(union)
                }
            }
        };
        let changed = merged != *self;
        *self = merged;
        changed
    }

    fn marker(&self) -> Option<String> {
        match self {
            Condition::Always => None,
            Condition::AnyOf(markers) if markers.len() == 1 => markers.iter().next().cloned(),
            Condition::AnyOf(markers) => Some(
                markers
                    .iter()
                    .map(|m| format!("({m})"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        }
    }
}

/// Every package reachable from `start`, with the condition under which it is installed: the
/// markers on the edges that lead to it (uv.lock keeps markers on edges, not on packages).
fn reachable<'a>(
    by_name: &BTreeMap<PackageName, &'a UvPackage>,
    start: impl Iterator<Item = &'a UvDependency>,
) -> BTreeMap<PackageName, Condition> {
    let edge = |d: &'a UvDependency, from: &Condition| {
        (
            PackageName::new(&d.name),
            from.through(d.marker.as_deref()),
            d.extra.as_slice(),
        )
    };
    let mut conditions: BTreeMap<PackageName, Condition> = BTreeMap::new();
    let mut extras: BTreeMap<PackageName, BTreeSet<&'a str>> = BTreeMap::new();
    let mut work: Vec<(PackageName, Condition, &'a [String])> =
        start.map(|d| edge(d, &Condition::Always)).collect();
    while let Some((name, condition, wanted)) = work.pop() {
        let changed = match conditions.get_mut(&name) {
            Some(existing) => existing.absorb(&condition),
            None => {
                conditions.insert(name.clone(), condition);
                true
            }
        };
        let known = extras.entry(name.clone()).or_default();
        let new_extras: Vec<&str> = wanted
            .iter()
            .map(String::as_str)
            .filter(|e| known.insert(e))
            .collect();
        let (Some(current), Some(package)) = (conditions.get(&name).cloned(), by_name.get(&name))
        else {
            continue;
        };
        // A changed condition goes down every edge again; new extras only down their own.
        let expand: Vec<&str> = if changed {
            known.iter().copied().collect()
        } else {
            new_extras
        };
        if changed {
            work.extend(package.dependencies.iter().map(|d| edge(d, &current)));
        }
        for extra in expand {
            if let Some(deps) = package.optional_dependencies.get(extra) {
                work.extend(deps.iter().map(|d| edge(d, &current)));
            }
        }
    }
    conditions
}

#[derive(Deserialize)]
struct PoetryLockFile {
    #[serde(default)]
    package: Vec<PoetryPackage>,
    #[serde(default)]
    metadata: PoetryMetadata,
}

#[derive(Deserialize)]
struct PoetryPackage {
    name: String,
    version: String,
    category: Option<String>,
    groups: Option<Vec<String>>,
    markers: Option<toml::Value>,
    #[serde(default)]
    files: Vec<PoetryFile>,
}

#[derive(Deserialize, Default)]
struct PoetryMetadata {
    /// Poetry 1.1 locks (lock-version 1.x) keep the files of every package here, by package
    /// name, instead of in each `[[package]]`.
    #[serde(default)]
    files: BTreeMap<String, Vec<PoetryFile>>,
}

#[derive(Deserialize, Clone)]
struct PoetryFile {
    file: Option<String>,
    hash: Option<String>,
}

impl PoetryFile {
    fn artifact(self) -> Artifact {
        Artifact {
            filename: self.file,
            url: None,
            hash: self.hash.as_deref().and_then(Hash::parse),
        }
    }
}

/// Read `poetry.lock`: Poetry 1.1 (`category`, files under `[metadata.files]`), 1.2+ (files
/// in each package) and 2.x (`groups`).
pub fn read_poetry_lock(root: &Path, rel: &Path) -> Result<Lock, DetectError> {
    let text = read_text(root, rel)?;
    let file: PoetryLockFile = parse_toml(rel, &text, "regenerate it with `poetry lock`")?;
    let mut legacy_files: BTreeMap<PackageName, Vec<PoetryFile>> = BTreeMap::new();
    for (name, files) in file.metadata.files {
        legacy_files
            .entry(PackageName::new(&name))
            .or_default()
            .extend(files);
    }
    let mut versions_of: BTreeMap<PackageName, usize> = BTreeMap::new();
    for p in &file.package {
        *versions_of.entry(PackageName::new(&p.name)).or_default() += 1;
    }
    let packages = file
        .package
        .into_iter()
        .map(|p| {
            let name = PackageName::new(&p.name);
            let main = match (&p.groups, &p.category) {
                (Some(groups), _) => groups.iter().any(|g| g == "main"),
                (None, Some(category)) => category == "main",
                (None, None) => true,
            };
            let files = if p.files.is_empty() {
                // `[metadata.files]` lists every version of a name together: when the lock
                // pins more than one, keep the files named for this version.
                let several = versions_of.get(&name).is_some_and(|&n| n > 1);
                legacy_files
                    .get(&name)
                    .into_iter()
                    .flatten()
                    .filter(|f| {
                        !several
                            || f.file
                                .as_deref()
                                .is_some_and(|file| names_version(file, &p.version))
                    })
                    .cloned()
                    .collect()
            } else {
                p.files
            };
            LockedPackage {
                name,
                version: p.version,
                group: if main { Group::Main } else { Group::Dev },
                marker: p
                    .markers
                    .as_ref()
                    .and_then(|m| m.as_str())
                    .map(str::to_string),
                artifacts: files.into_iter().map(PoetryFile::artifact).collect(),
            }
        })
        .collect();
    Ok(sorted(LockFormat::PoetryLock, rel, packages))
}

/// Whether a distribution file name is of `version`: a wheel's second `-` field, or what an
/// sdist's name ends with before its extension.
fn names_version(file: &str, version: &str) -> bool {
    if let Some(wheel) = file.strip_suffix(".whl") {
        return wheel.split('-').nth(1) == Some(version);
    }
    [".tar.gz", ".tar.bz2", ".tgz", ".tar", ".zip"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .is_some_and(|stem| {
            stem.strip_suffix(version)
                .is_some_and(|head| head.ends_with('-'))
        })
}

#[derive(Deserialize)]
struct PylockFile {
    #[serde(rename = "lock-version")]
    lock_version: Option<Spanned<String>>,
    #[serde(default)]
    packages: Vec<PylockPackage>,
}

#[derive(Deserialize)]
struct PylockPackage {
    name: Spanned<String>,
    version: Option<String>,
    marker: Option<String>,
    #[serde(default)]
    wheels: Vec<PylockArtifact>,
    sdist: Option<PylockArtifact>,
}

#[derive(Deserialize)]
struct PylockArtifact {
    name: Option<String>,
    url: Option<String>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// Read a PEP 751 `pylock.toml`. Packages whose marker requires a dependency group other than
/// the default are dev.
pub fn read_pylock(root: &Path, rel: &Path) -> Result<Lock, DetectError> {
    let text = read_text(root, rel)?;
    let file: PylockFile = parse_toml(
        rel,
        &text,
        "regenerate it with `uv export --format pylock.toml` or `pip lock`",
    )?;
    match &file.lock_version {
        Some(v) if v.get_ref().starts_with("1.") || v.get_ref() == "1" => {}
        other => {
            return Err(DetectError::malformed(
                rel,
                other.as_ref().map(|v| line_of(&text, v.span().start)),
                format!(
                    "lock-version {:?} is not supported (terrarium reads PEP 751 version 1.x)",
                    other.as_ref().map_or("missing", |v| v.get_ref().as_str())
                ),
                "regenerate it with a PEP 751 tool",
            ));
        }
    }
    let mut packages = Vec::new();
    for p in file.packages {
        let Some(version) = p.version else {
            return Err(DetectError::malformed(
                rel,
                Some(line_of(&text, p.name.span().start)),
                format!("package `{}` has no version", p.name.get_ref()),
                "terrarium installs only pinned packages; regenerate the lock",
            ));
        };
        let dev = p
            .marker
            .as_deref()
            .is_some_and(|m| m.contains("dependency_groups") && !m.contains("'default'"));
        packages.push(LockedPackage {
            name: PackageName::new(p.name.get_ref()),
            version,
            group: if dev { Group::Dev } else { Group::Main },
            marker: p.marker,
            artifacts: p
                .wheels
                .iter()
                .chain(p.sdist.iter())
                .map(|a| Artifact {
                    filename: a.name.clone().or_else(|| {
                        a.url
                            .as_deref()
                            .and_then(|u| u.rsplit('/').next())
                            .map(str::to_string)
                    }),
                    url: a.url.clone(),
                    hash: a
                        .hashes
                        .get("sha256")
                        .and_then(|d| Hash::parse(&format!("sha256:{d}"))),
                })
                .collect(),
        });
    }
    Ok(sorted(LockFormat::Pylock, rel, packages))
}

#[derive(Deserialize)]
struct PipfileLockFile {
    #[serde(default)]
    default: BTreeMap<String, PipfileLockEntry>,
    #[serde(default)]
    develop: BTreeMap<String, PipfileLockEntry>,
}

#[derive(Deserialize)]
struct PipfileLockEntry {
    version: Option<String>,
    #[serde(default)]
    hashes: Vec<String>,
    markers: Option<String>,
}

/// Read `Pipfile.lock` (JSON): `default` is main, `develop` is dev.
pub fn read_pipfile_lock(root: &Path, rel: &Path) -> Result<Lock, DetectError> {
    let text = read_text(root, rel)?;
    let file: PipfileLockFile = serde_json::from_str(&text).map_err(|err| {
        DetectError::malformed(
            rel,
            (err.line() > 0).then_some(err.line()),
            err.to_string(),
            "regenerate it with `pipenv lock`",
        )
    })?;
    let mut packages = Vec::new();
    for (group, entries) in [(Group::Main, &file.default), (Group::Dev, &file.develop)] {
        for (name, entry) in entries {
            // Editable or VCS entries have no version; they are the project or built from source.
            let Some(version) = entry.version.as_deref() else {
                continue;
            };
            packages.push(LockedPackage {
                name: PackageName::new(name),
                version: version.trim_start_matches("==").to_string(),
                group,
                marker: entry.markers.clone(),
                artifacts: entry
                    .hashes
                    .iter()
                    .filter_map(|h| Hash::parse(h))
                    .map(|hash| Artifact {
                        filename: None,
                        url: None,
                        hash: Some(hash),
                    })
                    .collect(),
            });
        }
    }
    Ok(sorted(LockFormat::PipfileLock, rel, packages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        dir
    }

    #[test]
    fn hashes_parse_strictly() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Hash::parse(&good).unwrap().to_string(), good);
        assert!(Hash::parse("sha256:abc").is_none());
        assert!(Hash::parse("crc32:00000000").is_none());
    }

    #[test]
    fn uv_lock_splits_main_and_dev_by_reachability() {
        let dir = write(
            "uv.lock",
            r#"version = 1
[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "flask" }]
[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "flask"
version = "3.0.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "werkzeug" }]
wheels = [{ url = "https://files.example/flask-3.0.3-py3-none-any.whl", hash = "sha256:34e815dfaa43340d1d15a5c3a02b8476004037eb4840b34910c6e21679d288f3" }]

[[package]]
name = "werkzeug"
version = "3.0.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pytest"
version = "8.3.3"
source = { registry = "https://pypi.org/simple" }
"#,
        );
        let lock = read_uv_lock(dir.path(), Path::new("uv.lock")).unwrap();
        let main: Vec<_> = lock
            .names(Group::Main)
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(main, ["flask", "werkzeug"]);
        assert_eq!(lock.names(Group::Dev).len(), 1);
        let flask = &lock.packages[0];
        assert_eq!(
            flask.artifacts[0].filename.as_deref(),
            Some("flask-3.0.3-py3-none-any.whl")
        );
        assert!(!lock.fully_hashed());
    }

    #[test]
    fn uv_lock_extras_on_an_edge_bring_their_dependencies() {
        let dir = write(
            "uv.lock",
            r#"version = 1
[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "psycopg" }, { name = "fastapi", extra = ["standard"] }]

[[package]]
name = "psycopg"
version = "3.2.3"
source = { registry = "https://pypi.org/simple" }
[package.optional-dependencies]
binary = [{ name = "psycopg-binary", marker = "implementation_name != 'pypy'" }]

[[package]]
name = "fastapi"
version = "0.115.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "psycopg", extra = ["binary"] }]
[package.optional-dependencies]
standard = [{ name = "uvicorn" }]

[[package]]
name = "psycopg-binary"
version = "3.2.3"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "uvicorn"
version = "0.32.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "unrelated"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
"#,
        );
        let lock = read_uv_lock(dir.path(), Path::new("uv.lock")).unwrap();
        let main: Vec<String> = lock
            .names(Group::Main)
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(main, ["fastapi", "psycopg", "psycopg-binary", "uvicorn"]);
        let binary = lock
            .packages
            .iter()
            .find(|p| p.name.as_str() == "psycopg-binary")
            .unwrap();
        assert_eq!(
            binary.marker.as_deref(),
            Some("implementation_name != 'pypy'")
        );
    }

    #[test]
    fn uv_lock_markers_follow_the_edges() {
        let dir = write(
            "uv.lock",
            r#"version = 1
[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "click" }, { name = "uvloop", marker = "sys_platform != 'win32'" }]

[[package]]
name = "click"
version = "8.1.7"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "colorama", marker = "sys_platform == 'win32'" }]

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "wintools" }]

[[package]]
name = "wintools"
version = "1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "uvloop"
version = "0.21.0"
source = { registry = "https://pypi.org/simple" }
"#,
        );
        let lock = read_uv_lock(dir.path(), Path::new("uv.lock")).unwrap();
        let marker = |name: &str| {
            lock.packages
                .iter()
                .find(|p| p.name.as_str() == name)
                .unwrap()
                .marker
                .clone()
        };
        assert_eq!(marker("click"), None);
        assert_eq!(
            marker("colorama").as_deref(),
            Some("sys_platform == 'win32'")
        );
        assert_eq!(
            marker("wintools").as_deref(),
            Some("sys_platform == 'win32'")
        );
        assert_eq!(marker("uvloop").as_deref(), Some("sys_platform != 'win32'"));
    }

    #[test]
    fn packages_without_versions_name_their_line() {
        let dir = write(
            "uv.lock",
            "version = 1\n\n[[package]]\nname = \"flask\"\nsource = { registry = \"https://pypi.org/simple\" }\n",
        );
        let err = read_uv_lock(dir.path(), Path::new("uv.lock"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("uv.lock:4: package `flask` has no version"),
            "{err}"
        );
        let dir = write(
            "pylock.toml",
            "lock-version = \"1.0\"\n[[packages]]\nname = \"anyio\"\n",
        );
        let err = read_pylock(dir.path(), Path::new("pylock.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pylock.toml:3: package `anyio` has no version"),
            "{err}"
        );
    }

    #[test]
    fn malformed_toml_lock_names_file_and_line() {
        let dir = write(
            "poetry.lock",
            "[[package]]\nname = \"flask\"\nversion = 3\n",
        );
        let err = read_poetry_lock(dir.path(), Path::new("poetry.lock"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("poetry.lock:3:"), "{err}");
        assert!(err.contains("poetry lock"), "{err}");
    }

    #[test]
    fn poetry_groups_and_categories() {
        let dir = write(
            "poetry.lock",
            r#"[[package]]
name = "fastapi"
version = "0.115.0"
groups = ["main"]
files = [{file = "fastapi-0.115.0-py3-none-any.whl", hash = "sha256:17ea427674467486e997206a5ab25760f6b09e069f099b96f5b55a32fb6f1631"}]

[[package]]
name = "pytest"
version = "8.3.3"
category = "dev"
files = []
"#,
        );
        let lock = read_poetry_lock(dir.path(), Path::new("poetry.lock")).unwrap();
        assert_eq!(lock.packages[0].group, Group::Main);
        assert_eq!(lock.packages[1].group, Group::Dev);
    }

    #[test]
    fn poetry_1_1_locks_keep_files_under_metadata() {
        let dir = write(
            "poetry.lock",
            r#"[[package]]
name = "click"
version = "8.0.1"
description = "Composable command line interface toolkit"
category = "main"
optional = false
python-versions = ">=3.6"

[package.dependencies]
colorama = {version = "*", markers = "platform_system == \"Windows\""}

[[package]]
name = "colorama"
version = "0.4.4"
description = "Cross-platform colored terminal text."
category = "main"
optional = false
python-versions = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*"
markers = "platform_system == \"Windows\""

[[package]]
name = "typing-extensions"
version = "3.10.0.0"
description = "Backported and Experimental Type Hints for Python 3.5+"
category = "dev"
optional = false
python-versions = "*"

[[package]]
name = "zipp"
version = "3.5.0"
description = "Backport of pathlib-compatible object wrapper for zip files"
category = "main"
optional = false
python-versions = ">=3.6"

[[package]]
name = "zipp"
version = "1.2.0"
description = "Backport of pathlib-compatible object wrapper for zip files"
category = "main"
optional = false
python-versions = ">=2.7"

[metadata]
lock-version = "1.1"
python-versions = "^3.8"
content-hash = "2b3f1f0ea8b6e3ec6ac1d2ab1b4a7c49c3f5d0bd0d31d47e9a50e2d8a08f8e3a"

[metadata.files]
click = [
    {file = "click-8.0.1-py3-none-any.whl", hash = "sha256:fba402a4a47334742d782209a7c79bc448911afe1149d07bdabdf480b3e2f4b6"},
    {file = "click-8.0.1.tar.gz", hash = "sha256:8c04c11192119b1ef78ea049e0a6f0463e4c48ef00a30160c704337586f3ad7a"},
]
colorama = [
    {file = "colorama-0.4.4-py2.py3-none-any.whl", hash = "sha256:9f47eda37229f68eee03b24b9748937c7dc3868f906e8ba69fbcbdd3bc5dc3e2"},
    {file = "colorama-0.4.4.tar.gz", hash = "sha256:5941b2b48a20143d2267e95b1c2a7603ce057ee39fd88e7329b0c292aa16869b"},
]
typing-extensions = [
    {file = "typing_extensions-3.10.0.0-py3-none-any.whl", hash = "sha256:779383f6086d90c99ae41cf0ff39aac8a7937a9283ce0a414e5dd782f4c94a84"},
]
zipp = [
    {file = "zipp-3.5.0-py3-none-any.whl", hash = "sha256:957cfda87797e389580cb8b9e3870841ca991e2125350677b2ca83a0e99390a3"},
    {file = "zipp-3.5.0.tar.gz", hash = "sha256:f5812b1e007e48cff63449a5e9f4e7ebea716b4111f9c4f9a645f91d579bf0c4"},
    {file = "zipp-1.2.0-py2.py3-none-any.whl", hash = "sha256:e0d9e63797e483a30d27e09fffd308c59a700d365ec34e93cc100844168bf921"},
]
"#,
        );
        let lock = read_poetry_lock(dir.path(), Path::new("poetry.lock")).unwrap();
        assert!(lock.fully_hashed());
        let files = |name: &str, version: &str| -> Vec<String> {
            lock.packages
                .iter()
                .find(|p| p.name.as_str() == name && p.version == version)
                .unwrap()
                .artifacts
                .iter()
                .map(|a| {
                    format!(
                        "{} {}",
                        a.filename.as_deref().unwrap(),
                        a.hash.as_ref().unwrap().digest.get(..8).unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(
            files("click", "8.0.1"),
            [
                "click-8.0.1-py3-none-any.whl fba402a4",
                "click-8.0.1.tar.gz 8c04c111"
            ]
        );
        assert_eq!(files("typing-extensions", "3.10.0.0").len(), 1);
        assert_eq!(
            files("zipp", "3.5.0"),
            [
                "zipp-3.5.0-py3-none-any.whl 957cfda8",
                "zipp-3.5.0.tar.gz f5812b1e"
            ]
        );
        assert_eq!(
            files("zipp", "1.2.0"),
            ["zipp-1.2.0-py2.py3-none-any.whl e0d9e637"]
        );
        let colorama = lock
            .packages
            .iter()
            .find(|p| p.name.as_str() == "colorama")
            .unwrap();
        assert_eq!(
            colorama.marker.as_deref(),
            Some("platform_system == \"Windows\"")
        );
        assert_eq!(lock.names(Group::Dev).len(), 1);
    }

    #[test]
    fn per_package_files_win_over_metadata_files() {
        let sha = |c: &str| c.repeat(64);
        let dir = write(
            "poetry.lock",
            &format!(
                "[[package]]\nname = \"six\"\nversion = \"1.16.0\"\nfiles = [{{file = \"six-1.16.0.tar.gz\", hash = \"sha256:{}\"}}]\n\n[metadata.files]\nsix = [{{file = \"six-1.16.0-py2.py3-none-any.whl\", hash = \"sha256:{}\"}}]\n",
                sha("a"),
                sha("b")
            ),
        );
        let lock = read_poetry_lock(dir.path(), Path::new("poetry.lock")).unwrap();
        assert_eq!(lock.packages[0].artifacts.len(), 1);
        assert_eq!(
            lock.packages[0].artifacts[0].filename.as_deref(),
            Some("six-1.16.0.tar.gz")
        );
    }

    #[test]
    fn file_names_carry_their_version() {
        assert!(names_version("zipp-3.5.0-py3-none-any.whl", "3.5.0"));
        assert!(names_version("zipp-3.5.0.tar.gz", "3.5.0"));
        assert!(!names_version("zipp-3.5.0.1.tar.gz", "3.5.0"));
        assert!(!names_version("zipp-13.5.0.tar.gz", "3.5.0"));
        assert!(!names_version("zipp-3.5.0-py3-none-any.whl", "3.5"));
        assert!(!names_version("README", "3.5"));
    }

    #[test]
    fn pylock_needs_version_one() {
        let dir = write("pylock.toml", "lock-version = \"2.0\"\n");
        let err = read_pylock(dir.path(), Path::new("pylock.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pylock.toml:1: lock-version \"2.0\""),
            "{err}"
        );
        let dir = write(
            "pylock.toml",
            "lock-version = \"1.0\"\ncreated-by = \"uv\"\n[[packages]]\nname = \"anyio\"\nversion = \"4.6.0\"\nwheels = [{ url = \"https://files.example/anyio-4.6.0-py3-none-any.whl\", hashes = { sha256 = \"c7d2e9d63e31599eeb636c8c5c03a7e108d73b345f064f1c19fdc87b79036a9a\" } }]\n",
        );
        let lock = read_pylock(dir.path(), Path::new("pylock.toml")).unwrap();
        assert!(lock.fully_hashed());
        assert_eq!(
            lock.packages[0].artifacts[0].filename.as_deref(),
            Some("anyio-4.6.0-py3-none-any.whl")
        );
    }

    #[test]
    fn pipfile_lock_default_and_develop() {
        let dir = write(
            "Pipfile.lock",
            r#"{"_meta": {}, "default": {"starlette": {"version": "==0.38.6", "hashes": ["sha256:4517a1409e2e73ee4951214ba012052b9e16f60e90d73cfb06192c19203bbb05"]}}, "develop": {"pytest": {"version": "==8.3.3", "hashes": []}}}"#,
        );
        let lock = read_pipfile_lock(dir.path(), Path::new("Pipfile.lock")).unwrap();
        assert_eq!(lock.packages.len(), 2);
        assert_eq!(lock.packages[1].version, "0.38.6");
        assert_eq!(lock.packages[1].group, Group::Main);
        let dir = write("Pipfile.lock", "{\"default\": [1,\n2]}");
        let err = read_pipfile_lock(dir.path(), Path::new("Pipfile.lock"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Pipfile.lock:"), "{err}");
    }
}
