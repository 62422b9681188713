//! Shared helpers for the CLI and end-to-end tests: fixture copies, the terrarium binary, a
//! real Docker engine, and a small HTTP client for requests into running containers.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod loyalty;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The local stand-in for the official python image, built by `scripts/test-images/build`.
pub const TEST_BASE: &str = "terrarium-test/python:3.11-slim-bookworm";
/// The local stand-in for the official python image of CPython 3.9 (end of life), on bullseye.
pub const TEST_BASE_39: &str = "terrarium-test/python:3.9-slim-bullseye";
/// The local stand-in for the official python image of CPython 3.14, on Debian forky.
pub const TEST_BASE_314: &str = "terrarium-test/python:3.14-slim-forky";
/// The local stand-in for the official nginx image.
pub const TEST_NGINX: &str = "terrarium-test/nginx:bookworm";
/// The local stand-in for the official postgres image.
pub const TEST_POSTGRES: &str = "terrarium-test/postgres:15-bookworm";

/// The download cache `terrarium build` shares across the test binaries of one run
/// (`$TERRARIUM_TEST_CACHE/build`).
pub fn build_cache() -> PathBuf {
    std::env::var_os("TERRARIUM_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/terrarium-test")))
        .expect("TERRARIUM_TEST_CACHE or HOME")
        .join("build")
}

/// The fixture projects directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The names of all fixture projects.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Fixtures that are uv workspaces: the fixture is the workspace root, the service is the
/// member named here.
const WORKSPACE_MEMBERS: [(&str, &str); 1] = [("fastapi-uv-workspace", "api")];

/// A fresh copy of a fixture project, in a directory of the fixture's name inside a
/// temporary directory (so a project without a declared name is named like the fixture).
pub struct Fixture {
    _parent: tempfile::TempDir,
    path: PathBuf,
    member: Option<&'static str>,
}

impl Fixture {
    /// The fixture's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The service's directory, which terrarium is run on: the fixture, or its workspace
    /// member.
    pub fn service(&self) -> PathBuf {
        match self.member {
            Some(member) => self.path.join(member),
            None => self.path.clone(),
        }
    }

    /// The build context of the service's generated Dockerfiles (the workspace root for a
    /// member) and the path of the Dockerfile `name` in it.
    pub fn dockerfile(&self, name: &str) -> (PathBuf, String) {
        match self.member {
            Some(member) => (self.path.clone(), format!("{member}/{name}")),
            None => (self.path.clone(), name.to_string()),
        }
    }
}

/// Copy a fixture project.
pub fn fixture(name: &str) -> Fixture {
    copy_project(&fixtures_dir().join(name), name)
}

/// Copy a project of `tests/fixtures-sdist/` (dependencies with only a source distribution).
pub fn sdist_fixture(name: &str) -> Fixture {
    copy_project(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures-sdist")
            .join(name),
        name,
    )
}

/// Copy a project of `tests/fixtures-steps/` (build steps that write outside `/app`).
pub fn steps_fixture(name: &str) -> Fixture {
    copy_project(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures-steps")
            .join(name),
        name,
    )
}

/// Copy an example of the repository's `examples/` (the loyalty program).
pub fn example(name: &str) -> Fixture {
    copy_project(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name),
        name,
    )
}

fn copy_project(from: &Path, name: &str) -> Fixture {
    let parent = tempfile::Builder::new()
        .prefix("terrarium-test-")
        .tempdir()
        .expect("tempdir");
    let path = parent.path().join(name);
    copy_dir(from, &path);
    Fixture {
        _parent: parent,
        path,
        member: WORKSPACE_MEMBERS
            .iter()
            .find(|(fixture, _)| *fixture == name)
            .map(|(_, member)| *member),
    }
}

/// Copy a directory tree, leaving out local environments and caches (`.venv`, `__pycache__`,
/// `.pytest_cache`, `.env`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some(".venv" | "__pycache__" | ".pytest_cache" | ".env")
        ) {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `terrarium init ARGS` with the local stand-ins for the registry images (the python base,
/// nginx and postgres), for projects whose Docker files the test builds on this machine.
pub fn init_with_stand_ins(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    terrarium()
        .arg("init")
        .args(args)
        .args([
            "--base",
            TEST_BASE,
            "--proxy-image",
            TEST_NGINX,
            "--postgres-image",
            TEST_POSTGRES,
        ])
        .arg(dir)
        .assert()
        .success()
}

/// The terrarium binary under test.
pub fn terrarium() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("terrarium").expect("terrarium binary")
}

/// The docker client: `$TERRARIUM_DOCKER` (scripts/test sets Debian's, which has BuildKit).
pub fn docker_bin() -> String {
    std::env::var("TERRARIUM_DOCKER").unwrap_or_else(|_| "docker".to_string())
}

/// Run docker with `args`; panics with its output when it fails.
pub fn docker(args: &[&str]) -> String {
    let output = docker_output(args);
    assert!(
        output.status.success(),
        "docker {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Run docker with `args` and return its output whatever the status.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new(docker_bin())
        .args(args)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .expect("run docker")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A container removed (with its anonymous volumes) when dropped.
pub struct Container {
    /// Its name.
    pub name: String,
}

impl Container {
    /// `docker run -d` with `args` (image and command last); the container is named for the test.
    pub fn run(label: &str, args: &[&str]) -> Container {
        let name = format!("terrarium-test-{label}-{}", std::process::id());
        let _ = docker_output(&["rm", "-f", "-v", &name]);
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend_from_slice(args);
        docker(&full);
        Container { name }
    }

    /// Its logs so far.
    pub fn logs(&self) -> String {
        let out = docker_output(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker_output(&["rm", "-f", "-v", &self.name]);
    }
}

/// An image removed when dropped.
pub struct Image {
    /// Its tag.
    pub tag: String,
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker_output(&["rmi", "-f", &self.tag]);
    }
}

/// `docker build` of `dockerfile` in `context`, tagged for the test.
pub fn build_image(tag: &str, context: &Path, dockerfile: &str, build_args: &[String]) -> Image {
    let context_text = context.display().to_string();
    let dockerfile_path = context.join(dockerfile).display().to_string();
    let mut args = vec!["build", "-q", "-t", tag, "-f", &dockerfile_path];
    for arg in build_args {
        args.push("--build-arg");
        args.push(arg);
    }
    args.push(&context_text);
    docker(&args);
    Image {
        tag: tag.to_string(),
    }
}

/// `terrarium build DIR ARGS --load --tag TAG` with the shared download cache; panics with its
/// output when it fails. The image is removed when the returned value is dropped.
pub fn native_image(dir: &Path, tag: &str, args: &[&str]) -> Image {
    let output = terrarium()
        .arg("build")
        .arg(dir)
        .args(args)
        .args(["--load", "--tag", tag])
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("TERRARIUM_DOCKER", docker_bin())
        .timeout(Duration::from_secs(600))
        .output()
        .expect("terrarium build");
    assert!(
        output.status.success(),
        "terrarium build {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Image {
        tag: tag.to_string(),
    }
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// One HTTP/1.0 request to 127.0.0.1:`port`.
pub fn http(method: &str, port: u16, path: &str, body: Option<&str>) -> std::io::Result<Response> {
    http_with(method, port, path, &[], body)
}

/// One HTTP/1.0 request with extra headers.
pub fn http_with(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(Response { status, body })
}

/// GET until `accept` holds for the response or `timeout` passes; returns the last response.
pub fn wait_for(
    port: u16,
    path: &str,
    timeout: Duration,
    accept: impl Fn(&Response) -> bool,
) -> Result<Response, String> {
    let start = Instant::now();
    let mut last = String::from("no answer");
    while start.elapsed() < timeout {
        match http("GET", port, path, None) {
            Ok(response) if accept(&response) => return Ok(response),
            Ok(response) => last = format!("{} {}", response.status, response.body),
            Err(err) => last = err.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!(
        "GET {path} on port {port}: gave up after {timeout:?}; last: {last}"
    ))
}

/// The docker compose command: the v2 plugin when present, else Debian's docker-compose (v1).
pub fn compose_command() -> Vec<String> {
    let plugin = Command::new(docker_bin())
        .args(["compose", "version"])
        .output();
    if plugin.is_ok_and(|o| o.status.success()) {
        vec![docker_bin(), "compose".to_string()]
    } else {
        vec!["docker-compose".to_string()]
    }
}

pub mod registry;
