//! End to end for `terrarium build --platform linux/amd64,linux/arm64` on an x86_64 machine: the
//! Flask fixture (with MarkupSafe's binary wheel) becomes two images and an OCI image index,
//! written as a layout and pushed to a real registry (Debian's `docker-registry`). Every ELF file
//! in the arm64 image's layers is aarch64 (and every one in the amd64 image x86-64); its
//! bytecode, compiled by this machine's CPython, is byte for byte the amd64 image's; the lock
//! records each architecture's packages and wheels; `skopeo` (an independent client) reads the
//! pushed index; and the Docker engine pulls the arm64 image and serves it through QEMU
//! user-mode emulation (Debian's `qemu-user-static` registered with binfmt_misc, which
//! scripts/test sets up).

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::registry::Registry;
use support::*;

const FIXTURE: &str = "flask-requirements";
const PORT: u16 = 5000;

/// ELF `e_machine` values.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

fn build(dir: &Path, args: &[&str]) -> Output {
    let empty_config = tempfile::tempdir().unwrap();
    terrarium()
        .arg("build")
        .arg(dir)
        .args(args)
        .env("TERRARIUM_CACHE_DIR", build_cache())
        .env("DOCKER_CONFIG", empty_config.path())
        .env("TERRARIUM_DOCKER", docker_bin())
        .env_remove("TERRARIUM_REGISTRY_USER")
        .env_remove("TERRARIUM_REGISTRY_PASSWORD")
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// One image of the layout: its config and, for each regular file of its layers (the last
/// layer's wins), its first bytes and its size.
struct Files {
    config: serde_json::Value,
    files: BTreeMap<String, Vec<u8>>,
}

/// The image `manifest` of the layout at `layout`, its files read from its gzip layers.
fn image_files(layout: &Path, manifest: &str) -> Files {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest = json(&blob(manifest));
    let config = json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    let mut files = BTreeMap::new();
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let file = std::fs::File::open(blob(layer["digest"].as_str().unwrap())).unwrap();
        let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(path, bytes);
        }
    }
    Files { config, files }
}

/// The `e_machine` of each ELF file (64-bit little-endian, as both architectures' are).
fn elf_machines(files: &Files) -> BTreeMap<&str, u16> {
    files
        .files
        .iter()
        .filter(|(_, bytes)| bytes.len() >= 20 && bytes.starts_with(b"\x7fELF"))
        .map(|(path, bytes)| {
            assert_eq!((bytes[4], bytes[5]), (2, 1), "{path}: not ELF64 LSB");
            (path.as_str(), u16::from_le_bytes([bytes[18], bytes[19]]))
        })
        .collect()
}

#[test]
fn two_platforms_make_an_index_whose_arm64_image_is_aarch64_and_serves() {
    let project = fixture(FIXTURE);
    let registry = Registry::plain();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("oci");
    let target = format!("{}/platforms/flask:1", registry.host);
    let output = build(
        &project.service(),
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--output",
            &format!("oci:{}", layout.display()),
            "--push",
            &target,
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");

    // The layout's tag names an image index listing both platforms.
    let top = json(&layout.join("index.json"));
    assert_eq!(top["manifests"].as_array().unwrap().len(), 1, "{top}");
    assert_eq!(
        top["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index_digest = top["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let index = json(
        &layout
            .join("blobs/sha256")
            .join(index_digest.trim_start_matches("sha256:")),
    );
    let manifests: BTreeMap<String, String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["platform"]["os"], "linux");
            (
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        manifests.keys().collect::<Vec<_>>(),
        ["amd64", "arm64"],
        "{index}"
    );
    assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");

    // Every ELF file of each image is its architecture's; the arm64 image has MarkupSafe's
    // aarch64 extension and the aarch64 interpreter.
    let amd64 = image_files(&layout, &manifests["amd64"]);
    let arm64 = image_files(&layout, &manifests["arm64"]);
    assert_eq!(arm64.config["architecture"], "arm64");
    assert_eq!(arm64.config["os"], "linux");
    assert_eq!(amd64.config["architecture"], "amd64");
    for (files, machine) in [(&amd64, EM_X86_64), (&arm64, EM_AARCH64)] {
        let machines = elf_machines(files);
        assert!(machines.len() > 20, "only {} ELF files", machines.len());
        let wrong: Vec<_> = machines.iter().filter(|(_, m)| **m != machine).collect();
        assert!(wrong.is_empty(), "not machine {machine}: {wrong:?}");
    }
    let arm64_elves = elf_machines(&arm64);
    assert!(
        arm64_elves
            .keys()
            .any(|p| p.ends_with("markupsafe/_speedups.cpython-313-aarch64-linux-gnu.so")),
        "{:?}",
        arm64_elves.keys().collect::<Vec<_>>()
    );
    assert!(arm64_elves.contains_key("usr/bin/python3.13"));
    assert!(
        arm64
            .files
            .contains_key("usr/lib/aarch64-linux-gnu/libc.so.6")
    );

    // The start-up bytecode compiled for arm64 by this machine's CPython is what the amd64
    // image's own interpreter compiled, file for file where the sources are the same.
    let pyc = "usr/local/lib/python3.13/dist-packages/flask/__pycache__/app.cpython-313.pyc";
    assert!(arm64.files.contains_key(pyc), "no {pyc} in the arm64 image");
    assert_eq!(arm64.files[pyc], amd64.files[pyc]);
    let pycs = |files: &Files| -> Vec<String> {
        files
            .files
            .keys()
            .filter(|p| p.ends_with(".pyc") && !p.starts_with("app/"))
            .cloned()
            .collect()
    };
    let (amd64_pycs, arm64_pycs) = (pycs(&amd64), pycs(&arm64));
    assert!(arm64_pycs.len() > 200, "{} .pyc files", arm64_pycs.len());
    let missing: Vec<_> = amd64_pycs
        .iter()
        .filter(|p| !arm64_pycs.contains(p) && !p.contains("sysconfigdata"))
        .collect();
    assert!(missing.is_empty(), "compiled for amd64 only: {missing:?}");

    // The lock records each architecture's .debs and wheels, with their hashes.
    let lock = std::fs::read_to_string(project.service().join("terrarium.lock")).unwrap();
    assert!(lock.contains("[distro.trixie.arch.arm64.debian]"), "{lock}");
    assert!(lock.contains("[distro.trixie.arch.arm64.wheels]"), "{lock}");
    assert!(lock.contains("_arm64.deb\""));
    assert!(lock.contains("manylinux2014_aarch64.whl\""));
    assert!(lock.contains("manylinux2014_x86_64.whl\""));

    // Pushed: both manifests, then the index under the tag; the index's digest comes last.
    let pinned = format!("{}/platforms/flask@{index_digest}", registry.host);
    assert_eq!(stdout.lines().last(), Some(pinned.as_str()), "{stdout}");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{target}"))
        .output()
        .expect("run skopeo (scripts/test installs it)");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let pushed: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(pushed, index, "the registry serves the layout's index");

    // The engine pulls the arm64 image and runs it through binfmt_misc's QEMU.
    docker(&["pull", "-q", "--platform", "linux/arm64", &target]);
    let _image = Image {
        tag: target.clone(),
    };
    let architecture = docker(&["image", "inspect", "--format", "{{.Architecture}}", &target]);
    assert_eq!(architecture.trim(), "arm64");
    let port = free_port();
    let container = Container::run(
        "platform-arm64",
        &[
            "--platform",
            "linux/arm64",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-p",
            &format!("127.0.0.1:{port}:{PORT}"),
            &target,
        ],
    );
    let response = wait_for(port, "/", Duration::from_secs(120), |r| r.status == 200)
        .unwrap_or_else(|err| panic!("{err}\n{}", container.logs()));
    assert!(
        response.body.contains("hello from flask-requirements"),
        "{}",
        response.body
    );
    let machine = docker(&[
        "exec",
        &container.name,
        "python3",
        "-c",
        "import platform, markupsafe._speedups; print(platform.machine())",
    ]);
    assert_eq!(machine.trim(), "aarch64");
    // The arm64 interpreter takes the bytecode compiled here instead of compiling.
    let verbose = docker_output(&[
        "exec",
        &container.name,
        "python3",
        "-v",
        "-c",
        "import flask",
    ]);
    let verbose = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        verbose.contains(&format!(
            "/{pyc} matches /usr/local/lib/python3.13/dist-packages/flask/app.py"
        )),
        "{verbose}"
    );
}

#[test]
fn another_platform_has_no_docker_archive_and_load_needs_this_one() {
    let project = fixture(FIXTURE);
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("x.tar");
    let output = build(
        &project.service(),
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--output",
            &format!("docker-archive:{}", archive.display()),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("a docker archive holds one platform") && stderr.contains("oci:DIR"),
        "{stderr}"
    );
    let output = build(&project.service(), &["--platform", "linux/arm64", "--load"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--load loads this machine's platform (linux/amd64)"),
        "{stderr}"
    );
    let output = build(&project.service(), &["--platform", "linux/s390x"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`linux/s390x` is not a platform"),
        "{stderr}"
    );
    assert!(!archive.exists() && !project.service().join("terrarium.lock").exists());
}

#[test]
fn an_sdist_is_taken_for_arm64_only_as_pure_python_built_here() {
    // flask-mail publishes only an sdist, pure Python: the wheel this machine builds from it
    // is the arm64 image's too.
    let fixture = sdist_fixture("flask-mail");
    let project = fixture.path();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("oci");
    let output = build(
        project,
        &[
            "--platform",
            "linux/arm64,linux/amd64",
            "--output",
            &format!("oci:{}", layout.display()),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let index = json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let index = json(
        &layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    );
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "arm64");
    let arm64 = image_files(&layout, index["manifests"][0]["digest"].as_str().unwrap());
    assert!(
        arm64
            .files
            .contains_key("usr/local/lib/python3.13/dist-packages/flask_mail.py"),
        "no flask_mail in the arm64 image"
    );
    assert!(elf_machines(&arm64).values().all(|m| *m == EM_AARCH64));

    // psycopg2 publishes only an sdist with C in it: this machine compiles it for its own
    // image, and the arm64 build stops naming it and the ways out.
    let fixture = sdist_fixture("psycopg2-pg");
    let project = fixture.path();
    let output = build(project, &["--platform", "linux/arm64"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    for expected in [
        "linux/arm64: psycopg2 2.9.10 has no wheel for it",
        "code to compile",
        "fix: build linux/arm64 on a machine of that architecture",
        "pin a release of psycopg2 that publishes a manylinux aarch64 wheel",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
    assert_eq!(stderr.matches("fix:").count(), 1, "said once:\n{stderr}");
}
