//! The fixture corpus: realistic Dockerfiles and Compose files (good and bad; Flask, Django,
//! FastAPI; multi-stage) with their expected findings pinned as snapshots.

use std::fmt::Write;
use std::path::Path;

use terrarium_lint::{Config, FileKind, Severity, lint_source};

fn render(path: &Path) -> String {
    render_at(&Path::new("tests/fixtures").join(path.file_name().expect("file name")))
}

/// The findings of the fixture at `relative` (from the crate directory), one per line.
fn render_at(relative: &Path) -> String {
    let source = std::fs::read_to_string(relative).expect("fixture is readable");
    let findings = lint_source(
        relative,
        &source,
        FileKind::for_explicit(relative),
        &Config::default(),
    );
    let mut out = String::new();
    for f in &findings {
        let lesson = f
            .lesson
            .map_or_else(|| "---".to_string(), |l| l.to_string());
        let _ = writeln!(
            out,
            "{}:{}-{}:{} {} {} {} | {}",
            f.location.line,
            f.location.column,
            f.location.end_line,
            f.location.end_column,
            f.severity,
            f.rule,
            lesson,
            f.message
        );
    }
    if findings.is_empty() {
        out.push_str("(no findings)\n");
    }
    out
}

#[test]
fn fixture_findings() {
    insta::glob!("fixtures/*.{Dockerfile,yaml}", |path| {
        insta::assert_snapshot!(render(path));
    });
}

/// A plain docker-compose.yml with a docker-compose.prod.yml beside it is the dev file: no
/// dev-server, debug or mounted-source findings there; the production file is still checked.
#[test]
fn compose_file_beside_a_production_one_is_the_dev_file() {
    for name in ["docker-compose.yml", "docker-compose.prod.yml"] {
        let path = Path::new("tests/fixtures/prod-sibling").join(name);
        insta::assert_snapshot!(format!("prod-sibling-{name}"), render_at(&path));
    }
    let dev = render_at(Path::new("tests/fixtures/prod-sibling/docker-compose.yml"));
    for rule in [
        "compose-dev-server",
        "compose-config-mount",
        "compose-no-restart",
    ] {
        assert!(!dev.contains(rule), "{rule} in the dev file:\n{dev}");
    }
    let prod = render_at(Path::new(
        "tests/fixtures/prod-sibling/docker-compose.prod.yml",
    ));
    assert!(prod.contains("compose-dev-server"), "{prod}");
}

/// The Flask CLI's dev server behind a FlaskGroup `manage.py run` or a wrapper script, each
/// read from the build context (`fixtures/flask-cli/`); a script that picks gunicorn or
/// `flask run` at run time is not reported.
#[test]
fn flask_cli_behind_scripts() {
    insta::glob!("fixtures/flask-cli/*.Dockerfile", |path| {
        insta::assert_snapshot!(render_at(path));
    });
}

#[test]
fn corpus_is_large_enough() {
    let count = std::fs::read_dir("tests/fixtures")
        .expect("fixtures dir")
        .filter_map(Result::ok)
        .filter(|e| {
            FileKind::from_name(&e.path()).is_some()
                || e.path()
                    .extension()
                    .is_some_and(|x| x == "Dockerfile" || x == "yaml")
        })
        .count();
    assert!(count >= 40, "only {count} fixtures");
}

/// The headline file: hadolint reports none of these six, terrarium must report all,
/// each with its lesson.
#[test]
fn headline_six_findings() {
    let path = Path::new("tests/fixtures/flask-headline.Dockerfile");
    let source = std::fs::read_to_string(path).expect("fixture");
    let findings = lint_source(path, &source, FileKind::Dockerfile, &Config::default());
    for (rule, lesson) in [
        ("root-user", "L11"),
        ("dev-server", "L02"),
        ("source-before-deps", "L06"),
        ("virtualenv", "L04"),
        ("ssh-server", "L15"),
        ("process-manager", "L01"),
    ] {
        let hit = findings.iter().find(|f| f.rule == rule);
        let hit = hit.unwrap_or_else(|| panic!("{rule} missing from {findings:#?}"));
        assert_eq!(
            hit.lesson.map(|l| l.to_string()).as_deref(),
            Some(lesson),
            "{rule}"
        );
    }
}

/// Files that follow the lessons produce nothing at warning or above.
#[test]
fn good_fixtures_are_clean() {
    for name in [
        "flask-good.Dockerfile",
        "django-good.Dockerfile",
        "fastapi-good.Dockerfile",
        "flask.dev.Dockerfile",
        "heredoc.Dockerfile",
        "compose.flask-good.yaml",
        "compose.nginx-proxy.yaml",
        "compose.flask-dev.yaml",
        "compose.django.override.yaml",
    ] {
        let path = Path::new("tests/fixtures").join(name);
        let source = std::fs::read_to_string(&path).expect("fixture");
        let findings = lint_source(
            &path,
            &source,
            FileKind::for_explicit(&path),
            &Config::default(),
        );
        let loud: Vec<_> = findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .collect();
        assert!(loud.is_empty(), "{name}: {loud:#?}");
    }
}
