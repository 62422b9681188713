//! Errors of the image crate.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// Everything that can go wrong while downloading, building, storing or publishing an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No cache directory could be determined.
    #[error("cannot find a cache directory: set TERRARIUM_CACHE_DIR (or XDG_CACHE_HOME or HOME)")]
    NoCacheDir,
    /// A metadata key is not a plain relative path.
    #[error("invalid cache metadata key `{0}` (use a relative path without `.`/`..` parts)")]
    BadMetaKey(String),
    /// A download did not hash to the digest its signed index or lock gives.
    #[error(
        "{what}: sha256 mismatch, expected {expected} but got {actual}; the download is corrupt or \
         was tampered with (it was not cached; retry, or try another mirror)"
    )]
    DigestMismatch {
        /// What was being checked (a file name or URL).
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// A download had a different size than its signed index gives.
    #[error(
        "{what}: size mismatch, expected {expected} bytes but got {actual}; retry, or try another \
         mirror"
    )]
    DownloadSizeMismatch {
        /// The file.
        what: String,
        /// The size from the signed index.
        expected: u64,
        /// The size received.
        actual: u64,
    },
    /// The network request failed (DNS, connection, TLS, HTTP status).
    #[error(
        "downloading {url} failed: {message}; check the network connection or mirror, then retry"
    )]
    Network {
        /// What was requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered 404 Not Found (not retried).
    #[error("{url}: not found (HTTP 404); check the name, or the mirror or index URL")]
    NotFound {
        /// What was requested.
        url: String,
    },
    /// The download ended before the expected number of bytes.
    #[error(
        "downloading {url} was cut short: got {actual} of {expected} bytes; nothing was cached, \
         retry the build"
    )]
    Truncated {
        /// What was requested.
        url: String,
        /// Bytes expected.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// A file is needed but the build is offline and the cache lacks it.
    #[error("offline: {what} is not in the cache; run once with network access to fetch it")]
    Offline {
        /// What is missing.
        what: String,
    },
    /// A layer entry path is empty, absolute after normalisation, or contains `..`.
    #[error("invalid path `{0}` in layer (paths are relative, without `..` parts)")]
    BadPath(String),
    /// Layer entries were not added in sorted order.
    #[error("layer entry `{path}` added after `{previous}`: entries must be added in sorted order")]
    Unsorted {
        /// The entry added.
        path: String,
        /// The entry before it.
        previous: String,
    },
    /// A hard link points at a path that is not earlier in the same layer.
    #[error("hard link `{path}` points at `{target}`, which is not a file earlier in this layer")]
    DanglingHardLink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// A file's content was shorter or longer than its declared size.
    #[error("layer entry `{path}`: declared {declared} bytes but its content gave {actual}")]
    SizeMismatch {
        /// The entry.
        path: String,
        /// Its declared size.
        declared: u64,
        /// What its content yielded.
        actual: u64,
    },
    /// A layer writer was used after one of its entries failed.
    #[error("the layer was abandoned after an earlier entry failed; start the layer again")]
    LayerAborted,
    /// A blob an image refers to is missing from the cache.
    #[error("blob {0} is missing from the cache or corrupt; rebuild the image")]
    MissingBlob(Digest),
    /// Building an OCI structure failed.
    #[error("invalid OCI {what}: {message}")]
    Oci {
        /// Which structure.
        what: &'static str,
        /// The builder's message.
        message: String,
    },
    /// An image reference or tag is malformed.
    #[error("invalid image tag `{0}` (expected NAME[:TAG], lowercase name)")]
    BadTag(String),
}

/// Map an [`io::Error`] to [`Error::Io`] naming `path`.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}
