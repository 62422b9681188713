//! The production Dockerfile (multi-stage, non-root, no build tools in the final stage) and
//! the development Dockerfile (same base and dependencies, dev tools, source mounted).

use std::fmt::Write as _;

use terrarium_plan::build::{DOCKER_COMPILER_PACKAGES, source_built};
use terrarium_plan::{Plan, tools};

use crate::install::{self, ImageKind};
use crate::{json_array, json_string};

const RUN_JOIN: &str = " \\\n && ";

/// `KEY=value` quoted for a Dockerfile `ENV` line.
fn env_pair(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:,@+%".contains(c));
    if plain {
        format!("{name}={value}")
    } else {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$");
        format!("{name}=\"{escaped}\"")
    }
}

fn env_block(pairs: &[String]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    format!("ENV {}\n", pairs.join(" \\\n    "))
}

/// The plan's image environment as `ENV` pairs: the same variables a native build sets.
fn image_env(plan: &Plan) -> Vec<String> {
    plan.image_env()
        .iter()
        .map(|(name, value)| env_pair(name, value))
        .collect()
}

/// Debian packages the service needs at run time, installed in one layer with the lists
/// removed (L05).
fn apt_install(plan: &Plan) -> Vec<String> {
    let packages = &plan.system_packages.value;
    // uWSGI, the one package that embeds Python, never publishes a wheel: the pins' wheels
    // don't matter here.
    let python = (plan.python.value.major, plan.python.value.minor);
    let embeds_python = source_built(&plan.dependencies.value, &[], python)
        .iter()
        .any(|needs| needs.embeds_python);
    if packages.is_empty() && !embeds_python {
        return Vec::new();
    }
    let mut lines = vec!["apt-get update".to_string()];
    if !packages.is_empty() {
        lines.push(format!(
            "apt-get install -y --no-install-recommends {}",
            packages.join(" ")
        ));
    }
    if embeds_python {
        lines.push(SHARED_LIBPYTHON.to_string());
    }
    lines.push("rm -rf /var/lib/apt/lists/*".to_string());
    lines
}

/// Debian's shared libpython for a dependency that embeds Python (uWSGI), when the base image's
/// Python has no shared library in place (the official images' has; Debian's interpreter is
/// static and its `libpython3.X` package is separate).
const SHARED_LIBPYTHON: &str = "if ! python -c 'import os, sysconfig as s; raise SystemExit(not os.path.exists(os.path.join(s.get_config_var(\"LIBDIR\"), s.get_config_var(\"INSTSONAME\"))))'; then apt-get install -y --no-install-recommends \"libpython$(python -c 'import sysconfig; print(sysconfig.get_python_version())')\"; fi";

/// The compiler and `-dev` packages that dependencies built from source need (the plan's
/// `build-packages`), for a build stage; nothing when no dependency is built from source.
fn apt_build_install(plan: &Plan) -> Vec<String> {
    let dev = &plan.build_packages.value;
    if dev.is_empty() {
        return Vec::new();
    }
    let mut packages: Vec<String> = DOCKER_COMPILER_PACKAGES
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    packages.extend(
        dev.iter()
            .filter(|p| !packages.contains(p))
            .cloned()
            .collect::<Vec<_>>(),
    );
    vec![
        "apt-get update".to_string(),
        format!(
            "apt-get install -y --no-install-recommends {}",
            packages.join(" ")
        ),
        PYTHON_HEADERS.to_string(),
        "rm -rf /var/lib/apt/lists/*".to_string(),
    ]
}

/// Python's headers from Debian when the base image's Python has none (the official images
/// have them; a base built on Debian's own Python does not).
const PYTHON_HEADERS: &str = "if [ ! -e \"$(python -c 'import sysconfig; print(sysconfig.get_path(\"include\"))')/Python.h\" ]; then apt-get install -y --no-install-recommends \"python$(python -c 'import sysconfig; print(sysconfig.get_python_version())')-dev\"; fi";

fn header(out: &mut String, lines: &[String]) {
    for line in lines {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

fn copy_lines(out: &mut String, steps: &install::InstallSteps) {
    for (files, dir) in &steps.copies {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let _ = writeln!(out, "COPY {} {dir}", names.join(" "));
    }
}

fn tool_install(out: &mut String, steps: &install::InstallSteps) {
    let mut line = format!("RUN python -m pip install --no-cache-dir uv=={}", tools::UV);
    if !steps.tools.is_empty() {
        let _ = write!(
            line,
            "{RUN_JOIN}uv pip install --system {}",
            steps.tools.join(" ")
        );
    }
    out.push_str(&line);
    out.push('\n');
}

/// The build context of the Dockerfiles, from the project directory: `.`, or the uv
/// workspace root (`..`) for a member, as its lock is there.
fn context(plan: &Plan) -> String {
    plan.workspace()
        .map_or_else(|| ".".to_string(), |w| w.root.display().to_string())
}

/// The production Dockerfile.
pub(crate) fn production(plan: &Plan) -> String {
    let steps = install::steps(plan, ImageKind::Production);
    let user = plan.user.value;
    let port = plan.port.value;
    let mut out = String::new();
    header(
        &mut out,
        &[
            format!(
                "Production image of {}, written by `terrarium init` from its plan",
                plan.name
            ),
            "(`terrarium plan` explains every choice). You own this file: edit it as you like."
                .into(),
            String::new(),
            match plan.workspace() {
                Some(_) => format!(
                    "  docker build -f Dockerfile -t {} {}",
                    plan.name,
                    context(plan)
                ),
                None => format!("  docker build -t {} .", plan.name),
            },
            format!("  docker run --rm -p 127.0.0.1:{port}:{port} {}", plan.name),
        ],
    );
    let _ = writeln!(out, "\nARG PYTHON_IMAGE={}\n", plan.base_image.value);

    out.push_str("# Build stage: tools and the dependency install stay here, out of the final image (L12).\n");
    out.push_str("FROM ${PYTHON_IMAGE} AS build\n");
    out.push_str(&env_block(&[
        "PIP_NO_CACHE_DIR=1".into(),
        "PIP_DISABLE_PIP_VERSION_CHECK=1".into(),
        "PIP_ROOT_USER_ACTION=ignore".into(),
        "PIPENV_VERBOSITY=-1".into(),
        "UV_NO_CACHE=1".into(),
        "PYTHONDONTWRITEBYTECODE=1".into(),
    ]));
    let build_apt = apt_build_install(plan);
    if !build_apt.is_empty() {
        out.push_str(
            "# Compilers and headers for dependencies built from source (build-packages); the\n\
             # runtime stage gets only the libraries they load (system-packages).\n",
        );
        let _ = writeln!(out, "RUN {}", build_apt.join(RUN_JOIN));
    }
    tool_install(&mut out, &steps);
    out.push_str("WORKDIR /src\n");
    if !steps.commands.is_empty() {
        out.push_str(
            "# Dependency manifests first, so the install is cached until they change (L06).\n",
        );
        copy_lines(&mut out, &steps);
        for note in &steps.notes {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "RUN {}", steps.commands.join(RUN_JOIN));
    }
    if plan.install_project.value.is_some() {
        let _ = writeln!(out, "COPY {} .", install::source(plan));
        let _ = writeln!(
            out,
            "RUN {}",
            install::project_install(plan, ImageKind::Production)
        );
    }
    if steps.commands.is_empty() && plan.install_project.value.is_none() {
        out.push_str("RUN mkdir -p /install\n");
    }

    out.push_str("\n# Runtime stage: the base, the installed dependencies, the source. No pip, no compilers.\n");
    out.push_str("FROM ${PYTHON_IMAGE} AS runtime\n");
    let pairs = image_env(plan);
    let documented = plan.documented_env();
    if !documented.is_empty() {
        out.push_str("# Also read from the environment, never baked in (L10, L22):\n");
        for setting in &documented {
            let what = match (setting.secret, setting.required) {
                (true, true) => "secret, required",
                (true, false) => "secret",
                (false, true) => "required",
                (false, false) => "optional",
            };
            let _ = writeln!(out, "#   {} ({what})", setting.name);
        }
    }
    out.push_str(&env_block(&pairs));
    let mut setup = apt_install(plan);
    setup.extend([
        "if python -m pip --version >/dev/null 2>&1; then python -m pip uninstall --yes --quiet pip setuptools wheel; fi".to_string(),
        format!("groupadd --system --gid {} nonroot", user.gid),
        format!(
            "useradd --system --uid {} --gid {} --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot",
            user.uid, user.gid
        ),
    ]);
    // The project's import root on `sys.path`, as `terrarium build` installs it: its backend
    // may package the code under another name (Poetry's `packages = [{ include = "src" }]`
    // installs `src`, while the code imports `app` from src/).
    if let Some(install) = &plan.install_project.value
        && install.import_root != "/app"
    {
        setup.push(format!(
            "echo {} > \"$(python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))')/{}.pth\"",
            install::shell_word(&install.import_root),
            install.distribution
        ));
    }
    let _ = writeln!(out, "RUN {}", setup.join(RUN_JOIN));
    out.push_str("COPY --from=build /install /usr/local\n");
    out.push_str("WORKDIR /app\n");
    let _ = writeln!(out, "COPY {} .", install::source(plan));
    let placeholders = plan.build_placeholders();
    for step in &plan.build_steps.value {
        if !placeholders.is_empty() {
            out.push_str(
                "# Settings the service must be given at run time get placeholders for this step only.\n",
            );
        }
        let mut argv: Vec<String> = Vec::new();
        if !placeholders.is_empty() {
            argv.push("env".into());
            argv.extend(placeholders.iter().map(|(k, v)| format!("{k}={v}")));
        }
        argv.extend(step.iter().cloned());
        let _ = writeln!(out, "RUN {}", json_array(&argv));
    }
    out.push_str(
        "# Bytecode for the app, checked by hash (PEP 552): never recompiled at start on a read-only\n\
         # root, and the same bytes from every build. A file that doesn't compile fails at import.\n",
    );
    out.push_str("RUN python -m compileall -q --invalidation-mode unchecked-hash /app || true\n");
    let volumes: Vec<&str> = plan.volumes.value.iter().map(|v| v.path.as_str()).collect();
    if !volumes.is_empty() {
        out.push_str(
            "# Data directories belong to the service user, also where the source has one (L09).\n",
        );
        let links: Vec<String> = plan
            .volumes
            .value
            .iter()
            .flat_map(|v| &v.links)
            .map(|l| format!("{RUN_JOIN}ln -sfn {} {}", l.target, l.path))
            .collect();
        if !links.is_empty() {
            out.push_str(
                "# Files the code writes at a fixed path under /app are links into a volume.\n",
            );
        }
        let _ = writeln!(
            out,
            "RUN mkdir -p {0}{RUN_JOIN}chown -R {user} {0}{1}",
            volumes.join(" "),
            links.concat()
        );
        let quoted: Vec<String> = volumes.iter().map(|v| json_string(v)).collect();
        let _ = writeln!(out, "VOLUME [{}]", quoted.join(", "));
    }
    let _ = writeln!(out, "USER {user}");
    let _ = writeln!(out, "EXPOSE {port}");
    if let Some(check) = plan.healthcheck_probe() {
        let _ = writeln!(
            out,
            "HEALTHCHECK --interval={}s --timeout={}s --start-period={}s --retries={} \\\n  CMD {}",
            check.interval_secs,
            check.timeout_secs,
            check.start_period_secs,
            check.retries,
            json_array(&check.command)
        );
    }
    let _ = writeln!(out, "CMD {}", json_array(&plan.command.value));
    out
}

/// The development Dockerfile: run it with the project directory mounted on /app.
pub(crate) fn development(plan: &Plan) -> String {
    let steps = install::steps(plan, ImageKind::Development);
    let port = plan.port.value;
    let mut out = String::new();
    header(
        &mut out,
        &[
            format!(
                "Development image of {}, written by `terrarium init`: the same base and",
                plan.name
            ),
            "dependencies as production plus dev tools; the source is mounted, not copied, and the"
                .into(),
            "server reloads on change (L16). Build it as your own user so files stay yours (L11):"
                .into(),
            String::new(),
            format!(
                "  docker build -f Dockerfile.dev --build-arg UID=$(id -u) --build-arg GID=$(id -g) -t {}-dev {}",
                plan.name,
                context(plan)
            ),
            format!(
                "  docker run --rm -it -p 127.0.0.1:{port}:{port} -v \"$PWD\":/app {}-dev",
                plan.name
            ),
            String::new(),
            "or simply: terrarium dev".into(),
        ],
    );
    let _ = writeln!(out, "\nARG PYTHON_IMAGE={}\n", plan.base_image.value);
    out.push_str("FROM ${PYTHON_IMAGE} AS dev\n");
    let mut pairs = image_env(plan);
    pairs.extend([
        "PIP_NO_CACHE_DIR=1".to_string(),
        "PIP_DISABLE_PIP_VERSION_CHECK=1".to_string(),
        "PIP_ROOT_USER_ACTION=ignore".to_string(),
        "PIPENV_VERBOSITY=-1".to_string(),
        "UV_NO_CACHE=1".to_string(),
    ]);
    out.push_str(&env_block(&pairs));
    let mut apt = apt_install(plan);
    let build_apt = apt_build_install(plan);
    if !build_apt.is_empty() {
        // One update and one install: the runtime libraries and, for dependencies built from
        // source, the compiler and headers (a development image keeps them).
        apt = build_apt;
        if let Some(install) = apt.get_mut(1) {
            for package in &plan.system_packages.value {
                install.push(' ');
                install.push_str(package);
            }
        }
    }
    if !apt.is_empty() {
        let _ = writeln!(out, "RUN {}", apt.join(RUN_JOIN));
    }
    out.push_str("ARG UID=1000\nARG GID=1000\n");
    out.push_str(
        "RUN groupadd --non-unique --gid \"${GID}\" dev \\\n && useradd --non-unique --uid \"${UID}\" --gid \"${GID}\" --create-home --shell /bin/bash dev\n",
    );
    tool_install(&mut out, &steps);
    out.push_str("WORKDIR /app\n");
    if !steps.commands.is_empty() {
        copy_lines(&mut out, &steps);
        for note in &steps.notes {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "RUN {}", steps.commands.join(RUN_JOIN));
    }
    if plan.install_project.value.is_some() {
        out.push_str("# Installed editable: the mounted source is what runs.\n");
        let _ = writeln!(out, "COPY {} .", install::source(plan));
        let _ = writeln!(
            out,
            "RUN {}",
            install::project_install(plan, ImageKind::Development)
        );
    }
    out.push_str("USER ${UID}:${GID}\n");
    let _ = writeln!(out, "EXPOSE {port}");
    let _ = writeln!(out, "CMD {}", json_array(&plan.dev_command.value));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(files: &[(&str, &str)]) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = terrarium_project::detect(dir.path()).unwrap();
        terrarium_plan::plan(&project, &terrarium_plan::PlanOptions::default()).unwrap()
    }

    #[test]
    fn c_extensions_get_compilers_in_the_build_stage_and_libraries_at_run_time() {
        let plan = plan_of(&[
            (
                "requirements.txt",
                "flask==3.1.2\ngunicorn==23.0.0\npsycopg2==2.9.10\n",
            ),
            (
                "app.py",
                "from flask import Flask\napp = Flask(__name__)\n\n@app.get('/health')\ndef health():\n    return 'ok'\n",
            ),
        ]);
        let file = production(&plan);
        let (build, runtime) = file.split_once("AS runtime").unwrap();
        assert!(
            build.contains(
                "apt-get install -y --no-install-recommends gcc g++ libc6-dev make libpq-dev"
            ),
            "{file}"
        );
        assert!(
            !runtime.contains("gcc") && !runtime.contains("libpq-dev"),
            "{file}"
        );
        assert!(
            runtime.contains("apt-get install -y --no-install-recommends libpq5"),
            "{file}"
        );
        // A development image installs both in one step.
        let dev = development(&plan);
        assert!(
            dev.contains("--no-install-recommends gcc g++ libc6-dev make libpq-dev libpq5"),
            "{dev}"
        );

        // uWSGI embeds Python: a base whose Python has no shared libpython gets Debian's.
        let uwsgi = plan_of(&[
            ("requirements.txt", "uwsgi==2.0.31\n"),
            (
                "terrarium.toml",
                "command = [\"uwsgi\", \"--http-socket\", \"0.0.0.0:8000\", \"--wsgi-file\", \"app.py\"]\nport = 8000\n",
            ),
            (
                "app.py",
                "def application(environ, start_response):\n    return []\n",
            ),
        ]);
        let file = production(&uwsgi);
        let (build, runtime) = file.split_once("AS runtime").unwrap();
        assert!(
            build.contains("libpcre2-dev libssl-dev") && build.contains("Python.h"),
            "{file}"
        );
        assert!(
            runtime.contains("INSTSONAME") && !runtime.contains("gcc"),
            "{file}"
        );

        let pure = plan_of(&[
            ("requirements.txt", "flask==3.1.2\nflask-mail==0.9.1\n"),
            ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
        ]);
        assert!(!production(&pure).contains("apt-get"));
    }

    /// A build step may write outside /app (a staticfiles finder compiling into its package
    /// in site-packages): it runs as root in the runtime stage, after the dependencies are in
    /// place and before `USER`, so the write succeeds and lands in the image root-owned, and
    /// the service user still can't write the code.
    #[test]
    fn build_steps_run_as_root_in_the_runtime_stage_before_user() {
        let plan = plan_of(&[
            ("requirements.txt", "django==5.2.19\ngunicorn==23.0.0\n"),
            (
                "manage.py",
                "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_conf.settings')\n",
            ),
            ("site_conf/__init__.py", ""),
            (
                "site_conf/settings.py",
                "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent.parent\n\
                 INSTALLED_APPS = ['django.contrib.staticfiles']\nROOT_URLCONF = 'site_conf.urls'\n\
                 STATIC_URL = 'static/'\nSTATIC_ROOT = BASE_DIR / 'staticfiles'\n",
            ),
            ("site_conf/urls.py", "urlpatterns = []\n"),
            (
                "site_conf/wsgi.py",
                "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
            ),
        ]);
        assert!(!plan.build_steps.value.is_empty(), "{:?}", plan.build_steps);
        let file = production(&plan);
        let runtime = file.split_once("AS runtime").unwrap().1;
        let at = |needle: &str| {
            runtime
                .find(needle)
                .unwrap_or_else(|| panic!("no {needle} in\n{file}"))
        };
        let step = at("\"collectstatic\"");
        assert!(at("COPY --from=build /install /usr/local") < step, "{file}");
        assert!(step < at("\nUSER "), "{file}");
        assert_eq!(runtime.matches("\nUSER ").count(), 1, "{file}");
    }

    #[test]
    fn a_src_layout_puts_its_import_root_on_the_path_as_the_native_build_does() {
        let plan = plan_of(&[
            (
                "pyproject.toml",
                "[tool.poetry]\nname = \"boiler\"\nversion = \"0.1.0\"\npackages = [{ include = \"src\" }]\n\n\
                 [tool.poetry.dependencies]\npython = \"^3.11\"\nfastapi = \"^0.115\"\n\n\
                 [build-system]\nrequires = [\"poetry-core\"]\nbuild-backend = \"poetry.core.masonry.api\"\n",
            ),
            ("src/app/__init__.py", ""),
            (
                "src/app/main.py",
                "from fastapi import FastAPI\napp = FastAPI()\n",
            ),
        ]);
        let install = plan.install_project.value.as_ref().expect("installed");
        assert_eq!(install.import_root, "/app/src");
        let file = production(&plan);
        assert!(
            file.contains(
                "echo /app/src > \"$(python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))')/boiler.pth\""
            ),
            "{file}"
        );
    }

    #[test]
    fn env_values_are_quoted_when_needed() {
        assert_eq!(env_pair("A", "hello"), "A=hello");
        assert_eq!(env_pair("A", "two words"), "A=\"two words\"");
        assert_eq!(env_pair("A", "$HOME \"x\""), "A=\"\\$HOME \\\"x\\\"\"");
        assert_eq!(env_pair("A", ""), "A=\"\"");
    }
}
