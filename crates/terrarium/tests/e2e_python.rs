//! End to end for the Pythons Debian ships beyond its stable releases: a project under
//! `tests/fixtures-python/` that requires CPython 3.14 plans onto Debian forky (testing), and
//! one whose 2021 pins have wheels only up to CPython 3.10 (and don't compile on 3.11) plans
//! onto Debian bullseye's 3.9 (end of life); `terrarium build` assembles, loads and serves
//! each, answering from its Python.
//!
//! The Dockerfile path renders the pinned official `python:3.14` or `python:3.9` base, which
//! can't be pulled in this test environment: each project is also built on the local stand-in
//! for that image (`scripts/test-images`: Debian forky's 3.14, bullseye's 3.9) and served. Projects that plan 3.11 (a
//! capped range without a newer wheel), or whose class doesn't depend on the Python (a
//! dependency importing `pkg_resources` undeclared, a `src/` that is a package), are built
//! through the Dockerfile on the 3.11 stand-in and served too, as is a 2022 project whose
//! unpinned dependencies need releases from after its era (the build records them for the
//! Dockerfile's uv).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::*;

/// Run `tag` read-only on 127.0.0.1 and wait for HTTP 200 from `/health` (panics with the
/// container's logs when it doesn't come).
fn serve_health(name: &str, tag: &str) -> Response {
    let host = free_port();
    let container = Container::run(
        name,
        &[
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-p",
            &format!("127.0.0.1:{host}:8000"),
            tag,
        ],
    );
    wait_for(host, "/health", Duration::from_secs(60), |r| {
        r.status == 200
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", container.logs()))
}

/// `terrarium plan DIR`'s output; panics with it when the plan fails.
fn plan_of(dir: &std::path::Path) -> String {
    let plan = terrarium()
        .arg("plan")
        .arg(dir)
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .output()
        .expect("terrarium plan");
    let stdout = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(plan.status.success(), "{stdout}");
    stdout
}

/// `terrarium init` with the local stand-in bases, then `docker build` of the Dockerfile it
/// wrote, tagged `terrarium-e2e/NAME:dockerfile`.
fn dockerfile_image(dir: &std::path::Path, name: &str) -> Image {
    init_with_stand_ins(dir, &[]);
    build_image(
        &format!("terrarium-e2e/{name}:dockerfile"),
        dir,
        "Dockerfile",
        &[],
    )
}

/// `terrarium init --force --base BASE` (a local stand-in for the official image of the
/// planned Python), then `docker build` of that Dockerfile, tagged
/// `terrarium-e2e/NAME:dockerfile`.
fn dockerfile_image_on(dir: &std::path::Path, name: &str, base: &str) -> Image {
    terrarium()
        .arg("init")
        .args(["--force", "--base", base])
        .arg(dir)
        .assert()
        .success();
    build_image(
        &format!("terrarium-e2e/{name}:dockerfile"),
        dir,
        "Dockerfile",
        &[],
    )
}

fn project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("tempdir");
    let path = parent.path().join(name);
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures-python")
        .join(name);
    copy_dir(&source, &path);
    (parent, path)
}

#[test]
fn a_project_that_needs_python_3_14_builds_on_forky_and_serves() {
    let (_parent, dir) = project("fastapi-py314");
    terrarium()
        .arg("plan")
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicates::str::contains("python: 3.14"))
        .stdout(predicates::str::contains(
            "runtime: Debian forky (CPython 3.14)",
        ));
    terrarium().arg("init").arg(&dir).assert().success();
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains("ARG PYTHON_IMAGE=python:3.14."),
        "{dockerfile}"
    );

    let tag = "terrarium-e2e/fastapi-py314:native";
    let output = terrarium()
        .arg("build")
        .arg(&dir)
        .args(["--load", "--tag", tag])
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("TERRARIUM_DOCKER", docker_bin())
        // Debian testing's Release is valid for a week only, and this environment's mirror of
        // testing is frozen: accept it, as a snapshot mirror needs (signatures still checked).
        .env("TERRARIUM_ALLOW_EXPIRED_INDEX", "1")
        .timeout(Duration::from_secs(900))
        .output()
        .expect("terrarium build");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _image = Image {
        tag: tag.to_owned(),
    };
    let health = serve_health("fastapi-py314", tag);
    assert!(
        health.body.contains("\"python\":\"3.14\""),
        "{}",
        health.body
    );
    let lock = std::fs::read_to_string(dir.join("terrarium.lock")).expect("lock");
    assert!(lock.contains("[distro.forky"), "{lock}");
    // Through the generated Dockerfile, on the local stand-in for the official 3.14 image.
    let built = dockerfile_image_on(&dir, "fastapi-py314", TEST_BASE_314);
    let health = serve_health("fastapi-py314", &built.tag);
    assert!(
        health.body.contains("\"python\":\"3.14\""),
        "{}",
        health.body
    );
}

#[test]
fn pins_older_than_every_maintained_python_build_on_bullseye_and_serve() {
    let (_parent, dir) = project("flask-2021-greenlet");
    let stdout = plan_of(&dir);
    assert!(
        stdout.contains("python: 3.9")
            && stdout.contains("runtime: Debian bullseye (CPython 3.9)")
            && stdout.contains("greenlet 1.1.2 (requirements.txt:")
            && stdout.contains("end of life"),
        "{stdout}"
    );
    assert!(stdout.contains("base: python:3.9."), "{stdout}");

    let native = native_image(&dir, "terrarium-e2e/flask-2021-greenlet:native", &[]);
    let health = serve_health("flask-2021-greenlet", &native.tag);
    assert!(
        health.body.contains("\"python\":\"3.9.")
            && health.body.contains("\"greenlet\":\"1.1.2\"")
            && health.body.contains("\"switch\":\"switched\""),
        "{}",
        health.body
    );
    let lock = std::fs::read_to_string(dir.join("terrarium.lock")).expect("lock");
    assert!(lock.contains("[distro.bullseye"), "{lock}");
    // Every package installs from a wheel: nothing was compiled on the end-of-life Python.
    assert!(!lock.contains(".tar.gz"), "{lock}");
    // Through the generated Dockerfile, on the local stand-in for the official 3.9 image.
    let built = dockerfile_image_on(&dir, "flask-2021-greenlet", TEST_BASE_39);
    let health = serve_health("flask-2021-greenlet", &built.tag);
    assert!(
        health.body.contains("\"python\":\"3.9.")
            && health.body.contains("\"switch\":\"switched\""),
        "{}",
        health.body
    );
}

#[test]
fn a_capped_range_without_a_wheel_for_the_newest_python_chooses_one_it_serves() {
    let (_parent, dir) = project("fastapi-capped-ranges");
    let stdout = plan_of(&dir);
    assert!(
        stdout.contains("python: 3.11")
            && stdout.contains("asyncpg 0.29.0 (newest of >=0.29, <0.30) (pyproject.toml)")
            && stdout.contains("runtime: Debian bookworm (CPython 3.11)"),
        "{stdout}"
    );

    // Natively, on the planned Python.
    let native = native_image(&dir, "terrarium-e2e/fastapi-capped-ranges:native", &[]);
    // Through the generated Dockerfile, on the local stand-in for the planned official image.
    assert!(stdout.contains("base: python:3.11."), "{stdout}");
    let built = dockerfile_image(&dir, "fastapi-capped-ranges");
    for image in [&native, &built] {
        let health = serve_health("fastapi-capped-ranges", &image.tag);
        assert!(
            health.body.contains("\"python\":\"3.11.")
                && health.body.contains("\"asyncpg\":\"0.29.0\""),
            "{}: {}",
            image.tag,
            health.body
        );
    }
}

#[test]
fn a_dependency_that_imports_pkg_resources_undeclared_gets_setuptools() {
    let (_parent, dir) = project("flask-pkg-resources");
    let tag = "terrarium-e2e/flask-pkg-resources:native";
    let output = terrarium()
        .arg("build")
        .arg(&dir)
        .args(["--load", "--tag", tag])
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("TERRARIUM_DOCKER", docker_bin())
        .timeout(Duration::from_secs(900))
        .output()
        .expect("terrarium build");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "added to the dependencies: setuptools 81.0.0: aiosql 6.2 imports pkg_resources \
             (aiosql/__init__.py) without declaring setuptools"
        ),
        "{stdout}"
    );
    let _image = Image {
        tag: tag.to_owned(),
    };
    let health = serve_health("flask-pkg-resources", tag);
    assert!(health.body.contains("get_answer"), "{}", health.body);
    // The generated Dockerfile checks the installed dependencies the same way (on the local
    // stand-in for the official image; its runtime stage removes the base's setuptools).
    let built = dockerfile_image(&dir, "flask-pkg-resources");
    let health = serve_health("flask-pkg-resources", &built.tag);
    assert!(health.body.contains("get_answer"), "{}", health.body);
    // The lock says why, and the next build reads it from there.
    let lock = std::fs::read_to_string(dir.join("terrarium.lock")).expect("lock");
    assert!(
        lock.contains("aiosql 6.2 imports pkg_resources") && lock.contains("name = \"setuptools\""),
        "{lock}"
    );
}

#[test]
fn a_src_directory_that_is_a_package_is_served_as_src() {
    let (_parent, dir) = project("fastapi-src-package");
    let stdout = plan_of(&dir);
    assert!(stdout.contains("--proxy-headers src:app\n"), "{stdout}");
    let native = native_image(&dir, "terrarium-e2e/fastapi-src-package:native", &[]);
    let built = dockerfile_image(&dir, "fastapi-src-package");
    for image in [&native, &built] {
        let health = serve_health("fastapi-src-package", &image.tag);
        assert!(
            health.body.contains("\"package\":\"src\""),
            "{}",
            health.body
        );
    }
}

#[test]
fn releases_the_build_took_after_the_cut_off_reach_the_dockerfile() {
    let (_parent, dir) = project("flask-2022-late-wheels");
    // Before any build, the Dockerfile can't know which packages give way: it says how to
    // find out.
    init_with_stand_ins(&dir, &[]);
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains("run `terrarium build` once, then `terrarium init --force`")
            && !dockerfile.contains("--exclude-newer-package greenlet="),
        "{dockerfile}"
    );
    for file in [
        "Dockerfile",
        "Dockerfile.dev",
        ".dockerignore",
        "compose.yaml",
    ] {
        std::fs::remove_file(dir.join(file)).expect(file);
    }

    // Natively: greenlet 1.1.2 and SQLAlchemy 1.4.36, the newest of the era, have no wheel
    // for CPython 3.11: the first later releases with one are taken and recorded.
    let native = native_image(&dir, "terrarium-e2e/flask-2022-late-wheels:native", &[]);
    let lock = std::fs::read_to_string(dir.join("terrarium.lock")).expect("lock");
    let top = lock.split("\n[").next().unwrap_or_default();
    assert!(
        top.contains("exclude-newer-package = [\"greenlet=2022-08-25T")
            && top.contains("\"sqlalchemy=2022-09-07T"),
        "{lock}"
    );
    let stdout = plan_of(&dir);
    assert!(
        stdout.contains("the last build took these from after it")
            && stdout.contains("greenlet (2022-08-25)")
            && stdout.contains("(terrarium.lock; the Dockerfile's uv gets the same exceptions)"),
        "{stdout}"
    );

    // Through the Dockerfile `init` writes now: uv gets each package's own cut-off and
    // installs the same releases (it would otherwise compile greenlet 1.1.2 and fail).
    let built = dockerfile_image(&dir, "flask-2022-late-wheels");
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains("--exclude-newer 2022-05-01T00:00:00Z")
            && dockerfile.contains("--exclude-newer-package greenlet=2022-08-25T"),
        "{dockerfile}"
    );
    for image in [&native, &built] {
        let health = serve_health("flask-2022-late-wheels", &image.tag);
        assert!(
            health.body.contains("\"answer\":42")
                && health.body.contains("\"greenlet\":\"1.1.3\"")
                && health.body.contains("\"sqlalchemy\":\"1.4.41\""),
            "{}: {}",
            image.tag,
            health.body
        );
    }
}

#[test]
fn a_poetry_caret_in_requires_python_serves_without_installing_the_project() {
    let (_parent, dir) = project("fastapi-poetry-caret");
    let stdout = plan_of(&dir);
    assert!(
        stdout.contains("install-project: no")
            && stdout.contains("`requires-python = \"^3.11\"` is not PEP 440"),
        "{stdout}"
    );
    let native = native_image(&dir, "terrarium-e2e/fastapi-poetry-caret:native", &[]);
    // uv would stop at `uv pip install .` ("Failed to parse version ... ^3.11").
    let built = dockerfile_image(&dir, "fastapi-poetry-caret");
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).expect("Dockerfile");
    assert!(!dockerfile.contains("--no-deps ."), "{dockerfile}");
    for image in [&native, &built] {
        let health = serve_health("fastapi-poetry-caret", &image.tag);
        assert!(
            health.body.contains("\"module\":\"app.main\"")
                && health.body.contains("\"python\":\"3.11."),
            "{}: {}",
            image.tag,
            health.body
        );
    }
}
