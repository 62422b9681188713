//! terrarium's OCI distribution client: push built images (and artifacts such as SBOMs) to any
//! registry speaking the distribution API, and pull base images from one.
//!
//! - [`Reference`]: `REGISTRY/REPOSITORY:TAG` with Docker's defaults.
//! - [`credentials`]: Docker's credential sources (`config.json` `auths`, `credsStore`,
//!   `credHelpers` via `docker-credential-*`) and `TERRARIUM_REGISTRY_USER`/`_PASSWORD`.
//! - [`Session`]: one registry: HTTPS (plain HTTP only for loopback or `--insecure-registry`),
//!   CA certificates from `certs.d`, basic or bearer-token auth, retries with backoff.
//! - [`Pusher`]: blobs checked with `HEAD`, mounted across repositories, uploaded in one
//!   request or in chunks, in parallel; then the manifest by tag. [`Pusher::attach`] adds an
//!   OCI 1.1 referrer (an SBOM) to a pushed image, with the tag-schema fallback.
//! - [`pull`]: an image (a base for native builds) into the cache, the linux/amd64 manifest of
//!   an index, every blob verified by its digest; nothing is fetched that the cache holds.

#![deny(missing_docs)]

mod challenge;
mod client;
pub mod credentials;
mod error;
mod pull;
mod push;
mod reference;

pub use challenge::Challenge;
pub use client::{CERTS_DIR_ENV, ClientOptions, Session};
pub use credentials::{CredentialEnv, CredentialSource, Credentials};
pub use error::Error;
pub use pull::{IndexEntry, ManifestDocument, PullReference, PulledImage, pull};
pub use push::{
    Artifact, Blob, BlobOutcome, BlobReport, CHUNK_SIZE_ENV, DEFAULT_CHUNK_SIZE, DEFAULT_WORKERS,
    Manifest, PushOptions, PushReport, Pusher, ReferrerReport,
};
pub use reference::{DOCKER_HUB, Reference};
