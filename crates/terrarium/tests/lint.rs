//! `terrarium lint` from the command line: exit codes, formats, discovery, settings,
//! `--explain`, the headline file, and the files `terrarium init` writes.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{copy_dir, fixture, fixture_names, terrarium};

const HEADLINE: &str = "FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends openssh-server supervisor \\
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt
EXPOSE 5000
CMD /usr/sbin/sshd && supervisord -c /etc/supervisord.conf && exec /venv/bin/flask run --host=0.0.0.0
";

const CLEAN: &str = "FROM python:3.12.8-slim-bookworm
ENV PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt
COPY app.py .
USER 65532:65532
EXPOSE 8000
HEALTHCHECK CMD [\"python\", \"-c\", \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')\"]
CMD [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"app:app\"]
";

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn rules_in(report: &Value) -> Vec<(String, Option<String>)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["lesson"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn headline_file_reports_all_six_misses() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "Dockerfile", HEADLINE);
    let output = terrarium()
        .args(["lint", "--format", "json"])
        .arg(dir.path().join("Dockerfile"))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let found = rules_in(&json_of(&output));
    for (rule, lesson) in [
        ("root-user", "L11"),
        ("dev-server", "L02"),
        ("source-before-deps", "L06"),
        ("virtualenv", "L04"),
        ("ssh-server", "L15"),
        ("process-manager", "L01"),
    ] {
        assert!(
            found.contains(&(rule.to_string(), Some(lesson.to_string()))),
            "{rule} {lesson} not in {found:?}"
        );
    }
}

#[test]
fn init_output_has_nothing_at_warning_or_above() {
    let mut projects: Vec<(String, Vec<&str>)> =
        fixture_names().into_iter().map(|n| (n, vec![])).collect();
    projects.push((
        "flask-requirements".to_string(),
        vec!["--proxy", "--postgres"],
    ));
    for (name, flags) in projects {
        let project = fixture(&name);
        terrarium()
            .arg("init")
            .args(&flags)
            .arg(project.service())
            .assert()
            .success();
        let output = terrarium()
            .args(["lint", "--format", "json"])
            .arg(project.service())
            .output()
            .expect("lint");
        let report = json_of(&output);
        let files = report["files"].as_array().map_or(0, Vec::len);
        assert!(files >= 3, "{name}: only {files} files linted");
        let loud: Vec<&Value> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["severity"] != "info")
            .collect();
        assert!(loud.is_empty(), "{name} {flags:?}: {loud:#?}");
        assert_eq!(output.status.code(), Some(0), "{name}");
    }
}

#[test]
fn system_init_output_has_nothing_at_warning_or_above() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("loyalty");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loyalty"),
        &dir,
    );
    terrarium().arg("init").arg(&dir).assert().success();
    terrarium().arg("k8s").arg(&dir).assert().success();
    let output = terrarium()
        .args(["lint", "--format", "json"])
        .arg(&dir)
        .output()
        .expect("lint");
    let report = json_of(&output);
    let files: Vec<&str> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f.as_str().or_else(|| f["path"].as_str()))
        .collect();
    assert!(
        files.len() >= 5 + 11,
        "two Dockerfiles, two Dockerfile.dev, compose.yaml and the k8s manifests: {files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("k8s/base/points.yaml")),
        "{files:?}"
    );
    let loud: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn kubernetes_manifests_are_checked_for_the_lessons() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "deploy/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      hostPID: true\n      volumes:\n      - name: data\n        hostPath:\n          path: /srv/data\n      containers:\n      - name: web\n        image: web:latest\n        securityContext:\n          privileged: true\n",
    );
    let output = terrarium()
        .args(["lint", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("lint");
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let found: Vec<(String, u64)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["line"]
                    .as_u64()
                    .or_else(|| f["location"]["line"].as_u64())
                    .unwrap_or(0),
            )
        })
        .collect();
    for (rule, line) in [
        ("k8s-privileged", 8),
        ("k8s-host-path", 12),
        ("k8s-root", 14),
        ("k8s-floating-image", 15),
        ("k8s-privileged", 17),
        ("k8s-no-probes", 14),
        ("k8s-no-limits", 14),
    ] {
        assert!(
            found.contains(&(rule.to_string(), line)),
            "{rule} at line {line}: {found:?}"
        );
    }
}

#[test]
fn exit_codes_follow_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "Dockerfile", CLEAN);
    write(dir.path(), ".dockerignore", ".git\n.env\n");
    terrarium().arg("lint").arg(dir.path()).assert().code(0);

    // An info-level finding passes by default and fails with --fail-on info.
    write(
        dir.path(),
        "Dockerfile",
        &CLEAN.replace("RUN pip", "RUN python -m venv /v && pip"),
    );
    terrarium().arg("lint").arg(dir.path()).assert().code(0);
    terrarium()
        .args(["lint", "--fail-on", "info"])
        .arg(dir.path())
        .assert()
        .code(1);

    // An error fails by default and with --fail-on error.
    write(
        dir.path(),
        "Dockerfile",
        &CLEAN.replace("USER 65532:65532\n", ""),
    );
    terrarium().arg("lint").arg(dir.path()).assert().code(1);
    terrarium()
        .args(["lint", "--fail-on", "error"])
        .arg(dir.path())
        .assert()
        .code(1);

    // A missing path is a usage error.
    let missing = terrarium()
        .arg("lint")
        .arg(dir.path().join("nope"))
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn unparsable_files_are_findings_and_others_are_still_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  app:\n    image: [unclosed\n",
    );
    write(
        dir.path(),
        "api/Dockerfile",
        "FROM python:3.12-slim\nUSER root\n",
    );
    std::fs::write(dir.path().join("Dockerfile.bin"), [0xff, 0xfe, 0x00, 0x41]).expect("write");
    let output = terrarium()
        .args(["lint", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let findings = report["findings"].as_array().expect("findings");
    let yaml = findings
        .iter()
        .find(|f| {
            f["rule"] == "parse-error"
                && f["file"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("compose.yaml"))
        })
        .expect("yaml parse error");
    assert!(yaml["line"].as_u64().is_some_and(|l| l >= 3), "{yaml}");
    assert!(findings.iter().any(|f| {
        f["rule"] == "parse-error"
            && f["file"]
                .as_str()
                .is_some_and(|p| p.ends_with("Dockerfile.bin"))
    }));
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "root-user" && f["line"] == 2)
    );
}

#[test]
fn discovery_respects_gitignore_and_defaults_to_the_current_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), ".gitignore", "vendor/\n");
    write(dir.path(), "vendor/Dockerfile", "FROM python\n");
    write(dir.path(), "services/api.Dockerfile", CLEAN);
    write(
        dir.path(),
        "docker-compose.prod.yml",
        "services:\n  app:\n    image: example/app:1.0\n",
    );
    write(dir.path(), "notes.txt", "FROM python\n");
    let output = terrarium()
        .args(["lint", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    let report = json_of(&output);
    let files: Vec<&str> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        files,
        ["docker-compose.prod.yml", "services/api.Dockerfile"]
    );
}

#[test]
fn settings_from_pyproject_and_inline_ignores() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), ".dockerignore", ".git\n.env\n");
    write(
        dir.path(),
        "Dockerfile",
        &CLEAN.replace("USER 65532:65532\n", "MAINTAINER me\n"),
    );
    terrarium()
        .arg("lint")
        .current_dir(dir.path())
        .assert()
        .code(1);
    write(
        dir.path(),
        "pyproject.toml",
        "[project]\nname = \"x\"\n\n[tool.terrarium.lint]\ndisable = [\"maintainer\"]\nseverity = { root-user = \"info\" }\n",
    );
    terrarium()
        .arg("lint")
        .current_dir(dir.path())
        .assert()
        .code(0);
    // Settings are looked up from the linted path, not only from the current directory.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    terrarium()
        .arg("lint")
        .arg(dir.path())
        .current_dir(elsewhere.path())
        .assert()
        .code(0);
    write(
        dir.path(),
        "pyproject.toml",
        "[tool.terrarium.lint]\nfail-on = \"info\"\n",
    );
    terrarium()
        .arg("lint")
        .current_dir(dir.path())
        .assert()
        .code(1);
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "# terrarium: ignore-file=root-user,maintainer\n{}",
            CLEAN.replace("USER 65532:65532\n", "MAINTAINER me\n")
        ),
    );
    terrarium()
        .arg("lint")
        .current_dir(dir.path())
        .assert()
        .code(0);
    write(
        dir.path(),
        "pyproject.toml",
        "[tool.terrarium.lint]\ndisable = [\"no-such-rule\"]\n",
    );
    let bad = terrarium()
        .arg("lint")
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("pyproject.toml") && stderr.contains("no-such-rule"),
        "{stderr}"
    );
}

#[test]
fn explain_and_list_rules() {
    let output = terrarium()
        .args(["lint", "--explain", "root-user"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for part in [
        "root-user (error)",
        "Lesson: L11",
        "Bad:",
        "Good:",
        "USER 65532:65532",
        "Fix:",
    ] {
        assert!(text.contains(part), "{part} missing from\n{text}");
    }
    terrarium()
        .args(["lint", "--explain", "nope"])
        .assert()
        .code(2);
    let list = terrarium()
        .args(["lint", "--list-rules"])
        .output()
        .expect("run");
    let listed = String::from_utf8_lossy(&list.stdout).lines().count();
    assert_eq!(listed, terrarium_lint::rules::all().len());
    assert!(listed >= 50, "{listed} rules");
}

#[test]
fn output_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "Dockerfile", HEADLINE);
    let path = dir.path().join("Dockerfile");
    let text = terrarium()
        .args(["lint", "--color", "never"])
        .arg(&path)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("error[root-user] L11"), "{text}");
    assert!(
        text.contains(" 1 | FROM python:3.12-slim") && text.contains("^^^"),
        "{text}"
    );
    assert!(!text.contains('\x1b'));
    let colored = terrarium()
        .args(["lint", "--color", "always"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&colored.stdout).contains("\x1b[1;31m"));
    let sarif = terrarium()
        .args(["lint", "--format", "sarif"])
        .arg(&path)
        .output()
        .expect("run");
    let sarif = json_of(&sarif);
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        sarif["runs"][0]["results"]
            .as_array()
            .is_some_and(|r| r.len() >= 6)
    );
    let github = terrarium()
        .args(["lint", "--format", "github"])
        .arg(&path)
        .output()
        .expect("run");
    let github = String::from_utf8_lossy(&github.stdout);
    assert!(
        github
            .lines()
            .any(|l| l.starts_with("::error file=") && l.contains("title=root-user (L11)::")),
        "{github}"
    );
}
