//! Base images for native builds: `base = "python:3.12-slim-bookworm"` (a registry),
//! `docker://NAME` (the local engine, through `docker save`) or `oci:DIR[:NAME]` (an OCI image
//! layout), instead of the runtime terrarium assembles from Debian packages.
//!
//! The base's manifest, config and layers are brought into the cache, each verified by its
//! digest (and every layer's uncompressed tar by the config's `diff_ids`), and remembered under
//! the digest `terrarium.lock` pins: the next build uses the same bytes, from the cache, without
//! the registry or the engine. Its Python is found from the config's `PATH` and the files
//! (`python3`, `python`), then asked in the sandbox for its version, its glibc and where its
//! site-packages are, so wheels are chosen for that Python's tags and installed where it looks.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use terrarium_image::{BlobRef, Cache, Compression, Digest, HashingWriter, Layer, Progress};
use terrarium_registry::{ClientOptions, ManifestDocument, PullReference};
use terrarium_sandbox::{Rootfs, Run};
use terrarium_wheels::{PythonLayout, Target};

use crate::error::{BuildError, io_error};

/// Version of the cached base records; bump to read every base again.
const RECORD: &str = "bases/v1";

/// Where a base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// A registry: `[REGISTRY/]REPOSITORY[:TAG][@sha256:…]` (Docker's defaults).
    Registry(PullReference),
    /// The local engine: `docker://NAME[:TAG]`.
    Docker(String),
    /// An OCI image layout directory: `oci:DIR`, or `oci:DIR:NAME` for the manifest annotated
    /// with that `org.opencontainers.image.ref.name`.
    Oci {
        /// The layout.
        dir: PathBuf,
        /// The reference name, when the layout holds several images.
        name: Option<String>,
    },
}

impl BaseSource {
    /// Parse a base as written in `base` or `--base`.
    pub fn parse(text: &str) -> Result<Self, BuildError> {
        let bad = |reason: String| BuildError::Base {
            base: text.to_owned(),
            message: reason,
            fix: "write it as REGISTRY/REPOSITORY:TAG (python:3.12-slim-bookworm), \
                  docker://NAME:TAG or oci:DIR[:NAME]"
                .into(),
        };
        if let Some(name) = text.strip_prefix("docker://") {
            if name.is_empty() {
                return Err(bad("docker:// needs an image name".into()));
            }
            return Ok(Self::Docker(name.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            if rest.is_empty() {
                return Err(bad("oci: needs a directory".into()));
            }
            let path = Path::new(rest);
            if !path.join("index.json").is_file()
                && let Some((dir, name)) = rest.rsplit_once(':')
                && Path::new(dir).join("index.json").is_file()
            {
                return Ok(Self::Oci {
                    dir: dir.into(),
                    name: Some(name.to_owned()),
                });
            }
            return Ok(Self::Oci {
                dir: path.into(),
                name: None,
            });
        }
        let text = text.strip_prefix("registry://").unwrap_or(text);
        text.parse()
            .map(Self::Registry)
            .map_err(|err: terrarium_registry::Error| bad(err.to_string()))
    }
}

impl fmt::Display for BaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registry(reference) => write!(f, "{reference}"),
            Self::Docker(name) => write!(f, "docker://{name}"),
            Self::Oci { dir, name: None } => write!(f, "oci:{}", dir.display()),
            Self::Oci {
                dir,
                name: Some(name),
            } => write!(f, "oci:{}:{name}", dir.display()),
        }
    }
}

/// The Python a base image provides, as it reports itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasePython {
    /// The full version (`3.12.8`).
    pub version: String,
    /// The minor version (3.`minor`).
    pub minor: u32,
    /// The interpreter, absolute (`/usr/local/bin/python3.12`).
    pub interpreter: String,
    /// Its site-packages, on its `sys.path` (`/usr/local/lib/python3.12/site-packages`).
    pub site_packages: String,
    /// glibc's minor version (2.`glibc_minor`).
    pub glibc_minor: u32,
    /// How it was found (`python3 in /usr/local/bin, from the config's PATH`).
    pub found: String,
}

impl BasePython {
    /// The wheel target: this Python's tags and markers, its own paths (a base is linux/amd64).
    pub fn target(&self) -> Target {
        Target {
            python_minor: self.minor,
            python_full: self.version.clone(),
            glibc_minor: self.glibc_minor,
            architecture: terrarium_debian::Architecture::Amd64,
            layout: Some(PythonLayout {
                interpreter: self.interpreter.clone(),
                site_packages: self.site_packages.trim_start_matches('/').to_owned(),
            }),
        }
    }
}

/// A base image in the cache, ready to build on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The base as written.
    pub source: String,
    /// What `terrarium.lock` pins: the manifest digest (registry, OCI layout) or the image ID
    /// (the local engine's config digest).
    pub digest: Digest,
    /// Its layers, gzip-compressed, bottom first.
    pub layers: Vec<Layer>,
    /// Its config's environment.
    pub env: Vec<(String, String)>,
    /// Its Python.
    pub python: BasePython,
    /// Whether anything was pulled, saved or read from outside the cache.
    pub fetched: bool,
}

/// What the cache remembers of a base under its pinned digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    layers: Vec<Layer>,
    env: Vec<(String, String)>,
    python: BasePython,
}

/// How to reach a base.
#[derive(Clone)]
pub(crate) struct Access<'a> {
    pub cache: &'a Cache,
    pub offline: bool,
    pub insecure_registries: &'a [String],
    pub progress: &'a dyn Progress,
}

impl<'a> Access<'a> {
    /// The access `options` allow, reporting to `progress`.
    pub(crate) fn new(options: &'a crate::BuildOptions, progress: &'a dyn Progress) -> Self {
        Access {
            cache: &options.cache,
            offline: options.offline,
            insecure_registries: &options.insecure_registries,
            progress,
        }
    }
}

fn record_key(digest: &Digest) -> String {
    format!("{RECORD}/{}.json", digest.hex())
}

/// The base `source`, pinned to `pinned` when `terrarium.lock` says so: from the cache when it
/// was read before, else pulled, saved or read, verified, and its Python found.
pub(crate) fn resolve(
    source: &BaseSource,
    pinned: Option<Digest>,
    access: &Access<'_>,
) -> Result<BaseImage, BuildError> {
    let cache = access.cache;
    let text = source.to_string();
    if let Some(digest) = pinned
        && let Some(image) = from_record(cache, &text, digest)?
    {
        return Ok(image);
    }
    let fail = |message: String, fix: &str| BuildError::Base {
        base: text.clone(),
        message,
        fix: fix.to_owned(),
    };
    let (digest, config, layers) = fetch(source, pinned, access)?;
    let env: Vec<(String, String)> = config["config"]["Env"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .filter_map(|v| v.as_str()?.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let root = Rootfs::assemble(cache, &layers)?;
    let python = find_python(&root, &env, &fail)?;
    let record = Record {
        layers: layers.clone(),
        env: env.clone(),
        python: python.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|err| BuildError::Runtime {
        message: format!("writing the base record: {err}"),
    })?;
    cache.write_meta(&record_key(&digest), &json)?;
    Ok(BaseImage {
        source: text,
        digest,
        layers,
        env,
        python,
        fetched: true,
    })
}

/// The image `source` (at `pinned` when given) in the cache: the digest to pin, its config,
/// and its layers gzip-compressed and checked against the config's `diff_ids`; linux/amd64
/// only.
pub(crate) fn fetch(
    source: &BaseSource,
    pinned: Option<Digest>,
    access: &Access<'_>,
) -> Result<(Digest, serde_json::Value, Vec<Layer>), BuildError> {
    let cache = access.cache;
    let text = source.to_string();
    let fail = |message: String, fix: &str| BuildError::Base {
        base: text.clone(),
        message,
        fix: fix.to_owned(),
    };
    let (digest, config, layers) = match source {
        BaseSource::Registry(reference) => {
            let reference = match pinned {
                Some(digest) => reference.pinned(digest),
                None => reference.clone(),
            };
            let options = ClientOptions::from_env(access.insecure_registries.to_vec());
            let pulled = terrarium_registry::pull(
                cache,
                &options,
                &reference,
                access.offline,
                access.progress,
            )
            .map_err(|err| match err {
                terrarium_registry::Error::NotFound { what, .. } => fail(
                    what,
                    "check the repository and tag (`skopeo list-tags docker://REPOSITORY` \
                     lists them), or the digest pinned in terrarium.lock",
                ),
                err @ terrarium_registry::Error::WrongDigest { .. } => fail(
                    err.to_string(),
                    "pull from a registry you trust; delete the `[base]` entry of \
                     terrarium.lock only if the image was meant to change",
                ),
                err => err.into(),
            })?;
            let config = read_blob(cache, &pulled.config.digest)?;
            let layers = pulled
                .layers
                .iter()
                .map(|blob| {
                    Ok((
                        cache
                            .get(&blob.digest)?
                            .ok_or(terrarium_image::Error::MissingBlob(blob.digest))?,
                        blob.clone(),
                    ))
                })
                .collect::<Result<Vec<_>, BuildError>>()?;
            (pulled.digest, config, layers)
        }
        BaseSource::Docker(name) => {
            if access.offline {
                return Err(fail(
                    "offline, and this base is not in the cache".into(),
                    "build once without --offline",
                ));
            }
            from_docker(name, pinned, cache, &fail)?
        }
        BaseSource::Oci { dir, name } => from_oci(dir, name.as_deref(), pinned, cache, &fail)?,
    };
    if let Some(expected) = pinned
        && expected != digest
    {
        return Err(fail(
            format!("it is now {digest}, and terrarium.lock pins {expected}"),
            "the image changed: delete its `[base]` entry from terrarium.lock to build on the new one",
        ));
    }
    let config: serde_json::Value = serde_json::from_slice(&config)
        .map_err(|err| fail(format!("its config is not JSON: {err}"), "use another base"))?;
    let platform = (
        config["os"].as_str().unwrap_or("?"),
        config["architecture"].as_str().unwrap_or("?"),
    );
    if platform != ("linux", "amd64") {
        return Err(fail(
            format!("it is a {}/{} image", platform.0, platform.1),
            "native builds are linux/amd64 only: use the base's linux/amd64 image",
        ));
    }
    let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|d| d.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != layers.len() {
        return Err(fail(
            format!(
                "its config lists {} layers and its manifest {}",
                diff_ids.len(),
                layers.len()
            ),
            "use another base",
        ));
    }
    let layers = layers
        .iter()
        .zip(&diff_ids)
        .map(|((path, blob), diff_id)| import_layer(cache, path, blob, *diff_id, &fail))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((digest, config, layers))
}

/// The base remembered under `digest`, when every layer is still in the cache.
fn from_record(cache: &Cache, text: &str, digest: Digest) -> Result<Option<BaseImage>, BuildError> {
    let Some(bytes) = cache.read_meta(&record_key(&digest))? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
        return Ok(None);
    };
    for layer in &record.layers {
        if cache.get(&layer.digest)?.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(BaseImage {
        source: text.to_owned(),
        digest,
        layers: record.layers,
        env: record.env,
        python: record.python,
        fetched: false,
    }))
}

fn read_blob(cache: &Cache, digest: &Digest) -> Result<Vec<u8>, BuildError> {
    let path = cache
        .get(digest)?
        .ok_or(terrarium_image::Error::MissingBlob(*digest))?;
    std::fs::read(&path).map_err(io_error(&path))
}

type Fail<'a> = dyn Fn(String, &str) -> BuildError + 'a;

/// What a source gives: the digest to pin, the config's bytes, and each layer's file (in the
/// cache) with its descriptor.
type Fetched = (Digest, Vec<u8>, Vec<(PathBuf, BlobRef)>);

/// The pinned digest, the config's bytes and the layer files of the local engine's image
/// `name`, from `docker save` (the image ID is the config's digest, checked).
fn from_docker(
    name: &str,
    pinned: Option<Digest>,
    cache: &Cache,
    fail: &Fail<'_>,
) -> Result<Fetched, BuildError> {
    let engine = terrarium_engine::Engine::connect().map_err(|err| {
        fail(
            format!("the local engine can't be reached: {err}"),
            "start Docker, or use a registry base",
        )
    })?;
    let id = engine
        .inspect(name, "{{.Id}}")
        .map_err(|err| {
            fail(
                format!("the local engine has no such image ({err})"),
                "build or pull it first (`docker image ls` lists what there is)",
            )
        })?
        .trim()
        .to_owned();
    let id: Digest = id.parse().map_err(|_| {
        fail(
            format!("the engine gave the image ID `{id}`, not a sha256 digest"),
            "use a registry base",
        )
    })?;
    if let Some(expected) = pinned
        && expected != id
    {
        return Err(fail(
            format!("it is now {id}, and terrarium.lock pins {expected}"),
            "the image changed: delete its `[base]` entry from terrarium.lock to build on the new one",
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("docker-save-")
        .tempdir_in(cache.tmp_dir()?)
        .map_err(io_error(cache.root()))?;
    let archive = dir.path().join("image.tar");
    engine
        .output(&[
            "save".into(),
            "-o".into(),
            archive.display().to_string(),
            name.to_owned(),
        ])
        .map_err(|err| fail(format!("`docker save` failed: {err}"), "check the engine"))?;
    let unpacked = dir.path().join("image");
    let file = std::fs::File::open(&archive).map_err(io_error(&archive))?;
    tar::Archive::new(BufReader::new(file))
        .unpack(&unpacked)
        .map_err(io_error(&archive))?;
    std::fs::remove_file(&archive).map_err(io_error(&archive))?;
    let manifest_path = unpacked.join("manifest.json");
    let manifest: serde_json::Value = std::fs::read(&manifest_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            fail(
                "`docker save` wrote no readable manifest.json".into(),
                "use a registry base",
            )
        })?;
    let entry = &manifest[0];
    let inside = |value: &serde_json::Value| -> Result<PathBuf, BuildError> {
        let rel = value
            .as_str()
            .filter(|p| !p.contains(".."))
            .ok_or_else(|| {
                fail(
                    "`docker save`'s manifest.json names no file".into(),
                    "use a registry base",
                )
            })?;
        Ok(unpacked.join(rel))
    };
    let config_path = inside(&entry["Config"])?;
    let config = std::fs::read(&config_path).map_err(io_error(&config_path))?;
    if Digest::of(&config) != id {
        return Err(fail(
            format!(
                "the saved config hashes to {}, not the image ID {id}",
                Digest::of(&config)
            ),
            "check the engine",
        ));
    }
    let layers = entry["Layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|layer| {
            let path = inside(layer)?;
            let (digest, size) = Digest::of_reader(BufReader::new(
                std::fs::File::open(&path).map_err(io_error(&path))?,
            ))
            .map_err(io_error(&path))?;
            Ok((
                path,
                BlobRef {
                    digest,
                    size,
                    media_type: String::new(),
                },
            ))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    // The layer files are read (and compressed into the cache) before `dir` is removed.
    let layers = layers
        .into_iter()
        .map(|(path, blob)| {
            let kept = store_file(cache, &path, &blob.digest)?;
            Ok((kept, blob))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    Ok((id, config, layers))
}

/// Copy `path` into the cache, checking it hashes to `digest`.
fn store_file(cache: &Cache, path: &Path, digest: &Digest) -> Result<PathBuf, BuildError> {
    if let Some(found) = cache.get(digest)? {
        return Ok(found);
    }
    let mut writer = cache.writer()?;
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    io::copy(&mut file, &mut writer).map_err(io_error(path))?;
    Ok(writer
        .commit_expecting(digest, &path.display().to_string())?
        .path)
}

/// The pinned digest, the config's bytes and the layer files of an OCI image layout.
fn from_oci(
    dir: &Path,
    name: Option<&str>,
    pinned: Option<Digest>,
    cache: &Cache,
    fail: &Fail<'_>,
) -> Result<Fetched, BuildError> {
    let index_path = dir.join("index.json");
    let index = std::fs::read(&index_path).map_err(|err| {
        fail(
            format!("{}: {err}", index_path.display()),
            "give the directory of an OCI image layout (`skopeo copy … oci:DIR`, `terrarium build --output oci:DIR`)",
        )
    })?;
    let blob_path = |digest: &Digest| dir.join("blobs").join("sha256").join(digest.hex());
    let read_verified = |blob: &BlobRef| -> Result<Vec<u8>, BuildError> {
        let path = blob_path(&blob.digest);
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        if Digest::of(&bytes) != blob.digest {
            return Err(fail(
                format!("{} does not hash to its name", path.display()),
                "the layout is corrupt: write it again",
            ));
        }
        Ok(bytes)
    };
    let raw: serde_json::Value = serde_json::from_slice(&index)
        .map_err(|err| fail(format!("{}: {err}", index_path.display()), "write it again"))?;
    let entries = raw["manifests"].as_array().cloned().unwrap_or_default();
    let describe = |e: &serde_json::Value| -> Option<(BlobRef, Option<String>)> {
        Some((
            BlobRef {
                digest: e["digest"].as_str()?.parse().ok()?,
                size: e["size"].as_u64()?,
                media_type: e["mediaType"].as_str().unwrap_or_default().to_owned(),
            },
            e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_owned),
        ))
    };
    let described: Vec<(BlobRef, Option<String>)> = entries.iter().filter_map(describe).collect();
    let chosen = match (pinned, name) {
        (Some(digest), _) if described.iter().any(|(b, _)| b.digest == digest) => {
            described.iter().find(|(b, _)| b.digest == digest)
        }
        (_, Some(name)) => described.iter().find(|(_, n)| n.as_deref() == Some(name)),
        (_, None) if described.len() == 1 => described.first(),
        (_, None) => None,
    };
    let Some((blob, _)) = chosen else {
        let names: Vec<String> = described
            .iter()
            .map(|(b, n)| n.clone().unwrap_or_else(|| b.digest.to_string()))
            .collect();
        return Err(fail(
            format!(
                "the layout has no {} (it has: {})",
                name.map_or_else(
                    || "single image".to_owned(),
                    |n| format!("image named `{n}`")
                ),
                names.join(", ")
            ),
            "name one: oci:DIR:NAME",
        ));
    };
    let mut manifest_ref = blob.clone();
    let mut bytes = read_verified(&manifest_ref)?;
    if let Ok(ManifestDocument::Index(entries)) = ManifestDocument::parse(&bytes) {
        let Some(entry) = ManifestDocument::amd64(&entries) else {
            return Err(fail(
                "its index has no linux/amd64 image".into(),
                "native builds are linux/amd64 only",
            ));
        };
        manifest_ref = entry.manifest.clone();
        bytes = read_verified(&manifest_ref)?;
    }
    let ManifestDocument::Image { config, layers } =
        ManifestDocument::parse(&bytes).map_err(|message| fail(message, "use another base"))?
    else {
        return Err(fail("an index inside an index".into(), "use another base"));
    };
    let config_bytes = read_verified(&config)?;
    let layers = layers
        .into_iter()
        .map(|layer| {
            let kept = store_file(cache, &blob_path(&layer.digest), &layer.digest)?;
            Ok((kept, layer))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    Ok((manifest_ref.digest, config_bytes, layers))
}

/// A reader that hashes what passes through it.
struct Tee<R> {
    inner: R,
    hash: HashingWriter<io::Sink>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The layer of a base: its gzip or zstd blob (compressed with gzip into the cache when the
/// source has a plain tar), checked against the config's `diff_id`, with its sizes and entry
/// count; remembered under its digest so it is read once.
fn import_layer(
    cache: &Cache,
    path: &Path,
    blob: &BlobRef,
    diff_id: Digest,
    fail: &Fail<'_>,
) -> Result<Layer, BuildError> {
    let key = Digest::of(format!("{RECORD} layer {} {diff_id}", blob.digest).as_bytes());
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut magic = [0u8; 4];
    let found = file
        .read_exact(&mut magic)
        .ok()
        .and_then(|()| Compression::detect(&magic));
    drop(file);
    let compression = found.unwrap_or(Compression::Gzip);
    if let Some(layer) = cache.cached_layer(&key, compression)? {
        return Ok(layer);
    }
    let compressed = if found.is_some() {
        path.to_path_buf()
    } else {
        // The fastest level: these layers come from the engine, their digests are ours and
        // pinned by the image ID, and a 100 MB layer is compressed once.
        let mut encoder = GzEncoder::new(cache.writer()?, flate2::Compression::fast());
        let mut input = std::fs::File::open(path).map_err(io_error(path))?;
        io::copy(&mut input, &mut encoder).map_err(io_error(path))?;
        encoder.finish().map_err(io_error(path))?.commit()?.path
    };
    let input = std::fs::File::open(&compressed).map_err(io_error(&compressed))?;
    let size = input.metadata().map_err(io_error(&compressed))?.len();
    let mut tee = Tee {
        inner: compression
            .decoder(BufReader::with_capacity(1 << 16, input))
            .map_err(io_error(&compressed))?,
        hash: HashingWriter::new(io::sink()),
    };
    let mut entries = 0u64;
    {
        let mut archive = tar::Archive::new(&mut tee);
        for entry in archive.entries().map_err(io_error(&compressed))? {
            entry.map_err(io_error(&compressed))?;
            entries += 1;
        }
    }
    io::copy(&mut tee, &mut io::sink()).map_err(io_error(&compressed))?;
    let (actual, uncompressed_size, _) = tee.hash.finish();
    if actual != diff_id {
        return Err(fail(
            format!(
                "layer {} unpacks to {actual}, but its config says {diff_id}",
                blob.digest
            ),
            "the image is corrupt: pull or save it again",
        ));
    }
    let (digest, _) = Digest::of_reader(BufReader::new(
        std::fs::File::open(&compressed).map_err(io_error(&compressed))?,
    ))
    .map_err(io_error(&compressed))?;
    let layer = Layer {
        digest,
        size,
        diff_id,
        uncompressed_size,
        entries,
        compression,
    };
    cache.remember_layer(&key, &layer)?;
    Ok(layer)
}

/// Asks the interpreter what it is and where it installs.
const PROBE: &str = r#"
import json, platform, sys, sysconfig
paths = sysconfig.get_paths()
print(json.dumps({
    "implementation": sys.implementation.name,
    "version": platform.python_version(),
    "major": sys.version_info[0],
    "minor": sys.version_info[1],
    "purelib": paths["purelib"],
    "libc": list(platform.libc_ver()),
    "path": sys.path,
}))
"#;

#[derive(Deserialize)]
struct Probe {
    implementation: String,
    version: String,
    major: u32,
    minor: u32,
    purelib: String,
    libc: Vec<String>,
    path: Vec<String>,
}

/// The default `PATH` when a base's config sets none (Docker's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Find the base's Python on its `PATH` and ask it about itself in the sandbox.
fn find_python(
    root: &Rootfs,
    env: &[(String, String)],
    fail: &Fail<'_>,
) -> Result<BasePython, BuildError> {
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let exists = |inside: &str| {
        std::fs::metadata(root.path().join(inside.trim_start_matches('/'))).is_ok()
            || std::fs::symlink_metadata(root.path().join(inside.trim_start_matches('/'))).is_ok()
    };
    let dirs: Vec<&str> = path.split(':').filter(|d| d.starts_with('/')).collect();
    let found = ["python3", "python"].iter().find_map(|name| {
        dirs.iter()
            .map(|dir| format!("{}/{name}", dir.trim_end_matches('/')))
            .find(|candidate| exists(candidate))
            .map(|candidate| (candidate, *name))
    });
    let Some((program, name)) = found else {
        return Err(fail(
            format!("it has no Python: no `python3` or `python` in its PATH ({path})"),
            "use a base with CPython 3 (python:3.X-slim-…), or leave `base` unset to build on Debian's CPython",
        ));
    };
    let mut run_env: Vec<(String, String)> = env.to_vec();
    run_env.push(("HOME".into(), "/tmp".into()));
    let output = root.run(&Run {
        argv: vec![program.clone(), "-c".into(), PROBE.into()],
        env: run_env,
        cwd: "/".into(),
        mounts: Vec::new(),
        timeout: Some(std::time::Duration::from_secs(60)),
        changes: None,
    })?;
    let probe: Probe = serde_json::from_slice(&output.stdout).map_err(|err| {
        fail(
            format!("`{program}` did not describe itself ({err})"),
            "use a base with CPython 3",
        )
    })?;
    if probe.implementation != "cpython" || probe.major != 3 {
        return Err(fail(
            format!(
                "`{program}` is {} {}, not CPython 3",
                probe.implementation, probe.version
            ),
            "use a base with CPython 3",
        ));
    }
    let glibc_minor = match probe.libc.as_slice() {
        [lib, version] if lib == "glibc" => version.split('.').nth(1).and_then(|m| m.parse().ok()),
        _ => None,
    };
    let Some(glibc_minor) = glibc_minor else {
        return Err(fail(
            format!(
                "its Python does not run on glibc ({:?}): musl (Alpine) bases are not supported",
                probe.libc
            ),
            "use a Debian- or Ubuntu-based image (python:3.X-slim-bookworm)",
        ));
    };
    let on_path = |dir: &str| probe.path.iter().any(|p| p == dir);
    let site_packages = if on_path(&probe.purelib) {
        probe.purelib.clone()
    } else {
        probe
            .path
            .iter()
            .find(|p| p.ends_with("/site-packages") || p.ends_with("/dist-packages"))
            .cloned()
            .ok_or_else(|| {
                fail(
                    format!(
                        "its Python's site-packages ({}) is not on its sys.path ({})",
                        probe.purelib,
                        probe.path.join(":")
                    ),
                    "use a base whose Python has its site-packages on sys.path",
                )
            })?
    };
    let dir = program.rsplit_once('/').map_or("", |(dir, _)| dir);
    let versioned = format!("{dir}/python3.{}", probe.minor);
    let interpreter = if exists(&versioned) {
        versioned
    } else {
        program.clone()
    };
    Ok(BasePython {
        version: probe.version,
        minor: probe.minor,
        interpreter,
        site_packages,
        glibc_minor,
        found: format!("`{name}` in {dir}, from the image's PATH"),
    })
}

/// `/etc/passwd` and `/etc/group` of the base with the service's user and group added when
/// the base has no entry for their IDs (`None` when it has both).
pub(crate) fn accounts(root: &Rootfs, uid: u32, gid: u32) -> Option<(String, String)> {
    let read = |name: &str| {
        std::fs::read_to_string(root.path().join("etc").join(name)).unwrap_or_default()
    };
    let (mut passwd, mut group) = (read("passwd"), read("group"));
    let has = |text: &str, id: u32| {
        text.lines()
            .any(|line| line.split(':').nth(2) == Some(id.to_string().as_str()))
    };
    let (has_user, has_group) = (has(&passwd, uid), has(&group, gid));
    if has_user && has_group {
        return None;
    }
    for text in [&mut passwd, &mut group] {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
    }
    if !has_user {
        passwd.push_str(&format!(
            "nonroot:x:{uid}:{gid}:nonroot:/home/nonroot:/sbin/nologin\n"
        ));
    }
    if !has_group {
        group.push_str(&format!("nonroot:x:{gid}:\n"));
    }
    Some((passwd, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_sources() {
        assert!(matches!(
            BaseSource::parse("python:3.12-slim-bookworm").unwrap(),
            BaseSource::Registry(r) if r.reference.repository() == "library/python"
        ));
        assert_eq!(
            BaseSource::parse("docker://terrarium-test/python:3.11").unwrap(),
            BaseSource::Docker("terrarium-test/python:3.11".into())
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.json"), "{}").unwrap();
        let with_name = format!("oci:{}:py", dir.path().display());
        assert_eq!(
            BaseSource::parse(&with_name).unwrap(),
            BaseSource::Oci {
                dir: dir.path().into(),
                name: Some("py".into())
            }
        );
        assert_eq!(
            BaseSource::parse(&with_name).unwrap().to_string(),
            with_name
        );
        for bad in ["docker://", "oci:", "Python:3.12"] {
            let err = BaseSource::parse(bad).unwrap_err().to_string();
            assert!(err.contains("fix:"), "{bad}: {err}");
        }
    }

    #[test]
    fn adds_the_service_account_when_the_base_lacks_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\n").unwrap();
        let root = Rootfs::from_dir(dir.path());
        let (passwd, group) = accounts(&root, 65532, 65532).unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
        );
        assert_eq!(group, "root:x:0:\nnonroot:x:65532:\n");
        assert!(accounts(&root, 0, 0).is_none());
    }
}
