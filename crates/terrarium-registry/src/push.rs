//! Pushing an image (or any OCI artifact) to a registry: every blob is checked with `HEAD` and
//! skipped when present, mounted from another repository of the same registry when terrarium
//! pushed it there before, else uploaded (one `PUT` when small, `PATCH` chunks when large);
//! then the manifest is `PUT` by tag. Uploads run in parallel and restart on connection errors
//! and 5xx; the manifest goes last, so a failed push never leaves a tag pointing at missing
//! blobs.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::Body;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use terrarium_image::{Cache, Digest, Image, Progress, ProgressEvent};

use crate::client::{ATTEMPTS, ClientOptions, Session, backoff};
use crate::error::Error;
use crate::reference::Reference;

/// Environment variable: blobs larger than this many bytes are uploaded in chunks of this
/// size (default [`DEFAULT_CHUNK_SIZE`]).
pub const CHUNK_SIZE_ENV: &str = "TERRARIUM_PUSH_CHUNK_SIZE";

/// Blobs up to this size go in one request; larger ones in chunks of this size. Large enough
/// that a typical runtime layer is one request, small enough that a failed chunk costs little.
pub const DEFAULT_CHUNK_SIZE: u64 = 32 << 20;

/// Parallel blob uploads per push.
pub const DEFAULT_WORKERS: usize = 4;

/// The header registries return a stored blob's or manifest's digest in.
const CONTENT_DIGEST: &str = "Docker-Content-Digest";

/// A blob to push, read from a file (the cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Where its bytes are.
    pub path: PathBuf,
}

/// A manifest (or index) to push, with its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The digest of `bytes`.
    pub digest: Digest,
    /// Its media type (`application/vnd.oci.image.manifest.v1+json`, …).
    pub media_type: String,
    /// The exact bytes; the digest is of these.
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// A manifest of `media_type` with these bytes.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            digest: Digest::of(&bytes),
            media_type: media_type.to_owned(),
            bytes,
        }
    }
}

/// What a push sends: the blobs a manifest refers to, and the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Config and layers (or an artifact's blobs).
    pub blobs: Vec<Blob>,
    /// The manifest, sent after every blob is in place.
    pub manifest: Manifest,
}

impl Artifact {
    /// A built image, its blobs read from `cache` (verified there).
    pub fn from_image(cache: &Cache, image: &Image) -> Result<Self, Error> {
        let blob = |digest: Digest, size: u64| -> Result<Blob, Error> {
            let path = cache
                .get(&digest)?
                .ok_or(terrarium_image::Error::MissingBlob(digest))?;
            Ok(Blob { digest, size, path })
        };
        let mut blobs = vec![blob(image.config.digest, image.config.size)?];
        for layer in &image.layers {
            blobs.push(blob(layer.digest, layer.size)?);
        }
        let path = cache
            .get(&image.manifest.digest)?
            .ok_or(terrarium_image::Error::MissingBlob(image.manifest.digest))?;
        let bytes = std::fs::read(&path).map_err(|source| terrarium_image::Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            blobs,
            manifest: Manifest::new(&image.manifest.media_type, bytes),
        })
    }
}

/// How pushes connect and upload.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Connection and credentials.
    pub client: ClientOptions,
    /// Blobs larger than this are sent in chunks of this size.
    pub chunk_size: u64,
    /// Parallel blob uploads.
    pub workers: usize,
}

impl PushOptions {
    /// Options from the environment ([`ClientOptions::from_env`], [`CHUNK_SIZE_ENV`]).
    pub fn from_env(insecure: Vec<String>) -> Result<Self, Error> {
        let chunk_size = match std::env::var(CHUNK_SIZE_ENV) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| Error::Setting {
                    name: CHUNK_SIZE_ENV,
                    message: format!("`{text}` is not a byte count of at least 1024"),
                })?,
            Err(_) => DEFAULT_CHUNK_SIZE,
        };
        Ok(Self {
            client: ClientOptions::from_env(insecure),
            chunk_size,
            workers: DEFAULT_WORKERS,
        })
    }
}

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The repository had it (`HEAD` 200); nothing sent.
    Present,
    /// Mounted from another repository of the registry; nothing sent.
    Mounted {
        /// The repository it came from.
        from: String,
    },
    /// Uploaded.
    Uploaded {
        /// Requests that carried its bytes (1 for a monolithic upload, else the chunks).
        chunks: u32,
    },
}

/// One blob's digest, size and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobReport {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// What was done.
    pub outcome: BlobOutcome,
}

/// The result of pushing one artifact to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Where it went.
    pub target: Reference,
    /// The manifest digest (the image digest).
    pub digest: Digest,
    /// The tag already pointed at this digest: nothing was sent.
    pub up_to_date: bool,
    /// Each blob, in the artifact's order (empty when up to date).
    pub blobs: Vec<BlobReport>,
    /// The registry acknowledged the manifest's `subject` (`OCI-Subject` header): it keeps
    /// the referrers list itself.
    pub subject_acknowledged: bool,
}

impl PushReport {
    /// Bytes of blob content sent.
    pub fn uploaded_bytes(&self) -> u64 {
        self.blobs
            .iter()
            .filter(|b| matches!(b.outcome, BlobOutcome::Uploaded { .. }))
            .map(|b| b.size)
            .sum()
    }

    /// `REGISTRY/REPOSITORY@sha256:…`: the pushed image by digest, for scripts.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.target.name(), self.digest)
    }
}

/// Pushes artifacts, keeping one session per registry and remembering which repository holds
/// which blob (in memory and in the cache), so the next push to another repository mounts
/// instead of uploading.
pub struct Pusher<'a> {
    cache: &'a Cache,
    options: PushOptions,
    progress: &'a dyn Progress,
    sessions: HashMap<String, Session>,
}

impl std::fmt::Debug for Pusher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("options", &self.options)
            .field("sessions", &self.sessions.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `registry` as one path component of a cache metadata key.
fn registry_component(registry: &str) -> String {
    registry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The cache metadata key remembering a repository of `registry` that holds `digest`.
fn location_key(registry: &str, digest: &Digest) -> String {
    format!(
        "registry-blobs/{}/{}",
        registry_component(registry),
        digest.hex()
    )
}

/// The cache metadata key remembering whether `registry` answered plain HTTP.
fn scheme_key(registry: &str) -> String {
    format!("registry-scheme/{}", registry_component(registry))
}

impl<'a> Pusher<'a> {
    /// A pusher reading blobs and remembering locations in `cache`, reporting upload progress.
    pub fn new(cache: &'a Cache, options: PushOptions, progress: &'a dyn Progress) -> Self {
        Self {
            cache,
            options,
            progress,
            sessions: HashMap::new(),
        }
    }

    /// The session for `registry`, connected on first use.
    pub fn session(&mut self, registry: &str) -> Result<&Session, Error> {
        if !self.sessions.contains_key(registry) {
            let key = scheme_key(registry);
            let plain_before = self.cache.read_meta(&key)?.as_deref() == Some(b"http");
            let session = Session::connect(registry, &self.options.client, plain_before)?;
            if session.is_plain_http() != plain_before {
                let scheme: &[u8] = if session.is_plain_http() {
                    b"http"
                } else {
                    b"https"
                };
                self.cache.write_meta(&key, scheme)?;
            }
            self.sessions.insert(registry.to_owned(), session);
        }
        self.sessions.get(registry).ok_or_else(|| Error::Network {
            registry: registry.to_owned(),
            what: "connecting".into(),
            message: "session lost".into(),
        })
    }

    /// Push `artifact` to `target`, tagging it with the target's tag.
    pub fn push(&mut self, artifact: &Artifact, target: &Reference) -> Result<PushReport, Error> {
        self.push_as(artifact, target, target.tag())
    }

    /// Push `artifact` to `target`'s repository under `reference` (a tag, or the manifest's
    /// digest for an untagged manifest).
    pub fn push_as(
        &mut self,
        artifact: &Artifact,
        target: &Reference,
        reference: &str,
    ) -> Result<PushReport, Error> {
        let cache = self.cache;
        let progress = self.progress;
        let chunk_size = self.options.chunk_size;
        let workers = self.options.workers.max(1);
        let session = self.session(target.registry())?;
        let repository = target.repository();
        session.ensure_scope(repository, "pull,push")?;
        let manifest_url = format!("{}/v2/{repository}/manifests/{reference}", session.base());
        let what = format!("HEAD manifest {repository}:{reference}");
        let head = session.send(&what, ATTEMPTS, || {
            session
                .client()
                .head(&manifest_url)
                .header(ACCEPT, &artifact.manifest.media_type)
        })?;
        let existing = head
            .headers()
            .get(CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if head.status().is_success()
            && existing.as_deref() == Some(artifact.manifest.digest.to_string().as_str())
        {
            return Ok(PushReport {
                target: target.clone(),
                digest: artifact.manifest.digest,
                up_to_date: true,
                blobs: Vec::new(),
                subject_acknowledged: false,
            });
        }

        // Where each blob could be mounted from.
        let mut sources = HashMap::new();
        for blob in &artifact.blobs {
            let key = location_key(target.registry(), &blob.digest);
            if let Some(bytes) = cache.read_meta(&key)?
                && let Ok(from) = String::from_utf8(bytes)
                && from != repository
                && crate::reference::valid_repository(&from)
            {
                session.ensure_scope(&from, "pull")?;
                sources.insert(blob.digest, from);
            }
        }

        let queue = Mutex::new(artifact.blobs.iter().collect::<VecDeque<_>>());
        let results = Mutex::new(HashMap::new());
        let meters: Mutex<Vec<Meter>> = Mutex::new(Vec::new());
        let done = AtomicBool::new(false);
        let upload = Upload {
            session,
            repository,
            chunk_size,
            progress,
            meters: &meters,
        };
        std::thread::scope(|scope| {
            let reporter = scope.spawn(|| report_progress(progress, &meters, &done));
            let handles: Vec<_> = (0..workers.min(artifact.blobs.len().max(1)))
                .map(|_| {
                    scope.spawn(|| {
                        loop {
                            let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                            let Some(blob) = next else { break };
                            let outcome = upload.blob(blob, sources.get(&blob.digest));
                            let failed = outcome.is_err();
                            if let Ok(mut results) = results.lock() {
                                results.insert(blob.digest, outcome);
                            }
                            if failed {
                                // Stop this worker's queue: the push fails anyway.
                                if let Ok(mut q) = queue.lock() {
                                    q.clear();
                                }
                            }
                        }
                    })
                })
                .collect();
            for handle in handles {
                let _ = handle.join();
            }
            done.store(true, Ordering::Relaxed);
            let _ = reporter.join();
        });
        let mut results = results.into_inner().unwrap_or_default();
        let mut blobs = Vec::new();
        for blob in &artifact.blobs {
            let outcome = results.remove(&blob.digest).unwrap_or_else(|| {
                Err(Error::Network {
                    registry: target.registry().to_owned(),
                    what: format!("uploading {}", blob.digest),
                    message: "not attempted after another blob failed".into(),
                })
            })?;
            blobs.push(BlobReport {
                digest: blob.digest,
                size: blob.size,
                outcome,
            });
        }

        let what = format!("PUT manifest {repository}:{reference}");
        let response = session.send(&what, ATTEMPTS, || {
            session
                .client()
                .put(&manifest_url)
                .header(CONTENT_TYPE, &artifact.manifest.media_type)
                .body(artifact.manifest.bytes.clone())
        })?;
        let response = session.check(&what, response, &[200, 201])?;
        let subject_acknowledged = response.headers().contains_key("OCI-Subject");
        if let Some(actual) = response
            .headers()
            .get(CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            && actual != artifact.manifest.digest.to_string()
        {
            return Err(Error::DigestMismatch {
                registry: target.registry().to_owned(),
                expected: artifact.manifest.digest,
                actual: actual.to_owned(),
            });
        }
        for blob in &artifact.blobs {
            cache.write_meta(
                &location_key(target.registry(), &blob.digest),
                repository.as_bytes(),
            )?;
        }
        Ok(PushReport {
            target: target.clone(),
            digest: artifact.manifest.digest,
            up_to_date: false,
            blobs,
            subject_acknowledged,
        })
    }

    /// Attach `content` (of `artifact_type`, e.g. `application/spdx+json`, named `title`) to
    /// the manifest `subject` pushed as `target`, as an OCI 1.1 referrer: an artifact manifest
    /// whose `subject` is the image, pushed by digest. A registry without the referrers API
    /// finds it through the `sha256-<hex>` tag schema instead (an index of referrers, updated
    /// in place), which this also maintains then.
    pub fn attach(
        &mut self,
        subject: &Manifest,
        target: &Reference,
        artifact_type: &str,
        title: &str,
        content: &[u8],
        created: &str,
    ) -> Result<ReferrerReport, Error> {
        let content_digest = self.cache.put_bytes(content)?;
        let empty_digest = self.cache.put_bytes(EMPTY_JSON)?;
        let blob = |digest: Digest, size: usize| -> Result<Blob, Error> {
            let path = self
                .cache
                .get(&digest)?
                .ok_or(terrarium_image::Error::MissingBlob(digest))?;
            Ok(Blob {
                digest,
                size: size as u64,
                path,
            })
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {
                "mediaType": OCI_EMPTY,
                "digest": empty_digest.to_string(),
                "size": EMPTY_JSON.len(),
                "data": "e30=",
            },
            "layers": [{
                "mediaType": artifact_type,
                "digest": content_digest.to_string(),
                "size": content.len(),
                "annotations": {"org.opencontainers.image.title": title},
            }],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest.to_string(),
                "size": subject.bytes.len(),
            },
            "annotations": {"org.opencontainers.image.created": created},
        });
        let bytes = terrarium_image::canonical_json(&manifest)?;
        let artifact = Artifact {
            blobs: vec![
                blob(empty_digest, EMPTY_JSON.len())?,
                blob(content_digest, content.len())?,
            ],
            manifest: Manifest::new(OCI_MANIFEST, bytes),
        };
        let report = self.push_as(&artifact, target, &artifact.manifest.digest.to_string())?;
        if report.subject_acknowledged {
            return Ok(ReferrerReport {
                digest: artifact.manifest.digest,
                fallback_tag: None,
            });
        }
        let session = self.session(target.registry())?;
        let repository = target.repository();
        let api = format!(
            "{}/v2/{repository}/referrers/{}",
            session.base(),
            subject.digest
        );
        let what = format!("GET referrers of {}", subject.digest);
        let response = session.send(&what, ATTEMPTS, || {
            session.client().get(&api).header(ACCEPT, OCI_INDEX)
        })?;
        if response.status().is_success()
            && response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with(OCI_INDEX))
        {
            return Ok(ReferrerReport {
                digest: artifact.manifest.digest,
                fallback_tag: None,
            });
        }
        // The tag schema: an index at `sha256-<hex>` listing the referrers.
        let tag = format!("sha256-{}", subject.digest.hex());
        let url = format!("{}/v2/{repository}/manifests/{tag}", session.base());
        let what = format!("GET {repository}:{tag}");
        let response = session.send(&what, ATTEMPTS, || {
            session.client().get(&url).header(ACCEPT, OCI_INDEX)
        })?;
        let mut index = if response.status().as_u16() == 404 {
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        } else {
            let response = session.check(&what, response, &[200])?;
            let body = response.bytes().map_err(|err| Error::Network {
                registry: target.registry().to_owned(),
                what: what.clone(),
                message: crate::client::error_chain(&err),
            })?;
            serde_json::from_slice(&body).map_err(|err| Error::Http {
                registry: target.registry().to_owned(),
                what: what.clone(),
                status: 200,
                message: format!("the referrers tag holds no OCI index: {err}"),
            })?
        };
        let digest_text = artifact.manifest.digest.to_string();
        let manifests = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| Error::Http {
                registry: target.registry().to_owned(),
                what: what.clone(),
                status: 200,
                message: "the referrers tag holds no `manifests` list".into(),
            })?;
        if !manifests
            .iter()
            .any(|m| m["digest"].as_str() == Some(digest_text.as_str()))
        {
            manifests.push(serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": digest_text,
                "size": artifact.manifest.bytes.len(),
                "artifactType": artifact_type,
                "annotations": {"org.opencontainers.image.created": created},
            }));
            let index = Artifact {
                blobs: Vec::new(),
                manifest: Manifest::new(OCI_INDEX, terrarium_image::canonical_json(&index)?),
            };
            self.push_as(&index, target, &tag)?;
        }
        Ok(ReferrerReport {
            digest: artifact.manifest.digest,
            fallback_tag: Some(tag),
        })
    }
}

/// Where a referrer went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerReport {
    /// The referrer (artifact manifest) digest.
    pub digest: Digest,
    /// The `sha256-<hex>` tag listing it, when the registry has no referrers API.
    pub fallback_tag: Option<String>,
}

/// The OCI image manifest media type.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The OCI 1.1 empty descriptor's media type, the config of artifacts without one.
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty descriptor's content.
const EMPTY_JSON: &[u8] = b"{}";

/// Bytes sent so far for one upload, polled by the progress reporter.
struct Meter {
    what: String,
    total: u64,
    sent: Arc<AtomicU64>,
}

/// Emit `Advanced` events for running uploads every 100 ms until `done`.
fn report_progress(progress: &dyn Progress, meters: &Mutex<Vec<Meter>>, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        if let Ok(meters) = meters.lock() {
            for meter in meters.iter() {
                progress.event(&ProgressEvent::Advanced {
                    what: &meter.what,
                    done: meter.sent.load(Ordering::Relaxed),
                    total: Some(meter.total),
                });
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A reader that counts what it yields into a shared counter.
struct Metered<R> {
    inner: R,
    sent: Arc<AtomicU64>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Everything a worker needs to upload blobs to one repository.
struct Upload<'s> {
    session: &'s Session,
    repository: &'s str,
    chunk_size: u64,
    progress: &'s dyn Progress,
    meters: &'s Mutex<Vec<Meter>>,
}

/// Whether an upload failing with `err` is worth starting again.
fn retryable(err: &Error) -> bool {
    match err {
        Error::Network { .. } => true,
        Error::Http { status, .. } => *status >= 500 || matches!(status, 408 | 416 | 429),
        _ => false,
    }
}

impl Upload<'_> {
    fn blob_url(&self, digest: &Digest) -> String {
        format!(
            "{}/v2/{}/blobs/{digest}",
            self.session.base(),
            self.repository
        )
    }

    /// Make `blob` present in the repository.
    fn blob(&self, blob: &Blob, mount_from: Option<&String>) -> Result<BlobOutcome, Error> {
        let session = self.session;
        let url = self.blob_url(&blob.digest);
        let what = format!("HEAD blob {}", blob.digest);
        let head = session.send(&what, ATTEMPTS, || session.client().head(&url))?;
        if head.status().is_success() {
            return Ok(BlobOutcome::Present);
        }
        session.check(&what, head, &[404])?;

        let name = format!("push {}", &blob.digest.hex()[..12]);
        let sent = Arc::new(AtomicU64::new(0));
        let mut started = false;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            sent.store(0, Ordering::Relaxed);
            match self.attempt(blob, mount_from, &sent, &name, &mut started) {
                Ok(outcome) => break Ok(outcome),
                Err(err) if retryable(&err) && attempt < ATTEMPTS => {
                    std::thread::sleep(backoff(attempt));
                }
                Err(err) => break Err(err),
            }
        };
        if started {
            if let Ok(mut meters) = self.meters.lock() {
                meters.retain(|m| m.what != name);
            }
            self.progress.event(&ProgressEvent::Finished {
                what: &name,
                cached: false,
            });
        }
        outcome
    }

    /// One try: start an upload session (or mount), send the bytes, commit by digest.
    fn attempt(
        &self,
        blob: &Blob,
        mount_from: Option<&String>,
        sent: &Arc<AtomicU64>,
        name: &str,
        started: &mut bool,
    ) -> Result<BlobOutcome, Error> {
        let session = self.session;
        let mut start = format!("{}/v2/{}/blobs/uploads/", session.base(), self.repository);
        if let Some(from) = mount_from {
            start.push_str(&format!("?mount={}&from={from}", blob.digest));
        }
        let what = format!("starting the upload of {}", blob.digest);
        let response = session.send(&what, ATTEMPTS, || {
            session.client().post(&start).header(CONTENT_LENGTH, 0)
        })?;
        let response = session.check(&what, response, &[201, 202])?;
        if response.status().as_u16() == 201
            && let Some(from) = mount_from
        {
            return Ok(BlobOutcome::Mounted { from: from.clone() });
        }
        let mut location = location(session, &response, &what)?;

        if !*started {
            *started = true;
            self.progress.event(&ProgressEvent::Started {
                what: name,
                total: Some(blob.size),
            });
            if let Ok(mut meters) = self.meters.lock() {
                meters.push(Meter {
                    what: name.to_owned(),
                    total: blob.size,
                    sent: sent.clone(),
                });
            }
        }
        let open = |offset: u64, len: u64| -> Result<Body, Error> {
            let io_err = |source| terrarium_image::Error::Io {
                path: blob.path.clone(),
                source,
            };
            let mut file = File::open(&blob.path).map_err(io_err)?;
            file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
            let reader = Metered {
                inner: file.take(len),
                sent: sent.clone(),
            };
            Ok(Body::sized(reader, len))
        };
        let commit = |location: &str| {
            let separator = if location.contains('?') { '&' } else { '?' };
            format!("{location}{separator}digest={}", blob.digest)
        };
        let what = format!("uploading {}", blob.digest);
        let chunks = if blob.size <= self.chunk_size {
            let url = commit(&location);
            let body = std::cell::RefCell::new(Some(open(0, blob.size)?));
            let response = session.send(&what, 1, || {
                let request = session
                    .client()
                    .put(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, blob.size);
                match body.borrow_mut().take() {
                    Some(body) => request.body(body),
                    None => request,
                }
            })?;
            session.check(&what, response, &[201])?;
            1
        } else {
            let mut offset = 0;
            let mut chunks = 0;
            while offset < blob.size {
                let len = self.chunk_size.min(blob.size - offset);
                let body = std::cell::RefCell::new(Some(open(offset, len)?));
                let url = location.clone();
                let response = session.send(&what, 1, || {
                    let request = session
                        .client()
                        .patch(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, len)
                        .header("Content-Range", format!("{offset}-{}", offset + len - 1));
                    match body.borrow_mut().take() {
                        Some(body) => request.body(body),
                        None => request,
                    }
                })?;
                let response = session.check(&what, response, &[202])?;
                location = self::location(session, &response, &what)?;
                offset += len;
                chunks += 1;
            }
            let url = commit(&location);
            let response = session.send(&what, ATTEMPTS, || {
                session.client().put(&url).header(CONTENT_LENGTH, 0)
            })?;
            session.check(&what, response, &[201])?;
            chunks
        };
        Ok(BlobOutcome::Uploaded { chunks })
    }
}

/// The absolute upload URL from a response's `Location`.
fn location(
    session: &Session,
    response: &reqwest::blocking::Response,
    what: &str,
) -> Result<String, Error> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| session.absolute(l))
        .ok_or_else(|| Error::Http {
            registry: session.registry().to_owned(),
            what: what.to_owned(),
            status: response.status().as_u16(),
            message: "the registry gave no upload Location".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_keys_are_plain_paths() {
        let digest = Digest::of(b"x");
        assert_eq!(
            location_key("127.0.0.1:5000", &digest),
            format!("registry-blobs/127.0.0.1_5000/{}", digest.hex())
        );
    }

    #[test]
    fn only_transient_failures_restart_an_upload() {
        let http = |status| Error::Http {
            registry: "r".into(),
            what: "w".into(),
            status,
            message: String::new(),
        };
        assert!(retryable(&http(503)));
        assert!(retryable(&http(416)));
        assert!(!retryable(&http(400)));
        assert!(retryable(&Error::Network {
            registry: "r".into(),
            what: "w".into(),
            message: "reset".into()
        }));
    }
}
