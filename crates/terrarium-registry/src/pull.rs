//! Pulling an image (a base for native builds) from a registry into the cache: the manifest by
//! tag or digest (an index resolved to its linux/amd64 manifest), then the config and every
//! layer by digest, each verified against its digest before it is kept. What the cache already
//! holds is not fetched again, and a manifest pinned by digest that is in the cache needs no
//! registry at all.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use reqwest::header::ACCEPT;
use terrarium_image::{BlobRef, Cache, Digest, Progress, ProgressEvent};

use crate::client::{ATTEMPTS, ClientOptions, Session};
use crate::error::Error;
use crate::reference::Reference;

/// The manifest media types a pull accepts, best first.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The header registries return a manifest's digest in.
const CONTENT_DIGEST: &str = "Docker-Content-Digest";

/// An image to pull: `[REGISTRY/]REPOSITORY[:TAG][@sha256:…]` (Docker's defaults for short
/// names; a digest wins over the tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PullReference {
    /// Registry, repository and tag (`latest` when none was written).
    pub reference: Reference,
    /// The manifest digest, when pinned.
    pub digest: Option<Digest>,
}

impl PullReference {
    /// The same image pinned to `digest`.
    pub fn pinned(&self, digest: Digest) -> Self {
        Self {
            reference: self.reference.clone(),
            digest: Some(digest),
        }
    }
}

impl FromStr for PullReference {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest = digest.parse().map_err(|_| Error::BadReference {
                    text: text.to_owned(),
                    reason: format!("`{digest}` is not a digest (sha256:<64 hex digits>)"),
                })?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        Ok(Self {
            reference: name.parse()?,
            digest,
        })
    }
}

impl fmt::Display for PullReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(digest) => write!(f, "{}@{digest}", self.reference),
            None => write!(f, "{}", self.reference),
        }
    }
}

/// What a manifest document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestDocument {
    /// An index (manifest list): one manifest per platform.
    Index(Vec<IndexEntry>),
    /// One image: its config and layers, base first.
    Image {
        /// The config blob.
        config: BlobRef,
        /// The layer blobs.
        layers: Vec<BlobRef>,
    },
}

/// One manifest of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The manifest.
    pub manifest: BlobRef,
    /// `linux/amd64`, `linux/arm64/v8`, … (`unknown/unknown` for attestations).
    pub platform: String,
}

#[derive(serde::Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(serde::Deserialize)]
struct RawPlatform {
    architecture: String,
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawManifest {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
}

fn blob_ref(raw: &RawDescriptor, what: &str) -> Result<BlobRef, String> {
    Ok(BlobRef {
        digest: raw
            .digest
            .parse()
            .map_err(|_| format!("{what} has the digest `{}`, not sha256:…", raw.digest))?,
        size: raw.size,
        media_type: raw.media_type.clone(),
    })
}

impl ManifestDocument {
    /// Parse an OCI or Docker v2 manifest or index; the error says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|err| format!("not a manifest (JSON: {err})"))?;
        if let Some(manifests) = raw.manifests {
            let entries = manifests
                .iter()
                .map(|m| {
                    Ok(IndexEntry {
                        manifest: blob_ref(m, "an index entry")?,
                        platform: m.platform.as_ref().map_or_else(
                            || "unknown/unknown".to_owned(),
                            |p| match &p.variant {
                                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                                None => format!("{}/{}", p.os, p.architecture),
                            },
                        ),
                    })
                })
                .collect::<Result<_, String>>()?;
            return Ok(Self::Index(entries));
        }
        match (raw.config, raw.layers) {
            (Some(config), Some(layers)) => Ok(Self::Image {
                config: blob_ref(&config, "the config")?,
                layers: layers
                    .iter()
                    .map(|l| blob_ref(l, "a layer"))
                    .collect::<Result<_, _>>()?,
            }),
            _ => Err(format!(
                "a {} without config and layers (schema 1 manifests are not supported)",
                raw.media_type.as_deref().unwrap_or("manifest")
            )),
        }
    }

    /// The linux/amd64 manifest of an index (`None` when it has none).
    pub fn amd64(entries: &[IndexEntry]) -> Option<&IndexEntry> {
        entries.iter().find(|e| e.platform == "linux/amd64")
    }
}

/// An image in the cache: its manifest, config and layers are all there, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The digest of its (linux/amd64) manifest.
    pub digest: Digest,
    /// The config blob.
    pub config: BlobRef,
    /// The layer blobs, base first.
    pub layers: Vec<BlobRef>,
    /// Whether anything was fetched (false: all of it came from the cache).
    pub fetched: bool,
}

/// Pull `image` into `cache`. With a digest whose manifest and blobs are cached, no request is
/// made; `offline` fails naming what is missing instead of connecting.
pub fn pull(
    cache: &Cache,
    options: &ClientOptions,
    image: &PullReference,
    offline: bool,
    progress: &dyn Progress,
) -> Result<PulledImage, Error> {
    let name = image.to_string();
    let not_found = |what: String| Error::NotFound {
        image: name.clone(),
        what,
    };
    if let Some(digest) = image.digest
        && let Some(pulled) = from_cache(cache, digest)?
    {
        return Ok(pulled);
    }
    if offline {
        return Err(not_found(format!(
            "offline, and {} is not in the cache",
            image
                .digest
                .map_or_else(|| "its tag's manifest".to_owned(), |d| d.to_string())
        )));
    }
    let reference = &image.reference;
    let session = Session::connect(reference.registry(), options, false)?;
    session.ensure_scope(reference.repository(), "pull")?;
    let wanted = image
        .digest
        .map_or_else(|| reference.tag().to_owned(), |d| d.to_string());
    let (bytes, digest) = get_manifest(&session, reference, &wanted, image.digest, &name)?;
    let (bytes, digest) = match ManifestDocument::parse(&bytes).map_err(|message| {
        Error::BadManifest {
            image: name.clone(),
            message,
        }
    })? {
        ManifestDocument::Index(entries) => {
            let Some(entry) = ManifestDocument::amd64(&entries) else {
                let platforms: Vec<&str> = entries.iter().map(|e| e.platform.as_str()).collect();
                return Err(not_found(format!(
                    "no linux/amd64 manifest in its index (it has {})",
                    platforms.join(", ")
                )));
            };
            let digest = entry.manifest.digest;
            get_manifest(
                &session,
                reference,
                &digest.to_string(),
                Some(digest),
                &name,
            )?
        }
        ManifestDocument::Image { .. } => (bytes, digest),
    };
    let ManifestDocument::Image { config, layers } =
        ManifestDocument::parse(&bytes).map_err(|message| Error::BadManifest {
            image: name.clone(),
            message,
        })?
    else {
        return Err(Error::BadManifest {
            image: name.clone(),
            message: "an index inside an index".into(),
        });
    };
    let stored = cache.put_bytes(&bytes)?;
    debug_assert_eq!(stored, digest);
    for blob in std::iter::once(&config).chain(&layers) {
        if cache.get(&blob.digest)?.is_none() {
            get_blob(&session, cache, reference, blob, progress)?;
        }
    }
    Ok(PulledImage {
        digest,
        config,
        layers,
        fetched: true,
    })
}

/// The image whose manifest is `digest`, when it and all its blobs are in the cache.
fn from_cache(cache: &Cache, digest: Digest) -> Result<Option<PulledImage>, Error> {
    let Some(path) = cache.get(&digest)? else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|source| {
        Error::Image(terrarium_image::Error::Io {
            path: path.clone(),
            source,
        })
    })?;
    let Ok(ManifestDocument::Image { config, layers }) = ManifestDocument::parse(&bytes) else {
        return Ok(None);
    };
    for blob in std::iter::once(&config).chain(&layers) {
        if cache.get(&blob.digest)?.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(PulledImage {
        digest,
        config,
        layers,
        fetched: false,
    }))
}

/// `GET /v2/REPO/manifests/WANTED`: its bytes and their digest, checked against `expected`
/// and against the registry's `Docker-Content-Digest`.
fn get_manifest(
    session: &Session,
    reference: &Reference,
    wanted: &str,
    expected: Option<Digest>,
    name: &str,
) -> Result<(Vec<u8>, Digest), Error> {
    let url = format!(
        "{}/v2/{}/manifests/{wanted}",
        session.base(),
        reference.repository()
    );
    let what = format!("GET manifest {}:{wanted}", reference.name());
    let response = session.send(&what, ATTEMPTS, || {
        session
            .client()
            .get(&url)
            .header(ACCEPT, MANIFEST_TYPES.join(", "))
    })?;
    if response.status().as_u16() == 404 {
        return Err(Error::NotFound {
            image: name.to_owned(),
            what: format!(
                "{} has no manifest `{wanted}` (registry: {})",
                reference.name(),
                crate::client::registry_message(response)
            ),
        });
    }
    let response = session.check(&what, response, &[200])?;
    let announced = response
        .headers()
        .get(CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    let bytes = response.bytes().map_err(|err| Error::Network {
        registry: session.registry().to_owned(),
        what: what.clone(),
        message: terrarium_image::error_chain(&err),
    })?;
    let digest = Digest::of(&bytes);
    for claimed in expected.iter().chain(announced.iter()) {
        if *claimed != digest {
            return Err(Error::WrongDigest {
                image: name.to_owned(),
                what: format!("the manifest `{wanted}`"),
                expected: *claimed,
                actual: digest,
            });
        }
    }
    Ok((bytes.to_vec(), digest))
}

/// `GET /v2/REPO/blobs/DIGEST` into the cache, kept only when it hashes to its digest.
fn get_blob(
    session: &Session,
    cache: &Cache,
    reference: &Reference,
    blob: &BlobRef,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let url = format!(
        "{}/v2/{}/blobs/{}",
        session.base(),
        reference.repository(),
        blob.digest
    );
    let what = format!("GET blob {}@{}", reference.name(), blob.digest);
    let label = format!("{} {}", reference.repository(), &blob.digest.hex()[..12]);
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        let response = session.send(&what, ATTEMPTS, || session.client().get(&url))?;
        let mut response = session.check(&what, response, &[200])?;
        progress.event(&ProgressEvent::Started {
            what: &label,
            total: Some(blob.size),
        });
        let mut writer = cache.writer()?;
        let mut buffer = vec![0u8; 1 << 16];
        let copied: std::io::Result<()> = loop {
            match response.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(err) = writer.write_all(&buffer[..n]) {
                        break Err(err);
                    }
                    progress.event(&ProgressEvent::Advanced {
                        what: &label,
                        done: writer.written(),
                        total: Some(blob.size),
                    });
                }
                Err(err) => break Err(err),
            }
        };
        progress.event(&ProgressEvent::Finished {
            what: &label,
            cached: false,
        });
        match copied {
            Ok(()) => {
                return match writer.commit_expecting(&blob.digest, &what) {
                    Ok(_) => Ok(()),
                    Err(terrarium_image::Error::DigestMismatch { actual, .. }) => {
                        Err(Error::WrongDigest {
                            image: reference.name(),
                            what: format!("the blob {}", blob.digest),
                            expected: blob.digest,
                            actual,
                        })
                    }
                    Err(err) => Err(err.into()),
                };
            }
            Err(err) => {
                last = Some(err.to_string());
                std::thread::sleep(crate::client::backoff(attempt));
            }
        }
    }
    Err(Error::Network {
        registry: session.registry().to_owned(),
        what,
        message: last.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pull_references() {
        let plain: PullReference = "python:3.12-slim".parse().unwrap();
        assert_eq!(plain.reference.repository(), "library/python");
        assert_eq!(plain.digest, None);
        let hex = "a".repeat(64);
        let pinned: PullReference = format!("localhost:5000/py:3.11@sha256:{hex}")
            .parse()
            .unwrap();
        assert_eq!(pinned.reference.registry(), "localhost:5000");
        assert_eq!(pinned.digest.unwrap().hex(), hex);
        assert_eq!(
            pinned.to_string(),
            format!("localhost:5000/py:3.11@sha256:{hex}")
        );
        let err = "py@sha256:nothex".parse::<PullReference>().unwrap_err();
        assert!(err.to_string().contains("not a digest"), "{err}");
    }

    #[test]
    fn parses_manifests_and_indexes() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":11,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let ManifestDocument::Index(entries) = ManifestDocument::parse(index).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(entries[0].platform, "linux/arm64/v8");
        assert_eq!(ManifestDocument::amd64(&entries).unwrap().manifest.size, 11);
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":5},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":7}]}"#;
        let ManifestDocument::Image { config, layers } = ManifestDocument::parse(image).unwrap()
        else {
            panic!("not an image")
        };
        assert_eq!(config.size, 5);
        assert_eq!(layers.len(), 1);
        assert!(
            ManifestDocument::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#)
                .unwrap_err()
                .contains("schema 1")
        );
    }
}
