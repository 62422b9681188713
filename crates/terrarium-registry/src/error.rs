//! Errors of the registry client: each names the registry, what was being done and, for
//! authentication, where the credentials came from.

use terrarium_image::Digest;

use crate::credentials::CredentialSource;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A push target is not `REGISTRY/REPOSITORY:TAG`.
    #[error("invalid image reference `{text}`: {reason}")]
    BadReference {
        /// What was given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A credential source could not be read (config file, helper, environment).
    #[error("{source_name}: {message}")]
    Credentials {
        /// The file, program or variable.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// An environment setting has a value that can't be used.
    #[error("{name}: {message}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The registry refused the credentials (or wanted some and there were none).
    #[error(
        "{registry}: {what} was refused (HTTP {status}: {message}); used {credentials}; check them, \
         e.g. `docker login {registry}` or TERRARIUM_REGISTRY_USER/TERRARIUM_REGISTRY_PASSWORD"
    )]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The request.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The registry's own message.
        message: String,
        /// Where the credentials came from.
        credentials: Box<CredentialSource>,
    },
    /// The registry could not be reached, or kept failing after retries.
    #[error("{registry}: {what} failed: {message}")]
    Network {
        /// The registry.
        registry: String,
        /// The request.
        what: String,
        /// The transport error chain.
        message: String,
    },
    /// TLS failed and plain HTTP is not allowed for this registry.
    #[error(
        "{registry}: HTTPS failed ({message}); plain HTTP is only used for localhost and \
         registries named with --insecure-registry"
    )]
    Insecure {
        /// The registry.
        registry: String,
        /// Why HTTPS failed.
        message: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{registry}: {what} failed with HTTP {status}: {message}")]
    Http {
        /// The registry.
        registry: String,
        /// The request.
        what: String,
        /// The status code.
        status: u16,
        /// The registry's message (its `errors` list, or the body).
        message: String,
    },
    /// The registry stored a manifest under a different digest than the one sent.
    #[error(
        "{registry}: the manifest was stored as {actual}, not {expected}; the registry rewrote \
         it, so the image digest would not be the one built"
    )]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// The digest sent.
        expected: Digest,
        /// The digest the registry reported.
        actual: String,
    },
    /// A certificate in a certs.d directory could not be read.
    #[error("{path}: {message}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The image to pull does not exist (unknown repository, tag or digest, or no
    /// linux/amd64 manifest).
    #[error("{image}: {what}")]
    NotFound {
        /// The image as written.
        image: String,
        /// What is missing.
        what: String,
    },
    /// A pulled manifest can't be read.
    #[error("{image}: the manifest can't be used: {message}")]
    BadManifest {
        /// The image.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// Pulled bytes don't hash to the digest they were asked for by (or announced with).
    #[error(
        "{image}: {what} hashes to {actual}, not {expected}: refused (a wrong pin, or the \
         registry served other bytes)"
    )]
    WrongDigest {
        /// The image.
        image: String,
        /// The manifest or blob.
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// A blob or manifest could not be read from the cache.
    #[error(transparent)]
    Image(#[from] terrarium_image::Error),
}
