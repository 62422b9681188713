//! Real tests against Debian's archive (cached under the test cache so reruns are fast) and the
//! real Docker engine, plus negative tests through a local HTTP server on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use terrarium_debian::{
    Architecture, Archive, DebianPin, Distro, Error, Mirror, PackageSet, ResolveOptions,
    UnpackOptions, build_runtime_layer, read_control, resolve,
};
use terrarium_image::Error::{DigestMismatch, Network, Offline, Truncated};
use terrarium_image::{
    Cache, Epoch, Fetcher, Image, ImageLayer, ImageSpec, LayerOptions, NoProgress, Platform,
    ProgressEvent, RunConfig, write_docker_archive,
};

/// The shared download cache: `$TERRARIUM_TEST_CACHE/debian` (set by scripts/test), else
/// `~/.cache/terrarium-test/debian`.
fn test_cache() -> Cache {
    let root = std::env::var_os("TERRARIUM_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/terrarium-test"))
        })
        .expect("TERRARIUM_TEST_CACHE or HOME is set");
    Cache::new(root.join("debian"))
}

fn archive_with(cache: Cache, mirror: Mirror, offline: bool) -> Archive {
    Archive::new(
        Fetcher::new(cache, offline).unwrap(),
        mirror,
        Architecture::Amd64,
    )
    .unwrap()
    .with_index_max_age(Duration::from_secs(24 * 3600))
}

fn archive() -> Archive {
    archive_with(test_cache(), Mirror::default(), false)
}

fn resolve_runtime(distro: Distro) -> terrarium_debian::Resolution {
    let started = Instant::now();
    let index = archive().index(distro, &NoProgress).unwrap();
    let roots = distro.runtime_roots();
    let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
    let resolution = resolve(
        &index,
        distro,
        Architecture::Amd64,
        &roots,
        &ResolveOptions::default(),
    )
    .unwrap();
    eprintln!(
        "{distro}: {} packages in index, {} resolved ({} KB of .debs) in {:.2?}",
        index.len(),
        resolution.packages.packages.len(),
        resolution.packages.download_size() / 1024,
        started.elapsed()
    );
    resolution
}

/// The bookworm runtime set, resolved once per test run.
fn bookworm_set() -> &'static PackageSet {
    static SET: OnceLock<PackageSet> = OnceLock::new();
    SET.get_or_init(|| resolve_runtime(Distro::Bookworm).packages)
}

#[test]
fn verifies_real_inrelease_of_every_suite() {
    let lenient = archive().allow_expired(true);
    let archive = archive();
    for distro in Distro::ALL {
        for suite in distro.suites() {
            let release = match archive.release(suite) {
                Ok(release) => release,
                // Debian testing's Release is valid for a week only, and a mirror frozen in
                // time (this test environment's) serves an expired one: it is refused with
                // that reason, and still verifies when expired Releases are allowed.
                Err(terrarium_debian::Error::Expired { suite: name, .. })
                    if distro == Distro::Forky =>
                {
                    assert_eq!(name, suite.name());
                    let release = lenient.release(suite).unwrap();
                    assert!(
                        lenient
                            .expired_releases()
                            .iter()
                            .any(|r| r.starts_with(&suite.name())),
                        "{:?}",
                        lenient.expired_releases()
                    );
                    release
                }
                Err(err) => panic!("{suite}: {err}"),
            };
            assert_eq!(release.codename, suite.name());
            let packages = release.file("main/binary-amd64/Packages.xz").unwrap();
            // Testing's security suite carries no packages until it has updates: its index is
            // an empty, but still listed and hashed, file.
            let empty_allowed = suite.name() == "forky-security";
            assert!(
                packages.size > 1000 || (empty_allowed && packages.size > 0),
                "{suite}: {packages:?}"
            );
        }
    }
}

#[test]
fn tampered_inrelease_is_rejected() {
    let archive = archive();
    let suite = Distro::Bookworm.suites()[0];
    let url = Mirror::default().url(suite, "dists/bookworm/InRelease");
    let scratch = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(Cache::new(scratch.path()), false).unwrap();
    let genuine = fetcher.get_small(&url).unwrap();
    archive.parse_release(&genuine, suite).unwrap();

    // Change one hex digit of a listed checksum inside the signed text.
    let text = String::from_utf8(genuine.clone()).unwrap();
    let line = text
        .lines()
        .find(|line| line.ends_with("main/binary-amd64/Packages.xz"))
        .unwrap();
    let flipped_digit = if line.as_bytes()[1] == b'0' { "1" } else { "0" };
    let tampered_line = format!(" {}{}", flipped_digit, &line[2..]);
    let tampered = text.replacen(line, &tampered_line, 1);
    let err = archive
        .parse_release(tampered.as_bytes(), suite)
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");

    // The security suite's signature does not make another suite's Release valid.
    let security = Distro::Bookworm.suites()[1];
    let err = archive.parse_release(&genuine, security).unwrap_err();
    assert!(matches!(err, Error::WrongSuite { .. }), "{err}");

    // Unsigned text is refused.
    let body = text.split("-----BEGIN PGP SIGNATURE-----").next().unwrap();
    let body = body.split("\n\n").skip(1).collect::<Vec<_>>().join("\n\n");
    let err = archive.parse_release(body.as_bytes(), suite).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}

#[test]
fn resolves_the_bookworm_python_runtime_and_locks_it() {
    let set = bookworm_set();
    let names: Vec<&str> = set.packages.iter().map(|p| p.name.as_str()).collect();
    for needed in [
        "libc6",
        "libssl3",
        "zlib1g",
        "libexpat1",
        "libffi8",
        "libsqlite3-0",
        "media-types",
    ] {
        assert!(names.contains(&needed), "{needed} missing from {names:?}");
    }
    for absent in [
        "perl-base",
        "debconf",
        "dpkg",
        "bash",
        "dash",
        "coreutils",
        "openssl",
    ] {
        assert!(
            !names.contains(&absent),
            "{absent} should not be in {names:?}"
        );
    }
    let python = set.get("python3.11-minimal").unwrap();
    assert!(python.version.as_str().starts_with("3.11."));
    assert!(python.filename.starts_with("pool/"));

    // The set is a lock: it round-trips through JSON unchanged.
    let json = serde_json::to_string_pretty(set).unwrap();
    let back: PackageSet = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, set);
    let malformed = json.replacen("\"sha256\": \"sha256:", "\"sha256\": \"md5:", 1);
    assert!(serde_json::from_str::<PackageSet>(&malformed).is_err());
}

#[test]
fn resolves_trixie_python_runtime_and_runs_it() {
    let resolution = resolve_runtime(Distro::Trixie);
    let names: Vec<&str> = resolution
        .packages
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(names.contains(&"libc6"), "{names:?}");
    assert!(!names.contains(&"perl-base"), "{names:?}");
    assert!(!resolution.dropped.is_empty());
    let layer = build_runtime_layer(
        &archive(),
        &resolution.packages,
        &UnpackOptions::default(),
        LayerOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let out = run_in_runtime(&test_cache(), Distro::Trixie, layer, &[]);
    assert_eq!(out.trim(), "1");
}

fn docker() -> Command {
    Command::new(std::env::var("TERRARIUM_DOCKER").unwrap_or_else(|_| "/usr/bin/docker".into()))
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker().args(args).output().expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn runtime_image(cache: &Cache, distro: Distro, layer: terrarium_image::Layer) -> Image {
    let python = format!("/usr/bin/python{}", distro.python_version());
    ImageSpec {
        layers: vec![ImageLayer {
            layer,
            created_by: format!(
                "terrarium: runtime ({distro} python{})",
                distro.python_version()
            ),
        }],
        run: RunConfig {
            user: Some("65532:65532".into()),
            working_dir: Some("/home/nonroot".into()),
            env: vec![
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
                ("PYTHONUNBUFFERED".into(), "1".into()),
                ("LANG".into(), "C.UTF-8".into()),
                (
                    "SSL_CERT_FILE".into(),
                    "/etc/ssl/certs/ca-certificates.crt".into(),
                ),
            ],
            cmd: vec![python, "-c".into(), "print(1)".into()],
            ..RunConfig::default()
        },
        created: Epoch::default(),
        platform: Platform::LinuxAmd64,
    }
    .store(cache)
    .unwrap()
}

/// Load an image of `layer` into Docker and run `args` (or its default `print(1)`) in it as
/// 65532, without network, on a read-only root filesystem.
fn run_in_runtime(
    cache: &Cache,
    distro: Distro,
    layer: terrarium_image::Layer,
    args: &[&str],
) -> String {
    let image = runtime_image(cache, distro, layer);
    let tag = format!("terrarium-test/debian-runtime:{distro}");
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("runtime.tar");
    write_docker_archive(cache, &image, &archive_path, &[tag.parse().unwrap()]).unwrap();
    docker_ok(&["load", "-i", archive_path.to_str().unwrap()]);
    let mut run = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        tag.as_str(),
    ];
    run.extend(args);
    let out = docker_ok(&run);
    docker_ok(&["rmi", &tag]);
    out
}

#[test]
fn runtime_layer_is_reproducible_offline_and_runs_python_in_docker() {
    let set = bookworm_set();
    let started = Instant::now();
    let layer = build_runtime_layer(
        &archive(),
        set,
        &UnpackOptions::default(),
        LayerOptions::default(),
        &NoProgress,
    )
    .unwrap();
    eprintln!(
        "runtime layer: {} entries, {} KB uncompressed, {} KB gzip, in {:.2?}",
        layer.entries,
        layer.uncompressed_size / 1024,
        layer.size / 1024,
        started.elapsed()
    );

    // A second, fresh cache holding only the .debs (as another machine would), offline: the
    // same layer digest, byte for byte, with every package reported as coming from the cache.
    let other = tempfile::tempdir().unwrap();
    let other_cache = Cache::new(other.path());
    for package in &set.packages {
        let path = test_cache().get(&package.sha256).unwrap().unwrap();
        let digest = other_cache
            .put_bytes(&std::fs::read(path).unwrap())
            .unwrap();
        assert_eq!(digest, package.sha256);
    }
    let from_cache = AtomicUsize::new(0);
    let progress = |event: &ProgressEvent<'_>| {
        if matches!(event, ProgressEvent::Finished { cached: true, .. }) {
            from_cache.fetch_add(1, Ordering::Relaxed);
        }
    };
    let offline = archive_with(other_cache.clone(), Mirror::default(), true);
    let again = build_runtime_layer(
        &offline,
        set,
        &UnpackOptions::default(),
        LayerOptions::default(),
        &progress,
    )
    .unwrap();
    assert_eq!(again, layer);
    assert_eq!(from_cache.load(Ordering::Relaxed), set.packages.len());

    // Unchanged inputs reuse the stored layer without fetching or unpacking anything...
    from_cache.store(0, Ordering::Relaxed);
    let reused = build_runtime_layer(
        &offline,
        set,
        &UnpackOptions::default(),
        LayerOptions::default(),
        &progress,
    )
    .unwrap();
    assert_eq!(reused, layer);
    assert_eq!(from_cache.load(Ordering::Relaxed), 0);
    // ...but a corrupt stored layer is detected and rebuilt.
    std::fs::write(other_cache.blob_path(&layer.digest), b"corrupt").unwrap();
    let rebuilt = build_runtime_layer(
        &offline,
        set,
        &UnpackOptions::default(),
        LayerOptions::default(),
        &progress,
    )
    .unwrap();
    assert_eq!(rebuilt, layer);
    assert_eq!(from_cache.load(Ordering::Relaxed), set.packages.len());

    // Leaving out paths changes the layer (and its cache key).
    let slim = UnpackOptions {
        exclude: vec!["usr/lib/x86_64-linux-gnu/gconv".into()],
        ..UnpackOptions::default()
    };
    let slim =
        build_runtime_layer(&offline, set, &slim, LayerOptions::default(), &NoProgress).unwrap();
    assert!(slim.uncompressed_size + 4_000_000 < layer.uncompressed_size);

    assert_eq!(
        run_in_runtime(&other_cache, Distro::Bookworm, layer.clone(), &[]).trim(),
        "1"
    );
    let script = "import os, ssl, sqlite3, zoneinfo, json, socket, pwd\n\
        print(os.getuid(), pwd.getpwuid(os.getuid()).pw_name)\n\
        print(zoneinfo.ZoneInfo('Europe/Paris').key)\n\
        print(socket.getservbyname('http'))\n\
        print(len(ssl.create_default_context().get_ca_certs()) > 100)\n\
        print(os.path.exists('/bin/sh'), os.path.exists('/usr/bin/perl'))\n\
        print(len(os.listdir('/var/lib/dpkg/status.d')) > 20)";
    let out = run_in_runtime(
        &other_cache,
        Distro::Bookworm,
        layer,
        &["/usr/bin/python3.11", "-c", script],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "65532 nonroot",
            "Europe/Paris",
            "80",
            "True",
            "False False",
            "True"
        ],
        "{out}"
    );
}

#[test]
fn offline_without_the_artifact_says_what_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let offline = archive_with(Cache::new(empty.path()), Mirror::default(), true);
    let package = bookworm_set().get("netbase").unwrap();
    let err = offline.fetch(package, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::Image(Offline { .. })), "{err}");
    assert!(err.to_string().contains("netbase"), "{err}");
    let err = offline.release(Distro::Bookworm.suites()[0]).unwrap_err();
    assert!(matches!(err, Error::Image(Offline { .. })), "{err}");
}

#[test]
fn corrupt_cache_entry_is_fetched_again() {
    let package = bookworm_set().get("netbase").unwrap();
    let genuine = std::fs::read(archive().fetch(package, &NoProgress).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    cache.put_bytes(&genuine).unwrap();
    let mut corrupt = genuine.clone();
    corrupt[genuine.len() / 2] ^= 0xff;
    std::fs::write(cache.blob_path(&package.sha256), &corrupt).unwrap();

    let path = archive_with(cache, Mirror::default(), false)
        .fetch(package, &NoProgress)
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), genuine);
    assert_eq!(read_control(&path).unwrap().package, "netbase");
}

/// Serve HTTP on 127.0.0.1 for at most `max_requests` requests: every request gets `body`,
/// announced with `declared_len` bytes (more than sent simulates a cut connection).
fn serve(body: Vec<u8>, declared_len: usize, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {declared_len}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).ok();
            stream.write_all(&body).ok();
        }
    });
    format!("http://{addr}")
}

fn local_mirror(base: &str) -> Mirror {
    Mirror {
        main: format!("{base}/debian"),
        security: format!("{base}/debian-security"),
    }
}

#[test]
fn byte_flipped_deb_fails_its_hash_and_is_not_cached() {
    let package: DebianPin = bookworm_set().get("netbase").unwrap().clone();
    let mut bytes = Vec::new();
    std::fs::File::open(archive().fetch(&package, &NoProgress).unwrap())
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let len = bytes.len();
    let base = serve(bytes, len, 3);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let err = archive_with(cache.clone(), local_mirror(&base), false)
        .fetch(&package, &NoProgress)
        .unwrap_err();
    match &err {
        Error::Image(DigestMismatch {
            what,
            expected,
            actual,
        }) => {
            assert!(what.contains("netbase"), "{err}");
            assert_eq!(*expected, package.sha256);
            assert_ne!(*actual, package.sha256);
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    assert!(err.to_string().contains(&package.sha256.to_string()));
    assert_eq!(cache.get(&package.sha256).unwrap(), None);
    assert_eq!(
        std::fs::read_dir(cache.tmp_dir().unwrap()).unwrap().count(),
        0
    );
}

#[test]
fn truncated_download_is_rejected() {
    let package: DebianPin = bookworm_set().get("netbase").unwrap().clone();
    let bytes = std::fs::read(archive().fetch(&package, &NoProgress).unwrap()).unwrap();
    let half = bytes[..bytes.len() / 2].to_vec();
    let base = serve(half, bytes.len(), 3);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let err = archive_with(cache.clone(), local_mirror(&base), false)
        .fetch(&package, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::Image(Truncated { .. })), "{err}");
    assert_eq!(cache.get(&package.sha256).unwrap(), None);

    // An unreachable mirror is a network error naming the URL.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = archive_with(cache, local_mirror(&dead), false)
        .fetch(&package, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::Image(Network { .. })), "{err}");
    assert!(err.to_string().contains("netbase"), "{err}");
}
