//! terrarium's OCI image model and reproducible output.
//!
//! - [`Digest`]: the sha256 used for every blob.
//! - [`Cache`]: the content-addressed blob cache (`$TERRARIUM_CACHE_DIR`), atomic and verified.
//! - [`Fetcher`]: HTTP downloads into the cache, verified by size and sha256, retried, in
//!   parallel ([`Fetcher::fetch_all`]) or from the cache alone (offline); progress is reported
//!   through [`Progress`], never printed. Debian packages and wheels both come through it.
//! - [`LayerWriter`] / [`LayerTree`]: reproducible, streaming layer tars (sorted entries,
//!   fixed mtime, explicit owners), compressed as pinned gzip or zstd ([`Compression`]) on
//!   several cores, hashed while written.
//! - [`ImageSpec`] → [`Image`]: config (User, WorkingDir, Env, Cmd, ports, volumes, labels,
//!   history) and manifest stored as canonical JSON.
//! - [`write_oci_layout`], [`write_docker_archive`]: publishers, both atomic.
//!
//! The same inputs give byte-identical blobs on any machine (lesson L13).

#![deny(missing_docs)]

mod cache;
mod compress;
mod digest;
mod error;
mod fetch;
mod image;
mod layer;
mod progress;
mod publish;
mod time;

pub use cache::{BlobWriter, CACHE_DIR_ENV, Cache, StoredBlob, url_key};
pub use compress::{Compression, UnknownCompression};
pub use digest::{Digest, DigestParseError, HashingWriter};
pub use error::Error;
pub use fetch::{Download, Expected, Fetcher, MAX_SMALL_DOWNLOAD, error_chain};
pub use image::{
    BlobRef, Healthcheck, Image, ImageIndex, ImageLayer, ImageRef, ImageSpec, OCI_INDEX_MEDIA_TYPE,
    Platform, Port, Protocol, RunConfig, canonical_json,
};
pub use layer::{
    Content, Entry, EntryKind, Layer, LayerOptions, LayerPath, LayerTree, LayerWriter, Ownership,
    add_dir,
};
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use publish::{
    ArchiveLayers, stream_docker_archive, write_docker_archive, write_oci_index_layout,
    write_oci_layout,
};
pub use time::{BadSourceDateEpoch, Epoch, SOURCE_DATE_EPOCH};
