//! Wheels built from source distributions, natively: the sdist (downloaded and verified like a
//! wheel) is unpacked, its PEP 517 backend runs on the target's own Python inside a
//! [`Rootfs`](terrarium_sandbox::Rootfs) (the runtime, plus compilers and `-dev` packages when
//! the source has C), with its build requirements installed from verified wheels into a
//! directory on `PYTHONPATH`, and the wheel it makes is normalised (sorted members, fixed
//! timestamps and permissions, a regenerated RECORD) so the same inputs give the same bytes.
//!
//! The pieces are here; which root to build in, the cache and `terrarium.lock` are the
//! caller's (terrarium-build), which hands [`resolve`](crate::resolve()) a [`WheelBuilder`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use terrarium_image::{Digest, EntryKind, Fetcher, LayerPath, LayerTree, Progress};
use terrarium_sandbox::{Mount, Rootfs, Run, SandboxError};

use crate::error::{Error, io_error};
use crate::fetch::fetch_all;
use crate::index::Index;
use crate::install::{Spool, install_wheel};
use crate::resolve::{parse_requirement, resolve};
use crate::select::Pin;
use crate::tags::{Target, WheelName};

/// The PEP 517 frontend terrarium runs in the sandbox.
pub const FRONTEND: &str = include_str!("frontend.py");

/// The backend of a source tree without `[build-system]` (PEP 517's fallback).
pub const LEGACY_BACKEND: &str = "setuptools.build_meta:__legacy__";

/// The build requirement of a source tree without `[build-system]` (PEP 518's default).
pub const LEGACY_REQUIRES: &str = "setuptools>=40.8.0";

/// `SOURCE_DATE_EPOCH` for every build backend: the zip epoch (1980-01-01), the earliest time a
/// wheel member can carry; the built wheel is normalised to it too.
pub const BUILD_EPOCH: u64 = 315_532_800;

/// Where the build's work directory appears inside the sandbox.
const WORK: &str = "/terrarium/work";

/// Whether `filename` is a source distribution (`.tar.gz` or `.zip`).
pub fn is_sdist(filename: &str) -> bool {
    filename.ends_with(".tar.gz") || filename.ends_with(".zip")
}

/// Makes wheels from source distributions while resolving (the resolver reads the built wheel's
/// `Requires-Dist`, since an sdist's `PKG-INFO` may not list them).
pub trait WheelBuilder {
    /// The wheel built from `sdist` (a [`Pin`] of an sdist): its path in the cache.
    fn build(&self, sdist: &Pin) -> Result<PathBuf, Error>;

    /// Whether it builds at all: when not, the resolver never picks an sdist.
    fn builds(&self) -> bool {
        true
    }
}

/// A [`WheelBuilder`] that builds nothing: an sdist is [`Error::SdistOnly`] (build requirements
/// must come as wheels).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBuilds;

impl WheelBuilder for NoBuilds {
    fn builds(&self) -> bool {
        false
    }

    fn build(&self, sdist: &Pin) -> Result<PathBuf, Error> {
        Err(Error::SdistOnly {
            package: sdist.name.clone(),
            version: sdist.version.clone(),
            file: sdist.filename.clone(),
        })
    }
}

/// A wheel terrarium built from an sdist, as `terrarium.lock` records it: the next build (and
/// `--offline`) takes the wheel from the cache by its hash instead of building again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BuiltWheel {
    /// Normalized distribution name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// The sha256 of the sdist it was built from.
    pub sdist: Digest,
    /// The wheel's file name.
    pub filename: String,
    /// The wheel's sha256.
    pub sha256: Digest,
    /// Debian packages of the build root beyond the runtime (compilers, `-dev` packages); empty
    /// for pure-Python sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_packages: Vec<String>,
    /// The shared libraries its extension modules link (ELF `DT_NEEDED`), by soname.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed: Vec<String>,
    /// The Debian packages, beyond the runtime, that ship those libraries: the system layer
    /// installs them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_packages: Vec<String>,
    /// The wheels its backend needed, with their hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_requires: Vec<Pin>,
}

impl BuiltWheel {
    /// The pin the deps layer installs: the built wheel, found in the cache by its hash.
    pub fn pin(&self) -> Pin {
        Pin {
            name: self.name.clone(),
            version: self.version.clone(),
            filename: self.filename.clone(),
            url: format!("terrarium-built:{}", self.filename),
            sha256: self.sha256,
        }
    }
}

/// What a source tree's `pyproject.toml` says about building it (PEP 517 and 518).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSystem {
    /// `[build-system] requires`.
    pub requires: Vec<String>,
    /// `build-backend` (`module:object`).
    pub backend: String,
    /// `backend-path`: in-tree backend directories.
    pub backend_path: Vec<String>,
}

#[derive(Deserialize)]
struct Pyproject {
    #[serde(rename = "build-system")]
    build_system: Option<BuildSystemTable>,
}

#[derive(Deserialize)]
struct BuildSystemTable {
    requires: Option<Vec<String>>,
    #[serde(rename = "build-backend")]
    build_backend: Option<String>,
    #[serde(rename = "backend-path", default)]
    backend_path: Vec<String>,
}

impl BuildSystem {
    /// A `setup.py` project's: setuptools' legacy backend.
    pub fn legacy() -> Self {
        Self {
            requires: vec![LEGACY_REQUIRES.to_owned()],
            backend: LEGACY_BACKEND.to_owned(),
            backend_path: Vec::new(),
        }
    }

    /// From the text of `pyproject.toml` (named `what` in errors), or the legacy defaults when
    /// there is none or it has no `[build-system]`.
    pub fn from_pyproject(text: Option<&str>, what: &str) -> Result<Self, Error> {
        let Some(text) = text else {
            return Ok(Self::legacy());
        };
        let parsed: Pyproject = toml::from_str(text).map_err(|err| Error::Parse {
            what: what.to_owned(),
            message: format!("not valid TOML: {}", err.to_string().trim_end()),
        })?;
        let Some(table) = parsed.build_system else {
            return Ok(Self::legacy());
        };
        let requires = table.requires.ok_or_else(|| Error::Parse {
            what: what.to_owned(),
            message: "[build-system] has no `requires` (PEP 518 makes it mandatory)".into(),
        })?;
        if table.backend_path.iter().any(|p| {
            Path::new(p).is_absolute() || Path::new(p).components().any(|c| c.as_os_str() == "..")
        }) {
            return Err(Error::Parse {
                what: what.to_owned(),
                message: "`backend-path` must stay inside the source tree".into(),
            });
        }
        Ok(Self {
            requires,
            backend: table
                .build_backend
                .unwrap_or_else(|| LEGACY_BACKEND.to_owned()),
            backend_path: table.backend_path,
        })
    }
}

/// An unpacked source distribution, ready to build.
#[derive(Debug)]
pub struct Source {
    /// The package.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The sdist's file name.
    pub filename: String,
    /// The source tree's directory under the work directory's `src/`.
    pub tree: String,
    /// How to build it.
    pub build_system: BuildSystem,
    /// Whether it holds C, C++ or Cython sources (so it needs a compiler).
    pub compiled: bool,
    work: tempfile::TempDir,
}

/// File extensions of sources that need a compiler.
const COMPILED: &[&str] = &["c", "cc", "cpp", "cxx", "pyx"];

impl Source {
    /// Unpack the sdist of `pin` at `archive` into a new work directory under `tmp`.
    pub fn unpack(pin: &Pin, archive: &Path, tmp: &Path) -> Result<Source, Error> {
        let bad = |message: String| Error::BadSdist {
            file: pin.filename.clone(),
            message,
        };
        let work = tempfile::Builder::new()
            .prefix("sdist-")
            .tempdir_in(tmp)
            .map_err(io_error(tmp))?;
        let src = work.path().join("src");
        std::fs::create_dir_all(&src).map_err(io_error(&src))?;
        let file = File::open(archive).map_err(io_error(archive))?;
        if pin.filename.ends_with(".zip") {
            let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
                .map_err(|err| bad(err.to_string()))?;
            zip.extract(&src).map_err(|err| bad(err.to_string()))?;
        } else {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
            tar.set_preserve_permissions(false);
            tar.set_preserve_mtime(true);
            tar.set_unpack_xattrs(false);
            // `unpack` refuses members that would land outside `src` (absolute, `..`).
            tar.unpack(&src).map_err(|err| bad(err.to_string()))?;
        }
        let mut tops: Vec<String> = std::fs::read_dir(&src)
            .map_err(io_error(&src))?
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        tops.sort();
        let tree = match tops.as_slice() {
            [one] => one.clone(),
            _ => return Err(bad("expected one top-level directory".into())),
        };
        let root = src.join(&tree);
        let pyproject_path = root.join("pyproject.toml");
        let pyproject = match std::fs::read_to_string(&pyproject_path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(io_error(&pyproject_path)(err)),
        };
        if pyproject.is_none() && !root.join("setup.py").is_file() {
            return Err(bad("it has neither pyproject.toml nor setup.py".into()));
        }
        let build_system = BuildSystem::from_pyproject(
            pyproject.as_deref(),
            &format!("{}/pyproject.toml", pin.filename),
        )?;
        let compiled = has_compiled_sources(&root)?;
        Ok(Source {
            name: pin.name.clone(),
            version: pin.version.clone(),
            filename: pin.filename.clone(),
            tree,
            build_system,
            compiled,
            work,
        })
    }

    /// The work directory on the host (`src/`, `env/`, `out/`).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// Whether the unpacked tree has `file` (relative to its top directory).
    pub fn has_file(&self, file: &str) -> bool {
        self.work
            .path()
            .join("src")
            .join(&self.tree)
            .join(file)
            .is_file()
    }
}

fn has_compiled_sources(dir: &Path) -> Result<bool, Error> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            let kind = entry.file_type().map_err(io_error(entry.path()))?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| COMPILED.contains(&e))
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Everything a build needs besides the source.
pub struct BuildContext<'a> {
    /// The root to run the backend in (the runtime, plus a build layer for compiled sources).
    pub root: &'a Rootfs,
    /// The image's Python.
    pub target: &'a Target,
    /// Where build requirements come from.
    pub index: &'a Index,
    /// The build requirements recorded by an earlier build (`terrarium.lock`): installed as they
    /// are, nothing resolved.
    pub locked_requires: Option<&'a [Pin]>,
    /// Download progress.
    pub progress: &'a dyn Progress,
}

/// A wheel built and normalised: its bytes, name and what it needed.
#[derive(Debug, Clone)]
pub struct Built {
    /// The wheel's file name.
    pub filename: String,
    /// The normalised wheel.
    pub bytes: Vec<u8>,
    /// The build requirements installed for it.
    pub build_requires: Vec<Pin>,
    /// Sonames its ELF files need.
    pub needed: Vec<String>,
}

/// The backend's JSON answer.
fn read_result(path: &Path) -> Result<serde_json::Value, Error> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    serde_json::from_slice(&bytes)
        .map_err(|err| Error::Internal(format!("the frontend's result is not JSON: {err}")))
}

impl Source {
    /// Build the wheel with the source's backend in `context.root`.
    pub fn build(&self, context: &BuildContext<'_>) -> Result<Built, Error> {
        let target = context.target;
        let work = self.work.path();
        let env_dir = work.join("env");
        let out_dir = work.join("out");
        for dir in [&env_dir, &out_dir] {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let frontend = work.join("frontend.py");
        std::fs::write(&frontend, FRONTEND).map_err(io_error(&frontend))?;
        let spool_dir = work.to_path_buf();
        let fetcher = context.index.fetcher();
        let what = format!("{} {} build requirements", self.name, self.version);

        let mut requires = match context.locked_requires {
            Some(locked) => locked.to_vec(),
            None => {
                let wanted = self
                    .build_system
                    .requires
                    .iter()
                    .map(|text| Ok((parse_requirement(text, &what)?, what.clone())))
                    .collect::<Result<Vec<_>, Error>>()?;
                resolve(
                    wanted,
                    &[],
                    target,
                    context.index,
                    context.progress,
                    &NoBuilds,
                )
                .map_err(|err| self.requirement_error(err))?
            }
        };
        install_env(fetcher, &requires, target, &env_dir, &spool_dir, context)?;

        if context.locked_requires.is_none() {
            self.run_hook("requires", context)?;
            let extra: Vec<String> =
                serde_json::from_value(read_result(&work.join("result.json"))?).map_err(|err| {
                    Error::Internal(format!("get_requires_for_build_wheel result: {err}"))
                })?;
            if !extra.is_empty() {
                let wanted = extra
                    .iter()
                    .map(|text| Ok((parse_requirement(text, &what)?, what.clone())))
                    .collect::<Result<Vec<_>, Error>>()?;
                let more = resolve(
                    wanted,
                    &requires,
                    target,
                    context.index,
                    context.progress,
                    &NoBuilds,
                )
                .map_err(|err| self.requirement_error(err))?;
                install_env(fetcher, &more, target, &env_dir, &spool_dir, context)?;
                requires.extend(more);
            }
        }
        requires.sort();

        self.run_hook("build", context)?;
        let name: String = serde_json::from_value(read_result(&work.join("result.json"))?)
            .map_err(|err| Error::Internal(format!("build_wheel result: {err}")))?;
        if name.contains('/') || !name.ends_with(".whl") {
            return Err(self.failed(format!("the backend returned `{name}`, not a wheel"), ""));
        }
        if !runs_on(&WheelName::from_str(&name)?, target) {
            return Err(self.failed(
                format!(
                    "the backend built {name}, which does not run on CPython {}",
                    target.python_version()
                ),
                "",
            ));
        }
        let raw = out_dir.join(&name);
        let bytes = normalize_wheel(&raw, &name)?;
        let needed = elf_needed(io::Cursor::new(&bytes), &name)?;
        Ok(Built {
            filename: name,
            bytes,
            build_requires: requires,
            needed,
        })
    }

    fn requirement_error(&self, err: Error) -> Error {
        match err {
            Error::SdistOnly { package, .. } => self.failed(
                format!("its build requirement {package} publishes no wheel"),
                "",
            ),
            other => other,
        }
    }

    fn failed(&self, message: String, tail: &str) -> Error {
        Error::SdistBuild {
            package: self.name.clone(),
            version: self.version.clone(),
            message,
            tail: tail.to_owned(),
            fix: self.fix(tail),
        }
    }

    /// How to get past a failed build whose output ends in `tail`.
    fn fix(&self, tail: &str) -> String {
        if let Some(name) = removed_from_setuptools(tail) {
            return format!(
                "setuptools no longer has `{name}`{}, and {} {}'s `setup.py` imports it; the \
                 build tools are resolved no older than the planned Python, since older ones \
                 don't run on it: pin a later release of {}",
                match SETUPTOOLS_REMOVED.iter().find(|(n, _)| *n == name) {
                    Some((_, release)) => format!(" (removed in setuptools {release})"),
                    None => String::new(),
                },
                self.name,
                self.version,
                self.name
            );
        }
        match removed_module(tail) {
            Some((module, release)) => format!(
                "`{module}` left Python's standard library in {release}, and {} {}'s build \
                 imports it: pin a later release of {}, or build on a Python before {release} \
                 (`python` under [tool.terrarium])",
                self.name, self.version, self.name
            ),
            None => format!(
                "add the Debian packages it needs to `build-packages` under [tool.terrarium] in \
                 pyproject.toml (or in terrarium.toml), or pin a version of {} that publishes a \
                 wheel",
                self.name
            ),
        }
    }

    /// Run the frontend's `hook` (`requires` or `build`) in the sandbox.
    fn run_hook(&self, hook: &str, context: &BuildContext<'_>) -> Result<(), Error> {
        let work = self.work.path();
        let source = format!("{WORK}/src/{}", self.tree);
        let request = serde_json::json!({
            "source": source,
            "backend": self.build_system.backend,
            "backend_path": self.build_system.backend_path,
            "hook": hook,
            "out": format!("{WORK}/out"),
            "result": format!("{WORK}/result.json"),
        });
        let request_path = work.join("request.json");
        std::fs::write(&request_path, request.to_string()).map_err(io_error(&request_path))?;
        let site = format!("{WORK}/env/{}", context.target.site_packages());
        let run = Run {
            argv: vec![
                context.target.interpreter(),
                "-u".into(),
                format!("{WORK}/frontend.py"),
                format!("{WORK}/request.json"),
            ],
            env: vec![
                (
                    "PATH".into(),
                    format!("{WORK}/env/usr/local/bin:/usr/local/bin:/usr/bin:/bin"),
                ),
                ("PYTHONPATH".into(), site),
                ("PYTHONHASHSEED".into(), "0".into()),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
                ("SOURCE_DATE_EPOCH".into(), BUILD_EPOCH.to_string()),
                ("HOME".into(), "/tmp".into()),
                ("TMPDIR".into(), "/tmp".into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("LC_ALL".into(), "C.UTF-8".into()),
                ("TZ".into(), "UTC".into()),
            ],
            cwd: source.clone(),
            mounts: vec![Mount {
                host: work.to_path_buf(),
                at: WORK.into(),
                writable: true,
            }],
            // A backend that hangs (waiting on a network it doesn't have) is stopped.
            timeout: Some(std::time::Duration::from_secs(1800)),
            changes: None,
        };
        match context.root.run(&run) {
            Ok(_) => Ok(()),
            Err(SandboxError::Failed { tail, .. }) => {
                let message = match missing_header(&tail) {
                    Some(header) => format!(
                        "the compiler found no `{header}`: the Debian package that ships it is not \
                         in the build root; add it to `build-packages` under [tool.terrarium] (or \
                         in terrarium.toml), e.g. build-packages = [\"lib…-dev\"]"
                    ),
                    None => format!("its build backend ({}) failed", self.build_system.backend),
                };
                Err(self.failed(message, &tail))
            }
            Err(other) => Err(Error::Sandbox(other)),
        }
    }
}

/// Whether a wheel built on the target runs there: a supported tag, or a `linux_{machine}`
/// one (what a local build is tagged) for a supported interpreter and ABI.
fn runs_on(wheel: &WheelName, target: &Target) -> bool {
    let supported = target.supported_tags();
    let local = target.local_platform();
    wheel.priority(&supported).is_some()
        || wheel.tags.iter().any(|tag| {
            tag.platform == local
                && supported
                    .iter()
                    .any(|s| s.python == tag.python && s.abi == tag.abi)
        })
}

/// Modules CPython took out of its standard library (PEP 594, PEP 632), with the release that
/// no longer has them: an old `setup.py` importing one fails on every later Python.
const REMOVED_MODULES: [(&str, &str); 24] = [
    ("asynchat", "3.12"),
    ("asyncore", "3.12"),
    ("distutils", "3.12"),
    ("imp", "3.12"),
    ("smtpd", "3.12"),
    ("aifc", "3.13"),
    ("audioop", "3.13"),
    ("cgi", "3.13"),
    ("cgitb", "3.13"),
    ("chunk", "3.13"),
    ("crypt", "3.13"),
    ("imghdr", "3.13"),
    ("lib2to3", "3.13"),
    ("mailcap", "3.13"),
    ("msilib", "3.13"),
    ("nis", "3.13"),
    ("nntplib", "3.13"),
    ("ossaudiodev", "3.13"),
    ("pipes", "3.13"),
    ("sndhdr", "3.13"),
    ("spwd", "3.13"),
    ("sunau", "3.13"),
    ("telnetlib", "3.13"),
    ("xdrlib", "3.13"),
];

/// The removed standard-library module a build failed to import (`ModuleNotFoundError: No
/// module named 'imp'`), and the release that removed it.
pub fn removed_module(output: &str) -> Option<(&'static str, &'static str)> {
    output.lines().find_map(|line| {
        let (_, rest) = line.split_once("No module named '")?;
        let module = rest.split(['\'', '.']).next()?;
        REMOVED_MODULES
            .iter()
            .find(|(name, _)| *name == module)
            .copied()
    })
}

/// Names setuptools removed that old `setup.py` files import, with the release that removed
/// them.
const SETUPTOOLS_REMOVED: [(&str, &str); 1] = [("Feature", "46.0.0")];

/// The name a build failed to import from setuptools (`ImportError: cannot import name
/// 'Feature' from 'setuptools'`): the build tools of the project's time are too old to run on
/// the planned Python, and the ones that run on it no longer have that name.
pub fn removed_from_setuptools(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let (_, rest) = line.split_once("cannot import name '")?;
        let (name, from) = rest.split_once('\'')?;
        from.trim_start()
            .strip_prefix("from 'setuptools")
            .map(|_| name.to_owned())
    })
}

/// The header a compiler said it could not find (`fatal error: libpq-fe.h: No such file or
/// directory`), if any.
pub fn missing_header(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let (_, rest) = line.split_once("fatal error: ")?;
        let (header, tail) = rest.split_once(':')?;
        (tail.contains("No such file or directory") && !header.contains(' '))
            .then(|| header.trim().to_owned())
    })
}

/// Install `pins` (wheels) into `dir` laid out like the image (`usr/local/lib/python3.X/...`).
fn install_env(
    fetcher: &Fetcher,
    pins: &[Pin],
    target: &Target,
    dir: &Path,
    spool_dir: &Path,
    context: &BuildContext<'_>,
) -> Result<(), Error> {
    if pins.is_empty() {
        return Ok(());
    }
    let paths = fetch_all(fetcher, pins, context.progress)?;
    let mut tree = LayerTree::new();
    let mut spool = Spool::new(spool_dir)?;
    for (pin, path) in pins.iter().zip(&paths) {
        install_wheel(&mut tree, path, &pin.filename, target, &mut spool)?;
    }
    materialize(&tree, dir)
}

/// Write the entries of `tree` under `dir`.
fn materialize(tree: &LayerTree, dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    for entry in tree.entries() {
        let path = dir.join(entry.path.as_str());
        match &entry.kind {
            EntryKind::Directory => std::fs::create_dir_all(&path).map_err(io_error(&path))?,
            EntryKind::File { .. } => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
                }
                let bytes = tree.read_file(&entry.path)?.unwrap_or_default();
                std::fs::write(&path, bytes).map_err(io_error(&path))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))
                    .map_err(io_error(&path))?;
            }
            EntryKind::Symlink { target } => {
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(target, &path).map_err(io_error(&path))?;
            }
            EntryKind::HardLink { target } => {
                let from = dir.join(LayerPath::as_str(target));
                std::fs::copy(&from, &path).map_err(io_error(&path))?;
            }
        }
    }
    Ok(())
}

fn record_hash(bytes: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
    )
}

/// Rewrite the wheel at `path` (named `file`) reproducibly: members sorted (the `.dist-info`
/// directory last, RECORD at the very end), every timestamp 1980-01-01, permissions 0644 or
/// 0755, deflate at a fixed level, and a RECORD regenerated from the members.
pub fn normalize_wheel(path: &Path, file: &str) -> Result<Vec<u8>, Error> {
    let bad = |message: String| Error::BadWheel {
        file: file.to_owned(),
        message,
    };
    let reader = io::BufReader::new(File::open(path).map_err(io_error(path))?);
    normalize_wheel_from(reader, file).map_err(|err| match err {
        Error::BadWheel { message, .. } => bad(message),
        other => other,
    })
}

fn normalize_wheel_from(reader: impl Read + Seek, file: &str) -> Result<Vec<u8>, Error> {
    let bad = |message: String| Error::BadWheel {
        file: file.to_owned(),
        message,
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|err| bad(err.to_string()))?;
    let mut members: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|err| bad(err.to_string()))?;
        if member.is_dir() {
            continue;
        }
        let name = member.name().to_owned();
        let executable = member.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        let mut bytes = Vec::new();
        member
            .read_to_end(&mut bytes)
            .map_err(|err| bad(format!("{name}: {err}")))?;
        members.insert(name, (bytes, executable));
    }
    let names: Vec<String> = members.keys().cloned().collect();
    let dist_info = names
        .iter()
        .filter_map(|n| n.strip_suffix("/WHEEL"))
        .find(|d| !d.contains('/') && d.ends_with(".dist-info"))
        .map(str::to_owned)
        .ok_or_else(|| bad("no top-level *.dist-info/WHEEL".into()))?;
    let record_name = format!("{dist_info}/RECORD");
    for signature in ["RECORD.jws", "RECORD.p7s"] {
        members.remove(&format!("{dist_info}/{signature}"));
    }
    members.remove(&record_name);
    let prefix = format!("{dist_info}/");
    let (meta, payload): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|(name, _)| name.starts_with(&prefix));
    let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = |executable: bool| {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(if executable { 0o755 } else { 0o644 })
    };
    let mut record = String::new();
    for (name, (bytes, executable)) in payload.iter().chain(meta.iter()) {
        writer
            .start_file(name.as_str(), options(*executable))
            .map_err(|err| bad(err.to_string()))?;
        writer
            .write_all(bytes)
            .map_err(|err| bad(format!("{name}: {err}")))?;
        record.push_str(&format!(
            "{},{},{}\n",
            csv_field(name),
            record_hash(bytes),
            bytes.len()
        ));
    }
    record.push_str(&format!("{},,\n", csv_field(&record_name)));
    writer
        .start_file(record_name.as_str(), options(false))
        .map_err(|err| bad(err.to_string()))?;
    writer
        .write_all(record.as_bytes())
        .map_err(|err| bad(format!("RECORD: {err}")))?;
    Ok(writer
        .finish()
        .map_err(|err| bad(err.to_string()))?
        .into_inner())
}

/// A RECORD (CSV) field: quoted when it holds a comma or a quote.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The sonames (`DT_NEEDED`) the ELF members of a wheel need, sorted and without duplicates.
/// Only the ELF members are read whole (the others up to their first four bytes), and the
/// wheel is read from `wheel` as it goes: a wheel of hundreds of MB is never in memory.
pub fn elf_needed(wheel: impl Read + Seek, file: &str) -> Result<Vec<String>, Error> {
    let bad = |message: String| Error::BadWheel {
        file: file.to_owned(),
        message,
    };
    let mut archive = zip::ZipArchive::new(wheel).map_err(|err| bad(err.to_string()))?;
    let mut needed = BTreeSet::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|err| bad(err.to_string()))?;
        if member.is_dir() || member.size() < 64 {
            continue;
        }
        let name = member.name().to_owned();
        let mut bytes = vec![0; 4];
        member
            .read_exact(&mut bytes)
            .map_err(|err| bad(format!("{name}: {err}")))?;
        if bytes != b"\x7fELF" {
            continue;
        }
        member
            .read_to_end(&mut bytes)
            .map_err(|err| bad(format!("{name}: {err}")))?;
        let elf = goblin::elf::Elf::parse(&bytes)
            .map_err(|err| bad(format!("{name}: not a readable ELF file: {err}")))?;
        needed.extend(elf.libraries.iter().map(|l| (*l).to_owned()));
    }
    Ok(needed.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, bytes) in members {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .last_modified_time(
                    zip::DateTime::from_date_and_time(2024, 5, 17, 10, 11, 12).unwrap(),
                );
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn build_system_defaults_and_tables() {
        assert_eq!(
            BuildSystem::from_pyproject(None, "x").unwrap(),
            BuildSystem::legacy()
        );
        assert_eq!(
            BuildSystem::from_pyproject(Some("[project]\nname = \"x\"\n"), "x").unwrap(),
            BuildSystem::legacy()
        );
        let flit = BuildSystem::from_pyproject(
            Some(
                "[build-system]\nrequires = [\"flit_core >=3.2,<4\"]\nbuild-backend = \"flit_core.buildapi\"\n",
            ),
            "x",
        )
        .unwrap();
        assert_eq!(flit.requires, ["flit_core >=3.2,<4"]);
        assert_eq!(flit.backend, "flit_core.buildapi");
        let no_backend =
            BuildSystem::from_pyproject(Some("[build-system]\nrequires = [\"setuptools\"]\n"), "x")
                .unwrap();
        assert_eq!(no_backend.backend, LEGACY_BACKEND);
        let err = BuildSystem::from_pyproject(Some("[build-system]\n"), "pkg/pyproject.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pkg/pyproject.toml") && err.contains("requires"),
            "{err}"
        );
        let err = BuildSystem::from_pyproject(
            Some("[build-system]\nrequires = []\nbackend-path = [\"../x\"]\n"),
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("backend-path"), "{err}");
    }

    #[test]
    fn normalised_wheels_are_byte_identical_and_sorted_with_a_fresh_record() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.whl");
        let b = dir.path().join("b.whl");
        std::fs::write(
            &a,
            wheel(&[
                ("demo-1.0.dist-info/RECORD", b"stale"),
                ("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
                ("demo/__init__.py", b"x = 1\n"),
                ("demo-1.0.dist-info/METADATA", b"Name: demo\n"),
                ("demo/a,b.py", b""),
            ]),
        )
        .unwrap();
        std::fs::write(
            &b,
            wheel(&[
                ("demo/a,b.py", b""),
                ("demo-1.0.dist-info/METADATA", b"Name: demo\n"),
                ("demo/__init__.py", b"x = 1\n"),
                ("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
            ]),
        )
        .unwrap();
        let first = normalize_wheel(&a, "demo-1.0-py3-none-any.whl").unwrap();
        let second = normalize_wheel(&b, "demo-1.0-py3-none-any.whl").unwrap();
        assert_eq!(first, second);
        let mut archive = zip::ZipArchive::new(io::Cursor::new(&first)).unwrap();
        let names: Vec<&str> = archive.file_names().collect();
        assert_eq!(
            names,
            [
                "demo/__init__.py",
                "demo/a,b.py",
                "demo-1.0.dist-info/METADATA",
                "demo-1.0.dist-info/WHEEL",
                "demo-1.0.dist-info/RECORD",
            ]
        );
        let mut record = String::new();
        archive
            .by_name("demo-1.0.dist-info/RECORD")
            .unwrap()
            .read_to_string(&mut record)
            .unwrap();
        assert!(record.contains("\"demo/a,b.py\",sha256="), "{record}");
        assert!(
            record.ends_with("demo-1.0.dist-info/RECORD,,\n"),
            "{record}"
        );
        let member = archive.by_name("demo/__init__.py").unwrap();
        assert_eq!(member.last_modified(), Some(zip::DateTime::default()));
        assert_eq!(member.unix_mode().map(|m| m & 0o777), Some(0o644));
        // What the deps layer installs passes its RECORD check.
        drop(member);
        let installed = dir.path().join("n.whl");
        std::fs::write(&installed, &first).unwrap();
        let mut tree = LayerTree::new();
        let mut spool = Spool::new(dir.path()).unwrap();
        install_wheel(
            &mut tree,
            &installed,
            "demo-1.0-py3-none-any.whl",
            &Target::bookworm(),
            &mut spool,
        )
        .unwrap();
    }

    #[test]
    fn finds_modules_python_removed() {
        assert_eq!(
            removed_module(
                "  File \"setup.py\", line 3\nModuleNotFoundError: No module named 'imp'\n"
            ),
            Some(("imp", "3.12"))
        );
        assert_eq!(
            removed_module("No module named 'distutils.core'"),
            Some(("distutils", "3.12"))
        );
        assert_eq!(removed_module("No module named 'numpy'"), None);
        let tail = "terrarium: the build backend failed: ImportError: cannot import name \
                    'Feature' from 'setuptools' (/terrarium/work/env/usr/local/lib/python3.11/\
                    dist-packages/setuptools/__init__.py)";
        assert_eq!(removed_from_setuptools(tail).as_deref(), Some("Feature"));
        assert_eq!(
            removed_from_setuptools("cannot import name 'x' from 'numpy'"),
            None
        );
    }

    #[test]
    fn finds_missing_headers() {
        let output = "building 'psycopg2._psycopg' extension\n\
            psycopg/psycopgmodule.c:28:10: fatal error: libpq-fe.h: No such file or directory\n\
               28 | #include <libpq-fe.h>\n";
        assert_eq!(missing_header(output).as_deref(), Some("libpq-fe.h"));
        assert_eq!(missing_header("error: something else"), None);
    }

    #[test]
    fn unpacks_sdists_and_detects_compiled_sources() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, files: &[(&str, &str)]| {
            let path = dir.path().join(name);
            let gz = flate2::write::GzEncoder::new(
                File::create(&path).unwrap(),
                flate2::Compression::default(),
            );
            let mut tar = tar::Builder::new(gz);
            for (member, text) in files {
                let mut header = tar::Header::new_gnu();
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                tar.append_data(&mut header, member, text.as_bytes())
                    .unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
            path
        };
        let pin = |filename: &str| Pin {
            name: "demo".into(),
            version: "1.0".into(),
            filename: filename.into(),
            url: String::new(),
            sha256: Digest::of(b""),
        };
        let pure = make(
            "demo-1.0.tar.gz",
            &[
                (
                    "demo-1.0/setup.py",
                    "from setuptools import setup\nsetup()\n",
                ),
                ("demo-1.0/demo.py", ""),
            ],
        );
        let source = Source::unpack(&pin("demo-1.0.tar.gz"), &pure, dir.path()).unwrap();
        assert_eq!(source.tree, "demo-1.0");
        assert_eq!(source.build_system, BuildSystem::legacy());
        assert!(!source.compiled);
        let compiled = make(
            "ext-1.0.tar.gz",
            &[
                (
                    "ext-1.0/pyproject.toml",
                    "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n",
                ),
                ("ext-1.0/src/speed.c", "int x;"),
            ],
        );
        let source = Source::unpack(&pin("ext-1.0.tar.gz"), &compiled, dir.path()).unwrap();
        assert!(source.compiled);
        assert_eq!(source.build_system.backend, "setuptools.build_meta");
        let empty = make("bad-1.0.tar.gz", &[("bad-1.0/README", "")]);
        let err = Source::unpack(&pin("bad-1.0.tar.gz"), &empty, dir.path()).unwrap_err();
        assert!(err.to_string().contains("bad-1.0.tar.gz"), "{err}");
    }

    #[test]
    fn reads_dt_needed_from_elf_members() {
        // The test binary itself is an ELF file that needs libc.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let bytes = wheel(&[("demo/_speed.so", &exe), ("demo-1.0.dist-info/WHEEL", b"")]);
        let needed = elf_needed(io::Cursor::new(&bytes), "demo.whl").unwrap();
        assert!(
            needed.iter().any(|n| n.starts_with("libc.so")),
            "{needed:?}"
        );
    }
}
