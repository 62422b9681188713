//! Errors of the image crate.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// Everything that can go wrong while building, storing or publishing an image.
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
    /// Content did not hash to the digest it was expected to have.
    #[error(
        "{what}: sha256 mismatch, expected {expected} but got {actual}; the file is corrupt or was \
         tampered with (it was not stored; fetch it again)"
    )]
    DigestMismatch {
        /// What was being checked (a file name or URL).
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
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
    #[error("layer entry `{path}`: declared {declared} bytes but its source gave {actual}")]
    SizeMismatch {
        /// The entry.
        path: String,
        /// Its declared size.
        declared: u64,
        /// What its source yielded.
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
