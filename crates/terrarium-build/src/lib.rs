//! `terrarium build`: a production image of a Python service without a Docker daemon.
//!
//! From the same [`Plan`] that `terrarium init` renders, [`build`] makes four layers, least to
//! most often changing (L06): **runtime** (a distroless-style CPython from Debian packages),
//! **system** (extra Debian libraries, only when the plan asks for some), **deps** (the locked
//! wheels installed into the system site-packages, no venv: L04) and **app** (the project under
//! /app). Each is content-addressed and cached, the config runs the plan's command as 65532
//! (L11), and everything is reproducible (L13): same inputs, same digest. [`publish`] writes
//! the image to an OCI layout or a docker-archive (building and publishing are separate, as in
//! ko and jib).
//!
//! The resolved Debian packages and wheels are recorded in `terrarium.lock` ([`Lockfile`]).

#![deny(missing_docs)]

mod app;
mod error;
mod git;
mod lockfile;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use terrarium_debian::{
    Architecture, Archive, Distro, Mirror, PackageSet, ResolveOptions, UnpackOptions,
    build_packages_layer, build_runtime_layer, resolve, runtime_layer_key,
};
use terrarium_image::{
    Cache, Digest, Epoch, Fetcher, Image, ImageLayer, ImageRef, ImageSpec, Layer, LayerOptions,
    Platform, Port, Progress, RunConfig, canonical_json, write_docker_archive, write_oci_layout,
};
use terrarium_plan::Plan;
use terrarium_project::{DependencySource, Project};
use terrarium_wheels::{Index, PYPI_SIMPLE, Target, build_deps_layer, parse_requirement};

pub use app::{APP_DIR, app_tree};
pub use error::BuildError;
pub use lockfile::{DebianLock, DistroLock, LOCKFILE, Lockfile, WheelsLock};

/// Paths left out of the runtime layer: glibc's iconv modules (8 MB; CPython's own codecs do
/// not use them).
pub const RUNTIME_EXCLUDES: &[&str] = &["usr/lib/x86_64-linux-gnu/gconv"];

/// The environment every image gets before the service's own settings.
pub const BASE_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("PYTHONUNBUFFERED", "1"),
    ("LANG", "C.UTF-8"),
    ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
];

/// Version of the lock inputs; bump to re-resolve every lock section.
const INPUTS_VERSION: &str = "terrarium build inputs v1";

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The Debian release (and so the CPython) to build on; `None` chooses from the project.
    pub distro: Option<Distro>,
    /// Use only the cache; fail naming what is missing.
    pub offline: bool,
    /// The blob cache.
    pub cache: Cache,
    /// The mtime of every file and the image's `created` (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: Epoch,
    /// The Python package index (Simple API root).
    pub index_url: String,
}

impl BuildOptions {
    /// Options with the cache from the environment and `SOURCE_DATE_EPOCH`.
    pub fn from_env() -> Result<Self, BuildError> {
        Ok(Self {
            distro: None,
            offline: false,
            cache: Cache::from_env()?,
            mtime: Epoch::from_env()?,
            index_url: PYPI_SIMPLE.to_owned(),
        })
    }
}

/// One layer of a built image.
#[derive(Debug, Clone)]
pub struct LayerReport {
    /// `runtime`, `system`, `deps` or `app`.
    pub name: &'static str,
    /// The layer.
    pub layer: Layer,
    /// Whether it came from the cache unchanged.
    pub cached: bool,
    /// What it holds, for the history and the summary.
    pub description: String,
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Build {
    /// The image (stored in the cache).
    pub image: Image,
    /// The distro it is built on.
    pub distro: Distro,
    /// Its layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// `terrarium.lock`.
    pub lockfile: PathBuf,
    /// Whether `terrarium.lock` was (re)written.
    pub lockfile_written: bool,
    /// Things the user should know (build steps not run natively, ...).
    pub warnings: Vec<String>,
}

/// Something a build is doing, for the CLI to show.
pub trait Reporter: Progress {
    /// A new stage began (`resolving Debian packages`, ...).
    fn stage(&self, text: &str);
}

/// The distro for the project: `asked` when given (and allowed), else the plan's Python when it
/// is 3.13 or 3.11, else the newest of the two the project's constraints allow.
pub fn choose_distro(
    plan: &Plan,
    project: &Project,
    asked: Option<Distro>,
) -> Result<Distro, BuildError> {
    let allows = |distro: Distro| {
        let (major, minor) = python_of(distro);
        project
            .python
            .iter()
            .all(|fact| fact.value.allows(major, minor))
    };
    let constraint = || {
        project
            .python
            .iter()
            .map(|fact| format!("{} ({})", fact.value.specifiers, fact.source))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(distro) = asked {
        if !allows(distro) {
            return Err(BuildError::DistroMismatch {
                distro: distro.codename().to_owned(),
                python: distro.python_version().to_owned(),
                constraint: constraint(),
            });
        }
        return Ok(distro);
    }
    let planned = plan.python.value.to_string();
    if let Some(distro) = Distro::ALL
        .into_iter()
        .find(|d| d.python_version() == planned && allows(*d))
    {
        return Ok(distro);
    }
    [Distro::Trixie, Distro::Bookworm]
        .into_iter()
        .find(|d| allows(*d))
        .ok_or_else(|| BuildError::NoDistro {
            constraint: if project.python.is_empty() {
                format!("python {planned}")
            } else {
                constraint()
            },
        })
}

fn python_of(distro: Distro) -> (u64, u64) {
    match distro {
        Distro::Bookworm => (3, 11),
        Distro::Trixie => (3, 13),
    }
}

/// The wheel target of a distro.
pub fn target_of(distro: Distro) -> Target {
    match distro {
        Distro::Bookworm => Target::bookworm(),
        Distro::Trixie => Target::trixie(),
    }
}

fn digest_json(value: &serde_json::Value) -> Result<Digest, BuildError> {
    Ok(Digest::of(&canonical_json(value)?))
}

/// Build the image of `plan` (for `project`, which it was planned from).
pub fn build(
    plan: &Plan,
    project: &Project,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Build, BuildError> {
    let distro = choose_distro(plan, project, options.distro)?;
    let target = target_of(distro);
    let cache = &options.cache;
    // Temporary files of builds that were killed are older than any running build.
    cache.prune_tmp(Duration::from_secs(24 * 3600))?;
    let fetcher = Fetcher::new(cache.clone(), options.offline)?;
    let archive = Archive::new(fetcher.clone(), Mirror::default(), Architecture::Amd64)?;
    let mut lockfile = Lockfile::read(&project.root)?;
    let mut section = lockfile
        .distro
        .get(distro.codename())
        .cloned()
        .unwrap_or_default();

    // Debian packages: from terrarium.lock when its inputs match, else resolved.
    let roots = distro.runtime_roots();
    let system_roots: Vec<String> = plan.system_packages.value.clone();
    let debian_inputs = digest_json(&serde_json::json!({
        "v": INPUTS_VERSION,
        "distro": distro.codename(),
        "roots": roots,
        "system": system_roots,
    }))?;
    let debian = match section.debian.clone().filter(|d| d.inputs == debian_inputs) {
        Some(locked) => locked,
        None => {
            reporter.stage(&format!("resolving Debian {distro} packages"));
            let index = archive.index(distro, reporter)?;
            let root_refs: Vec<&str> = roots.iter().map(String::as_str).collect();
            let runtime = resolve(
                &index,
                distro,
                Architecture::Amd64,
                &root_refs,
                &ResolveOptions::default(),
            )?
            .packages;
            let system = if system_roots.is_empty() {
                Vec::new()
            } else {
                let mut all = root_refs.clone();
                all.extend(system_roots.iter().map(String::as_str));
                let full = resolve(
                    &index,
                    distro,
                    Architecture::Amd64,
                    &all,
                    &ResolveOptions::default(),
                )?
                .packages;
                full.packages
                    .into_iter()
                    .filter(|p| runtime.get(&p.name).is_none())
                    .collect()
            };
            DebianLock {
                inputs: debian_inputs,
                runtime: runtime.packages,
                system,
            }
        }
    };
    section.debian = Some(debian.clone());

    // Wheels: from terrarium.lock when the project's lock and added packages are unchanged.
    let index = Index::new(fetcher.clone(), options.index_url.clone());
    let (wheel_inputs, requirements) = wheel_inputs(plan, project, distro)?;
    let pins = match section.wheels.clone().filter(|w| w.inputs == wheel_inputs) {
        Some(locked) => locked.wheel,
        None => {
            reporter.stage("resolving wheels");
            let mut pins = match project.dependencies.lock() {
                Some(lock) => terrarium_wheels::pins_from_lock(lock, &target, &index)?,
                None => Vec::new(),
            };
            let extra = terrarium_wheels::resolve(requirements, &pins, &target, &index, reporter)?;
            pins.extend(extra);
            pins.sort();
            pins
        }
    };
    section.wheels = Some(WheelsLock {
        inputs: wheel_inputs,
        wheel: pins.clone(),
    });

    let mut layers = Vec::new();
    let unpack = UnpackOptions {
        exclude: RUNTIME_EXCLUDES.iter().map(|p| (*p).to_owned()).collect(),
        ..UnpackOptions::default()
    };
    let runtime_set = PackageSet {
        distro,
        architecture: Architecture::Amd64,
        packages: debian.runtime.clone(),
    };
    let runtime_cached = cache
        .cached_layer(&runtime_layer_key(&runtime_set, &unpack, options.mtime)?)?
        .is_some();
    if !runtime_cached {
        reporter.stage("building the runtime layer");
    }
    let runtime = build_runtime_layer(&archive, &runtime_set, &unpack, options.mtime, reporter)?;
    layers.push(LayerReport {
        name: "runtime",
        layer: runtime,
        cached: runtime_cached,
        description: format!(
            "Debian {} CPython {} runtime ({} packages)",
            distro.codename(),
            distro.python_version(),
            runtime_set.packages.len()
        ),
    });
    if !debian.system.is_empty() {
        let system_set = PackageSet {
            distro,
            architecture: Architecture::Amd64,
            packages: debian.system.clone(),
        };
        let (layer, cached) =
            build_packages_layer(&archive, &system_set, &unpack, options.mtime, reporter)?;
        layers.push(LayerReport {
            name: "system",
            layer,
            cached,
            description: format!("system packages: {}", system_roots.join(", ")),
        });
    }
    let deps = build_deps_layer(&fetcher, &pins, &target, options.mtime, reporter)?;
    layers.push(LayerReport {
        name: "deps",
        layer: deps.layer,
        cached: deps.cached,
        description: format!("{} wheels into {}", pins.len(), target.site_packages()),
    });

    // Record the lock before the app layer: nothing below depends on the network any more.
    lockfile.version = 1;
    lockfile
        .distro
        .insert(distro.codename().to_owned(), section);
    let (lockfile_path, lockfile_written) = lockfile.write(&project.root)?;

    let tree = app_tree(plan, project, &target)?;
    let app = tree.write(
        cache,
        LayerOptions {
            mtime: options.mtime,
        },
    )?;
    let app_cached = layers_seen(cache, &app)?;
    layers.push(LayerReport {
        name: "app",
        layer: app,
        cached: app_cached,
        description: format!("{} under /{APP_DIR}", plan.name),
    });

    let mut warnings = Vec::new();
    for step in &plan.build_steps.value {
        warnings.push(format!(
            "build step `{}` is not run by terrarium build (it needs the image's Python at build \
             time); run it before building so its output is in the project, or use the Dockerfile",
            step.join(" ")
        ));
    }

    let spec = ImageSpec {
        layers: layers
            .iter()
            .map(|report| ImageLayer {
                layer: report.layer.clone(),
                created_by: format!(
                    "terrarium build: {} layer: {}",
                    report.name, report.description
                ),
            })
            .collect(),
        run: run_config(plan, project),
        created: options.mtime,
        platform: Platform::LinuxAmd64,
    };
    let image = spec.store(cache)?;
    Ok(Build {
        image,
        distro,
        layers,
        lockfile: lockfile_path,
        lockfile_written,
        warnings,
    })
}

/// Whether the app layer was already known (so it was not changed by this build): its digest
/// is remembered under itself.
fn layers_seen(cache: &Cache, layer: &Layer) -> Result<bool, BuildError> {
    let seen = cache.cached_layer(&layer.digest)?.is_some();
    if !seen {
        cache.remember_layer(&layer.digest, layer)?;
    }
    Ok(seen)
}

/// The digest of everything the wheel set depends on, and the requirements to resolve besides
/// the project's lock (added servers; an unlocked project's requirements).
#[allow(clippy::type_complexity)]
fn wheel_inputs(
    plan: &Plan,
    project: &Project,
    distro: Distro,
) -> Result<(Digest, Vec<(pep508_rs::Requirement, String)>), BuildError> {
    let mut requirements: Vec<(String, String)> = Vec::new();
    let mut lock_digest = None;
    match &project.dependencies {
        DependencySource::Requirements {
            file, lock: None, ..
        } => {
            let what = file.path.display().to_string();
            for line in &file.requirements {
                let mut text = format!("{}{}", line.name, line.specifiers);
                if let Some(marker) = &line.marker {
                    text.push_str(&format!(" ; {marker}"));
                }
                requirements.push((text, format!("{what}:{}", line.line)));
            }
        }
        DependencySource::Requirements {
            lock: Some(lock), ..
        }
        | DependencySource::Locked { lock, .. } => {
            let path = project.root.join(&lock.path);
            let bytes = std::fs::read(&path).map_err(error::io_error(&path))?;
            lock_digest = Some(Digest::of(&bytes).to_string());
        }
        DependencySource::Unlocked { manifest, .. } => {
            requirements.extend(unlocked_requirements(&project.root, manifest)?);
        }
        DependencySource::None => {}
    }
    for added in &plan.added_packages.value {
        requirements.push((added.clone(), "terrarium (added server)".to_owned()));
    }
    let inputs = digest_json(&serde_json::json!({
        "v": INPUTS_VERSION,
        "distro": distro.codename(),
        "lock": lock_digest,
        "requirements": requirements.iter().map(|(r, _)| r).collect::<Vec<_>>(),
    }))?;
    let parsed = requirements
        .iter()
        .map(|(text, from)| Ok((parse_requirement(text, from)?, from.clone())))
        .collect::<Result<Vec<_>, terrarium_wheels::Error>>()?;
    Ok((inputs, parsed))
}

/// `[project].dependencies` of an unlocked pyproject.toml.
fn unlocked_requirements(
    root: &Path,
    manifest: &Path,
) -> Result<Vec<(String, String)>, BuildError> {
    let what = manifest.display().to_string();
    let lock_it = |message: &str| BuildError::Dependencies {
        file: what.clone(),
        message: message.to_owned(),
        fix: "lock the dependencies (`uv lock`, `poetry lock` or `pipenv lock`) and build again"
            .into(),
    };
    if manifest.file_name().and_then(|n| n.to_str()) != Some("pyproject.toml") {
        return Err(lock_it("the dependencies are not locked"));
    }
    let path = root.join(manifest);
    let text = std::fs::read_to_string(&path).map_err(error::io_error(&path))?;
    let table: toml::Table = toml::from_str(&text).map_err(|err| BuildError::Dependencies {
        file: what.clone(),
        message: err.to_string(),
        fix: "fix the TOML syntax".into(),
    })?;
    let Some(dependencies) = table
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
    else {
        return Err(lock_it(
            "the dependencies are not in [project].dependencies and not locked",
        ));
    };
    dependencies
        .iter()
        .map(|value| {
            value
                .as_str()
                .map(|s| (s.to_owned(), format!("{what} [project].dependencies")))
                .ok_or_else(|| lock_it("[project].dependencies holds a non-string"))
        })
        .collect()
}

/// The image config of `plan`: user, /app, environment, exec-form command, port, volumes and
/// OCI labels.
pub fn run_config(plan: &Plan, project: &Project) -> RunConfig {
    let mut env: Vec<(String, String)> = BASE_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let reserved: BTreeSet<&str> = BASE_ENV.iter().map(|(k, _)| *k).collect();
    for setting in &plan.env.value {
        if setting.secret || reserved.contains(setting.name.as_str()) {
            continue;
        }
        if let Some(default) = &setting.default {
            env.push((setting.name.clone(), default.clone()));
        }
    }
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        plan.name.clone(),
    );
    if let Some(version) = app::project_version(&project.root) {
        labels.insert("org.opencontainers.image.version".to_owned(), version);
    }
    let git = git::read(&project.root);
    if let Some(revision) = git.revision {
        labels.insert("org.opencontainers.image.revision".to_owned(), revision);
    }
    // A URL with credentials (user@, token@) is never written into an image (L22).
    if let Some(source) = git.origin.filter(|url| !url.contains('@')) {
        labels.insert("org.opencontainers.image.source".to_owned(), source);
    }
    RunConfig {
        user: Some(plan.user.value.to_string()),
        working_dir: Some(format!("/{APP_DIR}")),
        env,
        entrypoint: Vec::new(),
        cmd: plan.command.value.clone(),
        exposed_ports: [Port::tcp(plan.port.value)].into_iter().collect(),
        volumes: plan.volumes.value.iter().map(|v| v.path.clone()).collect(),
        labels,
        stop_signal: None,
    }
}

/// Where an image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI image layout directory.
    Oci(PathBuf),
    /// A `docker load`-able tar.
    DockerArchive(PathBuf),
}

impl FromStr for Output {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("oci", path)) if !path.is_empty() => Ok(Output::Oci(path.into())),
            Some(("docker-archive", path)) if !path.is_empty() => {
                Ok(Output::DockerArchive(path.into()))
            }
            _ => Err(format!("`{text}`: expected oci:DIR or docker-archive:FILE")),
        }
    }
}

/// The default output: an OCI layout in the project's `build/oci`.
pub fn default_output(project_root: &Path) -> Output {
    Output::Oci(project_root.join("build").join("oci"))
}

/// Write `image` from `cache` to `output`, tagged with `tags`.
pub fn publish(
    cache: &Cache,
    image: &Image,
    output: &Output,
    tags: &[ImageRef],
) -> Result<(), BuildError> {
    match output {
        Output::Oci(dir) => write_oci_layout(cache, image, dir, tags)?,
        Output::DockerArchive(file) => write_docker_archive(cache, image, file, tags)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_outputs() {
        assert_eq!(
            "oci:out/x".parse::<Output>().unwrap(),
            Output::Oci("out/x".into())
        );
        assert_eq!(
            "docker-archive:/tmp/a.tar".parse::<Output>().unwrap(),
            Output::DockerArchive("/tmp/a.tar".into())
        );
        for bad in ["oci:", "tar:x", "x"] {
            assert!(bad.parse::<Output>().is_err(), "{bad}");
        }
    }
}
