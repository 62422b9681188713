//! Which test runner a project's suite runs with, and how to read its counts. pytest when the
//! project uses it (a dependency, a `conftest.py`, pytest's configuration) or shows no
//! preference; Django's `manage.py test` for a Django project that doesn't use pytest; `python -m unittest discover` for `unittest.TestCase` suites; or the
//! `[test] command` of the configuration. pytest reports through its JUnit XML; unittest and
//! Django print the same summary (`Ran 7 tests`, `FAILED (failures=1, skipped=2)`), which is
//! read instead, and a JUnit document with those counts is written for `--junit`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use terrarium_project::{PackageName, Project};

use crate::junit::Counts;

/// How the suite runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// `python -m pytest`, counts from its JUnit XML.
    Pytest,
    /// `python -m unittest discover` from /app.
    Unittest,
    /// `python manage.py test` from the directory of `manage.py` (relative to the root).
    Django {
        /// The directory of `manage.py`, relative to the project root.
        dir: PathBuf,
    },
    /// The configuration's `[test] command`, run from /app; only its exit code counts.
    Command(Vec<String>),
}

/// The runner and why it was chosen, for the progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerChoice {
    /// The runner.
    pub runner: Runner,
    /// Why: `the project depends on pytest`.
    pub reason: String,
}

/// Where the project's files live inside the test container.
const APP: &str = "/app";

impl Runner {
    /// Its name for messages (`pytest`, `unittest`, `manage.py test`, the command).
    pub fn name(&self) -> String {
        match self {
            Runner::Pytest => "pytest".into(),
            Runner::Unittest => "unittest".into(),
            Runner::Django { .. } => "manage.py test".into(),
            Runner::Command(argv) => argv.join(" "),
        }
    }

    /// Whether the runner is pytest, which terrarium installs when no dependency brings it.
    pub fn needs_pytest(&self) -> bool {
        *self == Runner::Pytest
    }

    /// The working directory of the run.
    pub fn workdir(&self) -> String {
        match self {
            Runner::Django { dir } if !dir.as_os_str().is_empty() => {
                format!("{APP}/{}", dir.display())
            }
            _ => APP.to_string(),
        }
    }

    /// The command: `python` is the image's interpreter, `junit` where pytest writes its XML,
    /// `args` what the user passed after `--`.
    pub fn argv(&self, python: &str, junit: &str, args: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = match self {
            Runner::Pytest => vec![
                python.into(),
                "-m".into(),
                "pytest".into(),
                "-p".into(),
                "no:cacheprovider".into(),
                "-rfE".into(),
                format!("--junitxml={junit}"),
            ],
            // Given names or paths replace discovery.
            Runner::Unittest if args.is_empty() => vec![
                python.into(),
                "-m".into(),
                "unittest".into(),
                "discover".into(),
                "-v".into(),
            ],
            Runner::Unittest => vec![python.into(), "-m".into(), "unittest".into(), "-v".into()],
            Runner::Django { .. } => vec![
                python.into(),
                "manage.py".into(),
                "test".into(),
                "--verbosity".into(),
                "2".into(),
            ],
            Runner::Command(command) => command.clone(),
        };
        argv.extend(args.iter().cloned());
        argv
    }

    /// The counts of a finished run: from pytest's JUnit XML, from unittest's summary in the
    /// output, none for a configured command. `None` when the run says nothing (it crashed).
    pub fn counts(&self, output: &str, junit: Option<&str>) -> Option<Counts> {
        match self {
            Runner::Pytest => junit.and_then(crate::junit::counts),
            Runner::Unittest | Runner::Django { .. } => unittest_counts(output),
            Runner::Command(_) => None,
        }
    }

    /// The exit code `terrarium test` reports: unittest before 3.12 exits 0 when it ran
    /// nothing; that is pytest's 5 (no tests) here, whatever the runner.
    pub fn exit_code(&self, code: i32, counts: Option<Counts>) -> i32 {
        let ran_nothing = counts.is_some_and(|c| c.passed + c.failed + c.skipped == 0);
        match self {
            Runner::Unittest | Runner::Django { .. } if code == 0 && ran_nothing => crate::NO_TESTS,
            _ => code,
        }
    }
}

static RAN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^Ran (\d+) tests? in ").expect("static regex"));
static STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(OK|FAILED|NO TESTS RAN)(?: \(([^)]*)\))?\s*$").expect("static regex")
});

/// unittest's summary (`Ran 7 tests in 0.01s` then `FAILED (failures=1, errors=1,
/// skipped=2)`) as counts; `None` without one.
fn unittest_counts(output: &str) -> Option<Counts> {
    let ran: u64 = RAN
        .captures_iter(output)
        .last()
        .and_then(|c| c[1].parse().ok())?;
    let mut failed = 0;
    let mut skipped = 0;
    if let Some(status) = STATUS.captures_iter(output).last()
        && let Some(details) = status.get(2)
    {
        for part in details.as_str().split(',') {
            let Some((key, value)) = part.trim().split_once('=') else {
                continue;
            };
            let value: u64 = value.trim().parse().unwrap_or(0);
            match key.trim() {
                "failures" | "errors" | "unexpected successes" => failed += value,
                "skipped" | "expected failures" => skipped += value,
                _ => {}
            }
        }
    }
    Some(Counts {
        passed: ran.saturating_sub(failed + skipped),
        failed,
        skipped,
    })
}

/// A JUnit document with `counts`, for runners that write none (unittest, Django).
pub fn junit_of(name: &str, counts: Counts) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites name=\"{name}\"><testsuite \
         name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\"/></testsuites>\n",
        counts.passed + counts.failed + counts.skipped,
        counts.failed,
        counts.skipped
    )
}

/// The runner of `project`'s suite, and why.
pub fn runner(project: &Project) -> RunnerChoice {
    let choice = |runner, reason: &str| RunnerChoice {
        runner,
        reason: reason.to_string(),
    };
    if let Some(command) = &project.config.test_command {
        return RunnerChoice {
            runner: Runner::Command(command.value.clone()),
            reason: format!("the configured test command ({})", command.source),
        };
    }
    let pytest = PackageName::new("pytest");
    if project.dev_packages.contains(&pytest) || project.runtime_packages.contains(&pytest) {
        return choice(Runner::Pytest, "the project depends on pytest");
    }
    if uses_pytest_config(&project.root) {
        return choice(Runner::Pytest, "the project configures pytest");
    }
    let tests = test_files(&project.root);
    let texts: Vec<String> = tests
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .collect();
    if texts.iter().any(|t| t.contains("import pytest")) {
        return choice(Runner::Pytest, "the tests import pytest");
    }
    // Django's runner sets up the settings and a test database, which its test cases (and
    // Wagtail's, DRF's) need; it runs plain unittest cases too.
    if let Some(django) = &project.django {
        return choice(
            Runner::Django {
                dir: django.dir.clone(),
            },
            "a Django project without pytest",
        );
    }
    if texts.iter().any(|t| t.contains("unittest")) {
        return choice(Runner::Unittest, "the tests are unittest test cases");
    }
    choice(Runner::Pytest, "the default runner")
}

/// Whether pytest is configured: `pytest.ini`, a `conftest.py`, or a pytest section in
/// `pyproject.toml`, `setup.cfg` or `tox.ini`.
fn uses_pytest_config(root: &Path) -> bool {
    if root.join("pytest.ini").is_file()
        || root.join("conftest.py").is_file()
        || root.join("tests/conftest.py").is_file()
    {
        return true;
    }
    [
        ("pyproject.toml", "[tool.pytest"),
        ("setup.cfg", "[tool:pytest]"),
        ("tox.ini", "[pytest]"),
    ]
    .iter()
    .any(|(file, section)| {
        std::fs::read_to_string(root.join(file)).is_ok_and(|text| text.contains(section))
    })
}

/// The project's test files (`test_*.py`, `*_test.py`, `tests.py`), outside hidden and
/// virtual-environment directories, at most a few levels down.
fn test_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() {
                let skip = name.starts_with('.')
                    || matches!(
                        name.as_str(),
                        "node_modules" | "venv" | "env" | "site-packages" | "build" | "dist"
                    );
                if !skip && depth < 6 {
                    stack.push((path, depth + 1));
                }
            } else if name.ends_with(".py")
                && (name.starts_with("test") || name.ends_with("_test.py") || name == "tests.py")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = terrarium_project::detect(dir.path()).unwrap();
        (dir, project)
    }

    const APP_PY: (&str, &str) = ("app.py", "from flask import Flask\napp = Flask(__name__)\n");

    #[test]
    fn the_runner_follows_what_the_project_uses() {
        let (_d, p) = project(&[
            APP_PY,
            ("requirements.txt", "flask==3.1.2\n"),
            (
                "tests/test_app.py",
                "import unittest\nclass T(unittest.TestCase):\n    pass\n",
            ),
        ]);
        assert_eq!(runner(&p).runner, Runner::Unittest);
        let (_d, p) = project(&[
            APP_PY,
            ("requirements.txt", "flask==3.1.2\n"),
            ("tests/test_app.py", "import unittest\n"),
            (
                "pyproject.toml",
                "[tool.pytest.ini_options]\naddopts = \"-q\"\n",
            ),
        ]);
        assert_eq!(runner(&p).runner, Runner::Pytest);
        let (_d, p) = project(&[APP_PY, ("requirements.txt", "flask==3.1.2\n")]);
        assert_eq!(runner(&p).reason, "the default runner");
        let (_d, p) = project(&[
            APP_PY,
            ("requirements.txt", "flask==3.1.2\n"),
            ("tests/test_app.py", "import unittest\n"),
            (
                "terrarium.toml",
                "[test]\ncommand = [\"python\", \"-m\", \"doctest\", \"app.py\"]\n",
            ),
        ]);
        assert_eq!(
            runner(&p).runner,
            Runner::Command(vec![
                "python".into(),
                "-m".into(),
                "doctest".into(),
                "app.py".into()
            ])
        );
    }

    #[test]
    fn unittest_summaries_give_counts() {
        let failed = "test_a (t.T) ... ok\n\n----------------------------------------------------------------------\nRan 7 tests in 0.012s\n\nFAILED (failures=1, errors=1, skipped=2)\n";
        assert_eq!(
            unittest_counts(failed),
            Some(Counts {
                passed: 3,
                failed: 2,
                skipped: 2
            })
        );
        let ok = "Ran 3 tests in 0.001s\n\nOK (skipped=1, expected failures=1)\n";
        assert_eq!(
            unittest_counts(ok),
            Some(Counts {
                passed: 1,
                failed: 0,
                skipped: 2
            })
        );
        assert_eq!(
            unittest_counts("Traceback (most recent call last):\n"),
            None
        );
        // Python 3.11 exits 0 having run nothing: reported as "no tests".
        let none = unittest_counts("Ran 0 tests in 0.000s\n\nOK\n");
        assert_eq!(Runner::Unittest.exit_code(0, none), crate::NO_TESTS);
        assert_eq!(Runner::Unittest.exit_code(1, None), 1);
        let xml = junit_of("unittest", unittest_counts(failed).unwrap());
        assert_eq!(
            crate::junit::counts(&xml),
            Some(Counts {
                passed: 3,
                failed: 2,
                skipped: 2
            })
        );
    }

    #[test]
    fn commands_and_workdirs() {
        let django = Runner::Django { dir: "web".into() };
        assert_eq!(django.workdir(), "/app/web");
        assert_eq!(
            django.argv("/usr/bin/python3.13", "/out/junit.xml", &[]),
            [
                "/usr/bin/python3.13",
                "manage.py",
                "test",
                "--verbosity",
                "2"
            ]
        );
        assert_eq!(
            Runner::Unittest.argv("py", "j", &["tests.test_app".into()]),
            ["py", "-m", "unittest", "-v", "tests.test_app"]
        );
        assert_eq!(Runner::Pytest.workdir(), "/app");
    }
}
