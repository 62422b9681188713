//! From a [`Project`] to a [`Plan`]: one function per decision, each returning its reason.

use terrarium_project::{
    App, AppObject, DependencySource, Fact, Framework, Group, HealthcheckSetting, Interface,
    ManifestFormat, PackageName, Project, Source, Write, WriteReason,
};

use terrarium_debian::{Architecture, Distro};

use crate::python::{self, PinnedRelease};
use crate::tools::{self, PYTHONS};
use crate::{
    Decision, EnvSetting, Origin, Plan, PlanError, ProjectInstall, PythonVersion, Server,
    Unsettled, User, Volume, VolumeLink,
};

/// Choices made on the command line, which win over `[tool.terrarium]`.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--base IMAGE`: the base image of generated Dockerfiles and of `terrarium build`.
    pub base: Option<String>,
    /// `--proxy-image IMAGE`: the reverse-proxy image.
    pub proxy_image: Option<String>,
    /// `--postgres-image IMAGE`: the PostgreSQL image.
    pub postgres_image: Option<String>,
    /// `--distro NAME`: the Debian release (and so the CPython) to build on.
    pub distro: Option<Distro>,
    /// What the package index says about the releases the project pins exactly (empty when
    /// the index was not consulted).
    pub pinned: Vec<PinnedRelease>,
    /// `--platform LIST`: the platforms `terrarium build` makes images for (empty: not given).
    pub platforms: Vec<Architecture>,
}

/// The default port of a Python web service when nothing says otherwise.
const DEFAULT_PORT: u16 = 8000;
/// The non-root user of production images (distroless's `nonroot`).
const NONROOT: User = User {
    uid: 65532,
    gid: 65532,
};
/// Where data directories go when the code's default is relative.
const DATA_ROOT: &str = "/data";

/// Decide everything for `project`.
pub fn plan(project: &Project, options: &PlanOptions) -> Result<Plan, PlanError> {
    let mut unsettled = Vec::new();
    let config = &project.config;

    let mut exclude_newer = python::decide_exclude_newer(project, options);
    let build_base = decide_build_base(project, options);
    let platforms = decide_platforms(project, options);
    let python = match (options.distro, &build_base.value) {
        (Some(distro), _) => python::python_of_distro(project, distro)?,
        (None, Some(base)) => python::python_of_base(project, options, &exclude_newer, base)?,
        (None, None) => python::decide_python(project, options, &exclude_newer)?,
    };
    if let (Some(era), Some(released)) = (exclude_newer.value, python::released(python.value))
        && released > era
    {
        exclude_newer.reason.push_str(&format!(
            "; the build requirements of source distributions are resolved as of CPython {}'s \
             release ({}) at the earliest: older build tools don't run on it",
            python.value,
            released.strftime("%Y-%m-%d")
        ));
    }
    let exclude_newer_package = python::late_packages(project, &mut exclude_newer);
    let base_image = decide_base(project, options, &python.value);
    // A Python no Debian release terrarium builds on ships runs on the official image the
    // Dockerfile starts from, pulled like any base.
    let build_base = match (&build_base.value, options.distro) {
        (None, None) if Distro::for_python(python.value.major, python.value.minor).is_none() => {
            Decision::new(
                Some(base_image.value.clone()),
                Origin::Detected,
                format!(
                    "no Debian release terrarium builds on ships CPython {} ({}): `terrarium \
                     build` puts its layers on the official image the Dockerfile starts from \
                     (pulled, verified by digest, cached, pinned in terrarium.lock)",
                    python.value,
                    python::debian_pythons()
                ),
                python.sources.clone(),
            )
        }
        _ => build_base,
    };
    let runtime = match &build_base.value {
        Some(base) if options.distro.is_none() => Decision::new(
            None,
            build_base.origin.clone(),
            format!(
                "`terrarium build` puts its layers on the base {base} and runs its Python \
                 (no Debian runtime is assembled)"
            ),
            build_base.sources.clone(),
        ),
        _ => python::decide_runtime(&python),
    };
    let dependencies = decide_dependencies(project, &mut unsettled)?;
    let app = pick_app(project, &mut unsettled);
    let port = decide_port(project, app.map(|a| &a.value));
    let (server, added_packages) = decide_server(project, app);
    let command = decide_command(project, app, &server.value, port.value, &exclude_newer)?;
    let dev_command = decide_dev_command(project, app, &server.value, &command.value, port.value);
    let volumes = decide_volumes(project, &command.value);
    let env = decide_env(project, &volumes.value, port.value);
    let healthcheck = decide_healthcheck(project, app, &mut unsettled);
    let user = match &config.user {
        Some(user) => Decision::new(
            User {
                uid: user.value.0,
                gid: user.value.1,
            },
            Origin::Config,
            "set in the configuration",
            vec![user.source.clone()],
        ),
        None => Decision::new(
            NONROOT,
            Origin::Default,
            "a fixed non-root UID/GID (distroless `nonroot`), never root (L11)",
            vec![],
        ),
    };
    let (system_packages, build_packages) = decide_debian_packages(
        config,
        &dependencies.value,
        &options.pinned,
        (python.value.major, python.value.minor),
    );
    let install_project = decide_install_project(project);
    let build_steps = match project
        .django
        .as_ref()
        .and_then(|d| Some((d, d.static_root.as_ref()?)))
    {
        Some((django, root)) => Decision::new(
            vec![strings(&[
                "python",
                &django.manage_py().to_string_lossy(),
                "collectstatic",
                "--noinput",
            ])],
            Origin::Detected,
            "Django's STATIC_ROOT is set: static files are collected at build time",
            vec![root.source.clone()],
        ),
        None => Decision::new(
            Vec::new(),
            Origin::Default,
            "nothing to run at build time",
            vec![],
        ),
    };
    let context = crate::context::decide_context(project);
    let proxy_image = configured_or(
        &options.proxy_image,
        &config.proxy_image,
        tools::NGINX_IMAGE,
        "nginx, pinned, as its own container in front of the app (L03)",
    );
    let postgres_image = configured_or(
        &options.postgres_image,
        &config.postgres_image,
        tools::POSTGRES_IMAGE,
        "PostgreSQL, pinned, with its data in a named volume (L09)",
    );

    if !project.dev_packages.is_empty() || matches!(project.dependencies, DependencySource::None) {
        // Nothing to note: dev tools are declared or there is nothing to install.
    } else {
        unsettled.push(Unsettled {
            message:
                "no development dependencies declared: the dev image has only the runtime ones"
                    .into(),
            key: "a `dev` dependency group or requirements-dev.txt".into(),
        });
    }

    Ok(Plan {
        name: image_name(&project.name.value),
        version: project.version.as_ref().map(|v| v.value.clone()),
        root: project.root.clone(),
        python,
        exclude_newer,
        exclude_newer_package,
        uv_refuses_pyproject: project
            .package
            .as_ref()
            .and_then(|p| p.invalid_requires_python.as_ref())
            .map(|r| r.value.clone()),
        base_image,
        build_base,
        runtime,
        dependencies,
        added_packages,
        server,
        command,
        dev_command,
        port,
        user,
        env,
        volumes,
        healthcheck,
        system_packages,
        build_packages,
        install_project,
        build_steps,
        context,
        proxy_image,
        postgres_image,
        platforms,
        unsettled,
    })
}

/// The platforms `terrarium build` makes images for: `--platform`, else the configuration's
/// `platforms`, else this machine's.
fn decide_platforms(project: &Project, options: &PlanOptions) -> Decision<Vec<Architecture>> {
    let host = Architecture::host().unwrap_or(Architecture::Amd64);
    let how = |platforms: &[Architecture]| {
        if platforms.iter().any(|p| *p != host) {
            format!(
                "; {} images are assembled here without running their code (Debian's packages \
                 and the wheels for that architecture; bytecode compiled by this machine's \
                 CPython of the same release)",
                platforms
                    .iter()
                    .filter(|p| **p != host)
                    .map(|p| p.platform())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        }
    };
    let unique = |mut platforms: Vec<Architecture>| {
        let mut seen = Vec::new();
        platforms.retain(|p| {
            let new = !seen.contains(p);
            seen.push(*p);
            new
        });
        platforms
    };
    if !options.platforms.is_empty() {
        let platforms = unique(options.platforms.clone());
        let reason = format!("given with --platform{}", how(&platforms));
        return Decision::new(platforms, Origin::Config, reason, vec![]);
    }
    if let Some(setting) = &project.config.platforms {
        // Reading the configuration checked each against terrarium-project's PLATFORMS.
        let platforms = unique(
            setting
                .value
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
        );
        let reason = format!("set in the configuration{}", how(&platforms));
        return Decision::new(
            platforms,
            Origin::Config,
            reason,
            vec![setting.source.clone()],
        );
    }
    Decision::new(
        vec![host],
        Origin::Default,
        format!(
            "this machine's; set `platforms` (or --platform) to build {} too",
            Architecture::ALL
                .iter()
                .filter(|p| **p != host)
                .map(|p| p.platform())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        vec![],
    )
}

fn decide_install_project(project: &Project) -> Decision<Option<ProjectInstall>> {
    let Some(package) = &project.package else {
        return Decision::new(
            None,
            Origin::Detected,
            "not a package (no [build-system] or setup.py): the source is copied to /app",
            vec![],
        );
    };
    if !package.finds_code && project.scripts.is_empty() {
        return Decision::new(
            None,
            Origin::Detected,
            format!(
                "pyproject.toml names a build backend ({}), but it would find no package named \
                 like the project to install and nothing needs the project installed (no \
                 console scripts, no src layout): the source is copied to /app and served from \
                 there",
                package.build_backend.as_deref().unwrap_or("?")
            ),
            vec![package.source.clone()],
        );
    }
    if let Some(requires) = &package.invalid_requires_python
        && !package.src_layout
        && project.scripts.is_empty()
    {
        return Decision::new(
            None,
            Origin::Detected,
            format!(
                "the project is a package, but its `requires-python = {:?}` is not PEP 440 \
                 (Poetry's syntax): uv refuses to build or install it, and nothing needs the \
                 project installed (no console scripts, no src layout): the source is copied to \
                 /app and served from there; write it in PEP 440 (`>=3.X`) to install it",
                requires.value
            ),
            vec![requires.source.clone()],
        );
    }
    let install = ProjectInstall {
        distribution: PackageName::new(&project.name.value).file_name(),
        version: project
            .version
            .as_ref()
            .map_or_else(|| "0".into(), |v| v.value.clone()),
        import_root: if package.src_layout {
            "/app/src".into()
        } else {
            "/app".into()
        },
        scripts: project.scripts.iter().map(|s| s.value.clone()).collect(),
        scm_version: package.scm_version,
    };
    Decision::new(
        Some(install),
        Origin::Detected,
        format!(
            "the project is a package{} so it is installed like a dependency, after them{}",
            if package.src_layout {
                " (src layout)"
            } else {
                ""
            },
            match &package.invalid_requires_python {
                Some(requires) => format!(
                    "; its `requires-python = {:?}` is not PEP 440 (Poetry's syntax): the \
                     generated Dockerfile's uv refuses to install it until it is written in \
                     PEP 440 (`>=3.X`)",
                    requires.value
                ),
                None => String::new(),
            }
        ),
        vec![package.source.clone()],
    )
}

/// A project file as the user reaches it: joined to the root they passed.
pub(crate) fn shown(project: &Project, file: &std::path::Path) -> std::path::PathBuf {
    if project.root == std::path::Path::new(".") {
        file.to_path_buf()
    } else {
        project.root.join(file)
    }
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn configured_or(
    flag: &Option<String>,
    setting: &Option<Fact<String>>,
    default: &str,
    reason: &str,
) -> Decision<String> {
    if let Some(image) = flag {
        return Decision::new(
            image.clone(),
            Origin::Config,
            "given on the command line",
            vec![],
        );
    }
    match setting {
        Some(s) => Decision::new(
            s.value.clone(),
            Origin::Config,
            "set in the configuration",
            vec![s.source.clone()],
        ),
        None => Decision::new(default.to_string(), Origin::Default, reason, vec![]),
    }
}

/// A name usable for images and compose projects: lowercase letters, digits, `-`.
fn image_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "app".to_string()
    } else {
        out
    }
}

/// The base `terrarium build` puts its layers on: `--base` or `base`, when set.
fn decide_build_base(project: &Project, options: &PlanOptions) -> Decision<Option<String>> {
    if let Some(base) = &options.base {
        return Decision::new(
            Some(base.clone()),
            Origin::Config,
            "given with --base: pulled (verified by digest, cached) and pinned in terrarium.lock",
            vec![],
        );
    }
    if let Some(base) = &project.config.base {
        return Decision::new(
            Some(base.value.clone()),
            Origin::Config,
            "set in the configuration: pulled (verified by digest, cached) and pinned in \
             terrarium.lock",
            vec![base.source.clone()],
        );
    }
    Decision::new(
        None,
        Origin::Default,
        "no `base` set: the runtime is assembled from Debian's signed packages",
        vec![],
    )
}

fn decide_base(
    project: &Project,
    options: &PlanOptions,
    python: &PythonVersion,
) -> Decision<String> {
    // A base from the local engine is the same image to `docker build`; an OCI layout is not
    // something a Dockerfile can start FROM, so the Dockerfile keeps the official image.
    let for_dockerfile = |base: &str| {
        if base.starts_with("oci:") {
            None
        } else {
            let base = base.strip_prefix("docker://").unwrap_or(base);
            Some(base.strip_prefix("registry://").unwrap_or(base).to_owned())
        }
    };
    if let Some(base) = options.base.as_deref().and_then(for_dockerfile) {
        return Decision::new(base, Origin::Config, "given with --base", vec![]);
    }
    if let Some(fact) = &project.config.base
        && let Some(base) = for_dockerfile(&fact.value)
    {
        return Decision::new(
            base,
            Origin::Config,
            "set in the configuration",
            vec![fact.source.clone()],
        );
    }
    let release = PYTHONS
        .iter()
        .find(|k| k.major == python.major && k.minor == python.minor)
        .map(|k| k.patch_release.to_string())
        .unwrap_or_else(|| python.to_string());
    Decision::new(
        format!("python:{release}-slim-{}", tools::BASE_DEBIAN),
        Origin::Default,
        format!("the official slim image for Python {python}, pinned to a full version (L12, L13)"),
        vec![],
    )
}

fn decide_dependencies(
    project: &Project,
    unsettled: &mut Vec<Unsettled>,
) -> Result<Decision<DependencySource>, PlanError> {
    let source = project.dependencies.clone();
    let files: Vec<Source> = source.files().into_iter().map(Source::file).collect();
    let reason = match &source {
        DependencySource::Requirements { file, lock, .. } => {
            if lock.is_none() {
                let unpinned: Vec<String> = file
                    .requirements
                    .iter()
                    .filter(|r| !r.is_pinned())
                    .map(|r| r.name.to_string())
                    .collect();
                unsettled.push(Unsettled {
                    message: if unpinned.is_empty() {
                        format!("{} pins versions but has no hashes, so downloads are not verified (L13)", file.path.display())
                    } else {
                        format!("{} leaves {} unpinned (L13)", file.path.display(), unpinned.join(", "))
                    },
                    key: "`uv pip compile --generate-hashes requirements.in -o requirements.txt`".into(),
                });
                format!("{} is installed with pip's resolver", file.path.display())
            } else {
                format!(
                    "{} pins and hashes every requirement: installed with --require-hashes",
                    file.path.display()
                )
            }
        }
        DependencySource::Locked { lock, .. } => {
            format!(
                "{} locks {} packages; the build installs exactly those, verifying hashes",
                lock.path.display(),
                lock.packages.len()
            )
        }
        DependencySource::Unlocked {
            manifest, format, ..
        } => {
            let name = manifest.display().to_string();
            let missing_lock = match format {
                ManifestFormat::Pipfile => Some((
                    "the Pipfile has no Pipfile.lock, so there is nothing pinned to install",
                    "run `pipenv lock` and commit Pipfile.lock",
                )),
                ManifestFormat::Pyproject | ManifestFormat::SetupPy | ManifestFormat::Poetry => {
                    None
                }
            };
            if let Some((message, fix)) = missing_lock {
                return Err(PlanError::Dependencies {
                    file: shown(project, manifest).display().to_string(),
                    message: message.into(),
                    fix: fix.into(),
                });
            }
            unsettled.push(Unsettled {
                message: format!("{name} declares dependencies but nothing locks them: every build may resolve different versions (L13)"),
                key: match format {
                    ManifestFormat::Poetry => "`poetry lock` (then commit poetry.lock)".into(),
                    _ => "`uv lock` (then commit uv.lock)".into(),
                },
            });
            format!("{name} declares the dependencies; resolved at build time")
        }
        DependencySource::None => "no third-party dependencies declared".to_string(),
    };
    if let Some(lock) = source.lock() {
        let source_only: Vec<String> = lock
            .packages
            .iter()
            .filter(|p| p.group == Group::Main)
            .filter(|p| {
                !p.artifacts.is_empty()
                    && p.artifacts
                        .iter()
                        .all(|a| a.filename.as_deref().is_some_and(|f| !f.ends_with(".whl")))
            })
            .map(|p| p.name.to_string())
            .collect();
        if !source_only.is_empty() {
            unsettled.push(Unsettled {
                message: format!("{} ship only source distributions: terrarium builds them, and one with C in it needs its -dev packages in the build root", source_only.join(", ")),
                key: "build-packages".into(),
            });
        }
    }
    let origin = if matches!(source, DependencySource::None) {
        Origin::Default
    } else {
        Origin::Detected
    };
    Ok(Decision::new(source, origin, reason, files))
}

/// The extra Debian packages of the runtime and of source builds: the configuration's, plus
/// what the known-needs table says dependencies built from source need.
fn decide_debian_packages(
    config: &terrarium_project::Config,
    dependencies: &DependencySource,
    pinned: &[PinnedRelease],
    python: (u64, u64),
) -> (Decision<Vec<String>>, Decision<Vec<String>>) {
    let built = crate::build::source_built(dependencies, pinned, python);
    let names: Vec<&str> = built.iter().map(|n| n.package).collect();
    let decide = |configured: &Option<terrarium_project::Fact<Vec<String>>>,
                  table: &dyn Fn(&crate::build::KnownNeeds) -> &'static [&'static str],
                  key: &str,
                  none: &str| {
        let mut value: Vec<String> = configured
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_default();
        let mut why = Vec::new();
        for needs in &built {
            let wanted: Vec<&str> = table(needs)
                .iter()
                .copied()
                .filter(|p| !value.iter().any(|v| v == p))
                .collect();
            if !wanted.is_empty() {
                why.push(format!("{} for {}", wanted.join(" "), needs.package));
                value.extend(wanted.iter().map(|p| (*p).to_owned()));
            }
        }
        let sources: Vec<Source> = configured.iter().map(|c| c.source.clone()).collect();
        let (origin, reason) = match (configured.is_some(), why.is_empty()) {
            (true, true) => (Origin::Config, "set in the configuration".to_owned()),
            (true, false) => (
                Origin::Config,
                format!(
                    "set in the configuration, plus {} ({} built from source)",
                    why.join(", "),
                    names.join(", ")
                ),
            ),
            (false, false) => (
                Origin::Detected,
                format!(
                    "{} ({} built from source; add others with `{key}`)",
                    why.join(", "),
                    names.join(", ")
                ),
            ),
            (false, true) => (Origin::Default, none.to_owned()),
        };
        Decision::new(value, origin, reason, sources)
    };
    (
        decide(
            &config.system_packages,
            &|n| n.runtime,
            "system-packages",
            "none requested; add `system-packages` for Debian libraries a dependency loads at run time",
        ),
        decide(
            &config.build_packages,
            &|n| n.build,
            "build-packages",
            "none: no known dependency is built from source; add `build-packages` for the -dev packages a source build needs",
        ),
    )
}

/// Choose the app to serve among those found, preferring conventional module names.
fn pick_app<'a>(project: &'a Project, unsettled: &mut Vec<Unsettled>) -> Option<&'a Fact<App>> {
    const PREFERRED: [&str; 6] = ["app", "main", "wsgi", "asgi", "server", "api"];
    let rank = |app: &App| {
        let last = app.module.rsplit('.').next().unwrap_or(&app.module);
        let by_name = PREFERRED
            .iter()
            .position(|p| *p == last)
            .unwrap_or(PREFERRED.len());
        (
            app.framework != Framework::Django,
            by_name,
            app.module.matches('.').count(),
            app.module.clone(),
        )
    };
    let mut apps: Vec<&Fact<App>> = project.apps.iter().collect();
    apps.sort_by_key(|a| rank(&a.value));
    if apps.len() > 1 && project.config.command.is_none() {
        unsettled.push(Unsettled {
            message: format!(
                "several applications found ({}); serving {}",
                apps.iter()
                    .map(|a| format!("{} at {}", a.value.target(), a.source))
                    .collect::<Vec<_>>()
                    .join(", "),
                apps[0].value.target()
            ),
            key: "command".into(),
        });
    }
    apps.first().copied()
}

fn decide_port(project: &Project, app: Option<&App>) -> Decision<u16> {
    if let Some(port) = &project.config.port {
        return Decision::new(
            port.value,
            Origin::Config,
            "set in the configuration",
            vec![port.source.clone()],
        );
    }
    if let Some(found) = project.ports.first() {
        return Decision::new(
            found.value,
            Origin::Detected,
            format!("the code listens on {} ({})", found.value, found.source),
            vec![found.source.clone()],
        );
    }
    let why = match app.map(|a| a.framework) {
        Some(Framework::Django) => "Django's conventional port",
        _ => "the conventional port of Python app servers; nothing in the code names one",
    };
    Decision::new(DEFAULT_PORT, Origin::Default, why, vec![])
}

fn decide_server(
    project: &Project,
    app: Option<&Fact<App>>,
) -> (Decision<Server>, Decision<Vec<String>>) {
    let none_added = || {
        Decision::new(
            Vec::new(),
            Origin::Default,
            "nothing added: the project's dependencies have everything to run it",
            vec![],
        )
    };
    if project.config.command.is_some() {
        let source = project
            .config
            .command
            .as_ref()
            .map(|c| vec![c.source.clone()])
            .unwrap_or_default();
        return (
            Decision::new(
                Server::Configured,
                Origin::Config,
                "the configured command runs the service",
                source,
            ),
            none_added(),
        );
    }
    let Some(app) = app else {
        return match project.scripts.first() {
            Some(script) => (
                Decision::new(
                    Server::ConsoleScript {
                        name: script.value.name.clone(),
                    },
                    Origin::Detected,
                    format!(
                        "no web application found; the project's console script `{}` runs it",
                        script.value.name
                    ),
                    vec![script.source.clone()],
                ),
                none_added(),
            ),
            None => (
                Decision::new(
                    Server::Configured,
                    Origin::Default,
                    "nothing to serve",
                    vec![],
                ),
                none_added(),
            ),
        };
    };
    let choice = match app.value.framework.interface() {
        Interface::Wsgi => wsgi_server(project),
        Interface::Asgi => asgi_server(project),
    };
    let sources = vec![app.source.clone()];
    let what = what(&app.value);
    let mut added = match choice.added {
        Some((requirement, why)) => {
            Decision::new(vec![requirement], Origin::Default, why, sources.clone())
        }
        None => none_added(),
    };
    // gunicorn before 20.1 imports pkg_resources without declaring setuptools; images carry
    // no setuptools, and setuptools 82 removed pkg_resources.
    if let Some(version) = pinned_version(project, "gunicorn")
        && version < (20, 1)
        && !project.depends_on("setuptools")
    {
        let why = format!(
            "{SETUPTOOLS_WITH_PKG_RESOURCES} added: gunicorn {}.{} imports pkg_resources without \
             declaring setuptools (82 removed it)",
            version.0, version.1
        );
        if added.value.is_empty() {
            added = Decision::new(Vec::new(), Origin::Default, why, project_files(project));
        } else {
            added.reason.push_str(&format!("; {why}"));
        }
        added.value.push(SETUPTOOLS_WITH_PKG_RESOURCES.to_owned());
    }
    let origin = if added.value.is_empty() {
        Origin::Detected
    } else {
        Origin::Default
    };
    (
        Decision::new(
            choice.server,
            origin,
            format!("{what} {} (L02)", choice.why),
            sources,
        ),
        added,
    )
}

/// The last setuptools release that ships `pkg_resources` (82.0.0 removed it), pinned (L13).
pub const SETUPTOOLS_WITH_PKG_RESOURCES: &str = "setuptools==81.0.0";

/// The project's dependency files, as sources.
fn project_files(project: &Project) -> Vec<Source> {
    project
        .dependencies
        .files()
        .into_iter()
        .map(Source::file)
        .collect()
}

/// A server for the app, and the pinned package added when the project doesn't have it.
struct ServerChoice {
    server: Server,
    /// What the sentence "<the app> …" goes on to say.
    why: &'static str,
    /// A pinned requirement to add, and why.
    added: Option<(String, &'static str)>,
}

/// gunicorn for a WSGI app, added when the project lacks it.
fn wsgi_server(project: &Project) -> ServerChoice {
    let gunicorn = Server::Gunicorn { worker_class: None };
    if project.depends_on("gunicorn") {
        return ServerChoice {
            server: gunicorn,
            why: "is a WSGI app and gunicorn is a dependency",
            added: None,
        };
    }
    ServerChoice {
        server: gunicorn,
        why: "is a WSGI app; gunicorn added because no WSGI server is a dependency",
        added: Some((
            format!("gunicorn=={}", tools::GUNICORN),
            "gunicorn, pinned, because no WSGI server is a dependency; add it to your dependencies to lock it with the rest",
        )),
    }
}

/// The ASGI server the project already depends on (gunicorn managing uvicorn workers, uvicorn,
/// hypercorn), else uvicorn added.
fn asgi_server(project: &Project) -> ServerChoice {
    let has = |name: &str| project.depends_on(name);
    let worker_class = Some(
        if has("uvicorn-worker") {
            "uvicorn_worker.UvicornWorker"
        } else {
            "uvicorn.workers.UvicornWorker"
        }
        .to_owned(),
    );
    let uvicorn = || format!("uvicorn=={}", tools::UVICORN);
    let has_uvicorn = has("uvicorn") || has("uvicorn-worker");
    match (has("gunicorn"), has_uvicorn, has("hypercorn")) {
        (true, true, _) => ServerChoice {
            server: Server::Gunicorn { worker_class },
            why: "is an ASGI app; gunicorn and uvicorn are dependencies: gunicorn manages uvicorn workers",
            added: None,
        },
        (false, true, _) => ServerChoice {
            server: Server::Uvicorn,
            why: "is an ASGI app and uvicorn is a dependency; it runs with worker processes",
            added: None,
        },
        (_, false, true) => ServerChoice {
            server: Server::Hypercorn,
            why: "is an ASGI app and hypercorn is a dependency",
            added: None,
        },
        (true, false, false) => ServerChoice {
            server: Server::Gunicorn { worker_class },
            why: "is an ASGI app; gunicorn is a dependency and uvicorn is added for its workers",
            added: Some((uvicorn(), "uvicorn, pinned, for gunicorn's ASGI workers")),
        },
        (false, false, false) => ServerChoice {
            server: Server::Uvicorn,
            why: "is an ASGI app; uvicorn added because no ASGI server is a dependency",
            added: Some((
                uvicorn(),
                "uvicorn, pinned, because no ASGI server is a dependency; add it to your dependencies to lock it with the rest",
            )),
        },
    }
}

fn decide_command(
    project: &Project,
    app: Option<&Fact<App>>,
    server: &Server,
    port: u16,
    exclude_newer: &Decision<Option<jiff::Timestamp>>,
) -> Result<Decision<Vec<String>>, PlanError> {
    if let Some(command) = &project.config.command {
        return Ok(Decision::new(
            command.value.clone(),
            Origin::Config,
            "set in the configuration",
            vec![command.source.clone()],
        ));
    }
    let bind = format!("0.0.0.0:{port}");
    let port_text = port.to_string();
    let (argv, why, source) = match (server, app) {
        (Server::ConsoleScript { name }, _) => {
            let script = project.scripts.iter().find(|s| &s.value.name == name);
            (
                vec![name.clone()],
                format!("the console script `{name}`"),
                script.map(|s| s.source.clone()),
            )
        }
        (Server::Gunicorn { worker_class }, Some(app)) => {
            let mut argv = strings(&["gunicorn", "--bind", &bind, "--access-logfile", "-"]);
            if let Some(worker) = worker_class {
                argv.extend(strings(&["--worker-class", worker]));
            }
            let control_socket = match pinned_version(project, "gunicorn") {
                Some(version) => version >= (25, 1),
                None => resolves_to_a_control_socket_gunicorn(project, exclude_newer.value),
            };
            if control_socket {
                argv.extend(strings(&["--control-socket", "/tmp/gunicorn.ctl"]));
            }
            let chdir = import_dir(project, app);
            if let Some((dir, _)) = &chdir {
                argv.extend(["--chdir".to_string(), format!("/app/{dir}")]);
            }
            // gunicorn reads `gunicorn.conf.py` from its working directory (after `--chdir`).
            let working_dir = chdir
                .as_ref()
                .map_or_else(std::path::PathBuf::new, |(dir, _)| dir.into());
            let config = project
                .gunicorn_configs
                .iter()
                .find(|c| c.source.file.parent() == Some(working_dir.as_path()));
            if config.is_some() {
                argv.extend(strings(&["--config", "/dev/null"]));
            }
            argv.push(app.value.target());
            (
                argv,
                format!(
                    "gunicorn serves {}{} on {bind}, access log to stdout (L14){}; workers from WEB_CONCURRENCY{}",
                    describe_app(app),
                    chdir.map_or_else(String::new, |(dir, why)| format!(
                        " from /app/{dir} ({why})"
                    )),
                    if control_socket {
                        ", its control socket in /tmp so it works on a read-only root and `gunicornc` can be reached with exec (L09, L15)"
                    } else {
                        ""
                    },
                    match config {
                        Some(config) => format!(
                            "; {} is not read (`--config /dev/null`; gunicorn would take it from \
                             its working directory): it sets {}, which this command decides for a \
                             container, in the foreground as PID 1 with logs to stdout (L14, L19); \
                             to use it, set `command`",
                            config.source.file.display(),
                            if config.value.is_empty() {
                                "nothing".to_owned()
                            } else {
                                config.value.join(", ")
                            }
                        ),
                        None => String::new(),
                    }
                ),
                Some(app.source.clone()),
            )
        }
        (Server::Uvicorn, Some(app)) => {
            let mut argv = strings(&[
                "uvicorn",
                "--host",
                "0.0.0.0",
                "--port",
                &port_text,
                "--proxy-headers",
            ]);
            let app_dir = import_dir(project, app);
            if let Some((dir, _)) = &app_dir {
                argv.extend(["--app-dir".to_string(), format!("/app/{dir}")]);
            }
            push_asgi_target(&mut argv, &app.value);
            (
                argv,
                format!(
                    "uvicorn serves {}{} on {bind} with WEB_CONCURRENCY workers",
                    describe_app(app),
                    app_dir.map_or_else(String::new, |(dir, why)| format!(
                        " from /app/{dir} ({why})"
                    )),
                ),
                Some(app.source.clone()),
            )
        }
        (Server::Hypercorn, Some(app)) => {
            let argv = vec![
                "hypercorn".to_string(),
                "--bind".into(),
                bind.clone(),
                app.value.target(),
            ];
            (
                argv,
                format!("hypercorn serves {} on {bind}", describe_app(app)),
                Some(app.source.clone()),
            )
        }
        _ => return Err(PlanError::NoEntrypoint(project.root.clone())),
    };
    Ok(Decision::new(
        argv,
        Origin::Detected,
        format!("{why}; exec form so the server is PID 1 and gets SIGTERM (L19)"),
        source.into_iter().collect(),
    ))
}

/// When gunicorn 25.1, the first with a control socket (by default under `$HOME`, read-only
/// in the image), was uploaded.
const GUNICORN_CONTROL_SOCKET_SINCE: &str = "2026-02-13T11:09:57Z";

/// Whether an unpinned gunicorn dependency resolves to a release with a control socket: the
/// resolver takes the newest release its specifiers allow as of the project's era, so it
/// does when nothing caps it below 25.1 and the era is later than that release.
fn resolves_to_a_control_socket_gunicorn(
    project: &Project,
    exclude_newer: Option<jiff::Timestamp>,
) -> bool {
    if !project.depends_on("gunicorn") {
        return false;
    }
    let specifiers = match &project.dependencies {
        DependencySource::Requirements { file, .. } => file
            .requirements
            .iter()
            .find(|r| r.name == PackageName::new("gunicorn"))
            .map(|r| r.specifiers.clone()),
        DependencySource::Unlocked { requirements, .. } => requirements
            .iter()
            .find(|r| PackageName::of_requirement(r) == Some(PackageName::new("gunicorn")))
            .cloned(),
        _ => None,
    };
    let capped =
        specifiers.is_some_and(|s| s.contains('<') || s.contains("~=") || s.contains("=="));
    let since: Option<jiff::Timestamp> = GUNICORN_CONTROL_SOCKET_SINCE.parse().ok();
    !capped && since.is_some_and(|since| exclude_newer.is_none_or(|era| era >= since))
}

/// The directory the app is imported from, below /app, when it is not /app itself, and why:
/// a Django project's `manage.py` below the root (`web` for `web/manage.py`), or the
/// non-package directory whose sibling modules the app imports (`src`).
fn import_dir(project: &Project, app: &Fact<App>) -> Option<(String, &'static str)> {
    if let Some(dir) = &app.value.import_dir {
        return Some((
            dir.clone(),
            "the directory its modules import each other from",
        ));
    }
    let django = project.django.as_ref()?;
    (app.value.framework == Framework::Django && !django.dir.as_os_str().is_empty()).then(|| {
        (
            django.dir.to_string_lossy().into_owned(),
            "the directory of manage.py",
        )
    })
}

/// The `(major, minor)` version of a package the project pins (in its lock or with `==`).
fn pinned_version(project: &Project, name: &str) -> Option<(u64, u64)> {
    let wanted = terrarium_project::PackageName::new(name);
    let version = match &project.dependencies {
        DependencySource::Requirements {
            file, lock: None, ..
        } => file
            .requirements
            .iter()
            .find(|r| r.name == wanted)?
            .pinned_version()?
            .to_string(),
        source => source
            .lock()?
            .packages
            .iter()
            .find(|p| p.name == wanted)?
            .version
            .clone(),
    };
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// The app as the subject of a sentence: "Flask", "the plain WSGI callable".
fn what(app: &App) -> String {
    match app.framework {
        Framework::Wsgi | Framework::Asgi => format!("the plain {} callable", app.framework),
        other => other.to_string(),
    }
}

fn describe_app(app: &Fact<App>) -> String {
    if app.value.framework == Framework::Django {
        let whence = if app.source.line.is_some() {
            "WSGI_APPLICATION"
        } else {
            "the project's wsgi module"
        };
        return format!(
            "the Django WSGI application {} ({whence}, {})",
            app.value.target(),
            app.source
        );
    }
    match &app.value.object {
        AppObject::Factory(name) => format!(
            "{} app factory `{name}` found in {}",
            what(&app.value),
            app.source.file.display()
        ),
        AppObject::Variable(name) => {
            format!("{} app `{name}` found in {}", what(&app.value), app.source)
        }
    }
}

fn push_asgi_target(argv: &mut Vec<String>, app: &App) {
    match &app.object {
        AppObject::Factory(name) => {
            argv.push("--factory".into());
            argv.push(format!("{}:{name}", app.module));
        }
        AppObject::Variable(_) => argv.push(app.target()),
    }
}

/// The app as `flask --app` takes it: its target, or the file's path below /app when it is
/// imported from a directory of its own (Flask puts the file's directory on `sys.path`).
fn flask_target(app: &App) -> String {
    match &app.import_dir {
        Some(dir) => {
            let object = app.target();
            let object = object.split_once(':').map_or("app", |(_, o)| o);
            format!("{dir}/{}.py:{object}", app.module.replace('.', "/"))
        }
        None => app.target(),
    }
}

fn decide_dev_command(
    project: &Project,
    app: Option<&Fact<App>>,
    server: &Server,
    command: &[String],
    port: u16,
) -> Decision<Vec<String>> {
    if let Some(dev) = &project.config.dev_command {
        return Decision::new(
            dev.value.clone(),
            Origin::Config,
            "set in the configuration",
            vec![dev.source.clone()],
        );
    }
    let port_text = port.to_string();
    let Some(app) = app.filter(|_| !matches!(server, Server::Configured)) else {
        return Decision::new(
            command.to_vec(),
            Origin::Default,
            "no framework dev server known for this service: the production command, with the source mounted",
            vec![],
        );
    };
    let mut sources = vec![app.source.clone()];
    match app.value.framework {
        Framework::Flask
            if let Some((major, minor)) = pinned_version(project, "flask")
                && (major, minor) < (2, 2) =>
        {
            sources.extend(project_files(project));
            Decision::new(
                strings(&[
                    "env",
                    &format!("FLASK_APP={}", flask_target(&app.value)),
                    "FLASK_DEBUG=1",
                    "flask",
                    "run",
                    "--host",
                    "0.0.0.0",
                    "--port",
                    &port_text,
                ]),
                Origin::Detected,
                format!(
                    "Flask's development server with the reloader and debugger, bound to 0.0.0.0 \
                     inside the container (L16); Flask {major}.{minor} predates `flask --app` and \
                     `--debug` (2.2), so they are given as FLASK_APP and FLASK_DEBUG"
                ),
                sources,
            )
        }
        Framework::Flask => Decision::new(
            strings(&[
                "flask",
                "--app",
                &flask_target(&app.value),
                "--debug",
                "run",
                "--host",
                "0.0.0.0",
                "--port",
                &port_text,
            ]),
            Origin::Detected,
            "Flask's development server with the reloader and debugger, bound to 0.0.0.0 inside the container (L16)",
            sources,
        ),
        Framework::Django => Decision::new(
            strings(&[
                "python",
                &project.django.as_ref().map_or_else(
                    || "manage.py".into(),
                    |d| d.manage_py().to_string_lossy().into_owned(),
                ),
                "runserver",
                &format!("0.0.0.0:{port}"),
            ]),
            Origin::Detected,
            "Django's runserver, which reloads on change, bound to 0.0.0.0 inside the container (L16)",
            sources,
        ),
        Framework::Wsgi => {
            let mut argv = command.to_vec();
            argv.insert(1, "--reload".into());
            Decision::new(
                argv,
                Origin::Detected,
                "the production server with --reload; a plain WSGI app has no dev server of its own (L16)",
                sources,
            )
        }
        Framework::FastApi | Framework::Starlette | Framework::Quart | Framework::Asgi
            if matches!(server, Server::Hypercorn) =>
        {
            Decision::new(
                strings(&[
                    "hypercorn",
                    "--reload",
                    "--bind",
                    &format!("0.0.0.0:{port}"),
                    &app.value.target(),
                ]),
                Origin::Detected,
                "hypercorn, the server the project installs, with --reload, bound to 0.0.0.0 inside the container (L16)",
                sources,
            )
        }
        Framework::FastApi | Framework::Starlette | Framework::Quart | Framework::Asgi => {
            let mut argv = strings(&[
                "uvicorn", "--host", "0.0.0.0", "--port", &port_text, "--reload",
            ]);
            if let Some(dir) = &app.value.import_dir {
                argv.extend(["--app-dir".to_string(), format!("/app/{dir}")]);
            }
            push_asgi_target(&mut argv, &app.value);
            Decision::new(
                argv,
                Origin::Detected,
                "uvicorn with --reload, bound to 0.0.0.0 inside the container (L16)",
                sources,
            )
        }
    }
}

/// The server's working directory: `/app`, or where `--chdir` takes it.
fn working_dir(command: &[String]) -> String {
    command
        .iter()
        .position(|arg| arg == "--chdir")
        .and_then(|i| command.get(i + 1))
        .cloned()
        .unwrap_or_else(|| APP_ROOT.to_owned())
}

fn decide_volumes(project: &Project, command: &[String]) -> Decision<Vec<Volume>> {
    let workdir = working_dir(command);
    if let Some(volumes) = &project.config.volumes {
        return Decision::new(
            volumes
                .value
                .iter()
                .map(|p| Volume {
                    path: p.clone(),
                    env: None,
                    links: Vec::new(),
                })
                .collect(),
            Origin::Config,
            "set in the configuration",
            vec![volumes.source.clone()],
        );
    }
    let writes = writes_needing_volumes(project);
    if project.data_dirs.is_empty() && writes.is_empty() {
        return Decision::new(
            Vec::new(),
            Origin::Default,
            "no data directory found: the container keeps no state (L09)",
            vec![],
        );
    }
    let mut volumes = Vec::new();
    let mut reasons = Vec::new();
    for dir in &project.data_dirs {
        let default = dir.value.default.clone().unwrap_or_default();
        let path = if default.starts_with('/') {
            default.clone()
        } else {
            format!(
                "{DATA_ROOT}/{}",
                default.trim_start_matches("./").trim_end_matches('/')
            )
        };
        reasons.push(format!("{} ({})", dir.value.name, dir.source));
        if !volumes.iter().any(|v: &Volume| v.path == path) {
            volumes.push(Volume {
                path,
                env: Some(dir.value.name.clone()),
                links: Vec::new(),
            });
        }
    }
    let mut sentences = Vec::new();
    if !reasons.is_empty() {
        sentences.push(format!(
            "data directories named by {}: declared as volumes so data outlives the container (L09)",
            reasons.join(", ")
        ));
    }
    let mut sources: Vec<Source> = project.data_dirs.iter().map(|d| d.source.clone()).collect();
    if !writes.is_empty() {
        let mut written = Vec::new();
        for fact in &writes {
            // A SQLite file at a fixed path (`at`): a link to the same name in the data volume.
            let linked = |at: String, file: &str, how: &str| {
                let target = format!("{DATA_ROOT}/{file}");
                let what = format!("the SQLite database {at}, {how}: a link to {target}");
                (
                    DATA_ROOT.to_owned(),
                    what,
                    Some(VolumeLink { path: at, target }),
                )
            };
            let (path, what, link) = match &fact.value {
                Write::Dir { path, why } => (format!("{APP_ROOT}/{path}"), why.to_string(), None),
                Write::Sqlite { setting, file } => (
                    DATA_ROOT.to_owned(),
                    format!("the SQLite database {file}, moved there with {setting}"),
                    None,
                ),
                Write::SqliteInWorkdir { file } => linked(
                    format!("{workdir}/{file}"),
                    file,
                    "at a fixed URL relative to the working directory",
                ),
                Write::SqliteFile { path } => linked(
                    format!("{APP_ROOT}/{path}"),
                    path.rsplit('/').next().unwrap_or(path),
                    "at a path the settings fix by default",
                ),
            };
            written.push(format!("{path} ({what}, {})", fact.source));
            sources.push(fact.source.clone());
            let index = match volumes.iter().position(|v: &Volume| v.path == path) {
                Some(index) => index,
                None => {
                    volumes.push(Volume {
                        path,
                        env: None,
                        links: Vec::new(),
                    });
                    volumes.len() - 1
                }
            };
            if let Some(link) = link
                && !volumes[index].links.contains(&link)
            {
                volumes[index].links.push(link);
            }
        }
        sentences.push(format!(
            "the code writes under the project at run time: {}; the project is read-only in the \
             image, so each is a volume owned by the service user (L09)",
            written.join(", ")
        ));
    }
    Decision::new(volumes, Origin::Detected, sentences.join("; "), sources)
}

/// Where the project itself lives in the image (the working directory).
const APP_ROOT: &str = "/app";

/// A setting that sends the project's logs to stdout instead of files (`LOG_TO_STDOUT`).
fn log_switch(project: &Project) -> Option<&Fact<terrarium_project::EnvVar>> {
    project.env.iter().find(|e| {
        let name = e.value.name.to_ascii_uppercase();
        name.contains("LOG") && name.contains("STDOUT")
    })
}

/// The project's writes under its directory that need a volume: all but log directories when
/// the project has a switch that sends its logs to stdout (set instead, L14).
fn writes_needing_volumes(project: &Project) -> Vec<&Fact<Write>> {
    let switch = log_switch(project).is_some();
    project
        .writes
        .iter()
        .filter(|fact| match &fact.value {
            Write::Dir { path, why } => {
                !(switch
                    && (*why == WriteReason::LogFiles
                        || (*why == WriteReason::Created && path.starts_with("log"))))
            }
            Write::Sqlite { .. } | Write::SqliteFile { .. } | Write::SqliteInWorkdir { .. } => true,
        })
        .collect()
}

/// Settings whose default terrarium replaces so the service works in its image: a SQLite URL
/// under the project moves to the data volume, a logs-to-stdout switch is turned on.
fn env_overrides(project: &Project) -> Vec<(String, String, Source)> {
    let mut overrides = Vec::new();
    for fact in &project.writes {
        if let Write::Sqlite { setting, file } = &fact.value {
            overrides.push((
                setting.clone(),
                format!("sqlite:///{DATA_ROOT}/{file}"),
                fact.source.clone(),
            ));
        }
    }
    if let Some(switch) = log_switch(project) {
        overrides.push((switch.value.name.clone(), "1".into(), switch.source.clone()));
    }
    overrides
}

/// Whether a setting's name says it holds a secret (`*_PASSWORD`, `*_TOKEN`, `*_KEY`, …).
pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    // A setting about a secret (how long a token lives, the prefix of its header) is not one.
    const ABOUT_A_SECRET: [&str; 13] = [
        "_EXPIRE",
        "_EXPIRES",
        "_EXPIRY",
        "_SECONDS",
        "_MINUTES",
        "_HOURS",
        "_DAYS",
        "_TTL",
        "_LIFETIME",
        "_TIMEOUT",
        "_LENGTH",
        "_PREFIX",
        "_ALGORITHM",
    ];
    if ABOUT_A_SECRET.iter().any(|suffix| upper.ends_with(suffix)) {
        return false;
    }
    [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "API_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|w| upper.contains(w))
        || upper.ends_with("_KEY")
}

/// Whether a value carries credentials: a URL with a password (`postgres://u:pw@host/db`) or a
/// query parameter that names a secret (`?password=…`, `&token=…`). Such a default is a secret
/// whatever the setting is called (L22).
pub(crate) fn carries_credentials(value: &str) -> bool {
    if let Some((_, rest)) = value.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo
                .split_once(':')
                .is_some_and(|(_, password)| !password.is_empty())
        {
            return true;
        }
    }
    let query = value.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query.split('&').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(key, v)| !v.is_empty() && is_secret(key))
    })
}

fn decide_env(project: &Project, volumes: &[Volume], port: u16) -> Decision<Vec<EnvSetting>> {
    const MANAGED: [&str; 4] = [
        "PORT",
        "WEB_CONCURRENCY",
        "PYTHONUNBUFFERED",
        "DJANGO_SETTINGS_MODULE",
    ];
    let mut env = vec![
        EnvSetting {
            name: "PORT".into(),
            default: Some(port.to_string()),
            secret: false,
            required: false,
        },
        EnvSetting {
            name: "WEB_CONCURRENCY".into(),
            default: Some("2".into()),
            secret: false,
            required: false,
        },
    ];
    let mut sources = Vec::new();
    let overrides = env_overrides(project);
    let mut overridden = Vec::new();
    for fact in &project.env {
        if MANAGED.contains(&fact.value.name.as_str()) {
            continue;
        }
        let mut default = fact.value.default.clone();
        if let Some((_, value, source)) = overrides.iter().find(|o| o.0 == fact.value.name) {
            default = Some(value.clone());
            overridden.push(format!("{}={value} ({source})", fact.value.name));
        }
        if let Some(volume) = volumes
            .iter()
            .find(|v| v.env.as_deref() == Some(fact.value.name.as_str()))
        {
            default = Some(volume.path.clone());
        }
        // A default that carries credentials is never baked in, so the service needs the
        // setting from its environment: secret and required.
        let credentials = default.as_deref().is_some_and(carries_credentials);
        let secret = is_secret(&fact.value.name) || credentials;
        let required = (fact.value.required && default.is_none()) || credentials;
        env.push(EnvSetting {
            name: fact.value.name.clone(),
            default: if secret { None } else { default },
            secret,
            required,
        });
        sources.push(fact.source.clone());
    }
    // An overridden setting the scan didn't see read (an `or` fallback) is added.
    for (name, value, source) in &overrides {
        if !env.iter().any(|e| &e.name == name) {
            env.push(EnvSetting {
                name: name.clone(),
                default: Some(value.clone()),
                secret: false,
                required: false,
            });
            overridden.push(format!("{name}={value} ({source})"));
        }
    }
    if let Some(configured) = &project.config.env {
        for (name, value) in &configured.value {
            let secret = is_secret(name) || carries_credentials(value);
            match env.iter_mut().find(|e| &e.name == name) {
                Some(existing) => {
                    existing.default = (!secret).then(|| value.clone());
                    existing.secret = secret;
                    existing.required = false;
                }
                None => env.push(EnvSetting {
                    name: name.clone(),
                    default: (!secret).then(|| value.clone()),
                    secret,
                    required: false,
                }),
            }
        }
        sources.push(configured.source.clone());
    }
    let secrets: Vec<&str> = env
        .iter()
        .filter(|e| e.secret)
        .map(|e| e.name.as_str())
        .collect();
    let mut reason = format!(
        "PORT and WEB_CONCURRENCY for the server, and the {} settings the code reads, with the defaults it falls back to (L10)",
        env.len() - 2
    );
    if !overridden.is_empty() {
        reason.push_str(&format!(
            "; {}: so the service writes to its volume and logs to stdout, not into the \
             read-only project (L09, L14)",
            overridden.join(", ")
        ));
    }
    if !secrets.is_empty() {
        reason.push_str(&format!(
            "; {} look like secrets (by name, or a default that carries credentials) and are \
             never written with a value (L22)",
            secrets.join(", ")
        ));
    }
    Decision::new(env, Origin::Detected, reason, sources)
}

fn decide_healthcheck(
    project: &Project,
    app: Option<&Fact<App>>,
    unsettled: &mut Vec<Unsettled>,
) -> Decision<Option<String>> {
    match project.config.healthcheck.as_ref() {
        Some(Fact {
            value: HealthcheckSetting::Path(path),
            source,
        }) => {
            return Decision::new(
                Some(path.clone()),
                Origin::Config,
                "set in the configuration",
                vec![source.clone()],
            );
        }
        Some(Fact {
            value: HealthcheckSetting::Disabled(_),
            source,
        }) => {
            return Decision::new(
                None,
                Origin::Config,
                "disabled in the configuration",
                vec![source.clone()],
            );
        }
        None => {}
    }
    if let Some(route) = project.health_routes.first() {
        return Decision::new(
            Some(route.value.clone()),
            Origin::Detected,
            format!(
                "the route {} ({}) answers health checks (L18)",
                route.value, route.source
            ),
            vec![route.source.clone()],
        );
    }
    if app.is_none() {
        return Decision::new(
            None,
            Origin::Default,
            "not a web application: no HTTP health check",
            vec![],
        );
    }
    unsettled.push(Unsettled {
        message: "no health route found (/health, /healthz, …): the health check probes / and fails if it does not answer 2xx".into(),
        key: "healthcheck".into(),
    });
    Decision::new(
        Some("/".into()),
        Origin::Default,
        "no health route found: probing / (L18)",
        vec![],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_safe() {
        assert_eq!(image_name("Todo API"), "todo-api");
        assert_eq!(image_name("__"), "app");
        assert_eq!(image_name("my_service.v2"), "my-service-v2");
    }

    #[test]
    fn credentials_in_values() {
        for value in [
            "postgres://user:pw@db:5432/app",
            "redis://:hunter2@cache:6379/0",
            "amqp://guest:guest@rabbit//",
            "https://api.example.com/v1?api_key=abc",
            "mysql://u:p@h/db?charset=utf8",
        ] {
            assert!(carries_credentials(value), "{value}");
        }
        for value in [
            "postgres://user@db/app",
            "postgres://db/app",
            "sqlite:////data/app.db",
            "http://example.com/?page=2",
            "info",
            "user@example.com",
        ] {
            assert!(!carries_credentials(value), "{value}");
        }
    }

    #[test]
    fn secret_names() {
        for name in [
            "DJANGO_SECRET_KEY",
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "STRIPE_API_KEY",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            "DATA_DIR",
            "GREETING",
            "PORT",
            "KEYBOARD_LAYOUT",
            "ACCESS_TOKEN_EXPIRE_MINUTES",
            "JWT_TOKEN_PREFIX",
            "PASSWORD_RESET_TIMEOUT",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }
}
