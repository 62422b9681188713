//! End to end for dependencies that ship only a source distribution: projects under
//! `tests/fixtures-sdist/` built natively by `terrarium build` (the sdist built into a wheel by
//! its own backend on the image's Python, in the sandbox) and through the Dockerfile `terrarium
//! init` writes, each image run and asked over HTTP. Also: a fresh copy of a project built again
//! takes the wheel from the cache (no rebuild), `--offline` works from the lock, and builds from
//! separate caches give the same image digest.
//!
//! Downloads are cached under `$TERRARIUM_TEST_CACHE/build`, like the other test binaries.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

/// A copy of a project of `tests/fixtures-sdist/`, in a directory of its name.
struct Project {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl Project {
    fn new(name: &str) -> Project {
        let parent = tempfile::Builder::new()
            .prefix("terrarium-sdist-")
            .tempdir()
            .unwrap();
        let path = parent.path().join(name);
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures-sdist")
                .join(name),
            &path,
        );
        Project {
            _parent: parent,
            path,
        }
    }
}

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

/// The text of `terrarium.lock` in `dir`.
fn lock_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("terrarium.lock")).unwrap()
}

#[test]
fn pure_python_sdist_builds_natively_and_through_the_dockerfile() {
    let cache = build_cache();
    let first = Project::new("flask-mail");
    let (built, image) =
        build_and_load(&first.path, &cache, "terrarium-e2e-sdist/flask-mail:native");
    let lock = lock_of(&first.path);
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
    let second = Project::new("flask-mail");
    let again = build(&second.path, &cache, &[]);
    assert!(
        !again.built_from_source("flask-mail"),
        "rebuilt: {}",
        again.stderr
    );
    assert_eq!(again.digest(), built.digest());
    assert_eq!(lock_of(&second.path), lock);

    // With the lock, offline: the built wheel comes from the cache by its hash.
    let offline = build(&first.path, &cache, &["--offline"]);
    assert_eq!(offline.digest(), built.digest());
    assert!(!offline.built_from_source("flask-mail"));

    let docker = dockerfile_image(&second.path, "terrarium-e2e-sdist/flask-mail:dockerfile");
    let body = serve("sdist-flask-mail-docker", &docker.tag, &[], 8000, "/");
    assert!(body.contains("hello from flask-mail"), "{body}");
}

#[test]
fn separate_caches_build_the_same_wheel_and_image() {
    let first = Project::new("flask-mail");
    let second = Project::new("flask-mail");
    let fresh = tempfile::tempdir().unwrap();
    let a = build(&first.path, &build_cache(), &[]);
    let b = build(&second.path, fresh.path(), &[]);
    assert!(b.built_from_source("flask-mail"), "{}", b.stderr);
    assert_eq!(
        a.layer("deps").last(),
        b.layer("deps").last(),
        "same deps layer"
    );
    assert_eq!(a.digest(), b.digest(), "same inputs, same image");
    assert_eq!(lock_of(&first.path), lock_of(&second.path));
}
