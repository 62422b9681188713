//! Reproducibility, tar format and publishing tests, including `docker load` into the real engine.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use terrarium_image::{
    ArchiveLayers, Cache, Compression, Content, Digest, Entry, EntryKind, Epoch, Error, ImageLayer,
    ImageRef, ImageSpec, LayerOptions, LayerPath, LayerTree, LayerWriter, Ownership, Platform,
    Port, RunConfig, add_dir, stream_docker_archive, write_docker_archive, write_oci_layout,
};

fn p(path: &str) -> LayerPath {
    LayerPath::new(path).unwrap()
}

fn long_name() -> String {
    format!("app/{}/{}.py", "d".repeat(120), "f".repeat(150))
}

/// A small project tree on disk, with files created at "now" (mtimes must not leak).
fn project(dir: &Path) {
    fs::create_dir_all(dir.join("pkg/sub")).unwrap();
    fs::write(dir.join("app.py"), "print('hello from terrarium')\n").unwrap();
    fs::write(dir.join("pkg/__init__.py"), "").unwrap();
    fs::write(dir.join("pkg/sub/data.txt"), "x".repeat(70_000)).unwrap();
    std::os::unix::fs::symlink("pkg/sub/data.txt", dir.join("link")).unwrap();
}

fn build(cache: &Cache, src: &Path) -> terrarium_image::Image {
    build_with(cache, src, Compression::Gzip)
}

fn build_with(cache: &Cache, src: &Path, compression: Compression) -> terrarium_image::Image {
    let options = LayerOptions {
        mtime: Epoch::from_seconds(1_700_000_000),
        compression,
    };
    let mut base = LayerTree::new();
    base.insert_bytes(p("etc/passwd"), 0o644, b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n".to_vec());
    base.insert(Entry::directory(p("tmp"), 0o1777), Content::Empty);
    base.insert(
        Entry::directory(p("home/nonroot"), 0o700).owned_by(Ownership::nonroot()),
        Content::Empty,
    );
    base.insert_bytes(p(&long_name()), 0o644, b"long".to_vec());
    base.insert(
        Entry {
            path: p("app/hard"),
            kind: EntryKind::HardLink {
                target: p("app/a-target"),
            },
            mode: 0o644,
            owner: Ownership::root(),
        },
        Content::Empty,
    );
    base.insert_bytes(p("app/a-target"), 0o644, b"target".to_vec());
    base.insert(
        Entry::symlink(p("usr/bin/long-link"), format!("/{}", long_name())),
        Content::Empty,
    );
    let base = base.write(cache, options).unwrap();

    let mut app = LayerTree::new();
    add_dir(&mut app, src, &p("app"), &Ownership::root()).unwrap();
    let app = app.write(cache, options).unwrap();

    let run = RunConfig {
        user: Some("65532:65532".into()),
        working_dir: Some("/app".into()),
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ],
        cmd: vec!["/app/app.py".into()],
        exposed_ports: [Port::tcp(8000)].into(),
        volumes: ["/data".to_owned()].into(),
        labels: [
            (
                "org.opencontainers.image.source".to_owned(),
                "https://example.invalid/app".to_owned(),
            ),
            ("b.label".to_owned(), "2".to_owned()),
            ("a.label".to_owned(), "1".to_owned()),
        ]
        .into(),
        ..RunConfig::default()
    };
    ImageSpec {
        layers: vec![
            ImageLayer {
                layer: base,
                created_by: "terrarium: base".into(),
            },
            ImageLayer {
                layer: app,
                created_by: "terrarium: app".into(),
            },
        ],
        run,
        created: Epoch::from_seconds(1_700_000_000),
        platform: Platform::LinuxAmd64,
    }
    .store(cache)
    .unwrap()
}

#[test]
fn same_inputs_give_identical_digests_from_different_caches() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    project(&a.path().join("src"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    project(&b.path().join("src"));
    let image_a = build(&Cache::new(a.path().join("cache")), &a.path().join("src"));
    let image_b = build(&Cache::new(b.path().join("cache")), &b.path().join("src"));
    assert_eq!(image_a, image_b);
    for digest in image_a.blobs() {
        let blob_a = fs::read(Cache::new(a.path().join("cache")).blob_path(&digest)).unwrap();
        let blob_b = fs::read(Cache::new(b.path().join("cache")).blob_path(&digest)).unwrap();
        assert_eq!(blob_a, blob_b);
        assert_eq!(Digest::of(&blob_a), digest);
    }

    // The archives are byte-identical too.
    let cache_a = Cache::new(a.path().join("cache"));
    let cache_b = Cache::new(b.path().join("cache"));
    let tag: ImageRef = "terrarium-test/repro:1".parse().unwrap();
    write_docker_archive(
        &cache_a,
        &image_a,
        &a.path().join("out.tar"),
        std::slice::from_ref(&tag),
    )
    .unwrap();
    write_docker_archive(&cache_b, &image_b, &b.path().join("out.tar"), &[tag]).unwrap();
    assert_eq!(
        fs::read(a.path().join("out.tar")).unwrap(),
        fs::read(b.path().join("out.tar")).unwrap()
    );
}

#[test]
fn zstd_layers_are_reproducible_hold_the_same_tars_and_say_so_in_the_manifest() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    project(&a.path().join("src"));
    project(&b.path().join("src"));
    let cache_a = Cache::new(a.path().join("cache"));
    let zstd_a = build_with(&cache_a, &a.path().join("src"), Compression::Zstd);
    let zstd_b = build_with(
        &Cache::new(b.path().join("cache")),
        &b.path().join("src"),
        Compression::Zstd,
    );
    assert_eq!(zstd_a, zstd_b, "same inputs, same zstd image");
    let gzip = build_with(&cache_a, &a.path().join("src"), Compression::Gzip);
    assert_ne!(zstd_a.digest(), gzip.digest());
    for (zstd, gzip) in zstd_a.layers.iter().zip(&gzip.layers) {
        assert_eq!(zstd.compression, Compression::Zstd);
        assert_ne!(zstd.digest, gzip.digest);
        assert_eq!(zstd.diff_id, gzip.diff_id, "the tar is the same");
        let blob = fs::read(cache_a.get(&zstd.digest).unwrap().unwrap()).unwrap();
        assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        let mut tar_bytes = Vec::new();
        Compression::Zstd
            .decoder(&blob[..])
            .unwrap()
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(Digest::of(&tar_bytes), zstd.diff_id);
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(cache_a.get(&zstd_a.manifest.digest).unwrap().unwrap()).unwrap(),
    )
    .unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}

#[test]
fn an_uncompressed_archive_carries_each_layer_as_its_tar() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("src"));
    let cache = Cache::new(dir.path().join("cache"));
    let image = build_with(&cache, &dir.path().join("src"), Compression::Zstd);
    let tag: ImageRef = "terrarium-test/plain:1".parse().unwrap();
    let bytes = stream_docker_archive(
        &cache,
        &image,
        &[tag],
        1,
        ArchiveLayers::Uncompressed,
        Vec::new(),
        Path::new("test"),
    )
    .unwrap();
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(path, content);
    }
    assert!(!files.contains_key("index.json") && !files.contains_key("oci-layout"));
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers: Vec<&str> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for (path, layer) in layers.iter().zip(&image.layers) {
        assert_eq!(*path, format!("blobs/sha256/{}", layer.diff_id.hex()));
    }
    // The bottom layer is present in the engine, so left out; the top one is its plain tar.
    assert!(!files.contains_key(layers[0]));
    let top = &files[layers[1]];
    assert_eq!(Digest::of(top), image.layers[1].diff_id);
    assert_eq!(top.len() as u64, image.layers[1].uncompressed_size);
}

#[test]
fn layer_tar_is_sorted_deterministic_and_keeps_long_names() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("src"));
    let cache = Cache::new(dir.path().join("cache"));
    let image = build(&cache, &dir.path().join("src"));
    let blob = cache.get(&image.layers[0].digest).unwrap().unwrap();
    let mut tar_bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(fs::File::open(blob).unwrap())
        .read_to_end(&mut tar_bytes)
        .unwrap();
    assert_eq!(Digest::of(&tar_bytes), image.layers[0].diff_id);
    assert_eq!(tar_bytes.len() as u64, image.layers[0].uncompressed_size);

    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        assert_eq!(header.mtime().unwrap(), 1_700_000_000);
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let path = path.trim_end_matches('/').to_owned();
        match path.as_str() {
            "tmp" => assert_eq!(header.mode().unwrap(), 0o1777),
            "home/nonroot" => {
                assert_eq!(
                    (header.uid().unwrap(), header.gid().unwrap()),
                    (65532, 65532)
                );
                assert_eq!(header.username().unwrap(), Some("nonroot"));
            }
            "app/hard" => {
                assert_eq!(header.entry_type(), tar::EntryType::Link);
                assert_eq!(
                    entry.link_name().unwrap().unwrap().to_str(),
                    Some("app/a-target")
                );
            }
            "usr/bin/long-link" => {
                let target = entry.link_name().unwrap().unwrap().into_owned();
                assert_eq!(target.to_str().unwrap(), format!("/{}", long_name()));
            }
            _ if path == long_name() => {
                let mut body = String::new();
                entry.read_to_string(&mut body).unwrap();
                assert_eq!(body, "long");
            }
            _ => {}
        }
        seen.push(path);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "entries are written in sorted order");
    for expected in ["app", "etc", "home", "usr/bin", "app/hard", "tmp"] {
        assert!(
            seen.iter().any(|s| s == expected),
            "missing {expected}: {seen:?}"
        );
    }
    assert!(seen.contains(&long_name()));
}

#[test]
fn writer_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let options = LayerOptions {
        mtime: Epoch::default(),
        compression: Compression::Gzip,
    };
    let mut writer = LayerWriter::new(&cache, options).unwrap();
    writer
        .add(&Entry::file(p("b"), 1, 0o644), &b"x"[..])
        .unwrap();
    let unsorted = writer.add(&Entry::file(p("a"), 1, 0o644), &b"x"[..]);
    assert!(matches!(unsorted, Err(Error::Unsorted { .. })));
    let short = writer.add(&Entry::file(p("c"), 5, 0o644), &b"abc"[..]);
    assert!(matches!(
        short,
        Err(Error::SizeMismatch {
            declared: 5,
            actual: 3,
            ..
        })
    ));
    assert!(matches!(writer.finish(), Err(Error::LayerAborted)));

    let mut writer = LayerWriter::new(&cache, options).unwrap();
    let dangling = Entry {
        path: p("d"),
        kind: EntryKind::HardLink { target: p("zzz") },
        mode: 0o644,
        owner: Ownership::root(),
    };
    assert!(matches!(
        writer.add(&dangling, std::io::empty()),
        Err(Error::DanglingHardLink { .. })
    ));
    let long = writer.add(&Entry::file(p("c"), 2, 0o644), &b"abc"[..]);
    assert!(matches!(long, Err(Error::SizeMismatch { .. })));
    assert!(matches!(
        writer.add(&Entry::file(p("d"), 1, 0o644), &b"x"[..]),
        Err(Error::LayerAborted)
    ));
    assert!(matches!(writer.finish(), Err(Error::LayerAborted)));
    // Abandoned writers leave nothing behind: no temporary files, no blobs.
    assert_eq!(fs::read_dir(cache.tmp_dir().unwrap()).unwrap().count(), 0);
    assert!(!dir.path().join("blobs").exists());
    for bad in ["", "..", "a/../b", "./"] {
        assert!(LayerPath::new(bad).is_err(), "{bad}");
    }
    assert_eq!(p("./usr//bin/").as_str(), "usr/bin");
}

#[test]
fn oci_layout_is_written_and_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("src"));
    let cache = Cache::new(dir.path().join("cache"));
    let image = build(&cache, &dir.path().join("src"));
    let out = dir.path().join("out/layout");
    let tag: ImageRef = "app:v1".parse().unwrap();
    write_oci_layout(&cache, &image, &out, std::slice::from_ref(&tag)).unwrap();
    write_oci_layout(&cache, &image, &out, &[tag]).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], image.digest().to_string());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    for digest in image.blobs() {
        let blob = fs::read(out.join("blobs/sha256").join(digest.hex())).unwrap();
        assert_eq!(Digest::of(&blob), digest);
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(out.join("blobs/sha256").join(image.digest().hex())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["config"]["digest"],
        image.config.digest.to_string()
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    // No staging directories are left behind.
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("out")).unwrap().collect();
    assert_eq!(leftovers.len(), 1);

    // A directory that is not an OCI layout is never replaced.
    let other = dir.path().join("precious");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("keep.txt"), "x").unwrap();
    assert!(write_oci_layout(&cache, &image, &other, &[]).is_err());
    assert!(other.join("keep.txt").exists());

    // A corrupt layer blob in the cache is detected, not published.
    fs::write(cache.blob_path(&image.layers[1].digest), b"corrupt").unwrap();
    let err = write_oci_layout(&cache, &image, &dir.path().join("out2"), &[]).unwrap_err();
    assert!(matches!(err, Error::MissingBlob(_)), "{err}");
    assert!(!dir.path().join("out2").exists());
}

#[test]
fn a_layout_holding_the_image_already_is_left_alone_and_any_difference_rewrites_it() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("src"));
    let cache = Cache::new(dir.path().join("cache"));
    let image = build(&cache, &dir.path().join("src"));
    let out = dir.path().join("layout");
    let tag: ImageRef = "app:v1".parse().unwrap();
    let index_inode = || fs::metadata(out.join("index.json")).unwrap().ino();
    write_oci_layout(&cache, &image, &out, std::slice::from_ref(&tag)).unwrap();
    let written = index_inode();
    write_oci_layout(&cache, &image, &out, std::slice::from_ref(&tag)).unwrap();
    assert_eq!(
        index_inode(),
        written,
        "the same image and tags: nothing rewritten"
    );

    let blob = |digest: &Digest| out.join("blobs/sha256").join(digest.hex());
    let check = |out: &Path| {
        for digest in image.blobs() {
            let bytes = fs::read(out.join("blobs/sha256").join(digest.hex())).unwrap();
            assert_eq!(Digest::of(&bytes), digest);
        }
    };
    // Another tag, a missing blob, a blob that is a copy (even a correct one), an extra file,
    // a changed index: each is written again, whole.
    write_oci_layout(&cache, &image, &out, &["app:v2".parse().unwrap()]).unwrap();
    assert_ne!(index_inode(), written);
    let layer = image.layers[0].digest;
    for damage in 0..4 {
        write_oci_layout(&cache, &image, &out, std::slice::from_ref(&tag)).unwrap();
        let before = index_inode();
        match damage {
            0 => fs::remove_file(blob(&layer)).unwrap(),
            1 => {
                let bytes = fs::read(blob(&layer)).unwrap();
                fs::remove_file(blob(&layer)).unwrap();
                fs::write(blob(&layer), bytes).unwrap();
            }
            2 => fs::write(out.join("blobs/sha256/extra"), b"x").unwrap(),
            _ => fs::write(out.join("index.json"), b"{}").unwrap(),
        }
        write_oci_layout(&cache, &image, &out, std::slice::from_ref(&tag)).unwrap();
        assert_ne!(index_inode(), before, "damage {damage} is repaired");
        check(&out);
        assert!(!out.join("blobs/sha256/extra").exists());
    }
}

fn docker() -> Command {
    Command::new(std::env::var("TERRARIUM_DOCKER").unwrap_or_else(|_| "/usr/bin/docker".into()))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("docker runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn docker_archive_loads_into_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("src"));
    let cache = Cache::new(dir.path().join("cache"));
    let image = build(&cache, &dir.path().join("src"));
    let tag = "terrarium-test/image-crate:archive";
    let archive = dir.path().join("image.tar");
    write_docker_archive(&cache, &image, &archive, &[tag.parse().unwrap()]).unwrap();

    let loaded = run_ok(docker().arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains(tag), "{loaded}");
    let inspect = run_ok(docker().args(["image", "inspect", tag]));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["Cmd"][0], "/app/app.py");
    assert!(config["ExposedPorts"]["8000/tcp"].is_object());
    assert!(config["Volumes"]["/data"].is_object());
    assert_eq!(config["Labels"]["a.label"], "1");
    assert_eq!(inspect[0]["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(inspect[0]["Id"], image.config.digest.to_string());

    // The files arrive intact: copy one out of a created (never started) container.
    let container = run_ok(docker().args(["create", tag])).trim().to_owned();
    let copied = dir.path().join("copied.py");
    let cp = docker()
        .args(["cp", &format!("{container}:/app/app.py")])
        .arg(&copied)
        .output()
        .unwrap();
    run_ok(docker().args(["rm", &container]));
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    assert_eq!(
        fs::read_to_string(&copied).unwrap(),
        "print('hello from terrarium')\n"
    );
    run_ok(docker().args(["rmi", tag]));
}

#[test]
fn hard_links_that_sort_before_their_target_are_reordered() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let mut tree = LayerTree::new();
    tree.insert_bytes(p("z/file"), 0o755, b"data".to_vec());
    for link in ["a/link", "m/link"] {
        tree.insert(
            Entry {
                path: p(link),
                kind: EntryKind::HardLink {
                    target: p("z/file"),
                },
                mode: 0o755,
                owner: Ownership::root(),
            },
            Content::Empty,
        );
    }
    let options = LayerOptions {
        mtime: Epoch::default(),
        compression: Compression::Gzip,
    };
    let layer = tree.write(&cache, options).unwrap();
    let blob = cache.get(&layer.digest).unwrap().unwrap();
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(
        fs::File::open(blob).unwrap(),
    ));
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        seen.push((path, entry.header().entry_type(), link));
    }
    assert_eq!(
        seen,
        [
            ("a/".into(), tar::EntryType::Directory, None),
            ("a/link".into(), tar::EntryType::Regular, None),
            ("m/".into(), tar::EntryType::Directory, None),
            ("m/link".into(), tar::EntryType::Link, Some("a/link".into())),
            ("z/".into(), tar::EntryType::Directory, None),
            ("z/file".into(), tar::EntryType::Link, Some("a/link".into())),
        ]
    );

    // A hard link to nothing is an error, not a broken layer.
    let mut dangling = LayerTree::new();
    dangling.insert(
        Entry {
            path: p("x"),
            kind: EntryKind::HardLink {
                target: p("missing"),
            },
            mode: 0o644,
            owner: Ownership::root(),
        },
        Content::Empty,
    );
    assert!(matches!(
        dangling.write(&cache, options),
        Err(Error::DanglingHardLink { .. })
    ));
}
