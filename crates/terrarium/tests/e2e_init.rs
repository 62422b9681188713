//! End to end, for every fixture: `terrarium init`, `docker build` of the generated Dockerfile
//! on the local test base, `docker run` with the port on 127.0.0.1, real HTTP requests, the
//! image's own HEALTHCHECK command, a non-root PID 1 and a graceful SIGTERM stop; then the same
//! for Dockerfile.dev with the source mounted and an edit picked up without a rebuild.
//!
//! Each production image is also compared with `terrarium build` of the same project on the
//! same Python (the differential test: one Plan, two back ends): the files under /app, User,
//! Env, Cmd, WorkingDir, ExposedPorts, Volumes, Healthcheck and the owner of each volume
//! directory must be the same; any difference fails with a diff.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

/// A fixture, what the test expects terrarium to have found, and an edit for the dev test.
struct Case {
    name: &'static str,
    port: u16,
    health: &'static str,
    edit_file: &'static str,
    edit_from: &'static str,
    edit_to: &'static str,
    /// Settings the production image is documented to need, passed with `-e`.
    run_env: &'static [&'static str],
}

const CASES: [Case; 18] = [
    Case {
        name: "django-hashes",
        port: 8000,
        health: "/health/",
        edit_file: "mysite/views.py",
        edit_from: "hello from django",
        edit_to: "edited from django",
        run_env: &[],
    },
    Case {
        name: "django-settings-package",
        port: 8000,
        health: "/api/v3/status/",
        edit_file: "web/shop/views.py",
        edit_from: "hello from shop",
        edit_to: "edited from shop",
        run_env: &["DJANGO_SECRET_KEY=e2e-not-a-real-secret"],
    },
    Case {
        name: "fastapi-poetry",
        port: 8000,
        health: "/health",
        edit_file: "main.py",
        edit_from: "hello from fastapi-poetry",
        edit_to: "edited from fastapi-poetry",
        run_env: &[],
    },
    Case {
        name: "fastapi-pylock",
        port: 8080,
        health: "/healthz",
        edit_file: "service/api.py",
        edit_from: "hello from weather",
        edit_to: "edited from weather",
        run_env: &[],
    },
    Case {
        name: "fastapi-setuppy",
        port: 8000,
        health: "/health",
        edit_file: "src/stock/main.py",
        edit_from: "hello from stock",
        edit_to: "edited stock",
        run_env: &[],
    },
    Case {
        name: "fastapi-uv-workspace",
        port: 8000,
        health: "/api/v1/utils/health-check/",
        edit_file: "catalog/main.py",
        edit_from: "hello from catalog",
        edit_to: "edited from catalog",
        run_env: &["CATALOG_ADMIN_EMAIL=admin@example.invalid"],
    },
    Case {
        name: "flask-2023-pins",
        port: 8000,
        health: "/health",
        edit_file: "app.py",
        edit_from: "hello from 2023",
        edit_to: "edited in 2023",
        run_env: &[],
    },
    Case {
        name: "flask-factory-uv",
        port: 8000,
        health: "/healthz",
        edit_file: "quotes/__init__.py",
        edit_from: "hello from quotes",
        edit_to: "edited from quotes",
        run_env: &[],
    },
    Case {
        name: "flask-instance",
        port: 8000,
        health: "/health",
        edit_file: "guestbook/__init__.py",
        edit_from: "hello from the guestbook",
        edit_to: "edited guestbook",
        run_env: &[],
    },
    Case {
        name: "flask-logs-sqlite",
        port: 8000,
        health: "/health",
        edit_file: "board/__init__.py",
        edit_from: "hello from the board",
        edit_to: "edited board",
        run_env: &[],
    },
    Case {
        name: "flask-poetry-legacy",
        port: 8000,
        health: "/api/ping",
        edit_file: "greeter/__init__.py",
        edit_from: "hello from greeter",
        edit_to: "edited from greeter",
        run_env: &[],
    },
    Case {
        name: "flask-requirements",
        port: 5000,
        health: "/health",
        edit_file: "app.py",
        edit_from: "from flask-requirements",
        edit_to: "from an edited flask app",
        run_env: &[],
    },
    Case {
        name: "flask-src-dir",
        port: 3000,
        health: "/health",
        edit_file: "src/utils.py",
        edit_from: "hello from src-dir",
        edit_to: "edited src-dir",
        run_env: &[],
    },
    Case {
        name: "notes-volume",
        port: 8000,
        health: "/health",
        edit_file: "notes.py",
        edit_from: "hello from notes",
        edit_to: "edited from notes",
        run_env: &[],
    },
    Case {
        name: "quart-hypercorn",
        port: 8000,
        health: "/health",
        edit_file: "app.py",
        edit_from: "hello from quart",
        edit_to: "edited from quart",
        run_env: &[],
    },
    Case {
        name: "src-package",
        port: 8000,
        health: "/health",
        edit_file: "src/inventory/web.py",
        edit_from: "hello from inventory",
        edit_to: "edited from inventory",
        run_env: &[],
    },
    Case {
        name: "starlette-pipfile",
        port: 8000,
        health: "/health",
        edit_file: "server.py",
        edit_from: "hello from starlette",
        edit_to: "edited from starlette",
        run_env: &[],
    },
    Case {
        name: "wsgi-plain",
        port: 8000,
        health: "/health",
        edit_file: "app.py",
        edit_from: "hello from wsgi-plain",
        edit_to: "edited from wsgi-plain",
        run_env: &[],
    },
];

fn case(name: &str) -> &'static Case {
    CASES.iter().find(|c| c.name == name).expect("case")
}

#[test]
fn every_fixture_has_a_case() {
    let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    assert_eq!(names, fixture_names());
}

fn init(dir: &std::path::Path) {
    terrarium()
        .args(["init", "--base", TEST_BASE])
        .arg(dir)
        .assert()
        .success();
}

/// The UID of PID 1 in a running container.
fn pid1_uid(container: &Container) -> u32 {
    // Python, not cat: a natively built image has no coreutils.
    let status = docker(&[
        "exec",
        &container.name,
        "python3",
        "-c",
        "print(open('/proc/1/status').read())",
    ]);
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("Uid line")
}

/// Prints, as JSON, every entry under /app (kind, content hash, owner, executable bit) and the
/// owner of each directory given as an argument: run by each image's own Python.
const DESCRIBE_TREE: &str = r#"
import hashlib, json, os, stat, sys
entries = {}
for root, dirs, files in os.walk("/app"):
    for name in dirs + files:
        path = os.path.join(root, name)
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            kind = "link " + os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            kind = "dir"
        else:
            with open(path, "rb") as f:
                kind = "file " + hashlib.sha256(f.read()).hexdigest()
            kind += " x" if st.st_mode & 0o111 else ""
        entries[path] = "%s %d:%d" % (kind, st.st_uid, st.st_gid)
owners = {}
for path in sys.argv[1:]:
    st = os.stat(path)
    owners[path] = "%d:%d" % (st.st_uid, st.st_gid)
print(json.dumps({"app": entries, "volume_owners": owners}, sort_keys=True))
"#;

/// What the differential test compares of one image.
fn describe(image: &str, base_env: &[String]) -> BTreeMap<String, serde_json::Value> {
    let inspect: serde_json::Value = serde_json::from_str(&docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        image,
    ]))
    .expect("inspect json");
    let mut facts = BTreeMap::new();
    for key in [
        "User",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "ExposedPorts",
        "Volumes",
        "Healthcheck",
    ] {
        facts.insert(key.to_string(), inspect[key].clone());
    }
    let env: Vec<String> = inspect["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|v| !base_env.iter().any(|b| b == v))
        .map(str::to_owned)
        .collect();
    let mut env_sorted = env.clone();
    env_sorted.sort();
    facts.insert("Env".into(), serde_json::json!(env_sorted));
    let volumes: Vec<String> = inspect["Volumes"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    let mut args = vec![
        "run",
        "--rm",
        "--entrypoint",
        "python",
        image,
        "-c",
        DESCRIBE_TREE,
    ];
    args.extend(volumes.iter().map(String::as_str));
    let tree: serde_json::Value = serde_json::from_str(&docker(&args)).expect("tree json");
    facts.insert("/app".into(), tree["app"].clone());
    facts.insert("volume owners".into(), tree["volume_owners"].clone());
    facts
}

/// The image's own environment variables (`KEY=value`).
fn env_of(image: &str) -> Vec<String> {
    serde_json::from_str(&docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        image,
    ]))
    .expect("env json")
}

/// `terrarium build` of `dir` on bookworm (the test base's CPython 3.11) against the image the
/// generated Dockerfile made: the same files under /app and the same config. Returns the
/// native image, for the test to serve too.
fn same_as_native(name: &str, dir: &Path, docker_image: &str) -> Image {
    let native = native_image(
        dir,
        &format!("terrarium-e2e/{name}:native"),
        &["--distro", "bookworm"],
    );
    // terrarium.lock is written by the native build; the Dockerfile's context leaves it out.
    let theirs = describe(docker_image, &env_of(TEST_BASE));
    let runtime_env: Vec<String> = ["PATH", "LANG", "SSL_CERT_FILE"]
        .iter()
        .filter_map(|key| {
            env_of(&native.tag)
                .into_iter()
                .find(|e| e.starts_with(&format!("{key}=")))
        })
        .collect();
    let ours = describe(&native.tag, &runtime_env);
    let mut differences = Vec::new();
    for (key, docker_value) in &theirs {
        let native_value = &ours[key];
        if docker_value == native_value {
            continue;
        }
        match (docker_value.as_object(), native_value.as_object()) {
            (Some(d), Some(n)) if key == "/app" => {
                for (path, what) in d {
                    if n.get(path) != Some(what) {
                        differences.push(format!(
                            "/app: {path}: Dockerfile {what}, native {}",
                            n.get(path).map_or("missing".into(), |v| v.to_string())
                        ));
                    }
                }
                for (path, what) in n {
                    if !d.contains_key(path) {
                        differences
                            .push(format!("/app: {path}: only in the native image ({what})"));
                    }
                }
            }
            _ => differences.push(format!(
                "{key}: Dockerfile {docker_value}, native {native_value}"
            )),
        }
    }
    assert!(
        differences.is_empty(),
        "{name}: the native image and the Dockerfile's differ:\n  {}",
        differences.join("\n  ")
    );
    native
}

/// `docker run` of an image prod-like (read-only root, only /tmp writable: L09) with the
/// case's documented settings, the port on 127.0.0.1; waits for its health route.
fn serve(case: &Case, label: &str, tag: &str) -> (Container, u16) {
    let host = free_port();
    let published = format!("127.0.0.1:{host}:{}", case.port);
    let mut args = vec!["--read-only", "--tmpfs", "/tmp", "-p", &published];
    for setting in case.run_env {
        args.extend(["-e", setting]);
    }
    args.push(tag);
    let container = Container::run(&format!("{}-{label}", case.name), &args);
    let health = wait_for(host, case.health, Duration::from_secs(60), |r| {
        r.status == 200
    })
    .unwrap_or_else(|e| panic!("{label}: {e}\n{}", container.logs()));
    assert!(health.body.contains("ok"), "{label}: {}", health.body);
    (container, host)
}

fn production(name: &str) {
    let case = case(name);
    let dir = fixture(name);
    init(&dir.service());
    let (context, dockerfile) = dir.dockerfile("Dockerfile");
    let image = build_image(
        &format!("terrarium-e2e/{name}:prod"),
        &context,
        &dockerfile,
        &[],
    );
    let native = same_as_native(name, &dir.service(), &image.tag);
    // The native image serves the same health route, as the same non-root user.
    let (native_container, native_host) = serve(case, "native", &native.tag);
    assert_eq!(pid1_uid(&native_container), 65532);
    if name == "django-settings-package" {
        writes_are_counted(native_host, &native_container, ("GET", "/", None), |n| {
            vec![format!("visit {n}")]
        });
    }
    drop(native_container);
    let (container, host) = serve(case, "prod", &image.tag);

    // The image's own HEALTHCHECK passes: it needs nothing but Python (no curl in the image).
    let test: Vec<String> = serde_json::from_str(&docker(&[
        "inspect",
        "-f",
        "{{json .Config.Healthcheck.Test}}",
        &image.tag,
    ]))
    .expect("healthcheck json");
    assert_eq!(test[0], "CMD");
    let mut exec = vec!["exec", container.name.as_str()];
    exec.extend(test[1..].iter().map(String::as_str));
    docker(&exec);

    assert_eq!(
        pid1_uid(&container),
        65532,
        "PID 1 must run as the non-root UID"
    );
    let logs = container.logs();
    assert!(
        !logs.contains("[ERROR]") && !logs.contains("Traceback"),
        "errors in the logs:\n{logs}"
    );
    let pip = docker_output(&["exec", &container.name, "python", "-m", "pip", "--version"]);
    assert!(
        !pip.status.success(),
        "pip must not be in the runtime image"
    );

    match name {
        "notes-volume" => {
            let volumes = docker(&["inspect", "-f", "{{json .Config.Volumes}}", &image.tag]);
            assert!(volumes.contains("\"/data\""), "{volumes}");
            let created =
                http("POST", host, "/notes", Some(r#"{"text": "buy coffee"}"#)).expect("post");
            assert_eq!(created.status, 201, "{}", created.body);
            let id: serde_json::Value = serde_json::from_str(&created.body).expect("json");
            let id = id["id"].as_str().expect("id");
            let note = http("GET", host, &format!("/notes/{id}"), None).expect("get");
            assert!(note.body.contains("buy coffee"), "{}", note.body);
        }
        "flask-2023-pins" => {
            // Resolved as of the pins' era: Werkzeug 2 (3 breaks Flask 2.0), a setuptools with
            // pkg_resources (gunicorn 19 imports it), on the Python psycopg2-binary has wheels for.
            let index = http("GET", host, "/", None).expect("index");
            assert!(
                index.body.contains("\"werkzeug\":\"2.")
                    && index.body.contains("\"psycopg2\":\"2.9.6\""),
                "{}",
                index.body
            );
        }
        "fastapi-setuppy" => {
            // Dependencies read from setup.py's list; the setuptools-scm version given.
            let index = http("GET", host, "/", None).expect("index");
            assert!(index.body.contains("\"version\":\"0\""), "{}", index.body);
        }
        "flask-src-dir" => {
            // src/ is not a package: the server imports from it, so `from utils import …` works.
            let hello = http("GET", host, "/api/hello", None).expect("hello");
            assert_eq!(hello.status, 200, "{}\n{}", hello.body, container.logs());
            assert!(hello.body.contains("api.routes"), "{}", hello.body);
            // `sqlite:///visits.db` is relative to the working directory (/app/src): a link
            // from there into the /data volume.
            writes_are_counted(host, &container, ("POST", "/visits", None), |n| {
                vec![format!("\"visits\":{n}"), "/data/visits.db".into()]
            });
        }
        "flask-instance" => {
            // The factory creates the instance folder and keeps SQLite there: a volume.
            let created = http("POST", host, "/entries", Some(r#"{"name": "ada"}"#)).expect("post");
            assert_eq!(
                created.status,
                201,
                "{}\n{}",
                created.body,
                container.logs()
            );
            let listed = http("GET", host, "/entries", None).expect("get");
            assert!(listed.body.contains("ada"), "{}", listed.body);
        }
        "flask-logs-sqlite" => {
            // DATABASE_URL points into the /data volume and LOG_TO_STDOUT sends logs to stdout.
            let created = http("POST", host, "/messages", Some(r#"{"text": "hi"}"#)).expect("post");
            assert_eq!(
                created.status,
                201,
                "{}\n{}",
                created.body,
                container.logs()
            );
            assert!(
                container.logs().contains("board startup"),
                "the app's log reaches docker logs:\n{}",
                container.logs()
            );
        }
        "src-package" => {
            let version = docker(&["run", "--rm", &image.tag, "inventory", "--version"]);
            assert_eq!(version, "inventory 1.2.0");
        }
        "wsgi-plain" => {
            let index = http("GET", host, "/", None).expect("index");
            assert!(
                index.body.contains("\"libpq\": true"),
                "system-packages installed libpq5: {}",
                index.body
            );
        }
        "django-settings-package" => {
            writes_are_counted(host, &container, ("GET", "/", None), |n| {
                vec![format!("visit {n}")]
            })
        }
        "fastapi-uv-workspace" => {
            // The settings' SQLite default (./catalog.db) moved to the /data volume.
            let item = Some(r#"{"name": "tea"}"#);
            writes_are_counted(host, &container, ("POST", "/api/v1/items/", item), |n| {
                vec![format!("\"stored\":{n}"), "/data/catalog.db".into()]
            });
        }
        "django-hashes" => {
            let css = http("GET", host, "/static/site.css", None).expect("static");
            assert_eq!(
                css.status, 200,
                "collectstatic + whitenoise serve static files"
            );
            // MEDIA_ROOT = BASE_DIR / "media" is a volume owned by the service user.
            let saved = http("POST", host, "/upload/", Some("a note")).expect("upload");
            assert_eq!(saved.status, 201, "{}\n{}", saved.body, container.logs());
        }
        _ => {}
    }

    let start = Instant::now();
    docker(&["stop", "-t", "10", &container.name]);
    let took = start.elapsed();
    let exit = docker(&["inspect", "-f", "{{.State.ExitCode}}", &container.name]);
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert_ne!(
        exit,
        "137",
        "the server was killed, not stopped by SIGTERM:\n{}",
        container.logs()
    );
}

/// Sends `request` (method, path, body) twice: each answer must succeed and hold every text
/// of `counted(n)` for the n-th write, proving the data lands somewhere writable (a volume, or a link into
/// one) on a read-only root.
fn writes_are_counted(
    host: u16,
    container: &Container,
    (method, path, body): (&str, &str, Option<&str>),
    counted: impl Fn(u32) -> Vec<String>,
) {
    for n in 1..=2 {
        let answer = http(method, host, path, body).expect("request");
        assert!(
            (200..300).contains(&answer.status),
            "{method} {path}: {}\n{}",
            answer.body,
            container.logs()
        );
        for text in counted(n) {
            assert!(answer.body.contains(&text), "{text}: {}", answer.body);
        }
    }
}

fn development(name: &str) {
    let case = case(name);
    let dir = fixture(name);
    let service = dir.service();
    init(&service);
    let meta = std::fs::metadata(&service).expect("metadata");
    let (uid, gid) = (meta.uid(), meta.gid());
    let (context, dockerfile) = dir.dockerfile("Dockerfile.dev");
    let image = build_image(
        &format!("terrarium-e2e/{name}:dev"),
        &context,
        &dockerfile,
        &[format!("UID={uid}"), format!("GID={gid}")],
    );
    let host = free_port();
    let mount = format!("{}:/app", service.display());
    let published = format!("127.0.0.1:{host}:{}", case.port);
    let mut args = vec!["-p", &published, "-v", &mount];
    for setting in case.run_env {
        args.extend(["-e", setting]);
    }
    args.push(&image.tag);
    let container = Container::run(&format!("{name}-dev"), &args);

    wait_for(host, "/", Duration::from_secs(60), |r| {
        r.status == 200 && r.body.contains(case.edit_from)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", container.logs()));
    assert_eq!(
        pid1_uid(&container),
        uid,
        "the dev container runs as the host user"
    );

    // Stat-polling reloaders (uvicorn's StatReload, werkzeug's) take their baseline on their
    // first poll, up to a second after start; an edit before that would become the baseline.
    std::thread::sleep(Duration::from_millis(1500));
    let file = service.join(case.edit_file);
    let source = std::fs::read_to_string(&file).expect("read source");
    assert!(source.contains(case.edit_from));
    std::fs::write(&file, source.replace(case.edit_from, case.edit_to)).expect("edit");
    wait_for(host, "/", Duration::from_secs(45), |r| {
        r.status == 200 && r.body.contains(case.edit_to)
    })
    .unwrap_or_else(|e| panic!("the edit was not picked up: {e}\n{}", container.logs()));
}

macro_rules! fixture_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        mod prod {
            $(#[test] fn $test() { super::production($name); })*
        }
        mod dev {
            $(#[test] fn $test() { super::development($name); })*
        }
    };
}

fixture_tests! {
    django_hashes => "django-hashes",
    django_settings_package => "django-settings-package",
    fastapi_poetry => "fastapi-poetry",
    fastapi_pylock => "fastapi-pylock",
    fastapi_setuppy => "fastapi-setuppy",
    fastapi_uv_workspace => "fastapi-uv-workspace",
    flask_2023_pins => "flask-2023-pins",
    flask_factory_uv => "flask-factory-uv",
    flask_instance => "flask-instance",
    flask_logs_sqlite => "flask-logs-sqlite",
    flask_poetry_legacy => "flask-poetry-legacy",
    flask_requirements => "flask-requirements",
    flask_src_dir => "flask-src-dir",
    notes_volume => "notes-volume",
    quart_hypercorn => "quart-hypercorn",
    src_package => "src-package",
    starlette_pipfile => "starlette-pipfile",
    wsgi_plain => "wsgi-plain",
}
