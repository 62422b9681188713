//! Publishers: where a stored [`Image`] goes. Both write to a temporary path next to the target
//! and rename it into place, so an interrupted publish never leaves a half-written output.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::{Error, io_error};
use crate::image::{BlobRef, Image, ImageIndex, ImageRef, Platform, canonical_json};
use crate::layer::{Entry, Layer, LayerPath, append_entry};
use crate::time::Epoch;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The layout's `index.json`: `target` (an image's manifest with its platform, or an image
/// index) once per tag, or once untagged.
fn index_json(
    target: &BlobRef,
    platform: Option<Platform>,
    tags: &[ImageRef],
) -> Result<Vec<u8>, Error> {
    let descriptor = |tag: Option<&ImageRef>| {
        let mut value = json!({
            "mediaType": target.media_type,
            "digest": target.digest.to_string(),
            "size": target.size,
        });
        if let Some(platform) = platform {
            value["platform"] = platform.descriptor();
        }
        if let Some(tag) = tag {
            value["annotations"] = json!({
                "io.containerd.image.name": tag.to_string(),
                "org.opencontainers.image.ref.name": tag.tag(),
            });
        }
        value
    };
    let manifests: Vec<_> = if tags.is_empty() {
        vec![descriptor(None)]
    } else {
        tags.iter().map(|tag| descriptor(Some(tag))).collect()
    };
    canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
}

fn blob_source(cache: &Cache, digest: &Digest) -> Result<PathBuf, Error> {
    cache.get(digest)?.ok_or(Error::MissingBlob(*digest))
}

/// Write `image` as an OCI image layout directory at `dir` (`oci-layout`, `index.json`,
/// `blobs/sha256/...`), tagged with `tags` in `index.json`.
///
/// An existing `dir` is replaced only when it is an OCI layout itself (has `oci-layout`), so a
/// mistyped path never wipes unrelated files. A layout that already holds exactly this image
/// and these tags (see [`layout_is_current`]) is left as it is.
pub fn write_oci_layout(
    cache: &Cache,
    image: &Image,
    dir: &Path,
    tags: &[ImageRef],
) -> Result<(), Error> {
    let index = index_json(&image.manifest, Some(image.platform), tags)?;
    write_layout(cache, image.blobs(), &index, dir)
}

/// Write the images of `index` as an OCI image layout at `dir`, as [`write_oci_layout`] does:
/// `index.json` names the image index (tagged with `tags`), which lists each platform's
/// manifest (`skopeo copy --all oci:DIR:TAG …` and `docker buildx imagetools` read it).
pub fn write_oci_index_layout(
    cache: &Cache,
    index: &ImageIndex,
    dir: &Path,
    tags: &[ImageRef],
) -> Result<(), Error> {
    let top = index_json(&index.index, None, tags)?;
    write_layout(cache, index.blobs(), &top, dir)
}

/// Write a layout of `blobs` with `index` as its `index.json` at `dir`, replacing an older
/// layout there only once it is complete.
fn write_layout(
    cache: &Cache,
    blobs_of: impl Iterator<Item = Digest>,
    index: &[u8],
    dir: &Path,
) -> Result<(), Error> {
    let parent = parent_dir(dir)?;
    if dir.exists() && !dir.join("oci-layout").is_file() {
        return Err(Error::Io {
            path: dir.to_owned(),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not an OCI image layout; choose another output directory",
            ),
        });
    }
    let digests: std::collections::BTreeSet<Digest> = blobs_of.collect();
    if layout_is_current(cache, &digests, dir, index)? {
        return Ok(());
    }
    let staging = tempfile::Builder::new()
        .prefix(".terrarium-oci-")
        .tempdir_in(&parent)
        .map_err(io_error(&parent))?;
    let blobs = staging.path().join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(io_error(&blobs))?;
    for digest in digests {
        let target = blobs.join(digest.hex());
        if target.exists() {
            continue;
        }
        let source = blob_source(cache, &digest)?;
        // A hard link costs nothing for large layers; the cache re-verifies blobs on read, so
        // a later change through the layout is caught. Across filesystems, copy.
        if fs::hard_link(&source, &target).is_err() {
            fs::copy(&source, &target).map_err(io_error(&target))?;
        }
    }
    write_file(&staging.path().join("oci-layout"), OCI_LAYOUT)?;
    write_file(&staging.path().join("index.json"), index)?;

    // Swap: move an old layout aside, move the new one in, then delete the old one (or put it
    // back if the new one cannot be moved in).
    let old = if dir.exists() {
        let aside = tempfile::Builder::new()
            .prefix(".terrarium-oci-old-")
            .tempdir_in(&parent)
            .map_err(io_error(&parent))?;
        let aside_path = aside.path().join("layout");
        fs::rename(dir, &aside_path).map_err(io_error(dir))?;
        Some((aside, aside_path))
    } else {
        None
    };
    let staged = staging.keep();
    if let Err(err) = fs::rename(&staged, dir) {
        let _ = fs::remove_dir_all(&staged);
        if let Some((_, aside_path)) = &old {
            let _ = fs::rename(aside_path, dir);
        }
        return Err(io_error(dir)(err));
    }
    drop(old);
    Ok(())
}

/// Whether the layout at `dir` is the one [`write_layout`] would write: the same
/// `oci-layout` and `index` bytes, and exactly the `digests` blobs, each the very file the
/// cache holds (a hard link: same device and inode), whose content the cache verifies (by
/// hash, or by its stamp). A copied blob (another filesystem) or anything else counts as not
/// current, and the layout is written again.
fn layout_is_current(
    cache: &Cache,
    digests: &std::collections::BTreeSet<Digest>,
    dir: &Path,
    index: &[u8],
) -> Result<bool, Error> {
    use std::os::unix::fs::MetadataExt;
    let same_bytes = |path: PathBuf, bytes: &[u8]| fs::read(path).is_ok_and(|held| held == bytes);
    if !same_bytes(dir.join("oci-layout"), OCI_LAYOUT) || !same_bytes(dir.join("index.json"), index)
    {
        return Ok(false);
    }
    let blobs = dir.join("blobs").join("sha256");
    let held = fs::read_dir(&blobs).map_or(0, Iterator::count);
    if held != digests.len() {
        return Ok(false);
    }
    for digest in digests {
        let source = blob_source(cache, digest)?;
        let (Ok(held), Ok(cached)) = (
            fs::symlink_metadata(blobs.join(digest.hex())),
            fs::metadata(&source),
        ) else {
            return Ok(false);
        };
        if !held.is_file() || (held.dev(), held.ino()) != (cached.dev(), cached.ino()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Write `image` as a `docker load`-able tar at `file`: `manifest.json` (Docker's format) plus an
/// OCI layout (`oci-layout`, `index.json`, `blobs/sha256/...`) in the same archive, as
/// `docker save` writes since Docker 25. Entries are sorted with fixed mtimes, so the same image
/// and tags give the same bytes.
pub fn write_docker_archive(
    cache: &Cache,
    image: &Image,
    file: &Path,
    tags: &[ImageRef],
) -> Result<(), Error> {
    let parent = parent_dir(file)?;
    let mut staged = tempfile::Builder::new()
        .prefix(".terrarium-archive-")
        .tempfile_in(&parent)
        .map_err(io_error(&parent))?;
    {
        let out = BufWriter::with_capacity(1 << 16, staged.as_file_mut());
        let mut out =
            stream_docker_archive(cache, image, tags, 0, ArchiveLayers::AsStored, out, file)?;
        out.flush().map_err(io_error(file))?;
    }
    staged.as_file().sync_all().map_err(io_error(file))?;
    staged
        .persist(file)
        .map_err(|err| io_error(file)(err.error))?;
    Ok(())
}

/// How [`stream_docker_archive`] puts the layers into the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveLayers {
    /// The stored (compressed) blobs, with the OCI layout beside `manifest.json`: the archive
    /// `docker save` writes.
    AsStored,
    /// Every layer as its uncompressed tar (named by its diff ID) and `manifest.json` only:
    /// what an engine that cannot read the stored compression loads (Docker before 23 and
    /// zstd). The engine's image ID (the config's digest) is the same.
    Uncompressed,
}

/// Stream `image` as a `docker load`-able tar into `out` (with [`ArchiveLayers::AsStored`], the
/// bytes [`write_docker_archive`] writes), leaving out the blobs of its first `present` layers:
/// an engine that already has those layers (the same diff IDs in the same order below) skips
/// loading them without opening their files, so a build that changed only the top layer sends
/// only that layer. `what` names `out` in errors (e.g. `docker load`).
pub fn stream_docker_archive<W: Write>(
    cache: &Cache,
    image: &Image,
    tags: &[ImageRef],
    present: usize,
    layers: ArchiveLayers,
    out: W,
    what: &Path,
) -> Result<W, Error> {
    let mut tar = tar::Builder::new(out);
    let mtime = Epoch::default().seconds();
    let blob_path = |digest: &Digest| format!("blobs/sha256/{}", digest.hex());
    let uncompressed = layers == ArchiveLayers::Uncompressed;
    // In the archive, a layer is its blob or (uncompressed) its tar, named by its digest.
    let name = |layer: &Layer| {
        if uncompressed {
            layer.diff_id
        } else {
            layer.digest
        }
    };
    let manifest = json!([{
        "Config": blob_path(&image.config.digest),
        "RepoTags": tags.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "Layers": image.layers.iter().map(|layer| blob_path(&name(layer))).collect::<Vec<_>>(),
    }]);
    let mut repositories = BTreeMap::<String, BTreeMap<String, String>>::new();
    for tag in tags {
        if let Some(top) = image.layers.last() {
            repositories
                .entry(tag.name().to_owned())
                .or_default()
                .insert(tag.tag().to_owned(), name(top).hex());
        }
    }
    let sent = &image.layers[present.min(image.layers.len())..];
    let mut blobs: Vec<(Digest, Option<&Layer>)> = sent
        .iter()
        .map(|layer| (name(layer), Some(layer)))
        .chain([(image.config.digest, None)])
        .collect();
    if !uncompressed {
        blobs.push((image.manifest.digest, None));
    }
    blobs.sort_by_key(|(digest, _)| *digest);
    blobs.dedup_by_key(|(digest, _)| *digest);

    let path = |p: &str| LayerPath::new(p);
    let add_bytes = |tar: &mut tar::Builder<_>, name: &str, bytes: &[u8]| {
        let entry = Entry::file(path(name)?, bytes.len() as u64, 0o644);
        append_entry(tar, &entry, bytes, mtime)
    };
    append_entry(
        &mut tar,
        &Entry::directory(path("blobs")?, 0o755),
        io::empty(),
        mtime,
    )?;
    append_entry(
        &mut tar,
        &Entry::directory(path("blobs/sha256")?, 0o755),
        io::empty(),
        mtime,
    )?;
    for (digest, layer) in &blobs {
        let entry_path = path(&blob_path(digest))?;
        match layer {
            Some(layer) if uncompressed => {
                let source = blob_source(cache, &layer.digest)?;
                let reader = File::open(&source).map_err(io_error(&source))?;
                let tar_stream = layer
                    .compression
                    .decoder(io::BufReader::with_capacity(1 << 16, reader))
                    .map_err(io_error(&source))?;
                let entry = Entry::file(entry_path, layer.uncompressed_size, 0o644);
                append_entry(&mut tar, &entry, tar_stream, mtime)?;
            }
            _ => {
                let source = blob_source(cache, digest)?;
                let reader = File::open(&source).map_err(io_error(&source))?;
                let size = reader.metadata().map_err(io_error(&source))?.len();
                let entry = Entry::file(entry_path, size, 0o644);
                append_entry(&mut tar, &entry, io::BufReader::new(reader), mtime)?;
            }
        }
    }
    if !uncompressed {
        add_bytes(
            &mut tar,
            "index.json",
            &index_json(&image.manifest, Some(image.platform), tags)?,
        )?;
    }
    add_bytes(&mut tar, "manifest.json", &canonical_json(&manifest)?)?;
    if !uncompressed {
        add_bytes(&mut tar, "oci-layout", OCI_LAYOUT)?;
    }
    if !repositories.is_empty() {
        let repositories = serde_json::to_value(&repositories).map_err(|err| Error::Oci {
            what: "repositories",
            message: err.to_string(),
        })?;
        add_bytes(&mut tar, "repositories", &canonical_json(&repositories)?)?;
    }
    tar.into_inner().map_err(io_error(what))
}

fn parent_dir(path: &Path) -> Result<PathBuf, Error> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_error(&parent))?;
    Ok(parent)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageLayer, ImageSpec, RunConfig};
    use crate::layer::{LayerOptions, LayerTree};

    fn image(cache: &Cache, platform: Platform, content: &[u8]) -> Image {
        let mut tree = LayerTree::new();
        tree.insert_bytes(LayerPath::new("app/x").unwrap(), 0o644, content.to_vec());
        let layer = tree.write(cache, LayerOptions::default()).unwrap();
        ImageSpec {
            layers: vec![ImageLayer {
                layer,
                created_by: "test".into(),
            }],
            run: RunConfig::default(),
            created: Epoch::default(),
            platform,
        }
        .store(cache)
        .unwrap()
    }

    #[test]
    fn an_index_layout_lists_each_platform_under_one_tag() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        // The same layer in both images: stored once in the layout.
        let amd64 = image(&cache, Platform::LinuxAmd64, b"same");
        let arm64 = image(&cache, Platform::LinuxArm64, b"same");
        assert_ne!(amd64.digest(), arm64.digest(), "the configs differ");
        let index = ImageIndex::store(&cache, vec![amd64.clone(), arm64.clone()]).unwrap();
        let out = dir.path().join("oci");
        let tag: ImageRef = "svc:1".parse().unwrap();
        write_oci_index_layout(&cache, &index, &out, &[tag]).unwrap();

        let top: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
        let entry = &top["manifests"][0];
        assert_eq!(entry["mediaType"], crate::image::OCI_INDEX_MEDIA_TYPE);
        assert_eq!(entry["digest"], index.digest().to_string());
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "1"
        );
        assert!(entry.get("platform").is_none());
        let listed: serde_json::Value = serde_json::from_slice(
            &fs::read(out.join("blobs/sha256").join(index.digest().hex())).unwrap(),
        )
        .unwrap();
        let platforms: Vec<(String, String)> = listed["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["digest"].as_str().unwrap().to_owned(),
                    m["platform"]["architecture"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            platforms,
            [
                (amd64.digest().to_string(), "amd64".to_owned()),
                (arm64.digest().to_string(), "arm64".to_owned())
            ]
        );
        assert_eq!(listed["manifests"][1]["platform"]["variant"], "v8");
        for digest in index.blobs() {
            assert!(out.join("blobs/sha256").join(digest.hex()).is_file());
        }
    }
}
