//! Decisions that both back ends read from the Plan: the Python and its Debian runtime, secrets
//! by value, the build context's rules, the project install and the dev server.

use std::path::Path;

use terrarium_debian::Distro;
use terrarium_plan::{Origin, PlanError, PlanOptions, Server, plan};

/// A project made of `files` in a temporary directory.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn planned(dir: &Path, options: &PlanOptions) -> Result<terrarium_plan::Plan, PlanError> {
    let project = terrarium_project::detect(dir).expect("detect");
    plan(&project, options)
}

const FLASK_APP: (&str, &str) = (
    "app.py",
    "from flask import Flask\napp = Flask(__name__)\n\n@app.get('/health')\ndef health():\n    return 'ok'\n",
);

#[test]
fn the_python_is_one_both_back_ends_provide() {
    // <3.13 allows 3.12 and 3.11: 3.11 has a Debian runtime, so both back ends run it.
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (".python-version", ""),
        (
            "pyproject.toml",
            "[project]\nname = \"p\"\nrequires-python = \">=3.10,<3.13\"\n",
        ),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.11");
    assert_eq!(plan.runtime.value, Some(Distro::Bookworm));
    assert!(plan.base_image.value.starts_with("python:3.11."));
}

#[test]
fn a_configured_python_without_a_debian_runtime_says_so() {
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        ("terrarium.toml", "python = \"3.12\"\n"),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.12");
    assert_eq!(plan.python.origin, Origin::Config);
    // `terrarium build` runs it on the official image the Dockerfile starts from.
    assert_eq!(plan.runtime.value, None);
    assert_eq!(
        plan.build_base.value.as_deref(),
        Some(plan.base_image.value.as_str())
    );
    assert!(plan.base_image.value.starts_with("python:3.12."));
    assert!(
        plan.build_base
            .reason
            .contains("bookworm: 3.11, trixie: 3.13, forky: 3.14"),
        "{}",
        plan.build_base.reason
    );
}

/// A release of the index pinned with `==`, with the wheel files it publishes.
fn pinned(name: &str, version: &str, wheels: &[&str]) -> terrarium_plan::PinnedRelease {
    terrarium_plan::PinnedRelease {
        name: terrarium_project::PackageName::new(name),
        version: version.into(),
        source: terrarium_project::Source::line("requirements.txt", 1),
        wheels: wheels.iter().map(|w| (*w).to_owned()).collect(),
        has_sdist: true,
        uploaded: None,
        dev: false,
        range: None,
    }
}

#[test]
fn wheels_for_every_binary_package_beat_compiling_on_a_debian_runtime() {
    // httptools 0.6.1 has wheels up to CPython 3.12: 3.13 (trixie) and 3.14 (forky) would
    // compile it; 3.12 has them all and runs on its official image.
    let dir = project(&[
        ("main.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
        ("requirements.txt", "fastapi==0.115.0\nhttptools==0.6.1\n"),
        (
            "pyproject.toml",
            "[project]\nname = \"p\"\nrequires-python = \">=3.12\"\n",
        ),
    ]);
    let wheel =
        |py: &str| format!("httptools-0.6.1-{py}-{py}-manylinux_2_5_x86_64.manylinux1_x86_64.whl");
    let wheels = [wheel("cp311"), wheel("cp312")];
    let wheels: Vec<&str> = wheels.iter().map(String::as_str).collect();
    let options = PlanOptions {
        pinned: vec![pinned("httptools", "0.6.1", &wheels)],
        ..PlanOptions::default()
    };
    let plan = planned(dir.path(), &options).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.12");
    assert!(
        plan.python
            .reason
            .contains("httptools 0.6.1 would have to compile"),
        "{}",
        plan.python.reason
    );
    assert_eq!(plan.runtime.value, None);
    assert!(
        plan.build_base
            .value
            .as_deref()
            .is_some_and(|b| b.starts_with("python:3.12.")),
        "{:?}",
        plan.build_base.value
    );
    // With Debian packages to add (which a base image doesn't take), the runtime stays.
    std::fs::write(
        dir.path().join("terrarium.toml"),
        "build-packages = [\"libffi-dev\"]\n",
    )
    .unwrap();
    let plan = planned(dir.path(), &options).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.13");
    assert_eq!(plan.runtime.value, Some(Distro::Trixie));
}

#[test]
fn distro_sets_the_python_or_names_the_constraint_it_breaks() {
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (
            "pyproject.toml",
            "[project]\nname = \"p\"\nrequires-python = \">=3.12\"\n",
        ),
    ]);
    let trixie = PlanOptions {
        distro: Some(Distro::Trixie),
        ..PlanOptions::default()
    };
    let plan = planned(dir.path(), &trixie).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.13");
    assert_eq!(plan.runtime.value, Some(Distro::Trixie));
    let bookworm = PlanOptions {
        distro: Some(Distro::Bookworm),
        ..PlanOptions::default()
    };
    let err = planned(dir.path(), &bookworm).unwrap_err().to_string();
    assert!(
        err.contains("bookworm") && err.contains(">=3.12 (pyproject.toml:3)"),
        "{err}"
    );
}

#[test]
fn a_default_with_credentials_is_a_required_secret() {
    let dir = project(&[
        (
            "app.py",
            "import os\nfrom flask import Flask\napp = Flask(__name__)\n\
             DB = os.environ.get('DATABASE_URL', 'postgres://app:s3cret@db:5432/app')\n\
             CACHE = os.environ.get('CACHE_URL', 'redis://cache:6379/0')\n",
        ),
        ("requirements.txt", "flask==3.1.2\n"),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    let setting = |name: &str| {
        plan.env
            .value
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", plan.env.value))
            .clone()
    };
    let database = setting("DATABASE_URL");
    assert!(database.secret && database.required && database.default.is_none());
    let cache = setting("CACHE_URL");
    assert!(!cache.secret && cache.default.is_some());
    let env = plan.image_env();
    assert!(env.iter().all(|(_, v)| !v.contains("s3cret")), "{env:?}");
    assert!(env.iter().any(|(k, _)| k == "CACHE_URL"));
    assert!(env.iter().any(|(k, v)| k == "PYTHONUNBUFFERED" && v == "1"));
}

#[test]
fn the_context_is_terrariums_rules_then_the_projects() {
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (
            ".dockerignore",
            "# mine\nsecrets.json\n**/.env\n!keep.pem\n",
        ),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    let rules = &plan.context.value;
    assert_eq!(rules.first().map(String::as_str), Some("**/.env"));
    // A repeat of terrarium's own rule adds nothing; the rest keep their order.
    assert_eq!(&rules[rules.len() - 2..], ["secrets.json", "!keep.pem"]);
    let compiled = plan.context_rules().unwrap();
    assert!(compiled.excludes("secrets.json"));
    assert!(compiled.excludes("config/.env"));
    assert!(!compiled.excludes("keep.pem"));
    assert!(compiled.excludes("other.pem"));
    assert!(!compiled.excludes("pkg/build/mod.py"));
    assert!(compiled.excludes("build/lib/x.py"));
}

#[test]
fn a_package_is_installed_from_what_the_plan_read() {
    let dir = project(&[
        (
            "pyproject.toml",
            "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n\n\
             [project]\nname = \"My.Service\"\nversion = \"2.1.0\"\ndependencies = [\"flask==3.1.2\"]\n\n\
             [project.scripts]\nmy-service = \"my_service.cli:main\"\n",
        ),
        (
            "src/my_service/__init__.py",
            "from flask import Flask\napp = Flask(__name__)\n",
        ),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    let install = plan.install_project.value.expect("installed");
    assert_eq!(install.distribution, "my_service");
    assert_eq!(install.version, "2.1.0");
    assert_eq!(install.import_root, "/app/src");
    assert_eq!(install.scripts[0].name, "my-service");
    assert_eq!(plan.version.as_deref(), Some("2.1.0"));
    match &plan.dependencies.value {
        terrarium_project::DependencySource::Unlocked { requirements, .. } => {
            assert_eq!(requirements, &["flask==3.1.2"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_package_whose_requires_python_uv_refuses_is_installed_only_when_needed() {
    // Poetry 2 projects write Poetry's caret into `[project]`: the backend copies it into the
    // wheel, and uv refuses to build or install that (pip only warns).
    let pyproject = "[project]\nname = \"todo\"\nversion = \"0.1.0\"\nrequires-python = \"^3.13\"\n\
                     dependencies = [\"fastapi==0.110.3\"]\n\n\
                     [tool.poetry]\npackages = [{include = \"app\"}]\n\n\
                     [build-system]\nrequires = [\"poetry-core\"]\n\
                     build-backend = \"poetry.core.masonry.api\"\n";
    let main = "from fastapi import FastAPI\napp = FastAPI()\n";
    let dir = project(&[
        ("pyproject.toml", pyproject),
        ("app/__init__.py", ""),
        ("app/main.py", main),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.install_project.value, None);
    assert!(
        plan.install_project.reason.contains("is not PEP 440")
            && plan.install_project.sources[0].line == Some(4),
        "{:?}",
        plan.install_project
    );
    assert_eq!(plan.python.value.to_string(), "3.13");

    // A console script needs it installed: installed, and the plan says what uv will do.
    let with_script = format!("{pyproject}\n[project.scripts]\ntodo = \"app.main:cli\"\n");
    let dir = project(&[
        ("pyproject.toml", &with_script),
        ("app/__init__.py", ""),
        ("app/main.py", main),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert!(plan.install_project.value.is_some());
    assert!(
        plan.install_project
            .reason
            .contains("uv refuses to install it until it is written in PEP 440"),
        "{}",
        plan.install_project.reason
    );
}

#[test]
fn a_gunicorn_conf_py_in_the_working_directory_is_not_read() {
    // gunicorn reads ./gunicorn.conf.py on its own: this one daemonizes and logs to files, as
    // the project's VM deployment wanted, which kills a container.
    let conf = "import os\nENVIRONMENT = os.environ.get(\"ENVIRONMENT\")\nproc_name = \"site\"\n\
                if ENVIRONMENT == \"production\":\n    daemon = True\n    accesslog = \"/var/log/site/info.log\"\n\
                else:\n    raise ValueError(\"Unknown environment\")\n";
    let dir = project(&[
        (
            "wsgi.py",
            "from flask import Flask\napp = Flask(__name__)\n",
        ),
        ("requirements.txt", "flask==3.1.2\ngunicorn==23.0.0\n"),
        ("gunicorn.conf.py", conf),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    let command = plan.command.value.join(" ");
    assert!(
        command.ends_with("--config /dev/null wsgi:app"),
        "{command}"
    );
    assert!(
        plan.command
            .reason
            .contains("gunicorn.conf.py is not read (`--config /dev/null`")
            && plan
                .command
                .reason
                .contains("it sets accesslog, daemon, proc_name"),
        "{}",
        plan.command.reason
    );
    // One elsewhere (not gunicorn's working directory) changes nothing.
    let dir = project(&[
        (
            "wsgi.py",
            "from flask import Flask\napp = Flask(__name__)\n",
        ),
        ("requirements.txt", "flask==3.1.2\ngunicorn==23.0.0\n"),
        ("deploy/gunicorn.conf.py", conf),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert!(!plan.command.value.contains(&"--config".to_string()));
}

#[test]
fn a_quart_app_on_hypercorn_develops_on_hypercorn() {
    let dir = project(&[
        ("app.py", "from quart import Quart\napp = Quart(__name__)\n"),
        ("requirements.txt", "quart==0.20.0\nhypercorn==0.17.3\n"),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.server.value, Server::Hypercorn);
    assert_eq!(plan.dev_command.value[0], "hypercorn");
    assert!(plan.dev_command.value.contains(&"--reload".to_string()));
    assert!(plan.added_packages.value.is_empty());
}

#[test]
fn a_python_version_file_without_a_debian_runtime_is_a_preference() {
    // 3.12 has no Debian runtime: the nearest release one ships stands in, newer first.
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (".python-version", "3.12\n"),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.13");
    assert_eq!(plan.runtime.value, Some(Distro::Trixie));
    assert!(
        plan.python
            .reason
            .contains(".python-version:1 asks for CPython 3.12")
            && plan.python.reason.contains("base = \"python:3.12."),
        "{}",
        plan.python.reason
    );
    // The constraints after it still hold: `<3.13` leaves 3.11.
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (".python-version", "3.12\n"),
        (
            "pyproject.toml",
            "[project]\nname = \"p\"\nrequires-python = \">=3.10,<3.13\"\n",
        ),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.11");
    // A base given explicitly wins over it too.
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (".python-version", "3.12\n"),
    ]);
    let on_base = PlanOptions {
        base: Some("python:3.13-slim-trixie".into()),
        ..PlanOptions::default()
    };
    let plan = planned(dir.path(), &on_base).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.13");
    // A version Debian ships is kept as written.
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==3.1.2\n"),
        (".python-version", "3.11\n"),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.11");
    assert!(!plan.python.reason.contains("stands in"));
}

#[test]
fn django_sqlite_beside_the_code_is_a_link_into_the_data_volume() {
    let dir = project(&[
        (
            "manage.py",
            "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_conf.settings')\n",
        ),
        ("requirements.txt", "django==5.1.4\ngunicorn==23.0.0\n"),
        ("site_conf/__init__.py", ""),
        (
            "site_conf/wsgi.py",
            "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
        ),
        (
            "site_conf/settings.py",
            "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent.parent\nWSGI_APPLICATION = 'site_conf.wsgi.application'\nDATABASES = {\n    'default': {\n        'ENGINE': 'django.db.backends.sqlite3',\n        'NAME': BASE_DIR / 'db.sqlite3',\n    }\n}\n",
        ),
    ]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    let volumes = &plan.volumes.value;
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(volumes[0].path, "/data");
    assert_eq!(
        volumes[0].links,
        [terrarium_plan::VolumeLink {
            path: "/app/db.sqlite3".into(),
            target: "/data/db.sqlite3".into(),
        }]
    );
    assert!(
        plan.volumes
            .reason
            .contains("at a path the settings fix by default"),
        "{}",
        plan.volumes.reason
    );
}

/// greenlet 1.1.2 (October 2021): wheels for CPython 3.6 to 3.10 only, and a C++ source that
/// doesn't compile against 3.11's C API.
fn greenlet_2021() -> terrarium_plan::PinnedRelease {
    let wheels: Vec<String> = (6..=10)
        .map(|minor| {
            format!(
                "greenlet-1.1.2-cp3{minor}-cp3{minor}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
            )
        })
        .collect();
    let wheels: Vec<&str> = wheels.iter().map(String::as_str).collect();
    terrarium_plan::PinnedRelease {
        uploaded: Some("2021-10-12T15:00:00Z".parse().unwrap()),
        ..pinned("greenlet", "1.1.2", &wheels)
    }
}

#[test]
fn an_end_of_life_runtime_serves_pins_older_than_every_maintained_python() {
    let dir = project(&[
        FLASK_APP,
        ("requirements.txt", "flask==2.0.2\ngreenlet==1.1.2\n"),
    ]);
    let options = PlanOptions {
        pinned: vec![greenlet_2021()],
        ..PlanOptions::default()
    };
    let plan = planned(dir.path(), &options).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.9");
    assert_eq!(plan.runtime.value, Some(Distro::Bullseye));
    let reason = &plan.python.reason;
    assert!(
        reason.contains("on CPython 3.11, the best maintained release, greenlet 1.1.2")
            && reason.contains("has wheels for CPython 3.6–3.10 only")
            && reason.contains("CPython 3.9 (Debian bullseye) has a wheel for each")
            && reason.contains("end of life"),
        "{reason}"
    );
    assert!(
        plan.runtime
            .reason
            .contains("security support ended on 2026-08-31"),
        "{}",
        plan.runtime.reason
    );
    // The next build keeps it from terrarium.lock, without reading the pins again.
    std::fs::write(
        dir.path().join("terrarium.lock"),
        "version = 1\npython = \"3.9\"\n",
    )
    .unwrap();
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.9");
    assert_eq!(plan.runtime.value, Some(Distro::Bullseye));
    std::fs::remove_file(dir.path().join("terrarium.lock")).unwrap();
    // Without a date for the release (nor an era), nothing says the source is older than
    // 3.11: the maintained release compiles it.
    let undated = PlanOptions {
        pinned: vec![terrarium_plan::PinnedRelease {
            uploaded: None,
            ..greenlet_2021()
        }],
        ..PlanOptions::default()
    };
    let plan = planned(dir.path(), &undated).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.13");
    assert_eq!(plan.runtime.value, Some(Distro::Trixie));
    // A project whose pins all have wheels for a maintained release never gets bullseye,
    // however old it is.
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_ne!(plan.runtime.value, Some(Distro::Bullseye));
}

/// A Pipfile.lock of `packages` (`(name, version)`), which records hashes but no file names.
fn pipfile_lock(packages: &[(&str, &str)]) -> String {
    let default: Vec<String> = packages
        .iter()
        .map(|(name, version)| {
            format!(
                "\"{name}\": {{\"hashes\": [\"sha256:{}\"], \"version\": \"=={version}\"}}",
                "ab".repeat(32)
            )
        })
        .collect();
    format!(
        "{{\"_meta\": {{\"hash\": {{\"sha256\": \"{}\"}}, \"pipfile-spec\": 6, \
         \"requires\": {{\"python_version\": \"3.7\"}}, \"sources\": []}}, \
         \"default\": {{{}}}, \"develop\": {{}}}}",
        "cd".repeat(32),
        default.join(", ")
    )
}

#[test]
fn a_pipfile_python_version_is_a_preference() {
    // pipenv only warns when the interpreter differs from `python_version` (unless
    // `--deploy`): 3.7, which no Debian release here ships, gives way to the nearest
    // maintained release a Debian runtime ships.
    let pipfile = "[packages]\nflask = \"==2.0.2\"\n\n[requires]\npython_version = \"3.7\"\n";
    let lock = pipfile_lock(&[("flask", "2.0.2")]);
    let dir = project(&[FLASK_APP, ("Pipfile", pipfile), ("Pipfile.lock", &lock)]);
    let plan = planned(dir.path(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.11");
    assert!(
        plan.python
            .reason
            .contains("Pipfile:5 asks for CPython 3.7")
            && plan.python.reason.contains("python:3.7-slim-bookworm"),
        "{}",
        plan.python.reason
    );
    // When its locked releases need an older Python than every maintained one (the index
    // says which wheels they publish and when), the end-of-life runtime closest to it serves.
    let pipfile = "[packages]\nflask = \"==2.0.2\"\ngreenlet = \"==1.1.2\"\n\n[requires]\npython_version = \"3.7\"\n";
    let lock = pipfile_lock(&[("flask", "2.0.2"), ("greenlet", "1.1.2")]);
    let dir = project(&[FLASK_APP, ("Pipfile", pipfile), ("Pipfile.lock", &lock)]);
    let options = PlanOptions {
        pinned: vec![terrarium_plan::PinnedRelease {
            source: terrarium_project::Source::file("Pipfile.lock"),
            ..greenlet_2021()
        }],
        ..PlanOptions::default()
    };
    let plan = planned(dir.path(), &options).unwrap();
    assert_eq!(plan.python.value.to_string(), "3.9");
    assert_eq!(plan.runtime.value, Some(Distro::Bullseye));
}
