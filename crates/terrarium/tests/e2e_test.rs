//! End to end for `terrarium test`: the fixtures of `tests/fixtures-test/` (one per source of
//! development dependencies, and a unittest suite), and the loyalty program's two suites, run in their natively
//! built test images on the real engine, on CPython 3.11 (bookworm) and 3.13 (trixie); the
//! table, exit codes, JUnit files, the PostgreSQL service, `--keep`, Ctrl-C and bad input.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("tempdir");
    let path = parent.path().join(name);
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures-test")
        .join(name);
    copy_dir(&source, &path);
    (parent, path)
}

/// Removes the test images of a project when dropped.
struct TestImages(Vec<String>);

impl Drop for TestImages {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = docker_output(&["rmi", "--force", tag]);
        }
    }
}

fn test_cmd(dir: &Path, args: &[&str]) -> Output {
    terrarium()
        .arg("test")
        .arg(dir)
        .args(args)
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("TERRARIUM_DOCKER", docker_bin())
        .timeout(Duration::from_secs(900))
        .output()
        .expect("terrarium test")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The table's row for `python` (and `service`): passed, failed, skipped.
fn row(stdout: &str, service: Option<&str>, python: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| {
            let mut words = l.split_whitespace();
            service.is_none_or(|s| words.next() == Some(s)) && words.next() == Some(python)
        })
        .unwrap_or_else(|| panic!("no row for {service:?} {python} in:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

/// Nothing `terrarium test` started for `dir` is left: no container, no network.
fn assert_nothing_left(dir: &Path) {
    let label = format!(
        "label=io.terrarium.project={}",
        dir.canonicalize().expect("dir").display()
    );
    let containers = docker(&["ps", "--all", "--quiet", "--filter", &label]);
    assert!(
        containers.trim().is_empty(),
        "containers left: {containers}"
    );
    let networks = docker(&["network", "ls", "--quiet", "--filter", &label]);
    assert!(networks.trim().is_empty(), "networks left: {networks}");
}

#[test]
fn a_test_failing_only_on_3_13_fails_one_row_and_the_run() {
    let (_parent, dir) = project("version-check");
    let _images = TestImages(vec![
        "terrarium/version-check:test-3.11".into(),
        "terrarium/version-check:test-3.13".into(),
    ]);
    let junit = dir.parent().expect("parent").join("report.xml");
    let output = test_cmd(
        &dir,
        &[
            "--python",
            "3.11,3.13",
            "--junit",
            junit.to_str().expect("utf-8"),
        ],
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    // pytest-mock comes only from requirements-dev.txt; the skipped test is counted.
    assert_eq!(row(&stdout, None, "3.11"), (3, 0, 1), "{stdout}");
    assert_eq!(row(&stdout, None, "3.13"), (2, 1, 1), "{stdout}");
    assert!(
        stdout.contains("FAILED tests/test_version.py::test_fails_only_on_3_13"),
        "pytest's summary: {stdout}"
    );
    assert!(stdout.contains("Python 3.11.") && stdout.contains("Python 3.13."));
    for (python, failures) in [("3.11", "failures=\"0\""), ("3.13", "failures=\"1\"")] {
        let path = dir
            .parent()
            .expect("parent")
            .join(format!("report-{python}.xml"));
        let xml = std::fs::read_to_string(&path).expect("junit file");
        assert!(
            xml.contains("<testsuite") && xml.contains(failures),
            "{xml}"
        );
    }
    let lock = std::fs::read_to_string(dir.join("terrarium.lock")).expect("terrarium.lock");
    assert!(
        lock.contains("pytest-mock"),
        "the test wheels are locked: {lock}"
    );
    assert_nothing_left(&dir);

    // The test image carries the bytecode of its wheels: pytest doesn't compile from source
    // at every run on the read-only root.
    let verbose = docker_output(&[
        "run",
        "--rm",
        "--read-only",
        "--env",
        "PYTHONVERBOSE=1",
        "terrarium/version-check:test-3.11",
        "/usr/bin/python3.11",
        "-c",
        "import pytest, _pytest.python, pytest_mock",
    ]);
    let trace = String::from_utf8_lossy(&verbose.stderr);
    let from_source: Vec<&str> = trace
        .lines()
        .filter(|l| l.starts_with("# code object from") && l.ends_with(".py'"))
        .collect();
    assert!(
        verbose.status.success() && from_source.is_empty() && trace.contains(".pyc'"),
        "compiled from source: {from_source:#?}"
    );

    // Nothing changed: the images are neither rebuilt nor loaded again.
    let output = test_cmd(&dir, &["--python", "3.11"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("loading"), "{stderr}");
    assert_eq!(row(&stdout, None, "3.11"), (3, 0, 1), "{stdout}");
}

#[test]
fn dependency_groups_install_on_every_allowed_python_and_bad_pythons_are_refused() {
    let (_parent, dir) = project("groups-pep735");
    let _images = TestImages(vec![
        "terrarium/groups-pep735:test-3.11".into(),
        "terrarium/groups-pep735:test-3.13".into(),
    ]);
    // `requires-python = ">=3.11,<3.14"`: all = 3.11 and 3.13.
    let output = test_cmd(&dir, &["--python", "all"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(row(&stdout, None, "3.11"), (3, 0, 0), "{stdout}");
    assert_eq!(row(&stdout, None, "3.13"), (3, 0, 0), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("3.14 ")), "{stdout}");
    assert_nothing_left(&dir);

    let output = test_cmd(&dir, &["--python", "3.14"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CPython 3.14 is excluded")
            && stderr.contains(">=3.11,<3.14")
            && stderr.contains("pyproject.toml:4"),
        "{stderr}"
    );
    let output = test_cmd(&dir, &["--python", "3.12"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CPython 3.12") && stderr.contains("3.11, 3.13, 3.14"),
        "{stderr}"
    );

    // --keep leaves the container for debugging.
    let output = test_cmd(&dir, &["--python", "3.11", "--keep", "--", "-k", "health"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        row(&stdout, None, "3.11"),
        (1, 0, 0),
        "pytest args passed on: {stdout}"
    );
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kept (--keep): "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let container = kept.split(';').next().expect("name").trim();
    let state = docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
        container,
    ]);
    assert_eq!(state.trim(), "exited 65532:65532 true", "{state}");
    docker(&["rm", "--force", container]);
}

#[test]
fn a_postgres_service_is_started_for_the_suite_and_one_never_healthy_is_named() {
    let (_parent, dir) = project("pg-notes");
    let _images = TestImages(vec!["terrarium/pg-notes:test-3.13".into()]);
    let output = test_cmd(
        &dir,
        &["--python", "3.13", "--postgres-image", TEST_POSTGRES],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(row(&stdout, None, "3.13"), (2, 0, 0), "{stdout}");
    assert_nothing_left(&dir);

    // nginx never answers pg_isready.
    let output = test_cmd(
        &dir,
        &[
            "--python",
            "3.13",
            "--postgres-image",
            TEST_NGINX,
            "--service-timeout",
            "5",
        ],
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the test service `postgres` did not become healthy")
            && stderr.contains("last log lines")
            && stderr.contains(TEST_NGINX),
        "{stderr}"
    );
    assert_nothing_left(&dir);
}

#[test]
fn ctrl_c_removes_the_containers_and_the_network() {
    let (_parent, dir) = project("pg-notes");
    let _images = TestImages(vec!["terrarium/pg-notes:test-3.11".into()]);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("terrarium"))
        .arg("test")
        .arg(&dir)
        .args([
            "--python",
            "3.11",
            "--postgres-image",
            TEST_POSTGRES,
            "--",
            "-m",
            "slow",
        ])
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("TERRARIUM_DOCKER", docker_bin())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn terrarium test");
    let label = format!(
        "label=io.terrarium.project={}",
        dir.canonicalize().expect("dir").display()
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    // Wait until the suite (the slow test) runs beside its PostgreSQL.
    loop {
        let running = docker(&["ps", "--quiet", "--filter", &label]);
        if running.lines().count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the suite never started");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "terrarium test ended early"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = child.wait().expect("wait").code();
    assert_eq!(code, Some(130));
    assert_nothing_left(&dir);
}

#[test]
fn unittest_suites_and_a_configured_command_run_without_pytest() {
    let (_parent, dir) = project("unittest-suite");
    let _images = TestImages(vec!["terrarium/unittest-suite:test-3.13".into()]);
    let junit = dir.parent().expect("parent").join("unittest.xml");
    let output = test_cmd(
        &dir,
        &[
            "--python",
            "3.13",
            "--junit",
            junit.to_str().expect("utf-8"),
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("with unittest (the tests are unittest test cases)"),
        "{stderr}"
    );
    // Counted from unittest's own summary; its JUnit file made from those counts.
    // greenlet (requirements-dev.txt) links libstdc++, which the production image lacks: the
    // test image gets it in a layer of its own.
    assert_eq!(row(&stdout, None, "3.13"), (3, 0, 1), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("junit file");
    assert!(
        xml.contains("tests=\"4\"") && xml.contains("skipped=\"1\""),
        "{xml}"
    );
    // No pytest was added to the test image.
    let lock = std::fs::read_to_string(dir.join("terrarium.lock")).expect("terrarium.lock");
    assert!(!lock.contains("name = \"pytest\""), "{lock}");

    // A configured command runs instead, from /app; its exit code decides.
    std::fs::write(
        dir.join("terrarium.toml"),
        "[test]\ncommand = [\"python\", \"-c\", \"import app, sys; sys.exit(app.add(2, 2) != 5)\"]\n",
    )
    .expect("terrarium.toml");
    let output = test_cmd(&dir, &["--python", "3.13"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("the configured test command"), "{stderr}");
    assert!(stdout.contains("exit 1"), "{stdout}");
    assert_nothing_left(&dir);
}

#[test]
fn a_django_project_runs_djangos_runner_from_the_directory_of_manage_py() {
    let (_parent, dir) = project("django-tests");
    let _images = TestImages(vec!["terrarium/django-tests:test-3.13".into()]);
    let output = test_cmd(&dir, &["--python", "3.13"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("with manage.py test"), "{stderr}");
    // The TestCase needs the test database Django's runner creates.
    assert!(stdout.contains("Creating test database"), "{stdout}");
    assert_eq!(row(&stdout, None, "3.13"), (2, 0, 0), "{stdout}");
    assert_nothing_left(&dir);
}

#[test]
fn no_tests_found_exits_5() {
    let (_parent, dir) = project("no-tests");
    let _images = TestImages(vec!["terrarium/no-tests:test-3.11".into()]);
    let output = test_cmd(&dir, &["--python", "3.11"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(stdout.contains("no tests found"), "{stdout}");
    assert!(stdout.contains("no tests"), "{stdout}");
    assert_nothing_left(&dir);
}

#[test]
fn the_loyalty_programs_suites_run_points_against_postgres() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("loyalty");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loyalty"),
        &dir,
    );
    let _images = TestImages(
        ["loyalty-points", "loyalty-rewards"]
            .iter()
            .flat_map(|s| ["3.11", "3.13"].map(|p| format!("terrarium/{s}:test-{p}")))
            .collect(),
    );
    let output = test_cmd(
        &dir,
        &["--python", "3.11,3.13", "--postgres-image", TEST_POSTGRES],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for service in ["points", "rewards"] {
        for python in ["3.11", "3.13"] {
            let (passed, failed, _) = row(&stdout, Some(service), python);
            assert!(passed > 20 && failed == 0, "{service} {python}: {stdout}");
        }
    }
    for service in ["points", "rewards"] {
        assert_nothing_left(&dir.join(service));
    }
}

#[test]
fn poetrys_dev_group_goes_into_the_test_layer_only() {
    let (_parent, dir) = project("poetry-group");
    let _images = TestImages(vec!["terrarium/poetry-group:test-3.11".into()]);
    let output = test_cmd(&dir, &["--python", "3.11"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(row(&stdout, None, "3.11"), (2, 0, 0), "{stdout}");
    let lock = std::fs::read_to_string(dir.join("terrarium.lock")).expect("terrarium.lock");
    let (production, test) = lock
        .split_once("[distro.bookworm.test]")
        .unwrap_or_else(|| panic!("no test section: {lock}"));
    assert!(
        !production.contains("pytest"),
        "pytest in the production wheels: {production}"
    );
    assert!(test.contains("name = \"pytest-mock\""), "{test}");
    assert_nothing_left(&dir);
}
