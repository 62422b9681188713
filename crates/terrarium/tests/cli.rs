//! CLI behaviour of `terrarium plan` and `terrarium init`: output, exit codes, and clear errors
//! (file, line, fix) for bad input, with nothing written.

mod support;

use predicates::prelude::*;
use support::*;

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

const FLASK_APP: &str = "from flask import Flask\napp = Flask(__name__)\n@app.get('/health')\ndef health():\n    return 'ok'\n";

#[test]
fn plan_explains_each_decision_with_its_source() {
    let dir = fixture("flask-factory-uv");
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "command: gunicorn --bind 0.0.0.0:8000 --access-logfile - 'quotes:create_app()'",
        ))
        .stdout(predicate::str::contains(
            "Flask app factory `create_app` found in quotes/__init__.py",
        ))
        .stdout(predicate::str::contains(
            "gunicorn added because no WSGI server is a dependency",
        ))
        .stdout(predicate::str::contains("healthcheck: /healthz"));
}

#[test]
fn plan_json_is_the_documented_schema() {
    let dir = fixture("notes-volume");
    let output = terrarium()
        .args(["plan", "--json"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(output.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(plan["schema"], "terrarium.plan/v2");
    assert_eq!(plan["project"]["name"], "notes");
    let keys: Vec<&str> = plan["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        keys,
        [
            "python",
            "exclude-newer",
            "base",
            "build-base",
            "runtime",
            "platforms",
            "dependencies",
            "added-packages",
            "server",
            "command",
            "dev-command",
            "port",
            "user",
            "env",
            "volumes",
            "healthcheck",
            "system-packages",
            "build-packages",
            "install-project",
            "build-steps",
            "context",
            "proxy-image",
            "postgres-image"
        ]
    );
    let volumes = plan["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .find(|d| d["key"] == "volumes")
        .expect("volumes");
    assert_eq!(volumes["value"][0]["path"], "/data");
    assert_eq!(volumes["sources"][0]["file"], "notes.py");
    assert!(
        plan["unsettled"]
            .as_array()
            .expect("unsettled")
            .iter()
            .any(|u| u["message"]
                .as_str()
                .unwrap_or("")
                .contains("nothing locks them"))
    );
}

#[test]
fn plan_says_which_platforms_are_built() {
    let dir = project(&[
        ("app.py", FLASK_APP),
        ("requirements.txt", "flask==3.1.2\n"),
        (
            "terrarium.toml",
            "port = 5000\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n",
        ),
    ]);
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "platforms: linux/arm64 linux/amd64 [configured]",
        ))
        .stdout(predicate::str::contains(
            "linux/arm64 images are assembled here without running their code",
        ));
    std::fs::write(
        dir.path().join("terrarium.toml"),
        "platforms = [\"linux/ppc64le\"]\n",
    )
    .expect("write");
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("terrarium.toml:1"))
        .stderr(predicate::str::contains(
            "\"linux/ppc64le\" is not a platform",
        ));
}

#[test]
fn configuration_overrides_decisions() {
    let dir = project(&[
        ("app.py", FLASK_APP),
        ("requirements.txt", "flask==3.1.2\ngunicorn==23.0.0\n"),
        (
            "terrarium.toml",
            "port = 9000\nhealthcheck = \"/ping\"\nuser = \"1000:1000\"\nvolumes = [\"/var/lib/app\"]\n",
        ),
    ]);
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("port: 9000 [configured]"))
        .stdout(predicate::str::contains("healthcheck: /ping [configured]"))
        .stdout(predicate::str::contains("user: 1000:1000 [configured]"))
        .stdout(predicate::str::contains("--bind 0.0.0.0:9000"));
}

#[test]
fn init_writes_files_and_next_steps_then_refuses_to_overwrite() {
    let dir = fixture("flask-requirements");
    terrarium()
        .arg("init")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "wrote Dockerfile\nwrote Dockerfile.dev\nwrote .dockerignore\nwrote compose.yaml",
        ))
        .stdout(predicate::str::contains(
            "docker run --rm -p 127.0.0.1:5000:5000 flask-requirements",
        ));
    std::fs::write(dir.path().join("Dockerfile"), "# mine\n").expect("edit");
    std::fs::remove_file(dir.path().join("compose.yaml")).expect("rm");
    terrarium()
        .arg("init")
        .arg(dir.path())
        .assert()
        .code(2)
        // .dockerignore is merged, never a conflict (terrarium-render's write.rs).
        .stderr(predicate::str::contains(
            "Dockerfile, Dockerfile.dev already exist",
        ))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Dockerfile")).expect("read"),
        "# mine\n"
    );
    assert!(
        !dir.path().join("compose.yaml").exists(),
        "nothing is written when init refuses"
    );
    terrarium()
        .args(["init", "--force"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("overwrote Dockerfile"));
    assert!(
        std::fs::read_to_string(dir.path().join("Dockerfile"))
            .expect("read")
            .contains("USER 65532:65532")
    );
}

fn fails_with(files: &[(&str, &str)], expected: &[&str]) {
    let dir = project(files);
    let mut assert = terrarium().arg("init").arg(dir.path()).assert().code(2);
    for text in expected {
        assert = assert.stderr(predicate::str::contains(*text));
    }
    let written: Vec<_> = [
        "Dockerfile",
        "Dockerfile.dev",
        ".dockerignore",
        "compose.yaml",
    ]
    .iter()
    .filter(|f| dir.path().join(f).exists())
    .collect();
    assert!(
        written.is_empty(),
        "nothing written on error, found {written:?}"
    );
}

#[test]
fn missing_directory() {
    terrarium()
        .args(["plan", "/nonexistent/terrarium-project"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/nonexistent/terrarium-project: no such project directory",
        ));
}

#[test]
fn malformed_pyproject_names_file_and_line() {
    fails_with(
        &[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\ndependencies = [\"flask\"\n",
            ),
            ("app.py", FLASK_APP),
        ],
        &["error: ", "/pyproject.toml:3:", "fix:"],
    );
}

#[test]
fn bad_requires_python_names_its_line() {
    fails_with(
        &[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\nrequires-python = \"three\"\n",
            ),
            ("app.py", FLASK_APP),
        ],
        &["pyproject.toml:3: requires-python = \"three\" is not a PEP 440 version specifier"],
    );
}

#[test]
fn malformed_requirements_names_the_line() {
    fails_with(
        &[
            ("requirements.txt", "flask==3.1.2\ngunicorn=23\n"),
            ("app.py", FLASK_APP),
        ],
        &["requirements.txt:2: not a valid requirement", "fix:"],
    );
}

#[test]
fn malformed_locks_name_the_file() {
    fails_with(
        &[
            ("pyproject.toml", "[project]\nname = \"x\"\n"),
            ("uv.lock", "version = 1\n[[package]\n"),
            ("app.py", FLASK_APP),
        ],
        &["uv.lock:2:", "uv lock"],
    );
    fails_with(
        &[
            ("Pipfile", "[packages]\nflask = \"*\"\n"),
            ("Pipfile.lock", "{\"default\": {\"flask\": \"x\"}"),
            ("app.py", FLASK_APP),
        ],
        &["Pipfile.lock:", "pipenv lock"],
    );
}

#[test]
fn no_python_project() {
    fails_with(&[("README.md", "hello\n")], &["no Python project found"]);
}

#[test]
fn two_frameworks_conflict() {
    fails_with(
        &[
            ("web.py", FLASK_APP),
            ("api.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
            ("requirements.txt", "flask==3.1.2\nfastapi==0.115.0\n"),
        ],
        &[
            "found more than one web application",
            "Flask web:app (web.py:2)",
            "FastAPI api:app (api.py:2)",
            "`command` in [tool.terrarium]",
        ],
    );
}

#[test]
fn nothing_to_run() {
    fails_with(
        &[
            ("lib.py", "def f():\n    return 1\n"),
            ("requirements.txt", "six==1.16.0\n"),
        ],
        &["found no web application", "command = "],
    );
}

#[test]
fn pipfile_without_lock_and_root_user_are_refused() {
    fails_with(
        &[
            ("Pipfile", "[packages]\nflask = \"*\"\n"),
            ("app.py", FLASK_APP),
        ],
        &["Pipfile: the Pipfile has no Pipfile.lock", "pipenv lock"],
    );
    fails_with(
        &[
            ("app.py", FLASK_APP),
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\n\n[tool.terrarium]\nuser = \"0\"\n",
            ),
        ],
        &["pyproject.toml:5: user = 0 is root"],
    );
}

#[test]
fn poetry_without_lock_is_resolved_from_its_constraints_but_a_git_source_is_refused() {
    // Caret constraints become PEP 508 ranges, extras and markers are kept, optional
    // dependencies (the project's extras) are left out, for both back ends.
    let dir = project(&[
        ("app.py", FLASK_APP),
        (
            "pyproject.toml",
            r#"[tool.poetry]
name = "x"

[tool.poetry.dependencies]
python = "^3.11"
flask = "^3.1"
pydantic = { extras = ["email"], version = "^2.6.1" }
uvloop = { version = "~0.19", markers = "sys_platform != \"win32\"" }
boto3 = { version = "*", optional = true }
"#,
        ),
    ]);
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("pyproject.toml (not locked)"))
        .stdout(predicate::str::contains("`poetry lock`"));
    terrarium().arg("init").arg(dir.path()).assert().success();
    let dockerfile = std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("'flask>=3.1,<4'")
            && dockerfile.contains("'pydantic[email]>=2.6.1,<3'")
            && dockerfile.contains(r#"'uvloop>=0.19,<0.20 ; sys_platform != "win32"'"#)
            && !dockerfile.contains("boto3"),
        "{dockerfile}"
    );

    fails_with(
        &[
            ("app.py", FLASK_APP),
            (
                "pyproject.toml",
                "[tool.poetry]\nname = \"x\"\n\n[tool.poetry.dependencies]\npython = \"^3.11\"\nflask = \"^3\"\nmylib = { git = \"https://example.invalid/mylib.git\" }\n",
            ),
        ],
        &[
            "pyproject.toml:7: [tool.poetry.dependencies] mylib: a git, path or URL source, and there is no poetry.lock",
            "poetry lock",
        ],
    );
}

#[test]
fn python_constraint_no_release_satisfies() {
    fails_with(
        &[
            ("app.py", FLASK_APP),
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\nrequires-python = \">=4.0\"\n",
            ),
        ],
        &["pyproject.toml:3: no supported Python release satisfies \">=4.0\""],
    );
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let dir = fixture("flask-requirements");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("terrarium"))
        .arg("plan")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{stderr}");
}

/// `git` in `dir` with fixed identities and `date` as both author and commit date.
fn git_at(dir: &std::path::Path, date: &str, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn unpinned_requirements_are_dated_by_the_commit_that_last_changed_them() {
    let dir = fixture("flask-2023-pins");
    git_at(dir.path(), "2023-06-15T12:00:00Z", &["init", "-q"]);
    git_at(dir.path(), "2023-06-15T12:00:00Z", &["add", "."]);
    git_at(
        dir.path(),
        "2023-06-15T12:00:00Z",
        &["commit", "-qm", "pins"],
    );
    // A later commit that leaves the requirements alone doesn't move the era.
    std::fs::write(dir.path().join("NOTES.md"), "later\n").unwrap();
    git_at(dir.path(), "2026-01-01T12:00:00Z", &["add", "."]);
    git_at(
        dir.path(),
        "2026-01-01T12:00:00Z",
        &["commit", "-qm", "notes"],
    );
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "exclude-newer: 2023-06-15T12:00:00Z\n    the dependencies were last changed then",
        ))
        .stdout(predicate::str::contains("python: 3.11"));
    terrarium().arg("init").arg(dir.path()).assert().success();
    let dockerfile = std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("uv pip install --system --prefix /install --exclude-newer 2023-06-15T12:00:00Z -r requirements.txt"),
        "{dockerfile}"
    );
}

#[test]
fn the_python_the_lock_records_is_kept_while_allowed() {
    let dir = fixture("flask-requirements");
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("python: 3.13"));
    std::fs::write(
        dir.path().join("terrarium.lock"),
        "version = 1\npython = \"3.11\"\n",
    )
    .unwrap();
    terrarium()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "python: 3.11\n    the Python the last build chose (terrarium.lock)",
        ));
}

#[test]
fn pins_without_wheels_for_any_python_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("pyproject.toml"),
        "[project]\nname = \"old\"\nversion = \"1\"\ndependencies = [\"oldbin\", \"flask\"]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("app.py"),
        "from flask import Flask\napp = Flask(__name__)\n",
    )
    .unwrap();
    let wheel = |tag: &str| {
        format!(
            "    {{ url = \"https://files.example.invalid/oldbin-1.0-{tag}-{tag}-manylinux2014_x86_64.whl\", hash = \"sha256:{}\" }},\n",
            "a".repeat(64)
        )
    };
    std::fs::write(
        root.join("uv.lock"),
        format!(
            "version = 1\nrevision = 3\n\n[[package]]\nname = \"oldbin\"\nversion = \"1.0\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\nwheels = [\n{}{}]\n\n[[package]]\nname = \"flask\"\nversion = \"3.1.2\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\nwheels = [\n    {{ url = \"https://files.example.invalid/flask-3.1.2-py3-none-any.whl\", hash = \"sha256:{}\" }},\n]\n",
            wheel("cp37"),
            wheel("cp38"),
            "b".repeat(64)
        ),
    )
    .unwrap();
    terrarium()
        .arg("plan")
        .arg(root)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no Python release has wheels for every package the project pins",
        ))
        .stderr(predicate::str::contains(
            "CPython 3.13: oldbin 1.0 (uv.lock) has wheels for CPython 3.7–3.8 only",
        ))
        .stderr(predicate::str::contains("CPython 3.11: oldbin 1.0"));
}

#[test]
fn deploy_and_k8s_refuse_a_bad_replicas_count_naming_the_line() {
    let dir = project(&[
        ("api/app.py", FLASK_APP),
        ("api/requirements.txt", "flask==3.1.2\n"),
        (
            "terrarium.toml",
            "name = \"shop\"\n[services.api]\npath = \"api\"\nreplicas = 0\n",
        ),
    ]);
    for args in [&["k8s"][..], &["deploy", "swarm", "--write-only"][..]] {
        terrarium()
            .args(args)
            .arg(dir.path())
            .assert()
            .code(2)
            .stderr(predicate::str::contains("terrarium.toml:2"))
            .stderr(predicate::str::contains("replicas = 0 is out of range"));
    }
    assert!(!dir.path().join("stack.yaml").exists());
    assert!(!dir.path().join("k8s").exists());
}

#[test]
fn deploy_swarm_write_only_keeps_a_stack_file_it_finds() {
    let dir = fixture("flask-requirements");
    terrarium()
        .args(["deploy", "swarm", "--write-only"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout("wrote stack.yaml\n");
    std::fs::write(dir.path().join("stack.yaml"), "# mine\n").expect("edit");
    terrarium()
        .args(["deploy", "swarm", "--write-only"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout("");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("stack.yaml")).expect("read"),
        "# mine\n"
    );
}

#[test]
fn an_unknown_compression_names_the_choices() {
    let dir = fixture("flask-factory-uv");
    terrarium()
        .args(["build", "--compression", "xz"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown compression `xz` (expected `gzip` or `zstd`)",
        ));
}
