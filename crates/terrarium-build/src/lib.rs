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
//! With `base` set (`python:3.12-slim-bookworm`, `docker://NAME`, `oci:DIR`), the runtime is
//! that image instead: its layers are pulled and verified ([`BaseSource`]), its own Python is
//! found and asked for its tags and site-packages, and the deps, bytecode and app layers go on
//! top.
//!
//! The resolved Debian packages and wheels, and the base's digest, are recorded in
//! `terrarium.lock` ([`Lockfile`]).
//!
//! [`build_platforms`] makes an image for each platform of the plan (linux/amd64,
//! linux/arm64): another architecture's without running any of its code.

#![deny(missing_docs)]

mod app;
mod base;
mod bytecode;
mod error;
mod git;
mod linked;
mod lockfile;
mod pinned;
mod sdist;
mod steps;
mod test_deps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use terrarium_debian::{
    Architecture, Archive, DebianPin, Distro, Mirror, PackageSet, ResolveOptions, UnpackOptions,
    build_packages_layer, build_runtime_layer, runtime_layer_key,
};
use terrarium_image::{
    Cache, Compression, Content, Digest, Entry, Epoch, Fetcher, Healthcheck, Image, ImageLayer,
    ImageRef, ImageSpec, Layer, LayerOptions, LayerPath, Platform, Port, Progress, RunConfig,
    canonical_json, write_docker_archive, write_oci_layout,
};
use terrarium_plan::{Origin, Plan};
use terrarium_project::{DependencySource, Group, Lock, ManifestFormat};
use terrarium_sandbox::Rootfs;
use terrarium_wheels::{Index, PYPI_SIMPLE, Pin, Target, build_deps_layer, parse_requirement};

pub use app::{APP_DIR, app_tree};
pub use base::{BaseImage, BasePython, BaseSource};
pub use error::BuildError;
pub use lockfile::{BaseLock, DebianLock, DistroLock, LOCKFILE, Lockfile, WheelsLock};
pub use pinned::{needs_pinned_releases, pinned_releases};
pub use terrarium_sbom::{Hashes, Sbom};
pub use test_deps::TestDependencies;

/// Paths left out of the runtime layer: glibc's iconv modules (8 MB; CPython's own codecs do
/// not use them), tzdata's leap-second `right/` zones (1.9 MB on bookworm), Berkeley DB and the `dbm.ndbm` module that alone loads it (1.8 MB;
/// `dbm` falls back to its other back ends), and the parts of the standard library a service
/// never runs: CPython's own test support and test extension modules, and `help()`'s topic
/// texts. Together about 4 MB, which pays for most of the bytecode of what a service imports
/// at start-up.
///
/// With `libraries`, also the shared libraries only a module a service never imports loads
/// (see [`UNUSED_LIBRARIES`]). Only for an image without a system layer: a Debian package
/// added there (`libpq5`) may link them, and the resolver counts them as present.
pub fn runtime_excludes(
    distro: Distro,
    architecture: Architecture,
    libraries: bool,
) -> Vec<String> {
    let stdlib = format!("usr/lib/python{}", distro.python_version());
    let triplet = architecture.triplet();
    let mut excludes = vec![
        format!("usr/lib/{triplet}/gconv"),
        format!("usr/lib/{triplet}/libdb-*"),
        // tzdata's leap-second "right/" zones: only asked for by name, never by a service.
        "usr/share/zoneinfo/right".to_owned(),
    ];
    for path in [
        "test",
        "pydoc_data",
        "idlelib",
        "turtledemo",
        "lib-dynload/_test*",
        "lib-dynload/_ctypes_test*",
        "lib-dynload/_xxtestfuzz*",
        "lib-dynload/xxlimited*",
        "lib-dynload/_dbm.*",
    ] {
        excludes.push(format!("{stdlib}/{path}"));
    }
    if libraries {
        for module in ["nis.", "_curses"] {
            excludes.push(format!("{stdlib}/lib-dynload/{module}*"));
        }
        for library in UNUSED_LIBRARIES {
            // As packaged: under /lib before the /usr merge (bookworm), /usr/lib after.
            excludes.push(format!("lib/{triplet}/{library}"));
            excludes.push(format!("usr/lib/{triplet}/{library}"));
        }
    }
    excludes
}

/// Libraries in the runtime's package closure that a service never loads (3.5 MB on
/// bookworm): glibc's vector math library (CPython and manylinux wheels never link it); NIS
/// and Sun RPC with the Kerberos and GSSAPI libraries they pull in, loaded only by the
/// deprecated `nis` module (removed in 3.13); ncurses' wide-character libraries, loaded only
/// by `curses` (readline's `libtinfo` stays, for `python` over `docker exec`).
const UNUSED_LIBRARIES: [&str; 15] = [
    "libmvec.so*",
    "libnsl.so*",
    "libtirpc.so*",
    "libgssapi_krb5.so*",
    "libkrb5.so*",
    "libk5crypto.so*",
    "libkrb5support.so*",
    "libcom_err.so*",
    "libkeyutils.so*",
    "krb5",
    "libncursesw.so*",
    "libpanelw.so*",
    "libformw.so*",
    "libmenuw.so*",
    "libtic.so*",
];

/// Version of the lock inputs; bump to re-resolve every lock section.
const INPUTS_VERSION: &str = "terrarium build inputs v1";

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Use only the cache; fail naming what is missing.
    pub offline: bool,
    /// The blob cache.
    pub cache: Cache,
    /// The mtime of every file and the image's `created` (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: Epoch,
    /// The Python package index (Simple API root).
    pub index_url: String,
    /// Precompile bytecode (start-up modules and the app); off gives a smaller image whose
    /// containers compile at every start.
    pub bytecode: bool,
    /// Use Debian Releases past their `Valid-Until` (a mirror frozen on purpose), with a
    /// warning: `TERRARIUM_ALLOW_EXPIRED_INDEX=1`.
    pub allow_expired_index: bool,
    /// Registries (`host:port`) a base image may be pulled from over plain HTTP (localhost
    /// always may).
    pub insecure_registries: Vec<String>,
    /// Build `terrarium test`'s image instead: the production image plus a `test` layer with
    /// these development and test dependencies (and the lock's dev group).
    pub test: Option<TestDependencies>,
    /// How the image's layers are compressed (`--compression`); a base image's layers keep
    /// their own.
    pub compression: Compression,
}

impl BuildOptions {
    /// Options with the cache from the environment and `SOURCE_DATE_EPOCH`.
    pub fn from_env() -> Result<Self, BuildError> {
        Ok(Self {
            offline: false,
            cache: Cache::from_env()?,
            mtime: Epoch::from_env()?,
            index_url: PYPI_SIMPLE.to_owned(),
            bytecode: true,
            allow_expired_index: std::env::var_os(ALLOW_EXPIRED_INDEX_ENV)
                .is_some_and(|v| !v.is_empty() && v != "0"),
            insecure_registries: Vec::new(),
            test: None,
            compression: Compression::default(),
        })
    }
}

/// The variable that lets a build use Debian Releases past their `Valid-Until`.
pub const ALLOW_EXPIRED_INDEX_ENV: &str = "TERRARIUM_ALLOW_EXPIRED_INDEX";

/// One layer of a built image.
#[derive(Debug, Clone)]
pub struct LayerReport {
    /// `base`, `runtime`, `system`, `deps`, `bytecode`, `app`, or, in a test image,
    /// `test-system`, `test` and `test-bytecode`.
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
    /// What it runs on: `Debian bookworm`, or `base python:3.12-slim-bookworm (sha256:…)`.
    pub runtime: String,
    /// Its Python's version (`3.11`, or the base's full version).
    pub python: String,
    /// Its layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// `terrarium.lock`.
    pub lockfile: PathBuf,
    /// Whether `terrarium.lock` was (re)written.
    pub lockfile_written: bool,
    /// Things the user should know (build steps not run natively, ...).
    pub warnings: Vec<String>,
    /// What the build decided that the summary shows (wheels built from source and the
    /// libraries they brought into the system layer).
    pub notes: Vec<String>,
    /// The image's name (the plan's).
    pub name: String,
    /// The sha256 of every `.deb` and wheel installed, for the SBOM.
    pub hashes: Hashes,
    /// The architecture it runs on (`linux/amd64`, `linux/arm64`).
    pub architecture: Architecture,
}

/// The software bill of materials of `build`: what its layers install, with the lock's hashes
/// (remembered in the cache by image digest).
pub fn sbom(build: &Build, options: &BuildOptions) -> Result<Sbom, BuildError> {
    Ok(terrarium_sbom::scan_cached(
        &options.cache,
        &build.image,
        &build.hashes,
        &build.name,
        &options.mtime.rfc3339(),
    )?)
}

/// The software bill of materials of an image terrarium did not just build: `REF` in a
/// registry, `docker://NAME` or `oci:DIR[:NAME]`, fetched and verified as a base image is, its
/// layers read for Debian packages (dpkg's `status` and `status.d`) and Python distributions.
pub fn image_sbom(
    image: &str,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Sbom, BuildError> {
    let source = BaseSource::parse(image)?;
    reporter.stage(&format!("reading {image}"));
    let (digest, config, layers) =
        base::fetch(&source, None, &base::Access::new(options, reporter))?;
    let stored = Image {
        manifest: terrarium_image::BlobRef {
            digest,
            size: 0,
            media_type: String::new(),
        },
        config: terrarium_image::BlobRef {
            digest: Digest::of(&canonical_json(&config)?),
            size: 0,
            media_type: String::new(),
        },
        layers,
        platform: Platform::LinuxAmd64,
    };
    let created = config["created"]
        .as_str()
        .unwrap_or("1970-01-01T00:00:00Z")
        .to_owned();
    Ok(terrarium_sbom::scan(
        &options.cache,
        &stored,
        &Hashes::default(),
        image,
        &created,
    )?)
}

/// Something a build is doing, for the CLI to show.
pub trait Reporter: Progress {
    /// A new stage began (`resolving Debian packages`, ...).
    fn stage(&self, text: &str);
}

/// The wheel target of a resolved runtime for `architecture`: its CPython and glibc, read from
/// the versions of the Debian packages that provide them (so markers and wheel tags match what
/// runs).
pub fn target_of(
    distro: Distro,
    architecture: Architecture,
    runtime: &[DebianPin],
) -> Result<Target, BuildError> {
    let (major, minor) = distro.python();
    let upstream = |name: &str| {
        runtime
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.version.upstream().to_owned())
            .ok_or_else(|| BuildError::Runtime {
                message: format!("the resolved runtime has no {name}"),
            })
    };
    let python_full = upstream(&format!("python{major}.{minor}-minimal"))?;
    let python_full: String = python_full
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let glibc = upstream("libc6")?;
    let glibc_minor = glibc
        .split('.')
        .nth(1)
        .and_then(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .ok_or_else(|| BuildError::Runtime {
            message: format!("libc6 {glibc} is not a glibc version"),
        })?;
    Ok(Target {
        python_minor: u32::try_from(minor).unwrap_or_default(),
        python_full,
        glibc_minor,
        architecture,
        layout: None,
    })
}

fn digest_json(value: &serde_json::Value) -> Result<Digest, BuildError> {
    Ok(Digest::of(&canonical_json(value)?))
}

/// What one build shares across its steps: the cache, the downloads, the archive and the
/// project's `terrarium.lock` section for the distro.
struct Session<'a> {
    plan: &'a Plan,
    options: &'a BuildOptions,
    reporter: &'a dyn Reporter,
    /// The Debian release of the runtime; on a base image only the Debian-free steps run (see
    /// [`build_on_base`]).
    distro: Distro,
    fetcher: Fetcher,
    archive: Archive,
    /// The base image the build stacks on, instead of a Debian runtime.
    base: Option<&'a BaseImage>,
    /// The architecture of the image.
    architecture: Architecture,
    /// For an image of another architecture than this machine's: the layers of this
    /// machine's image of the same plan, whose CPython compiles the bytecode and where the
    /// start-up trace and the build steps ran (see [`build_platforms`]). `None`: the image is
    /// this machine's, and its own code runs in the sandbox.
    native: Option<&'a [LayerReport]>,
}

impl Session<'_> {
    /// What the wheel set and the wheels built from source are keyed by besides the project:
    /// the Debian release (and the architecture, when not amd64), or the pinned base.
    fn runtime_key(&self) -> String {
        runtime_key(self.base, self.distro, self.architecture)
    }
}

/// See [`Session::runtime_key`]; amd64's is the distro alone, as before other architectures.
fn runtime_key(base: Option<&BaseImage>, distro: Distro, architecture: Architecture) -> String {
    match (base, architecture) {
        (Some(base), _) => format!("base-{}", base.digest.hex()),
        (None, Architecture::Amd64) => distro.codename().to_owned(),
        (None, other) => format!("{}-{}", distro.codename(), other.as_str()),
    }
}

/// The architecture of this machine, the only one whose code the sandbox runs.
fn host_architecture() -> Result<Architecture, BuildError> {
    Architecture::host().ok_or_else(|| BuildError::Runtime {
        message: format!(
            "this machine is {}: terrarium builds on x86_64 and aarch64 machines",
            std::env::consts::ARCH
        ),
    })
}

/// The images of every platform the plan lists (`--platform`, `platforms`), in its order.
///
/// This machine's platform is built as [`build`] builds it. Another architecture's image is
/// assembled without running any of its code: Debian's packages for that architecture, the
/// wheels its tags select, and, for what needs a Python run, this machine's image of the same
/// plan (built first, and built even when the plan does not list it): its CPython, the same
/// release, compiles the other image's `.py` files (bytecode is the same on every
/// architecture), the modules its start-up trace loaded are the ones compiled, and the build
/// steps' outputs are taken from it when they hold no machine code. An sdist only a compiler
/// turns into a wheel, or a base image, stops a build for another architecture (see
/// [`BuildError::ForeignPlatform`]).
pub fn build_platforms(
    plan: &Plan,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<Build>, BuildError> {
    let host = host_architecture()?;
    let platforms = &plan.platforms.value;
    if platforms.iter().all(|p| *p == host) {
        return Ok(vec![build(plan, options, reporter)?]);
    }
    if let Some(foreign) = platforms.iter().find(|p| **p != host) {
        if let (Some(base), None) = (&plan.build_base.value, plan.runtime.value) {
            return Err(BuildError::ForeignPlatform {
                platform: foreign.platform().to_owned(),
                message: format!(
                    "building on the base {base} is for this machine's platform ({}) only",
                    host.platform()
                ),
                fix: "remove `base` to build on Debian's runtime, or build that platform on a \
                      machine of its own"
                    .into(),
            });
        }
        if options.test.is_some() {
            return Err(BuildError::ForeignPlatform {
                platform: foreign.platform().to_owned(),
                message: "a test image runs here, so it is built for this machine only".into(),
                fix: format!("build the test image for {}", host.platform()),
            });
        }
    }
    if !platforms.contains(&host) {
        reporter.stage(&format!(
            "building {} too: the other platforms' bytecode and build steps come from it",
            host.platform()
        ));
    }
    let native = build(plan, options, reporter)?;
    let mut builds = Vec::new();
    for architecture in platforms {
        if *architecture == host {
            builds.push(native.clone());
        } else {
            reporter.stage(&format!("building {}", architecture.platform()));
            builds.push(build_debian(
                plan,
                options,
                reporter,
                *architecture,
                Some(&native.layers),
            )?);
        }
    }
    Ok(builds)
}

/// Build the image of `plan` for this machine's platform: everything it needs was decided
/// there ([`build_platforms`] makes the images of every platform the plan lists).
pub fn build(
    plan: &Plan,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Build, BuildError> {
    if let (Some(base), None) = (&plan.build_base.value, plan.runtime.value) {
        return build_on_base(plan, options, reporter, base);
    }
    build_debian(plan, options, reporter, host_architecture()?, None)
}

/// The image of `plan` on Debian's runtime for `architecture`; `native` holds this machine's
/// image of the same plan when `architecture` is another (see [`build_platforms`]).
fn build_debian(
    plan: &Plan,
    options: &BuildOptions,
    reporter: &dyn Reporter,
    architecture: Architecture,
    native: Option<&[LayerReport]>,
) -> Result<Build, BuildError> {
    let distro = plan.runtime.value.ok_or_else(|| BuildError::NoRuntime {
        reason: plan.runtime.reason.clone(),
    })?;
    // Temporary files of builds that were killed are older than any running build.
    options.cache.prune_tmp(Duration::from_secs(24 * 3600))?;
    let fetcher = Fetcher::new(options.cache.clone(), options.offline)?;
    let archive = Archive::new(fetcher.clone(), Mirror::default(), architecture)?
        .allow_expired(options.allow_expired_index);
    let session = Session {
        plan,
        options,
        reporter,
        distro,
        fetcher,
        archive,
        base: None,
        architecture,
        native,
    };
    let mut lockfile = Lockfile::read(&plan.root)?;
    let mut section = lockfile.section(distro, architecture);

    let debian = session.debian_packages(section.debian.take())?;
    let target = target_of(distro, architecture, &debian.runtime)?;
    // The .debs download while the wheels resolve; the runtime layer then finds them cached
    // (a failed download is fetched again, and reported, there).
    let pins = std::thread::scope(|scope| {
        if !session.runtime_layer_cached(&debian.runtime, true)? {
            let set = session.package_set(&debian.runtime);
            let archive = &session.archive;
            scope.spawn(move || archive.fetch_all(&set, reporter));
        }
        session.wheels(section.wheels.take(), &target, &debian)
    })?;
    let test_pins = match &options.test {
        Some(test) => {
            let locked = section.test.take();
            Some(session.test_wheels(test, locked, &target, &debian, &pins)?)
        }
        None => None,
    };

    // The trimmed runtime only when no Debian package is laid over it (see runtime_excludes).
    let trim = debian.system.is_empty() && pins.system.is_empty();
    let mut layers = vec![session.runtime_layer(&debian.runtime, trim)?];
    let mut reasons = plan.system_packages.value.clone();
    reasons.extend(pins.system_reasons());
    layers.extend(session.system_layer(&[&debian.system[..], &pins.system].concat(), reasons)?);
    layers.push(session.deps_layer(&pins.installed(), &target)?);
    let mut warnings: Vec<String> = session
        .archive
        .expired_releases()
        .into_iter()
        .map(|release| {
            format!(
                "Debian {release} used anyway ({ALLOW_EXPIRED_INDEX_ENV} is set): the mirror \
                 could be serving old packages"
            )
        })
        .collect();
    if options.bytecode {
        let bytecode = match native {
            None => session.startup_bytecode_layer(&layers, &target, &mut warnings)?,
            Some(native) => session.foreign_bytecode_layer(&layers, native, &target)?,
        };
        layers.extend(bytecode);
    }

    let notes = sdist::notes(&pins);
    let mut hashes = Hashes::default();
    for pin in debian
        .runtime
        .iter()
        .chain(&debian.system)
        .chain(&pins.system)
    {
        hashes.add_debian(&pin.name, &pin.version.to_string(), pin.sha256);
    }
    for pin in pins.installed() {
        hashes.add_python(&pin.name, &pin.version, pin.sha256);
    }
    // Record the lock before the app layer: nothing below depends on the network any more.
    let production_system: Vec<String> = debian
        .system
        .iter()
        .chain(&pins.system)
        .map(|p| p.name.clone())
        .collect();
    if architecture == Architecture::Amd64 {
        // What the generated Dockerfile needs to install the same releases (it builds amd64).
        lockfile.exclude_newer_package = pins.exclude_newer_package();
    }
    section.debian = Some(debian);
    section.wheels = Some(pins);
    if test_pins.is_some() {
        section.test = test_pins.clone();
    }
    lockfile.version = 1;
    if plan.python.origin != Origin::Config {
        // Remembered so the next plan doesn't flip to another Python (a flag or setting wins).
        lockfile.python = Some(plan.python.value.to_string());
    }
    lockfile.set_section(distro, architecture, section);
    let (lockfile_path, lockfile_written) = lockfile.write(&plan.root)?;

    let app = session.app_layer(&target, &layers, &mut warnings)?;
    layers.push(app);
    if let Some(test) = &test_pins {
        // What the test wheels link that the production image lacks: its own layer.
        let extra: Vec<DebianPin> = test
            .system
            .iter()
            .filter(|p| !production_system.contains(&p.name))
            .cloned()
            .collect();
        if let Some(mut report) = session.system_layer(&extra, test.system_reasons())? {
            report.name = "test-system";
            layers.push(report);
        }
        let installed = test.installed();
        let mut report = session.deps_layer(&installed, &target)?;
        report.name = "test";
        report.description = format!(
            "{} test and development wheels into {}",
            installed.len(),
            target.site_packages()
        );
        layers.push(report);
        if options.bytecode {
            layers.extend(session.test_bytecode_layer(&layers, &target)?);
        }
    }

    let image = store_image(&layers, run_config(plan), options, architecture)?;
    Ok(Build {
        image,
        runtime: format!("Debian {distro}"),
        python: distro.python_version().to_owned(),
        layers,
        lockfile: lockfile_path,
        lockfile_written,
        warnings,
        notes,
        name: plan.name.clone(),
        hashes,
        architecture,
    })
}

/// The image platform of an architecture.
pub fn image_platform(architecture: Architecture) -> Platform {
    match architecture {
        Architecture::Amd64 => Platform::LinuxAmd64,
        Architecture::Arm64 => Platform::LinuxArm64,
    }
}

/// Store the image of `layers` with `run` in the cache, for `architecture`.
fn store_image(
    layers: &[LayerReport],
    run: RunConfig,
    options: &BuildOptions,
    architecture: Architecture,
) -> Result<Image, BuildError> {
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
        run,
        created: options.mtime,
        platform: image_platform(architecture),
    };
    Ok(spec.store(&options.cache)?)
}

/// Build on the base image `written` (the plan's `base`): its layers, then the deps, the
/// start-up bytecode and the app, with its Python's tags, paths and environment. Debian
/// packages can't be added to a base yet, so `system-packages` and dependencies that need a
/// compiler stop the build with that reason.
fn build_on_base(
    plan: &Plan,
    options: &BuildOptions,
    reporter: &dyn Reporter,
    written: &str,
) -> Result<Build, BuildError> {
    options.cache.prune_tmp(Duration::from_secs(24 * 3600))?;
    let source = BaseSource::parse(written)?;
    if !plan.system_packages.value.is_empty() {
        return Err(BuildError::Base {
            base: written.to_owned(),
            message: format!(
                "system packages ({}) can't be added to a base image yet",
                plan.system_packages.value.join(", ")
            ),
            fix: "use a base that already has them, or remove `base` to build on Debian's \
                  runtime"
                .into(),
        });
    }
    let mut lockfile = Lockfile::read(&plan.root)?;
    let mut section = lockfile.base.get(written).cloned();
    reporter.stage(&format!("reading the base {written}"));
    let base = base::resolve(
        &source,
        section.as_ref().map(|s| s.digest),
        &base::Access::new(options, reporter),
    )
    .map_err(|err| match err {
        // The plan chose the official image itself, for a Python Debian doesn't ship: say
        // why, and the two ways around a registry this machine can't reach.
        BuildError::Registry(err) if plan.build_base.origin != Origin::Config => BuildError::Base {
            base: written.to_owned(),
            message: format!(
                "{err}; the plan builds on it because no Debian release terrarium builds on ships \
                 CPython {}",
                plan.python.value
            ),
            fix: format!(
                "set `base` to a copy of {written} in a registry this machine reaches, or set \
                 `python` to a release Debian ships ({}) and let the dependencies without a \
                 wheel for it compile",
                Distro::ALL
                    .iter()
                    .map(|d| d.python_version().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        other => other,
    })?;
    let planned = plan.python.value;
    let expected_by = if plan.python.origin == Origin::Config {
        Some("`python` is set to it".to_owned())
    } else {
        terrarium_plan::tag_python(written).map(|_| "the base's tag names it".to_owned())
    };
    if let Some(why) = expected_by
        && (planned.major, u64::from(base.python.minor)) != (3, planned.minor)
    {
        return Err(BuildError::Base {
            base: written.to_owned(),
            message: format!(
                "its Python is CPython {} ({}), but the plan expects {planned} ({why})",
                base.python.version, base.python.found
            ),
            fix: format!(
                "use a base with CPython {planned}, or set `python = \"3.{}\"`",
                base.python.minor
            ),
        });
    }
    let target = base.python.target();
    let fetcher = Fetcher::new(options.cache.clone(), options.offline)?;
    let archive = Archive::new(fetcher.clone(), Mirror::default(), Architecture::Amd64)?;
    let session = Session {
        plan,
        options,
        reporter,
        distro: Distro::Bookworm,
        fetcher,
        archive,
        base: Some(&base),
        architecture: Architecture::Amd64,
        native: None,
    };
    let no_debian = DebianLock {
        inputs: base.digest,
        runtime: Vec::new(),
        system: Vec::new(),
    };
    let locked_wheels = section.as_mut().and_then(|s| s.wheels.take());
    let pins = session.wheels(locked_wheels, &target, &no_debian)?;
    let short = base.digest.hex();
    let short = short.get(..12).unwrap_or_default();
    let mut layers: Vec<LayerReport> = base
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| LayerReport {
            name: "base",
            layer: layer.clone(),
            cached: !base.fetched,
            description: format!(
                "{written} (sha256:{short}…) layer {} of {}",
                i + 1,
                base.layers.len()
            ),
        })
        .collect();
    layers.push(session.deps_layer(&pins.installed(), &target)?);
    let mut warnings = Vec::new();
    if options.bytecode {
        layers.extend(session.startup_bytecode_layer(&layers, &target, &mut warnings)?);
    }
    let notes = sdist::notes(&pins);
    let mut hashes = Hashes::default();
    for pin in pins.installed() {
        hashes.add_python(&pin.name, &pin.version, pin.sha256);
    }
    lockfile.version = 1;
    if plan.python.origin != Origin::Config {
        lockfile.python = Some(target.python_version());
    }
    lockfile.exclude_newer_package = pins.exclude_newer_package();
    lockfile.base.insert(
        written.to_owned(),
        BaseLock {
            digest: base.digest,
            python: base.python.version.clone(),
            wheels: Some(pins),
        },
    );
    let (lockfile_path, lockfile_written) = lockfile.write(&plan.root)?;
    let app = session.app_layer(&target, &layers, &mut warnings)?;
    layers.push(app);
    let image = store_image(
        &layers,
        run_config_on(plan, &base.env),
        options,
        Architecture::Amd64,
    )?;
    Ok(Build {
        image,
        runtime: format!("base {written} (sha256:{short}…)"),
        python: base.python.version.clone(),
        layers,
        lockfile: lockfile_path,
        lockfile_written,
        warnings,
        notes,
        name: plan.name.clone(),
        hashes,
        architecture: Architecture::Amd64,
    })
}

impl Session<'_> {
    /// How this build's layers are written: the fixed mtime and `--compression`.
    fn layer_options(&self) -> LayerOptions {
        LayerOptions {
            mtime: self.options.mtime,
            compression: self.options.compression,
        }
    }

    /// How runtime and system packages are unpacked; `libraries` also leaves out the unused
    /// libraries (a runtime with no system layer over it).
    fn unpack_options(&self, libraries: bool) -> UnpackOptions {
        UnpackOptions {
            exclude: runtime_excludes(self.distro, self.architecture, libraries),
            ..UnpackOptions::default()
        }
    }

    fn package_set(&self, packages: &[DebianPin]) -> PackageSet {
        PackageSet {
            distro: self.distro,
            architecture: self.architecture,
            packages: packages.to_vec(),
        }
    }

    /// The runtime and system packages: from `terrarium.lock` when its inputs match, else
    /// resolved from the archive's signed index.
    fn debian_packages(&self, locked: Option<DebianLock>) -> Result<DebianLock, BuildError> {
        let distro = self.distro;
        let roots = distro.runtime_roots();
        let system_roots = &self.plan.system_packages.value;
        let mut inputs = serde_json::json!({
            "v": INPUTS_VERSION,
            "distro": distro.codename(),
            "roots": roots,
            "system": system_roots,
        });
        // amd64's inputs are as they were before other architectures (its locks stay valid).
        if self.architecture != Architecture::Amd64 {
            inputs["architecture"] = serde_json::json!(self.architecture.as_str());
        }
        let inputs = digest_json(&inputs)?;
        if let Some(locked) = locked.filter(|d| d.inputs == inputs) {
            return Ok(locked);
        }
        self.reporter.stage(&format!(
            "resolving Debian {distro} packages ({})",
            self.architecture
        ));
        let resolve_roots = |names: &[&str]| {
            self.archive
                .resolve(distro, names, &ResolveOptions::default(), self.reporter)
                .map(|r| r.packages)
        };
        let mut names: Vec<&str> = roots.iter().map(String::as_str).collect();
        let runtime = resolve_roots(&names)?;
        let system = if system_roots.is_empty() {
            Vec::new()
        } else {
            names.extend(system_roots.iter().map(String::as_str));
            resolve_roots(&names)?
                .packages
                .into_iter()
                .filter(|p| runtime.get(&p.name).is_none())
                .collect()
        };
        Ok(DebianLock {
            inputs,
            runtime: runtime.packages,
            system,
        })
    }

    /// The wheels: from `terrarium.lock` when the project's lock and requirements are
    /// unchanged, else pinned from the lock and resolved for what it doesn't cover.
    fn wheels(
        &self,
        locked: Option<WheelsLock>,
        target: &Target,
        debian: &DebianLock,
    ) -> Result<WheelsLock, BuildError> {
        let (inputs, requirements) = wheel_inputs(self.plan, &self.runtime_key())?;
        let builder = sdist::Builder::new(self, target, debian, locked.as_ref());
        let index = self.index();
        if let Some(mut locked) = locked.filter(|w| w.inputs == inputs) {
            if locked.added.is_none() {
                locked.added = Some(
                    self.pkg_resources(&mut locked.wheel, target, &index, &builder)?
                        .into_iter()
                        .collect(),
                );
            }
            return builder.finish(self.read_linked(locked)?);
        }
        self.reporter.stage("resolving wheels");
        let lock = self.plan.dependencies.value.lock();
        prefetch_pages(&index, lock, Group::Main, &requirements)?;
        let mut pins = match lock {
            Some(lock) => terrarium_wheels::pins_from_lock(lock, target, &index)?,
            None => Vec::new(),
        };
        let resolution = terrarium_wheels::resolve_dated(
            requirements,
            &pins,
            target,
            &index,
            self.reporter,
            &builder,
        )?;
        pins.extend(resolution.pins);
        pins.sort();
        let added = Some(
            self.pkg_resources(&mut pins, target, &index, &builder)?
                .into_iter()
                .collect(),
        );
        builder.finish(self.read_linked(WheelsLock {
            inputs,
            wheel: pins,
            built: Vec::new(),
            added,
            system: Vec::new(),
            linked: None,
            late: resolution.late,
        })?)
    }

    /// Add the last setuptools with `pkg_resources` when a wheel imports that module without
    /// declaring setuptools and nothing else installs it: such packages (aiosql 3, gunicorn
    /// 19) ran for years where every virtualenv and official image carried setuptools, and a
    /// runtime of only what the project needs has none. Returns why, for the lock's notes.
    /// Source distributions, built later, are not read.
    fn pkg_resources(
        &self,
        pins: &mut Vec<Pin>,
        target: &Target,
        index: &Index,
        builder: &sdist::Builder,
    ) -> Result<Option<String>, BuildError> {
        if pins.iter().any(|pin| pin.name == "setuptools") {
            return Ok(None);
        }
        let wheels: Vec<Pin> = pins
            .iter()
            .filter(|pin| pin.filename.ends_with(".whl"))
            .cloned()
            .collect();
        let paths = terrarium_wheels::fetch_all(&self.fetcher, &wheels, self.reporter)?;
        for (pin, path) in wheels.iter().zip(&paths) {
            let Some(module) = terrarium_wheels::undeclared_pkg_resources(path, &pin.filename)?
            else {
                continue;
            };
            let why = format!(
                "{} {} imports pkg_resources ({module}) without declaring setuptools",
                pin.name, pin.version
            );
            let requirement = terrarium_wheels::parse_requirement(
                terrarium_plan::SETUPTOOLS_WITH_PKG_RESOURCES,
                &why,
            )?;
            let extra = terrarium_wheels::resolve(
                vec![(requirement, why.clone())],
                pins,
                target,
                index,
                self.reporter,
                builder,
            )?;
            let added: Vec<String> = extra
                .iter()
                .map(|pin| format!("{} {}", pin.name, pin.version))
                .collect();
            pins.extend(extra);
            pins.sort();
            return Ok(Some(format!("{}: {why}", added.join(", "))));
        }
        Ok(None)
    }

    /// `lock` with the system libraries its binary wheels link (see [`linked`]): read from the
    /// wheels (fetched, in parallel, for the deps layer anyway) when the lock doesn't say yet.
    pub(crate) fn read_linked(&self, mut lock: WheelsLock) -> Result<WheelsLock, BuildError> {
        if lock.linked.is_some() {
            return Ok(lock);
        }
        let binary = linked::binary_wheels(&lock.wheel);
        let paths = terrarium_wheels::fetch_all(&self.fetcher, &binary, self.reporter)?;
        lock.linked = Some(linked::linked_libraries(self.distro, &binary, &paths)?);
        Ok(lock)
    }

    /// The package index, with the plan's era as its cut-off.
    fn index(&self) -> Index {
        Index::new(self.fetcher.clone(), self.options.index_url.clone())
            .with_exclude_newer(self.plan.exclude_newer.value)
    }

    /// The package index for the build requirements of source distributions, cut off at
    /// [`Plan::build_requires_cutoff`].
    pub(crate) fn build_requires_index(&self) -> Index {
        Index::new(self.fetcher.clone(), self.options.index_url.clone())
            .with_exclude_newer(self.plan.build_requires_cutoff())
    }

    /// Whether the runtime layer of `packages` (trimmed or whole, see [`runtime_excludes`])
    /// is in the cache.
    fn runtime_layer_cached(
        &self,
        packages: &[DebianPin],
        trim_libraries: bool,
    ) -> Result<bool, BuildError> {
        let key = runtime_layer_key(
            &self.package_set(packages),
            &self.unpack_options(trim_libraries),
            self.options.mtime,
        )?;
        let cached = self
            .options
            .cache
            .cached_layer(&key, self.options.compression)?;
        Ok(cached.is_some())
    }

    fn runtime_layer(
        &self,
        packages: &[DebianPin],
        trim_libraries: bool,
    ) -> Result<LayerReport, BuildError> {
        let set = self.package_set(packages);
        let unpack = self.unpack_options(trim_libraries);
        let key = runtime_layer_key(&set, &unpack, self.options.mtime)?;
        let compression = self.options.compression;
        let (layer, cached) = match self.options.cache.cached_layer(&key, compression)? {
            Some(layer) => (layer, true),
            None => {
                self.reporter.stage("building the runtime layer");
                let options = self.layer_options();
                let layer =
                    build_runtime_layer(&self.archive, &set, &unpack, options, self.reporter)?;
                (layer, false)
            }
        };
        Ok(LayerReport {
            name: "runtime",
            layer,
            cached,
            description: format!(
                "Debian {} CPython {} runtime{} ({} packages)",
                self.distro.codename(),
                self.distro.python_version(),
                match self.architecture {
                    Architecture::Amd64 => String::new(),
                    other => format!(" for {}", other.platform()),
                },
                set.packages.len()
            ),
        })
    }

    /// A layer of Debian `packages` (the plan's `system-packages`, what the wheels link), with
    /// `reasons` in its description; `None` without packages.
    fn system_layer(
        &self,
        packages: &[DebianPin],
        reasons: Vec<String>,
    ) -> Result<Option<LayerReport>, BuildError> {
        if packages.is_empty() {
            return Ok(None);
        }
        let mut packages = packages.to_vec();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        packages.dedup_by(|a, b| a.name == b.name);
        let set = self.package_set(&packages);
        let (layer, cached) = build_packages_layer(
            &self.archive,
            &set,
            &self.unpack_options(false),
            self.layer_options(),
            self.reporter,
        )?;
        Ok(Some(LayerReport {
            name: "system",
            layer,
            cached,
            description: format!("system packages: {}", reasons.join(", ")),
        }))
    }

    fn deps_layer(&self, pins: &[Pin], target: &Target) -> Result<LayerReport, BuildError> {
        let deps = build_deps_layer(
            &self.fetcher,
            pins,
            target,
            self.layer_options(),
            self.reporter,
        )?;
        Ok(LayerReport {
            name: "deps",
            layer: deps.layer,
            cached: deps.cached,
            description: format!("{} wheels into {}", pins.len(), target.site_packages()),
        })
    }

    /// The bytecode of the standard-library and dependency modules the service imports at
    /// start-up (see [`bytecode`]), cached by the layers below and the command.
    fn startup_bytecode_layer(
        &self,
        below: &[LayerReport],
        target: &Target,
        warnings: &mut Vec<String>,
    ) -> Result<Option<LayerReport>, BuildError> {
        let digests: Vec<Digest> = below.iter().map(|l| l.layer.digest).collect();
        let key = bytecode::startup_key(self.plan, &digests);
        let below: Vec<&LayerReport> = below.iter().collect();
        let mut traced = Vec::new();
        let report = self.compiled_layer(
            (
                "bytecode",
                "bytecode of the modules start-up imports",
                "start-up bytecode",
            ),
            key,
            &below,
            |root, out| {
                let (tree, warnings) = bytecode::startup_tree(self.plan, root, target, out)?;
                traced = warnings;
                Ok(tree)
            },
        )?;
        warnings.extend(traced);
        Ok(report)
    }

    /// The start-up bytecode of an image of another architecture (see [`build_platforms`]):
    /// the modules this machine's image of the same plan traced (`native`'s bytecode layer
    /// names them), compiled from this image's own sources by this machine's CPython, the
    /// same Debian release. `None` when the native image has no start-up bytecode.
    fn foreign_bytecode_layer(
        &self,
        below: &[LayerReport],
        native: &[LayerReport],
        target: &Target,
    ) -> Result<Option<LayerReport>, BuildError> {
        let Some(traced) = native.iter().find(|l| l.name == "bytecode") else {
            return Ok(None);
        };
        let digests: Vec<Digest> = below.iter().map(|l| l.layer.digest).collect();
        let key = bytecode::foreign_key(&traced.layer.digest, &digests);
        let below: Vec<&LayerReport> = below.iter().collect();
        let platform = self.architecture.platform();
        let cache = &self.options.cache;
        self.compiled_layer(
            (
                "bytecode",
                &format!(
                    "bytecode of the modules start-up imports, compiled for {platform} by the \
                     build machine's CPython"
                ),
                &format!("start-up bytecode for {platform}"),
            ),
            key,
            &below,
            |root, out| {
                let sources = bytecode::traced_sources(&Rootfs::assemble(
                    cache,
                    std::slice::from_ref(&traced.layer),
                )?)?;
                let compiler = Rootfs::assemble(cache, &compiler_layers(native))?;
                bytecode::foreign_tree(self.plan, &compiler, root, target, &sources, out)
            },
        )
    }

    /// The bytecode of everything in site-packages the layers below leave uncompiled: a test
    /// image's runner and the suite's imports (see [`bytecode::test_tree`]), cached by the
    /// layers below but the app (an edit of the app doesn't compile site-packages again).
    fn test_bytecode_layer(
        &self,
        below: &[LayerReport],
        target: &Target,
    ) -> Result<Option<LayerReport>, BuildError> {
        let below: Vec<&LayerReport> = below.iter().filter(|l| l.name != "app").collect();
        let digests: Vec<Digest> = below.iter().map(|l| l.layer.digest).collect();
        self.compiled_layer(
            (
                "test-bytecode",
                "bytecode of the test and development wheels",
                "the test image's bytecode",
            ),
            bytecode::test_key(&digests),
            &below,
            |root, out| bytecode::test_tree(self.plan, root, target, out),
        )
    }

    /// A layer of bytecode compiled by `compile` in the root of the layers `below` (writing
    /// into a scratch directory), remembered under `key`; `(name, description, what)` name it
    /// in the summary and the progress line. `None` when nothing was compiled.
    fn compiled_layer(
        &self,
        (name, description, what): (&'static str, &str, &str),
        key: Digest,
        below: &[&LayerReport],
        compile: impl FnOnce(&Rootfs, &Path) -> Result<terrarium_image::LayerTree, BuildError>,
    ) -> Result<Option<LayerReport>, BuildError> {
        let cache = &self.options.cache;
        let report = |layer, cached| LayerReport {
            name,
            layer,
            cached,
            description: description.to_owned(),
        };
        if let Some(layer) = cache.cached_layer(&key, self.options.compression)? {
            return Ok(Some(report(layer, true)));
        }
        self.reporter.stage(&format!("compiling {what}"));
        let layers: Vec<Layer> = below.iter().map(|l| l.layer.clone()).collect();
        let root = Rootfs::assemble(cache, &layers)?;
        let out = tempfile::Builder::new()
            .prefix("bytecode-")
            .tempdir_in(cache.tmp_dir()?)
            .map_err(error::io_error(cache.root()))?;
        let tree = compile(&root, out.path())?;
        if tree.is_empty() {
            return Ok(None);
        }
        let layer = tree.write(cache, self.layer_options())?;
        cache.remember_layer(&key, &layer)?;
        Ok(Some(report(layer, false)))
    }

    fn app_layer(
        &self,
        target: &Target,
        below: &[LayerReport],
        warnings: &mut Vec<String>,
    ) -> Result<LayerReport, BuildError> {
        let cache = &self.options.cache;
        let context = self.plan.context_rules()?.walk(&self.plan.root)?;
        let mut tree = app_tree(self.plan, target, &context)?;
        if let Some(base) = self.base {
            // The base's own accounts, with the service's added when it has none for its IDs.
            let root = Rootfs::assemble(cache, &base.layers)?;
            let user = self.plan.user.value;
            let passwd = LayerPath::new("etc/passwd")?;
            let group = LayerPath::new("etc/group")?;
            tree.remove(&passwd);
            tree.remove(&group);
            if let Some((passwd_text, group_text)) = base::accounts(&root, user.uid, user.gid) {
                tree.insert_bytes(passwd, 0o644, passwd_text.into_bytes());
                tree.insert_bytes(group, 0o644, group_text.into_bytes());
                tree.insert(
                    Entry::directory(LayerPath::new("home/nonroot")?, 0o700).owned_by(
                        terrarium_image::Ownership {
                            uid: user.uid.into(),
                            gid: user.gid.into(),
                            uname: "nonroot".into(),
                            gname: "nonroot".into(),
                        },
                    ),
                    Content::Empty,
                );
            }
        }
        let sources: Vec<(String, PathBuf)> = context
            .into_iter()
            .filter(|e| {
                e.path.ends_with(".py")
                    && matches!(e.kind, terrarium_project::ContextKind::File { .. })
            })
            .map(|e| (format!("/{APP_DIR}/{}", e.path), e.source))
            .collect();
        let python = target.python_version();
        // The runtime (and its start-up bytecode, so the compiler starts fast) is enough; on
        // another architecture, this machine's (the bytecode is the same).
        let root = || {
            Ok(Rootfs::assemble(
                cache,
                &compiler_layers(self.native.unwrap_or(below)),
            )?)
        };
        // The build steps run in this machine's image of the plan (see build_platforms).
        let steps_below: Vec<&LayerReport> = match self.native {
            Some(native) => native.iter().take_while(|l| l.name != "app").collect(),
            None => below.iter().collect(),
        };
        let digests: Vec<Digest> = steps_below.iter().map(|l| l.layer.digest).collect();
        let whole_root = || {
            let layers: Vec<Layer> = steps_below.iter().map(|l| l.layer.clone()).collect();
            Ok(Rootfs::assemble(cache, &layers)?)
        };
        if !self.plan.build_steps.value.is_empty() {
            self.reporter.stage("running the build steps");
        }
        let outputs = steps::outputs(cache, self.plan, &digests, whole_root)?;
        if self.native.is_some() {
            steps::check_portable(cache, self.plan, &outputs, self.architecture)?;
        }
        steps::add_outputs(cache, &mut tree, outputs)?;
        let (compiled, skipped) = if self.options.bytecode {
            bytecode::app_bytecode(cache, root, self.plan, target, &sources)?
        } else {
            Default::default()
        };
        warnings.extend(skipped.into_iter().map(|w| format!("bytecode: {w}")));
        for (source, pyc) in compiled {
            if let Some(path) = bytecode::pyc_path(&source, &python) {
                tree.insert_bytes(LayerPath::new(path.trim_start_matches('/'))?, 0o644, pyc);
            }
        }
        let layer = tree.write(cache, self.layer_options())?;
        let cached = layers_seen(cache, &layer)?;
        Ok(LayerReport {
            name: "app",
            layer,
            cached,
            description: format!("{} under /{APP_DIR}", self.plan.name),
        })
    }
}

/// The layers a bytecode compiler runs in: the runtime (or base) with its start-up bytecode.
fn compiler_layers(layers: &[LayerReport]) -> Vec<Layer> {
    layers
        .iter()
        .filter(|l| matches!(l.name, "base" | "runtime" | "bytecode"))
        .map(|l| l.layer.clone())
        .collect()
}

/// Fetch at once the index pages a resolution will read one by one: those of `group`'s locked
/// packages whose lock names no download URL (poetry.lock, requirements with hashes) and of the
/// top-level `requirements` the lock does not pin. Best effort: a page that fails is fetched
/// again, and its error reported, where it is needed.
fn prefetch_pages(
    index: &Index,
    lock: Option<&Lock>,
    group: Group,
    requirements: &[(pep508_rs::Requirement, String)],
) -> Result<(), BuildError> {
    let locked = lock.map_or(&[][..], |lock| &lock.packages[..]);
    let mut names: Vec<&str> = locked
        .iter()
        .filter(|package| package.group == group)
        .filter(|package| package.artifacts.iter().all(|a| a.url.is_none()))
        .map(|package| package.name.as_str())
        .collect();
    names.extend(
        requirements
            .iter()
            .map(|(requirement, _)| requirement.name.as_ref())
            .filter(|name| !locked.iter().any(|p| p.name.as_str() == *name)),
    );
    index.prefetch(&names)?;
    Ok(())
}

/// Whether the app layer was already known (so it was not changed by this build): its digest
/// is remembered under itself.
fn layers_seen(cache: &Cache, layer: &Layer) -> Result<bool, BuildError> {
    let seen = cache
        .cached_layer(&layer.digest, layer.compression)?
        .is_some();
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
    runtime: &str,
) -> Result<(Digest, Vec<(pep508_rs::Requirement, String)>), BuildError> {
    let mut requirements: Vec<(String, String)> = Vec::new();
    let mut lock_digest = None;
    match &plan.dependencies.value {
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
            let path = plan.root.join(&lock.path);
            let bytes = std::fs::read(&path).map_err(error::io_error(&path))?;
            lock_digest = Some(Digest::of(&bytes).to_string());
        }
        DependencySource::Unlocked {
            manifest,
            format,
            requirements: declared,
        } => {
            let what = manifest.display().to_string();
            if *format == ManifestFormat::Pipfile {
                return Err(BuildError::Dependencies {
                    file: what,
                    message: "the dependencies are not locked".into(),
                    fix: "lock the dependencies (`pipenv lock`) and build again".into(),
                });
            }
            requirements.extend(
                declared
                    .iter()
                    .map(|r| (r.clone(), format!("{what} dependencies"))),
            );
        }
        DependencySource::None => {}
    }
    for added in &plan.added_packages.value {
        requirements.push((added.clone(), "terrarium (added server)".to_owned()));
    }
    let mut inputs = serde_json::json!({
        "v": INPUTS_VERSION,
        "distro": runtime,
        "lock": lock_digest,
        "requirements": requirements.iter().map(|(r, _)| r).collect::<Vec<_>>(),
    });
    if let Some(cutoff) = plan.exclude_newer.value {
        inputs["exclude-newer"] = serde_json::json!(cutoff.to_string());
    }
    let inputs = digest_json(&inputs)?;
    let parsed = requirements
        .iter()
        .map(|(text, from)| Ok((parse_requirement(text, from)?, from.clone())))
        .collect::<Result<Vec<_>, terrarium_wheels::Error>>()?;
    Ok((inputs, parsed))
}

/// The environment of the runtime itself, before the plan's: where programs are, the locale
/// and the CA bundle the runtime layer assembles.
pub const RUNTIME_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LANG", "C.UTF-8"),
    ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
];

/// The image config of `plan`: user, /app, the runtime's environment then the plan's,
/// exec-form command, port, volumes, health check and OCI labels.
pub fn run_config(plan: &Plan) -> RunConfig {
    let runtime: Vec<(String, String)> = RUNTIME_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    run_config_on(plan, &runtime)
}

/// The image config of `plan` on a runtime whose own environment is `runtime` (a base
/// image's: its `PATH`, `LANG`, `PYTHON_VERSION`, …), the plan's settings replacing the
/// runtime's of the same name.
pub fn run_config_on(plan: &Plan, runtime: &[(String, String)]) -> RunConfig {
    let planned = plan.image_env();
    let mut env: Vec<(String, String)> = runtime
        .iter()
        .filter(|(k, _)| !planned.iter().any(|(p, _)| p == k))
        .cloned()
        .collect();
    env.extend(planned);
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        plan.name.clone(),
    );
    if let Some(version) = &plan.version {
        labels.insert(
            "org.opencontainers.image.version".to_owned(),
            version.clone(),
        );
    }
    let git = git::read(&plan.root);
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
        healthcheck: plan.healthcheck_probe().map(|check| Healthcheck {
            test: check.command,
            interval: Duration::from_secs(check.interval_secs),
            timeout: Duration::from_secs(check.timeout_secs),
            start_period: Duration::from_secs(check.start_period_secs),
            retries: check.retries,
        }),
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
