//! End to end for `terrarium build`: every fixture built without a daemon on bookworm and (where
//! its lock allows CPython 3.13) trixie, loaded into Docker, run with the port on 127.0.0.1,
//! answering its health route as UID 65532 with no shell, stopped gracefully; reproducible
//! digests across caches (gzip and zstd layers, the latter loaded and served too); a one-file
//! edit rewrites only the app layer; `--load` sends only what
//! the engine lacks; a killed cold build resumes without fetching again; and the failure cases
//! (bad signature, hash mismatch, truncated download, corrupt cache entry, malformed locks,
//! unsupported wheel platform, offline with a missing artifact).
//!
//! Downloads are cached under `$TERRARIUM_TEST_CACHE/build` (else
//! `~/.cache/terrarium-test/build`), shared by every test; tests that damage a cache work on a
//! hard-linked copy of it.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

/// The shared download cache of the test binaries.
fn shared_cache() -> PathBuf {
    build_cache()
}

/// `terrarium build` with the shared cache (or `cache`), SOURCE_DATE_EPOCH unset.
fn build_cmd(dir: &Path, cache: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = terrarium();
    cmd.arg("build")
        .arg(dir)
        .args(args)
        .env("TERRARIUM_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("TERRARIUM_DOCKER", docker_bin())
        .timeout(Duration::from_secs(600));
    cmd
}

/// Build `dir` into a docker-archive and return the image digest and the layer lines of the
/// summary split at spaces (`name size MB uncompressed MB cached digest`).
fn build_archive(dir: &Path, cache: &Path, distro: &str) -> (String, Vec<Vec<String>>) {
    let archive = dir.parent().unwrap().join(format!("image-{distro}.tar"));
    let output = build_cmd(
        dir,
        cache,
        &[
            "--distro",
            distro,
            "--output",
            &format!("docker-archive:{}", archive.display()),
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "build failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("image "))
        .and_then(|l| l.split_whitespace().next())
        .expect("image line")
        .to_owned();
    let layers = stdout
        .lines()
        .filter(|l| {
            ["runtime ", "system ", "deps ", "app "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    (digest, layers)
}

/// A copy of the shared cache made of hard links; damage it only by replacing files.
fn linked_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // Not `tmp/` (builds running right now make and remove their work there) nor `roots/`
    // (assembled build roots, made again from the layers when needed).
    for entry in std::fs::read_dir(shared_cache()).unwrap().flatten() {
        if matches!(entry.file_name().to_str(), Some("tmp" | "roots")) {
            continue;
        }
        let status = std::process::Command::new("cp")
            .arg("-al")
            .arg(entry.path())
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "cp -al {}", entry.path().display());
    }
    dir
}

/// Replace (never modify in place: the file may be a hard link) `path` with `bytes`.
fn replace(path: &Path, bytes: &[u8]) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Build, load, run, and check one fixture on one distro.
fn serves(name: &str, distro: &str, port: u16, health: &str, volume: Option<&str>) {
    let project = fixture(name);
    let tag = format!("terrarium-e2e-build/{name}:{distro}");
    let output = build_cmd(
        project.path(),
        &shared_cache(),
        &["--distro", distro, "--load", "--tag", &tag],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{name} {distro}: build failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _image = Image { tag: tag.clone() };
    assert!(project.path().join("terrarium.lock").is_file());
    if name == "quart-hypercorn" {
        // greenlet's manylinux wheel links libstdc++.so.6, which the runtime doesn't have.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("libstdc++6 (libstdc++.so.6, linked by the wheels of greenlet 3.2.4)"),
            "{stdout}"
        );
    }
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Config.User}}", &tag]),
        "65532:65532"
    );
    let volumes = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Volumes}}",
        &tag,
    ]);
    if let Some(volume) = volume {
        assert!(volumes.contains(volume), "{name}: volumes {volumes}");
    }
    // The plan's health probe is in the image config, as a Dockerfile's HEALTHCHECK puts it.
    let check: serde_json::Value = serde_json::from_str(&docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        &tag,
    ]))
    .unwrap();
    assert_eq!(check["Test"][0], "CMD", "{name}: healthcheck {check}");
    assert!(
        check["Test"][3].as_str().unwrap_or("").contains(health),
        "{name}: healthcheck {check}"
    );
    assert_eq!(check["Interval"], 30_000_000_000u64, "{check}");
    let host_port = free_port();
    let container = Container::run(
        &format!("build-{name}-{distro}"),
        // The image's own probe, run every second instead of every 30 s.
        &[
            "--health-interval",
            "1s",
            // Python reports each module it compiles from source instead of loading bytecode.
            "-e",
            "PYTHONVERBOSE=1",
            "-p",
            &format!("127.0.0.1:{host_port}:{port}"),
            &tag,
        ],
    );
    let response = wait_for(host_port, health, Duration::from_secs(60), |r| {
        r.status == 200
    });
    assert!(
        response.is_ok(),
        "{name} {distro}: {:?}\n{}",
        response.err(),
        container.logs()
    );
    // Start-up and the first request ran on bytecode: no module was compiled from source.
    let logs = container.logs();
    let compiled = compiled_from_source(&logs);
    assert!(
        compiled.is_empty(),
        "{name} {distro}: compiled at start instead of loaded from bytecode: {compiled:?}"
    );
    if name == "django-hashes" {
        // collectstatic ran natively, in the sandbox: whitenoise serves its output.
        let css = http("GET", host_port, "/static/site.css", None).unwrap();
        assert_eq!(css.status, 200, "{name} {distro}: {}", css.body);
    }
    // Bytecode for the app and what start-up imports, checked by hash: nothing to write.
    let pyc = docker(&[
        "exec",
        &container.name,
        "python3",
        "-c",
        "import glob, sys; print(len(glob.glob('/app/**/__pycache__/*.pyc', recursive=True)), \
         len(glob.glob(sys.prefix + '/lib/python3*/__pycache__/*.pyc')))",
    ]);
    let counts: Vec<usize> = pyc
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        counts.len() == 2 && counts[0] > 0 && counts[1] > 20,
        "{name} {distro}: app and standard-library bytecode: {pyc}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = docker(&[
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            &container.name,
        ]);
        if state == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name} {distro}: health {state}\n{}",
            docker(&[
                "inspect",
                "--format",
                "{{json .State.Health}}",
                &container.name
            ])
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let uid = docker(&[
        "exec",
        &container.name,
        "python3",
        "-c",
        "import os; print(os.getuid(), os.getgid())",
    ]);
    assert_eq!(uid, "65532 65532");
    let pid1 = docker(&[
        "exec",
        &container.name,
        "python3",
        "-c",
        "print([l.split()[1] for l in open('/proc/1/status') if l.startswith('Uid:')][0])",
    ]);
    assert_eq!(pid1, "65532", "PID 1 runs as nonroot");
    let shell = docker_output(&["exec", &container.name, "/bin/sh", "-c", "true"]);
    assert!(!shell.status.success(), "{name}: /bin/sh exists");
    let started = Instant::now();
    docker(&["stop", "-t", "10", &container.name]);
    let stopped = started.elapsed();
    let code = docker(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &container.name,
    ]);
    assert!(
        stopped < Duration::from_secs(9) && code == "0",
        "{name} {distro}: stop took {stopped:?}, exit code {code}\n{}",
        container.logs()
    );
}

/// The modules `PYTHONVERBOSE` says were compiled from source (`# code object from /x.py`;
/// bytecode shows as `# code object from '/x.pyc'`). Two workers write at once, so a message
/// may start in the middle of a line or run into the next one.
fn compiled_from_source(logs: &str) -> Vec<String> {
    const MARK: &str = "# code object from ";
    let mut paths: Vec<String> = logs
        .match_indices(MARK)
        .filter_map(|(at, _)| {
            let rest = &logs[at + MARK.len()..];
            let path: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '#' && *c != '\'')
                .collect();
            (path.starts_with('/') && path.ends_with(".py")).then_some(path)
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[test]
fn compiled_from_source_reads_interleaved_verbose_output() {
    let logs = "# code object from '/usr/lib/python3.11/__pycache__/abc.cpython-311.pyc'# /usr/lib/a/__pycache__/b.cpython-311.pyc matches /usr/lib/a/b.py\n\
                # code object from /usr/lib/python3.11/pkgutil.py\n\
                x # code object from /usr/lib/python3.11/spawn.py# code object from '/y.pyc'\n";
    assert_eq!(
        compiled_from_source(logs),
        [
            "/usr/lib/python3.11/pkgutil.py",
            "/usr/lib/python3.11/spawn.py"
        ]
    );
}

macro_rules! serves {
    ($($test:ident: $name:literal, $distro:literal, $port:literal, $health:literal, $volume:expr;)*) => {
        $(
            #[test]
            fn $test() {
                serves($name, $distro, $port, $health, $volume);
            }
        )*
    };
}

// Every fixture on bookworm (CPython 3.11). Trixie (CPython 3.13) for every fixture whose
// Python constraint allows 3.13: all but starlette-pipfile (`python_version = "3.11"`).
serves! {
    django_hashes_bookworm: "django-hashes", "bookworm", 8000, "/health/", None;
    django_hashes_trixie: "django-hashes", "trixie", 8000, "/health/", None;
    fastapi_poetry_bookworm: "fastapi-poetry", "bookworm", 8000, "/health", None;
    fastapi_poetry_trixie: "fastapi-poetry", "trixie", 8000, "/health", None;
    fastapi_pylock_bookworm: "fastapi-pylock", "bookworm", 8080, "/healthz", None;
    fastapi_pylock_trixie: "fastapi-pylock", "trixie", 8080, "/healthz", None;
    flask_factory_uv_bookworm: "flask-factory-uv", "bookworm", 8000, "/healthz", None;
    flask_factory_uv_trixie: "flask-factory-uv", "trixie", 8000, "/healthz", None;
    flask_requirements_bookworm: "flask-requirements", "bookworm", 5000, "/health", None;
    flask_requirements_trixie: "flask-requirements", "trixie", 5000, "/health", None;
    notes_volume_bookworm: "notes-volume", "bookworm", 8000, "/health", Some("/data");
    notes_volume_trixie: "notes-volume", "trixie", 8000, "/health", Some("/data");
    quart_hypercorn_bookworm: "quart-hypercorn", "bookworm", 8000, "/health", None;
    quart_hypercorn_trixie: "quart-hypercorn", "trixie", 8000, "/health", None;
    src_package_bookworm: "src-package", "bookworm", 8000, "/health", None;
    src_package_trixie: "src-package", "trixie", 8000, "/health", None;
    starlette_pipfile_bookworm: "starlette-pipfile", "bookworm", 8000, "/health", None;
    wsgi_plain_bookworm: "wsgi-plain", "bookworm", 8000, "/health", None;
    wsgi_plain_trixie: "wsgi-plain", "trixie", 8000, "/health", None;
}

#[test]
fn starlette_pipfile_refuses_trixie() {
    let project = fixture("starlette-pipfile");
    let output = build_cmd(project.path(), &shared_cache(), &["--distro", "trixie"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Pipfile") && stderr.contains("3.13"),
        "{stderr}"
    );
}

#[test]
fn src_package_console_script_is_installed() {
    let project = fixture("src-package");
    let tag = "terrarium-e2e-build/src-package-script:test";
    build_cmd(
        project.path(),
        &shared_cache(),
        &["--distro", "bookworm", "--load", "--tag", tag],
    )
    .assert()
    .success();
    let _image = Image { tag: tag.into() };
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        tag,
        "-c",
        "import inventory, shutil; print(inventory.__file__, shutil.which('inventory'))",
    ]);
    assert_eq!(
        out,
        "/app/src/inventory/__init__.py /usr/local/bin/inventory"
    );
}

#[test]
fn two_builds_with_separate_caches_and_clocks_are_identical() {
    let first = fixture("flask-factory-uv");
    let second = fixture("flask-factory-uv");
    let fresh_cache = tempfile::tempdir().unwrap();
    let (a, _) = build_archive(first.path(), &shared_cache(), "bookworm");
    std::thread::sleep(Duration::from_millis(1100));
    let (b, layers) = build_archive(second.path(), fresh_cache.path(), "bookworm");
    assert_eq!(a, b, "same inputs, same digest");
    assert!(
        layers.iter().all(|l| l[5] == "no"),
        "fresh cache: {layers:?}"
    );
    let lock_a = std::fs::read_to_string(first.path().join("terrarium.lock")).unwrap();
    let lock_b = std::fs::read_to_string(second.path().join("terrarium.lock")).unwrap();
    assert_eq!(lock_a, lock_b);
    let archive_a =
        std::fs::read(first.path().parent().unwrap().join("image-bookworm.tar")).unwrap();
    let archive_b =
        std::fs::read(second.path().parent().unwrap().join("image-bookworm.tar")).unwrap();
    assert!(archive_a == archive_b, "docker-archives are byte-identical");
}

/// The manifest of the single image in the OCI layout at `dir`.
fn layout_manifest(dir: &Path) -> serde_json::Value {
    let read = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    };
    let index = read(dir.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let hex = digest.strip_prefix("sha256:").unwrap();
    read(dir.join("blobs/sha256").join(hex))
}

#[test]
fn zstd_layers_are_reproducible_load_into_the_engine_and_serve() {
    // Both projects ask for zstd in [tool.terrarium]; the first also on the command line.
    let first = fixture("flask-factory-uv");
    let second = fixture("flask-factory-uv");
    for project in [&first, &second] {
        let pyproject = project.path().join("pyproject.toml");
        let mut text = std::fs::read_to_string(&pyproject).unwrap();
        text.push_str("\n[tool.terrarium]\ncompression = \"zstd\"\n");
        std::fs::write(&pyproject, text).unwrap();
    }
    let fresh_cache = tempfile::tempdir().unwrap();
    let build = |dir: &Path, cache: &Path, compression: &str, extra: &[&str]| -> String {
        let layout = dir.parent().unwrap().join(format!("oci-{compression}"));
        let target = format!("oci:{}", layout.display());
        let mut args = vec!["--distro", "bookworm", "--output", &target];
        args.extend_from_slice(extra);
        let output = build_cmd(dir, cache, &args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{compression} build failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(&format!("size ({compression})")),
            "{stdout}"
        );
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("image "))
            .and_then(|l| l.split_whitespace().next())
            .expect("image line")
            .to_owned()
    };
    let tag = "terrarium-e2e-build/zstd:bookworm";
    let flag = ["--compression", "zstd", "--load", "--tag", tag];
    let a = build(first.path(), &shared_cache(), "zstd", &flag);
    let _image = Image {
        tag: tag.to_owned(),
    };
    let b = build(second.path(), fresh_cache.path(), "zstd", &[]);
    assert_eq!(a, b, "same inputs, same zstd digest from separate caches");
    let gzip = build(
        second.path(),
        fresh_cache.path(),
        "gzip",
        &["--compression", "gzip"],
    );
    assert_ne!(a, gzip, "--compression gzip overrides the project's zstd");

    // Every layer is zstd in the manifest, and its blob starts with zstd's magic.
    let layout = first.path().parent().unwrap().join("oci-zstd");
    let manifest = layout_manifest(&layout);
    let layers = manifest["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for layer in layers {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{manifest}"
        );
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let blob = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
    }

    // `--load` put it into the engine, which unpacked the zstd layers: it runs and serves.
    let port = free_port();
    let container = Container::run(
        "build-zstd",
        &["-p", &format!("127.0.0.1:{port}:8000"), tag],
    );
    let response = wait_for(port, "/healthz", Duration::from_secs(60), |r| {
        r.status == 200
    });
    assert!(
        response.is_ok(),
        "{:?}\n{}",
        response.err(),
        container.logs()
    );
}

#[test]
fn one_file_edit_rewrites_only_the_app_layer() {
    let project = fixture("flask-requirements");
    let cache = shared_cache();
    let (before, layers_before) = build_archive(project.path(), &cache, "bookworm");
    let (again, layers_again) = build_archive(project.path(), &cache, "bookworm");
    assert_eq!(before, again);
    assert!(
        layers_again.iter().all(|l| l[5] == "yes"),
        "{layers_again:?}"
    );
    let app = project.path().join("app.py");
    let text = std::fs::read_to_string(&app).unwrap();
    // A new edit every run: the layer cache is content-addressed and outlives test runs.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(
        &app,
        text.replacen("from flask-requirements", &format!("from edit {nonce}"), 1),
    )
    .unwrap();
    let (after, layers_after) = build_archive(project.path(), &cache, "bookworm");
    assert_ne!(before, after);
    for (old, new) in layers_before.iter().zip(&layers_after) {
        if old[0] == "app" {
            assert_ne!(old[6], new[6], "app layer changed");
            assert_eq!(new[5], "no");
        } else {
            assert_eq!(old[6], new[6], "{} layer unchanged", old[0]);
            assert_eq!(new[5], "yes", "{} layer from cache", old[0]);
        }
    }
}

/// `terrarium build --load --tag TAG` of `dir` with the shared cache: the `loaded …` line.
fn load(dir: &Path, tag: &str) -> String {
    let output = build_cmd(
        dir,
        &shared_cache(),
        &["--distro", "bookworm", "--load", "--tag", tag],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "build --load failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find(|l| l.starts_with("loaded "))
        .unwrap_or_else(|| panic!("no `loaded` line:\n{stdout}"))
        .to_owned()
}

/// What `/app/app.py` says in the image `tag`.
fn app_source(tag: &str) -> String {
    docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/usr/bin/python3.11",
        tag,
        "-c",
        "print(open('/app/app.py').read())",
    ])
}

#[test]
fn load_sends_only_what_the_engine_lacks() {
    let project = fixture("flask-requirements");
    let tag = format!("terrarium-e2e-build/load:{}", std::process::id());
    let _image = Image { tag: tag.clone() };
    let _ = docker_output(&["rmi", "-f", &tag]);
    let first = load(project.path(), &tag);
    assert!(first.contains(" sent, "), "{first}");
    let id = docker(&["image", "inspect", "--format", "{{.Id}}", &tag]);

    // The engine has it: nothing is sent, the tag is left alone.
    let again = load(project.path(), &tag);
    assert!(
        again.contains("the engine already had it, nothing sent"),
        "{again}"
    );
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Id}}", &tag]),
        id
    );

    // The tag points at another image: it is moved back, nothing loaded.
    docker(&["tag", "terrarium-test/debian:bookworm", &tag]);
    let moved = load(project.path(), &tag);
    assert!(
        moved.contains(&format!("the engine already had it, tagged {tag}")),
        "{moved}"
    );
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Id}}", &tag]),
        id
    );

    // A one-line edit: only the app layer is sent, and the image has the edit.
    let app = project.path().join("app.py");
    let nonce = format!(
        "LOAD_NONCE = {}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let text = std::fs::read_to_string(&app).unwrap();
    std::fs::write(&app, format!("{text}\n{nonce}\n")).unwrap();
    let edited = load(project.path(), &tag);
    assert!(edited.contains("(1 layer sent, "), "{edited}");
    assert!(!edited.contains(", 0 already"), "{edited}");
    assert_ne!(
        docker(&["image", "inspect", "--format", "{{.Id}}", &tag]),
        id
    );
    assert!(
        app_source(&tag).contains(&nonce),
        "the edit is in the image"
    );
}

/// Every blob in `cache` with its inode: a blob fetched again is a new file.
fn blob_inodes(cache: &Path) -> Vec<(PathBuf, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dir = cache.join("blobs/sha256");
    let mut blobs: Vec<(PathBuf, u64)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.path(), e.metadata().unwrap().ino()))
                .collect()
        })
        .unwrap_or_default();
    blobs.sort();
    blobs
}

#[test]
fn an_interrupted_cold_build_resumes_without_fetching_again() {
    let project = fixture("flask-requirements");
    let cache = tempfile::tempdir().unwrap();
    let out = project.path().parent().unwrap().join("oci");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("terrarium"))
        .arg("build")
        .arg(project.path())
        .args(["--distro", "bookworm", "--output"])
        .arg(format!("oci:{}", out.display()))
        .env("TERRARIUM_CACHE_DIR", cache.path())
        .env_remove("SOURCE_DATE_EPOCH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Blobs appear only once verified: kill the build (SIGKILL, no clean-up) after a few.
    let deadline = Instant::now() + Duration::from_secs(300);
    while blob_inodes(cache.path()).len() < 5 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no downloads in 5 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let verified = blob_inodes(cache.path());

    let (digest, _) = build_archive(project.path(), cache.path(), "bookworm");
    let after = blob_inodes(cache.path());
    for blob in &verified {
        assert!(
            after.contains(blob),
            "{} was fetched again",
            blob.0.display()
        );
    }
    let reference = fixture("flask-requirements");
    let (expected, _) = build_archive(reference.path(), &shared_cache(), "bookworm");
    assert_eq!(digest, expected, "the resumed build gives the same image");
}

/// A failing build: exit code and stderr.
fn fails(dir: &Path, cache: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = build_cmd(dir, cache, args).output().unwrap();
    assert!(!output.status.success(), "build unexpectedly succeeded");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn tampered_inrelease_fails_the_signature_check() {
    // Make sure the shared cache holds bookworm's InRelease, then work on a linked copy.
    let warm = fixture("flask-factory-uv");
    build_archive(warm.path(), &shared_cache(), "bookworm");
    let cache = linked_cache();
    let inrelease = walk(cache.path())
        .into_iter()
        .find(|p| p.ends_with("bookworm/InRelease"))
        .expect("cached bookworm InRelease");
    let text = std::fs::read_to_string(&inrelease).unwrap();
    // Change one hex digit of a listed checksum inside the signed text.
    let line = text
        .lines()
        .find(|line| line.ends_with("main/binary-amd64/Packages.xz"))
        .expect("Packages.xz listed");
    let flipped = if line.as_bytes()[1] == b'0' { "1" } else { "0" };
    let tampered = text.replacen(line, &format!(" {flipped}{}", &line[2..]), 1);
    assert_ne!(text, tampered);
    replace(&inrelease, tampered.as_bytes());
    let project = fixture("flask-factory-uv");
    let (code, stderr) = fails(
        project.path(),
        cache.path(),
        &["--distro", "bookworm", "--offline"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("signature"), "{stderr}");
    assert!(
        !project.path().join("build").exists(),
        "no output on failure"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A fixture whose uv.lock line for `needle` is rewritten by `edit`.
fn edited_uv_lock(edit: impl Fn(&str) -> String) -> Fixture {
    let project = fixture("flask-factory-uv");
    let lock = project.path().join("uv.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, edit(&text)).unwrap();
    project
}

const FLASK_HASH: &str = "f4bcbefc124291925f1a26446da31a5178f9483862233b23c0c96a20701f670c";

#[test]
fn hash_mismatch_stops_the_build_and_caches_nothing() {
    let wrong = "0".repeat(64);
    let project = edited_uv_lock(|text| text.replace(FLASK_HASH, &wrong));
    let cache = linked_cache();
    let cache_dir = cache.path().to_owned();
    let (code, stderr) = fails(project.path(), &cache_dir, &["--distro", "bookworm"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("flask") && stderr.contains("sha256"),
        "{stderr}"
    );
    assert!(stderr.contains(&wrong), "{stderr}");
    let blob = cache_dir.join("blobs/sha256").join(&wrong);
    assert!(!blob.exists());
    let tmp = cache_dir.join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(
        leftovers.iter().all(|n| *n == 0),
        "temp files left: {leftovers:?}"
    );
}

/// Serve `body` declaring `declared` bytes, to any number of requests, on 127.0.0.1.
fn serve_truncated(body: Vec<u8>, declared: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/flask-3.1.3-py3-none-any.whl")
}

#[test]
fn truncated_download_is_rejected_and_not_cached() {
    let url = serve_truncated(vec![b'P'; 50_000], 103_424);
    let project = edited_uv_lock(|text| {
        let start = text
            .find("https://files.pythonhosted.org/packages/7f/9c/")
            .unwrap();
        let end = start + text[start..].find('"').unwrap();
        format!("{}{url}{}", &text[..start], &text[end..])
    });
    let cache = linked_cache();
    let blob = cache.path().join("blobs/sha256").join(FLASK_HASH);
    if blob.exists() {
        std::fs::remove_file(&blob).unwrap();
    }
    for entry in walk(&cache.path().join("meta/layers")) {
        std::fs::remove_file(entry).unwrap();
    }
    let (code, stderr) = fails(project.path(), cache.path(), &["--distro", "bookworm"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cut short"), "{stderr}");
    assert!(!blob.exists());
}

#[test]
fn corrupt_cache_entry_is_detected_and_rebuilt() {
    let project = fixture("flask-factory-uv");
    let (digest, layers) = build_archive(project.path(), &shared_cache(), "bookworm");
    let cache = linked_cache();
    let deps = layers.iter().find(|l| l[0] == "deps").unwrap()[6].clone();
    let blob = cache
        .path()
        .join("blobs/sha256")
        .join(deps.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    replace(&blob, &bytes);
    let (again, layers_again) = build_archive(project.path(), cache.path(), "bookworm");
    assert_eq!(digest, again);
    let deps_again = layers_again.iter().find(|l| l[0] == "deps").unwrap();
    assert_eq!(
        deps_again[5], "no",
        "the corrupt layer was detected and written again"
    );
    assert_eq!(std::fs::read(&blob).unwrap().len(), bytes.len());
}

#[test]
fn malformed_locks_name_the_file() {
    let project = fixture("flask-factory-uv");
    std::fs::write(
        project.path().join("uv.lock"),
        "version = 1\n[[package]\nname = ",
    )
    .unwrap();
    let (code, stderr) = fails(project.path(), &shared_cache(), &["--distro", "bookworm"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("uv.lock"), "{stderr}");

    let project = fixture("flask-factory-uv");
    std::fs::write(project.path().join("terrarium.lock"), "version = [\n").unwrap();
    let (code, stderr) = fails(project.path(), &shared_cache(), &["--distro", "bookworm"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("terrarium.lock") && stderr.contains("delete it"),
        "{stderr}"
    );
}

#[test]
fn unsupported_wheel_platform_names_the_package_and_tags() {
    let project = edited_uv_lock(|text| {
        text.lines()
            // Without its x86_64 wheels and its sdist (which terrarium would build instead).
            .filter(|l| !(l.contains("markupsafe-3.0.4-cp311") && l.contains("x86_64")))
            .filter(|l| !l.contains("markupsafe-3.0.4.tar.gz"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let (code, stderr) = fails(project.path(), &shared_cache(), &["--distro", "bookworm"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("markupsafe"), "{stderr}");
    assert!(stderr.contains("unsupported wheel platform"), "{stderr}");
    assert!(stderr.contains("cp311-cp311-macosx_11_0_arm64"), "{stderr}");
}

#[test]
fn offline_with_a_missing_wheel_says_what_is_missing() {
    let project = fixture("flask-factory-uv");
    build_archive(project.path(), &shared_cache(), "bookworm");
    let cache = linked_cache();
    std::fs::remove_file(cache.path().join("blobs/sha256").join(FLASK_HASH)).unwrap();
    for entry in walk(&cache.path().join("meta/layers")) {
        std::fs::remove_file(entry).unwrap();
    }
    let (code, stderr) = fails(
        project.path(),
        cache.path(),
        &["--distro", "bookworm", "--offline"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("offline") && stderr.contains("flask-3.1.3-py3-none-any.whl"),
        "{stderr}"
    );

    // With everything cached, an offline build succeeds and gives the same image.
    let (digest, _) = build_archive(project.path(), &shared_cache(), "bookworm");
    let output = build_cmd(
        project.path(),
        &shared_cache(),
        &["--distro", "bookworm", "--offline", "--output", "oci:out"],
    )
    .current_dir(project.path())
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&digest));
    assert!(project.path().join("out/index.json").is_file());
}

/// Django settings that read a setting at import with no fallback
/// (`os.environ.get("DJANGO_ALLOWED_HOSTS").split(",")`): `collectstatic` runs at build time
/// with a placeholder for it, natively and in the generated Dockerfile, and neither image keeps
/// the placeholder; both serve the collected files once the real value is given.
#[test]
fn build_steps_get_placeholders_for_required_settings_on_both_paths() {
    let project = fixture("django-hashes");
    let settings = project.path().join("mysite/settings.py");
    let text = std::fs::read_to_string(&settings).unwrap().replace(
        r#"os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")"#,
        r#"os.environ.get("DJANGO_ALLOWED_HOSTS").split(",")"#,
    );
    assert!(text.contains(r#"get("DJANGO_ALLOWED_HOSTS").split"#));
    replace(&settings, text.as_bytes());

    let native = Image {
        tag: "terrarium-e2e-build/django-required:native".into(),
    };
    let output = build_cmd(
        project.path(),
        &shared_cache(),
        &["--distro", "bookworm", "--load", "--tag", &native.tag],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "native build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    terrarium()
        .args(["init", "--base", TEST_BASE])
        .arg(project.path())
        .assert()
        .success();
    let dockerfile = std::fs::read_to_string(project.path().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("DJANGO_ALLOWED_HOSTS=terrarium-build-placeholder-"),
        "{dockerfile}"
    );
    let built = build_image(
        "terrarium-e2e-build/django-required:dockerfile",
        project.path(),
        "Dockerfile",
        &[],
    );
    for tag in [&native.tag, &built.tag] {
        let env = docker(&["image", "inspect", "--format", "{{json .Config.Env}}", tag]);
        assert!(!env.contains("placeholder"), "{tag}: {env}");
        let port = free_port();
        let container = Container::run(
            &format!("required-{}", tag.rsplit(':').next().unwrap_or("x")),
            &[
                "-e",
                "DJANGO_ALLOWED_HOSTS=*",
                "-p",
                &format!("127.0.0.1:{port}:8000"),
                tag,
            ],
        );
        let css = wait_for(port, "/static/site.css", Duration::from_secs(60), |r| {
            r.status == 200
        });
        assert!(css.is_ok(), "{tag}: {:?}\n{}", css.err(), container.logs());
    }
}

/// What a build step left in site-packages, as the service user sees it in the running image:
/// the compiled theme's owner, mode and mtime, whether the user may write it or its directory,
/// and that the user is not root.
const THEME_PROBE: &str = r#"
import os, django.contrib.staticfiles as s
path = os.path.join(os.path.dirname(s.__file__), "compiled-theme", "theme", "site.css")
st = os.stat(path)
writable = os.access(path, os.W_OK) or os.access(os.path.dirname(path), os.W_OK)
print(st.st_uid, st.st_gid, oct(st.st_mode & 0o7777), int(st.st_mtime), writable, os.getuid())
"#;

/// A build step that writes into site-packages (`tests/fixtures-steps/django-theme-finder`: a
/// staticfiles finder that compiles the theme into a directory of an installed package while
/// `collectstatic` lists it): the native build and the generated Dockerfile both succeed, and
/// both images, on a read-only root, serve the compiled file from STATIC_ROOT and keep it
/// where the finder wrote it, root-owned and not writable by the service user (natively with
/// the fixed mtime, in the app layer).
#[test]
fn a_build_step_that_writes_into_site_packages_works_on_both_paths() {
    let project = steps_fixture("django-theme-finder");
    let native = Image {
        tag: "terrarium-e2e-build/theme-finder:native".into(),
    };
    let output = build_cmd(
        project.path(),
        &shared_cache(),
        &["--distro", "bookworm", "--load", "--tag", &native.tag],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "native build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    terrarium()
        .args(["init", "--base", TEST_BASE])
        .arg(project.path())
        .assert()
        .success();
    let built = build_image(
        "terrarium-e2e-build/theme-finder:dockerfile",
        project.path(),
        "Dockerfile",
        &[],
    );
    for (tag, path) in [(&native.tag, "native"), (&built.tag, "dockerfile")] {
        let port = free_port();
        let container = Container::run(
            &format!("theme-finder-{path}"),
            &[
                "--read-only",
                "--tmpfs",
                "/tmp",
                "-p",
                &format!("127.0.0.1:{port}:8000"),
                tag,
            ],
        );
        let css = wait_for(
            port,
            "/static/theme/site.css",
            Duration::from_secs(60),
            |r| r.status == 200,
        )
        .unwrap_or_else(|err| panic!("{path}: {err:?}\n{}", container.logs()));
        assert!(
            css.body
                .contains("/* compiled by mysite.theme.ThemeFinder */")
                && css.body.contains("--primary: #1f6f8b;"),
            "{path}: {}",
            css.body
        );
        let probe = docker(&["exec", &container.name, "python3", "-c", THEME_PROBE]);
        let fields: Vec<&str> = probe.split_whitespace().collect();
        assert_eq!(
            [fields[0], fields[1], fields[2], fields[4], fields[5]],
            ["0", "0", "0o644", "False", "65532"],
            "{path}: {probe}"
        );
        if path == "native" {
            assert_eq!(
                fields[3], "0",
                "{path}: the mtime of SOURCE_DATE_EPOCH unset"
            );
        }
    }
}
