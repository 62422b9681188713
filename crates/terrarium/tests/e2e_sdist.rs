//! End to end for dependencies that ship only a source distribution: projects under
//! `tests/fixtures-sdist/` built natively by `terrarium build` (the sdist built into a wheel by
//! its own backend on the image's Python, in the sandbox) and through the Dockerfile `terrarium
//! init` writes, each image run and asked over HTTP. Also: a fresh copy of a project built again
//! takes the wheel from the cache (no rebuild), `--offline` works from the lock, and builds from
//! separate caches give the same image digest.
//!
//! Downloads are cached under `$TERRARIUM_TEST_CACHE/build`, like the other test binaries.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

/// What a native build printed.
struct Built {
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Built {
    /// The image digest from the summary.
    fn digest(&self) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("image "))
            .and_then(|l| l.split_whitespace().next())
            .expect("image line")
            .to_owned()
    }

    /// The summary line of layer `name`, split at spaces.
    fn layer(&self, name: &str) -> Vec<String> {
        self.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Whether the build built `package` from its sdist (instead of taking it from the cache).
    fn built_from_source(&self, package: &str) -> bool {
        self.stderr.contains(&format!("building {package} "))
    }
}

/// `terrarium build` of `dir` on bookworm with `cache` and `args`; panics when it fails.
fn build(dir: &Path, cache: &Path, args: &[&str]) -> Built {
    let started = Instant::now();
    let output = terrarium()
        .arg("build")
        .arg(dir)
        .args(["--distro", "bookworm"])
        .args(args)
        .env("TERRARIUM_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("TERRARIUM_DOCKER", docker_bin())
        .timeout(Duration::from_secs(1200))
        .output()
        .unwrap();
    let built = Built {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    assert!(
        output.status.success(),
        "build of {} failed:\n{}\n{}",
        dir.display(),
        built.stdout,
        built.stderr
    );
    eprintln!(
        "built {} in {:.1} s{}",
        dir.display(),
        built.elapsed.as_secs_f64(),
        if args.contains(&"--offline") {
            " (offline)"
        } else {
            ""
        }
    );
    built
}

/// Build natively and load as `tag`.
fn build_and_load(dir: &Path, cache: &Path, tag: &str) -> (Built, Image) {
    let built = build(dir, cache, &["--load", "--tag", tag]);
    (
        built,
        Image {
            tag: tag.to_owned(),
        },
    )
}

/// `terrarium init` then `docker build` of the production Dockerfile on the local test base.
fn dockerfile_image(dir: &Path, tag: &str) -> Image {
    terrarium().arg("init").arg(dir).assert().success();
    let started = Instant::now();
    let image = build_image(
        tag,
        dir,
        "Dockerfile",
        &[format!("PYTHON_IMAGE={TEST_BASE}")],
    );
    eprintln!(
        "docker build of {} in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    image
}

/// Run `image` with `args` before it, its `port` published on 127.0.0.1, and GET `path` until
/// it answers 200; returns the body.
fn serve(label: &str, image: &str, args: &[&str], port: u16, path: &str) -> String {
    let host_port = free_port();
    let publish = format!("127.0.0.1:{host_port}:{port}");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-p", &publish, image]);
    let container = Container::run(label, &full);
    let response = wait_for(host_port, path, Duration::from_secs(90), |r| {
        r.status == 200
    });
    match response {
        Ok(response) => response.body,
        Err(err) => panic!("{label}: {err}\n{}", container.logs()),
    }
}

/// A copy of the shared cache (blobs and metadata hard-linked, assembled roots shared) that
/// knows no wheel built from an sdist, and lacks the wheels `lock` records as built.
fn cache_without_built_wheels(lock: Option<&str>) -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    let shared = build_cache();
    for part in ["blobs", "meta"] {
        let status = std::process::Command::new("cp")
            .arg("-al")
            .arg(shared.join(part))
            .arg(cache.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let _ = std::fs::remove_dir_all(cache.path().join("meta/sdist-builds"));
    std::os::unix::fs::symlink(shared.join("roots"), cache.path().join("roots")).unwrap();
    let mut in_built = false;
    for line in lock.unwrap_or("").lines() {
        if line.starts_with("[[") {
            in_built = line.ends_with(".wheels.built]]");
        } else if in_built && let Some(hex) = line.strip_prefix("sha256 = \"sha256:") {
            let blob = cache
                .path()
                .join("blobs/sha256")
                .join(hex.trim_end_matches('"'));
            std::fs::remove_file(&blob).unwrap();
        }
    }
    cache
}

/// The text of `terrarium.lock` in `dir`.
fn lock_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("terrarium.lock")).unwrap()
}

#[test]
fn pure_python_sdist_builds_natively_and_through_the_dockerfile() {
    let cache = build_cache();
    let first = sdist_fixture("flask-mail");
    let (built, image) = build_and_load(
        first.path(),
        &cache,
        "terrarium-e2e-sdist/flask-mail:native",
    );
    let lock = lock_of(first.path());
    assert!(
        lock.contains("[[distro.bookworm.wheels.built]]")
            && lock.contains("filename = \"flask_mail-0.9.1-py3-none-any.whl\"")
            && lock.contains("[[distro.bookworm.wheels.built.build_requires]]"),
        "{lock}"
    );
    let body = serve("sdist-flask-mail", &image.tag, &[], 8000, "/");
    assert!(
        body.contains("hello from flask-mail") && body.contains("\"sent\":1"),
        "{body}"
    );

    // A fresh copy (no terrarium.lock) takes the wheel from the cache: nothing is rebuilt,
    // and the image is the same.
    let second = sdist_fixture("flask-mail");
    let again = build(second.path(), &cache, &[]);
    assert!(
        !again.built_from_source("flask-mail"),
        "rebuilt: {}",
        again.stderr
    );
    assert_eq!(again.digest(), built.digest());
    assert_eq!(lock_of(second.path()), lock);

    // With the lock, offline: the built wheel comes from the cache by its hash.
    let offline = build(first.path(), &cache, &["--offline"]);
    assert_eq!(offline.digest(), built.digest());
    assert!(!offline.built_from_source("flask-mail"));

    let docker = dockerfile_image(second.path(), "terrarium-e2e-sdist/flask-mail:dockerfile");
    let body = serve("sdist-flask-mail-docker", &docker.tag, &[], 8000, "/");
    assert!(body.contains("hello from flask-mail"), "{body}");
}

/// A project of 2018's era: langdetect 1.0.7 is a source distribution whose legacy backend
/// asks for `setuptools>=40.8.0`. As of the project's cut-off that is 40.8.0, which doesn't
/// run on 3.11 (`HTMLParser.unescape` went in 3.9); both back ends take the build tools from
/// CPython 3.11's release instead, and the service answers.
#[test]
fn build_tools_come_from_the_pythons_era_not_the_projects() {
    let project = sdist_fixture("langdetect-2018");
    let plan = terrarium()
        .args(["plan", "--json"])
        .arg(project.path())
        .assert()
        .success();
    let plan: serde_json::Value = serde_json::from_slice(&plan.get_output().stdout).unwrap();
    let reason = plan["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "exclude-newer")
        .and_then(|d| d["reason"].as_str())
        .unwrap_or_default();
    assert!(
        reason.contains("CPython 3.11's release (2022-10-24)"),
        "{reason}"
    );

    let (_, image) = build_and_load(
        project.path(),
        &build_cache(),
        "terrarium-e2e-sdist/langdetect-2018:native",
    );
    let lock = lock_of(project.path());
    let setuptools = lock
        .split("[[distro.bookworm.wheels.built.build_requires]]")
        .skip(1)
        .find(|entry| entry.contains("name = \"setuptools\""))
        .and_then(|entry| entry.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no setuptools build requirement in\n{lock}"));
    let major: u32 = setuptools.split('.').next().unwrap().parse().unwrap();
    assert!(major >= 65, "setuptools {setuptools} predates CPython 3.11");
    let body = serve("sdist-langdetect", &image.tag, &[], 8000, "/");
    assert!(body.contains("\"language\": \"fr\""), "{body}");

    let docker = dockerfile_image(
        project.path(),
        "terrarium-e2e-sdist/langdetect-2018:dockerfile",
    );
    let body = serve("sdist-langdetect-docker", &docker.tag, &[], 8000, "/");
    assert!(body.contains("\"language\": \"fr\""), "{body}");
}

#[test]
fn separate_caches_build_the_same_wheel_and_image() {
    let first = sdist_fixture("flask-mail");
    let second = sdist_fixture("flask-mail");
    let fresh = tempfile::tempdir().unwrap();
    let a = build(first.path(), &build_cache(), &[]);
    let b = build(second.path(), fresh.path(), &[]);
    assert!(b.built_from_source("flask-mail"), "{}", b.stderr);
    assert_eq!(
        a.layer("deps").last(),
        b.layer("deps").last(),
        "same deps layer"
    );
    assert_eq!(a.digest(), b.digest(), "same inputs, same image");
    assert_eq!(lock_of(first.path()), lock_of(second.path()));
}

/// A docker network removed when dropped.
struct Network {
    name: String,
}

impl Network {
    fn new(label: &str) -> Network {
        let name = format!("terrarium-test-{label}-{}", std::process::id());
        let _ = docker_output(&["network", "rm", &name]);
        docker(&["network", "create", &name]);
        Network { name }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker_output(&["network", "rm", &self.name]);
    }
}

/// Whether `image` has a file at `path` (asked of its own Python: the images have no shell).
fn has_file(image: &str, path: &str) -> bool {
    docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        image,
        "-c",
        &format!("import os; print(os.path.exists({path:?}))"),
    ]) == "True"
}

#[test]
fn psycopg2_is_compiled_from_its_sdist_and_talks_to_postgres() {
    let project = sdist_fixture("psycopg2-pg");
    let (built, native) = build_and_load(
        project.path(),
        &build_cache(),
        "terrarium-e2e-sdist/psycopg2:native",
    );
    let lock = lock_of(project.path());
    assert!(
        lock.contains("filename = \"psycopg2-2.9.10-cp311-cp311-linux_x86_64.whl\"")
            && lock.contains("needed = [\"libc.so.6\", \"libpq.so.5\"]")
            && lock.contains("system_packages = [\"libpq5\"]")
            && lock.contains("\"libpq-dev\""),
        "{lock}"
    );
    assert!(
        built.stdout.contains("built from source: psycopg2 2.9.10"),
        "{}",
        built.stdout
    );
    // Built again from the locked sdist and build requirements, in a cache without the wheel:
    // the same bytes (terrarium.lock's hash is checked), so the same image.
    let rebuilt = build(
        project.path(),
        cache_without_built_wheels(Some(&lock)).path(),
        &[],
    );
    assert!(rebuilt.built_from_source("psycopg2"), "{}", rebuilt.stderr);
    assert_eq!(rebuilt.digest(), built.digest());
    // The compiler stayed in the build root; libpq is in the image.
    assert!(!has_file(&native.tag, "/usr/bin/gcc"));
    assert!(!has_file(&native.tag, "/usr/include/postgresql/libpq-fe.h"));
    assert!(has_file(
        &native.tag,
        "/usr/lib/x86_64-linux-gnu/libpq.so.5"
    ));

    let network = Network::new("sdist-pg");
    let _postgres = Container::run(
        "sdist-postgres",
        &[
            "--network",
            &network.name,
            "--network-alias",
            "db",
            "-e",
            "POSTGRES_PASSWORD=terrarium",
            TEST_POSTGRES,
        ],
    );
    let url = "DATABASE_URL=postgresql://postgres:terrarium@db/postgres";
    let body = serve(
        "sdist-psycopg2",
        &native.tag,
        &["--network", &network.name, "-e", url],
        8000,
        "/",
    );
    assert!(
        body.contains("hello from psycopg2") && body.contains("\"answer\":42"),
        "{body}"
    );

    let docker = dockerfile_image(project.path(), "terrarium-e2e-sdist/psycopg2:dockerfile");
    let dockerfile = std::fs::read_to_string(project.path().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(
            "apt-get install -y --no-install-recommends gcc g++ libc6-dev make libpq-dev"
        ) && dockerfile.contains("apt-get install -y --no-install-recommends libpq5"),
        "{dockerfile}"
    );
    assert!(!has_file(&docker.tag, "/usr/bin/gcc"));
    let body = serve(
        "sdist-psycopg2-docker",
        &docker.tag,
        &["--network", &network.name, "-e", url],
        8000,
        "/",
    );
    assert!(body.contains("\"answer\":42"), "{body}");
}

#[test]
fn uwsgi_is_compiled_from_its_sdist_and_serves() {
    let project = sdist_fixture("uwsgi-server");
    let (built, native) = build_and_load(
        project.path(),
        &build_cache(),
        "terrarium-e2e-sdist/uwsgi:native",
    );
    // The embedded Python links libpython, which the runtime (a static interpreter) lacks: its
    // DT_NEEDED entry brought Debian's libpython3.11 into the system layer.
    assert!(
        built
            .stdout
            .contains("system layer: libpython3.11 (linked by uwsgi 2.0.31)"),
        "{}",
        built.stdout
    );
    assert!(!built.layer("system").is_empty(), "{}", built.stdout);
    let body = serve("sdist-uwsgi", &native.tag, &[], 8000, "/");
    assert!(
        body.contains("hello from uwsgi") && body.contains("\"server\": \"2.0.31\""),
        "{body}"
    );

    let docker = dockerfile_image(project.path(), "terrarium-e2e-sdist/uwsgi:dockerfile");
    let body = serve("sdist-uwsgi-docker", &docker.tag, &[], 8000, "/");
    assert!(body.contains("hello from uwsgi"), "{body}");
}

#[test]
fn a_missing_header_names_it_and_build_packages_fixes_it() {
    // python-ldap is not in the known-needs table and publishes no Linux wheel: without the
    // OpenLDAP headers its build stops, naming the header and the key that adds them.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("ldap-lookup");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), "python-ldap==3.4.4\n").unwrap();
    std::fs::write(
        dir.join("app.py"),
        "import json\n\nimport ldap\n\n\ndef application(environ, start_response):\n    \
         start_response(\"200 OK\", [(\"Content-Type\", \"application/json\")])\n    \
         return [json.dumps({\"ldap\": ldap.__version__}).encode()]\n",
    )
    .unwrap();
    // The shared cache may hold the wheel a previous run built: fail with a copy without it.
    let cache = cache_without_built_wheels(None);
    let output = terrarium()
        .arg("build")
        .arg(&dir)
        .args(["--distro", "bookworm"])
        .env("TERRARIUM_CACHE_DIR", cache.path())
        .timeout(Duration::from_secs(1200))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("python-ldap 3.4.4: building its wheel from source failed")
            && stderr.contains("the compiler found no `")
            && stderr.contains(".h`")
            && stderr.contains("build-packages")
            && stderr.contains("last lines of the build"),
        "{stderr}"
    );

    std::fs::write(
        dir.join("terrarium.toml"),
        "build-packages = [\"libldap2-dev\", \"libsasl2-dev\"]\nhealthcheck = \"/\"\n",
    )
    .unwrap();
    let tag = "terrarium-e2e-sdist/ldap:native";
    let (built, image) = build_and_load(&dir, &build_cache(), tag);
    assert!(
        built
            .stdout
            .contains("built from source: python-ldap 3.4.4")
            && built.stdout.contains("libldap2-dev libsasl2-dev"),
        "{}",
        built.stdout
    );
    // Its libraries came into the image through DT_NEEDED alone.
    assert!(
        built
            .stdout
            .contains("system layer: libldap-2.5-0 (linked by python-ldap 3.4.4)"),
        "{}",
        built.stdout
    );
    let body = serve("sdist-ldap", &image.tag, &[], 8000, "/");
    assert!(body.contains("\"ldap\": \"3.4.4\""), "{body}");
}
