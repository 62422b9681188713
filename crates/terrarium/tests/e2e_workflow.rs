//! The Docker workflow end to end, on the real engine: `dev` (source mounted, edits served,
//! host UID, Ctrl-C stops and removes), `shell`, `run` (read-only root, data surviving a second
//! run), `logs`, `ps`, `up`/`down` with proxy and PostgreSQL, and the errors a user meets.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use support::*;

fn init(dir: &Path, extra: &[&str]) {
    terrarium()
        .arg("init")
        .args(["--base", TEST_BASE])
        .args(extra)
        .arg(dir)
        .assert()
        .success();
}

/// `terrarium ARGS` in the background, its output in files kept for failure messages.
struct Background {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Background {
    fn start(args: &[&str]) -> Background {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(assert_cmd::cargo::cargo_bin("terrarium"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("reopen"))
            .stderr(log.reopen().expect("reopen"))
            .spawn()
            .expect("spawn terrarium");
        Background { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Ctrl-C, then wait for terrarium to finish.
    fn interrupt(mut self, timeout: Duration) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, self.output());
            }
            assert!(
                start.elapsed() < timeout,
                "terrarium did not stop after Ctrl-C:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes every container of a project directory when dropped (a failed test leaves none).
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = docker_output(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &project_label(&self.0),
        ]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker_output(&["rm", "--force", "--volumes", id]);
        }
    }
}

fn project_label(dir: &Path) -> String {
    format!(
        "label=io.terrarium.project={}",
        std::fs::canonicalize(dir).expect("canonical").display()
    )
}

fn containers_of(dir: &Path) -> String {
    docker(&["ps", "--all", "--quiet", "--filter", &project_label(dir)])
}

fn dev_and_shell(name: &str, edit_file: &str, from: &str, to: &str) {
    let dir = fixture(name);
    let _cleanup = Cleanup(dir.path().to_path_buf());
    init(dir.path(), &[]);
    let uid = std::fs::metadata(dir.path()).expect("meta").uid();
    let port = free_port();
    let port_text = port.to_string();
    let dir_text = dir.path().display().to_string();
    let dev = Background::start(&["dev", &dir_text, "--port", &port_text]);
    wait_for(port, "/", Duration::from_secs(180), |r| {
        r.status == 200 && r.body.contains(from)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", dev.output()));

    terrarium()
        .args(["ps", &dir_text])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("dev")
                .and(predicate::str::contains(format!("127.0.0.1:{port}"))),
        );

    // Stat-polling reloaders (uvicorn's StatReload, werkzeug's) take their baseline on their
    // first poll, up to a second after start; an edit before that would become the baseline.
    std::thread::sleep(Duration::from_millis(1500));
    let file = dir.path().join(edit_file);
    let source = std::fs::read_to_string(&file).expect("source");
    std::fs::write(&file, source.replace(from, to)).expect("edit");
    wait_for(port, "/", Duration::from_secs(45), |r| {
        r.status == 200 && r.body.contains(to)
    })
    .unwrap_or_else(|e| panic!("edit not served: {e}\n{}", dev.output()));

    terrarium()
        .args(["shell", &dir_text, "--", "id", "-u"])
        .assert()
        .success()
        .stdout(format!("{uid}\n"));
    terrarium()
        .args(["shell", &dir_text, "--", "touch", "/app/made-in-container"])
        .assert()
        .success();
    let made = std::fs::metadata(dir.path().join("made-in-container"))
        .expect("file created in the container");
    assert_eq!(
        made.uid(),
        uid,
        "a file created in the container belongs to the host user"
    );
    terrarium()
        .args(["shell", &dir_text, "--running", "--", "id", "-u"])
        .assert()
        .success()
        .stdout(format!("{uid}\n"));

    let (status, output) = dev.interrupt(Duration::from_secs(20));
    assert!(status.success(), "{output}");
    assert!(output.contains("stopping"), "{output}");
    assert_eq!(
        containers_of(dir.path()),
        "",
        "Ctrl-C stops and removes the dev container"
    );
}

#[test]
fn dev_flask() {
    dev_and_shell(
        "flask-requirements",
        "app.py",
        "from flask-requirements",
        "from an edited flask app",
    );
}

#[test]
fn dev_django() {
    dev_and_shell(
        "django-hashes",
        "mysite/views.py",
        "hello from django",
        "edited from django",
    );
}

#[test]
fn dev_fastapi() {
    dev_and_shell(
        "fastapi-poetry",
        "main.py",
        "hello from fastapi-poetry",
        "edited from fastapi-poetry",
    );
}

#[test]
fn run_is_prod_like_and_data_survives_a_second_run() {
    let dir = fixture("notes-volume");
    let _cleanup = Cleanup(dir.path().to_path_buf());
    init(dir.path(), &[]);
    let dir_text = dir.path().display().to_string();
    let port = free_port();
    let port_text = port.to_string();

    let first = Background::start(&["run", &dir_text, "--port", &port_text]);
    wait_for(port, "/health", Duration::from_secs(180), |r| {
        r.status == 200
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", first.output()));
    let id = containers_of(dir.path());
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}",
            &id
        ]),
        "true 65532:65532"
    );
    let volume = docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}{{end}}{{end}}",
        &id,
    ]);
    assert!(volume.starts_with("terrarium-notes-"), "{volume}");
    let logs = terrarium()
        .args(["logs", &dir_text])
        .output()
        .expect("logs");
    assert!(logs.status.success());
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    assert!(
        both.contains("Listening at") && both.contains("GET /health"),
        "the container's own stdout and stderr: {both}"
    );

    let created = http("POST", port, "/notes", Some(r#"{"text": "survives"}"#)).expect("post");
    assert_eq!(created.status, 201, "{}", created.body);
    let note: serde_json::Value = serde_json::from_str(&created.body).expect("json");
    let note_path = format!("/notes/{}", note["id"].as_str().expect("id"));
    let (status, output) = first.interrupt(Duration::from_secs(20));
    assert!(
        status.success(),
        "gunicorn stops cleanly on SIGTERM:\n{output}"
    );
    assert_eq!(containers_of(dir.path()), "");

    let second = Background::start(&["run", &dir_text, "--port", &port_text]);
    let read = wait_for(port, &note_path, Duration::from_secs(120), |r| {
        r.status == 200
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", second.output()));
    assert!(read.body.contains("survives"), "{}", read.body);
    let (status, _) = second.interrupt(Duration::from_secs(20));
    assert!(status.success());
    docker(&["volume", "rm", &volume]);
}

/// A project that holds what must never reach an image (a `.env`, `.git/`, a private key, a
/// `secrets.json` its own `.dockerignore` names, a virtualenv) and a nested package named
/// `build`, which must.
fn leaky_project() -> tempfile::TempDir {
    let parent = tempfile::Builder::new()
        .prefix("terrarium-test-")
        .tempdir()
        .expect("tempdir");
    let dir = parent.path().join("leaky");
    let files: &[(&str, &str)] = &[
        (
            "app.py",
            "from pkg.build.mod import VALUE\n\n\ndef app(environ, start_response):\n    \
             start_response(\"200 OK\", [(\"Content-Type\", \"text/plain\")])\n    \
             return [b\"ok\" if environ[\"PATH_INFO\"] == \"/health\" else VALUE.encode()]\n",
        ),
        ("pkg/__init__.py", ""),
        ("pkg/build/__init__.py", ""),
        (
            "pkg/build/mod.py",
            "VALUE = \"from the nested build package\"\n",
        ),
        (".env", "API_TOKEN=from-dotenv-never-in-an-image\n"),
        (".git/HEAD", "ref: refs/heads/main\n"),
        (
            ".git/config",
            "[remote \"origin\"]\n\turl = https://user:pw@example.invalid/r\n",
        ),
        ("id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n"),
        ("secrets.json", "{\"password\": \"hunter2\"}\n"),
        (".venv/pyvenv.cfg", "home = /usr/bin\n"),
        (".dockerignore", "# the project's own rules\nsecrets.json\n"),
        ("terrarium.toml", &format!("base = \"{TEST_BASE}\"\n")),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    parent
}

/// Every path under /app of `image`, listed by the image's own Python.
fn app_files(image: &str) -> Vec<String> {
    let listing = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "python",
        image,
        "-c",
        "import os\nfor r, ds, fs in os.walk('/app'):\n    for n in ds + fs: print(os.path.join(r, n))",
    ]);
    listing.lines().map(str::to_owned).collect()
}

fn assert_no_secrets(how: &str, image: &str) {
    let files = app_files(image);
    for secret in [
        ".env",
        ".git",
        "id_rsa",
        "secrets.json",
        ".venv",
        "terrarium.toml",
    ] {
        let leaked: Vec<&String> = files
            .iter()
            .filter(|f| f.rsplit('/').next() == Some(secret) && secret != "terrarium.toml")
            .collect();
        assert!(leaked.is_empty(), "{how}: {leaked:?} reached the image");
    }
    assert!(
        files.iter().any(|f| f == "/app/pkg/build/mod.py"),
        "{how}: the nested build package is missing: {files:?}"
    );
}

#[test]
fn secrets_never_reach_an_image_on_any_path() {
    let parent = leaky_project();
    let dir = parent.path().join("leaky");
    let _cleanup = Cleanup(dir.clone());
    let dir_text = dir.display().to_string();

    // 1. `terrarium run` without `init`: the generated Dockerfile with the plan's rules beside it.
    let port = free_port();
    let run = Background::start(&["run", &dir_text, "--port", &port.to_string()]);
    let served = wait_for(port, "/", Duration::from_secs(180), |r| r.status == 200)
        .unwrap_or_else(|e| panic!("{e}\n{}", run.output()));
    assert_eq!(served.body, "from the nested build package");
    let _prod = Image {
        tag: "terrarium/leaky:prod".into(),
    };
    assert_no_secrets("terrarium run", "terrarium/leaky:prod");
    let (status, output) = run.interrupt(Duration::from_secs(20));
    assert!(status.success(), "{output}");

    // 2. `terrarium build`: the native app layer applies the same rules (on Debian's runtime:
    // the project's `base` names the test base, which a registry can't serve here).
    let native = native_image(
        &dir,
        "terrarium-e2e/leaky:native",
        &["--distro", "bookworm"],
    );
    assert_no_secrets("terrarium build", &native.tag);

    // 3. `terrarium init` puts its rules before the project's own; `docker build` honours both.
    let init = terrarium()
        .args(["init", &dir_text])
        .output()
        .expect("init");
    let said = String::from_utf8_lossy(&init.stdout);
    assert!(init.status.success(), "{said}");
    assert!(
        said.contains("added terrarium's rules to .dockerignore"),
        "{said}"
    );
    let ignore = std::fs::read_to_string(dir.join(".dockerignore")).expect("read");
    assert!(
        ignore.ends_with("# the project's own rules\nsecrets.json\n"),
        "{ignore}"
    );
    let image = build_image("terrarium-e2e/leaky:dockerfile", &dir, "Dockerfile", &[]);
    assert_no_secrets("init + docker build", &image.tag);
}

#[test]
fn up_waits_for_health_and_down_keeps_volumes_unless_asked() {
    let dir = fixture("notes-volume");
    init(
        dir.path(),
        &[
            "--proxy",
            "--postgres",
            "--proxy-image",
            TEST_NGINX,
            "--postgres-image",
            TEST_POSTGRES,
        ],
    );
    let dir_text = dir.path().display().to_string();
    let port = free_port();
    let up = || {
        terrarium()
            .args(["up", &dir_text])
            .env("PROXY_PORT", port.to_string())
            .timeout(Duration::from_secs(400))
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "http://127.0.0.1:{port}/"
            )))
            .stdout(predicate::str::contains("db").and(predicate::str::contains("healthy")))
    };
    let compose_label = "label=com.docker.compose.project=notes";
    up();
    let created = http(
        "POST",
        port,
        "/notes",
        Some(r#"{"text": "kept in a named volume"}"#),
    )
    .expect("post");
    assert_eq!(created.status, 201, "{}", created.body);
    let note: serde_json::Value = serde_json::from_str(&created.body).expect("json");
    let note_path = format!("/notes/{}", note["id"].as_str().expect("id"));
    terrarium()
        .args(["logs", "proxy", "-C", &dir_text])
        .assert()
        .success()
        .stdout(predicate::str::contains("POST /notes"));

    terrarium().args(["down", &dir_text]).assert().success();
    assert_eq!(
        docker(&["ps", "--all", "--quiet", "--filter", compose_label]),
        ""
    );
    assert_ne!(
        docker(&["volume", "ls", "--quiet", "--filter", compose_label]),
        "",
        "down keeps named volumes"
    );

    up();
    let read = http("GET", port, &note_path, None).expect("get");
    assert!(
        read.body.contains("kept in a named volume"),
        "{}",
        read.body
    );

    terrarium()
        .args(["down", &dir_text, "--volumes"])
        .assert()
        .success();
    assert_eq!(
        docker(&["volume", "ls", "--quiet", "--filter", compose_label]),
        "",
        "down --volumes removes them"
    );
}

#[test]
fn errors_say_what_to_do() {
    let dir = fixture("flask-requirements");
    let dir_text = dir.path().display().to_string();
    terrarium()
        .args(["dev", &dir_text])
        .env("TERRARIUM_DOCKER", "/nonexistent/docker")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("no `docker` command found")
                .and(predicate::str::contains("fix:")),
        );
    terrarium()
        .args(["ps", &dir_text])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("cannot reach a Docker engine")
                .and(predicate::str::contains("start it")),
        );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    terrarium()
        .args(["dev", &dir_text, "--port", &port])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(format!("port {port} on 127.0.0.1 is already in use"))
                .and(predicate::str::contains("--port")),
        );
    terrarium().args(["up", &dir_text]).assert().code(2).stderr(
        predicate::str::contains("no compose.yaml").and(predicate::str::contains("terrarium init")),
    );
    assert!(
        !dir.path().join("compose.yaml").exists(),
        "without consent nothing is written"
    );
}
