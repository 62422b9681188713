//! Errors of wheel selection, download and installation; each says what to do.

use std::path::PathBuf;

use terrarium_image::Digest;

/// Everything that can go wrong getting wheels into an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A downloaded or cached wheel does not have the hash the lock records.
    #[error(
        "{package}: {file} has sha256 {actual}, but the lock says {expected}; the download is \
         corrupt or was tampered with (it was not cached). Retry; if it persists, check the lock \
         or the index"
    )]
    HashMismatch {
        /// The package.
        package: String,
        /// The wheel file.
        file: String,
        /// The hash from the lock.
        expected: Digest,
        /// The hash of what arrived.
        actual: Digest,
    },
    /// No wheel of the package runs on the target.
    #[error(
        "{package} {version}: unsupported wheel platform: no wheel runs on {target} (found: {found}). \
         Pick a version that publishes a wheel for it, or build with the other --distro"
    )]
    NoCompatibleWheel {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The target, e.g. `CPython 3.11, manylinux x86_64 glibc 2.36`.
        target: String,
        /// The tags of the wheels that exist (or `no wheels`).
        found: String,
    },
    /// Only a source distribution exists.
    #[error(
        "{package} {version}: only a source distribution is available ({file}); terrarium installs \
         wheels only. Pin a version that publishes a wheel, or build the wheel yourself and add it \
         to a local index"
    )]
    SdistOnly {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The sdist's file name.
        file: String,
    },
    /// A locked package has no hash to check a download against.
    #[error(
        "{package} {version}: the lock records no sha256 for it; regenerate the lock with hashes \
         (`uv lock`, `poetry lock`, `pip-compile --generate-hashes`)"
    )]
    NoHash {
        /// The package.
        package: String,
        /// Its version.
        version: String,
    },
    /// The index has no file matching the lock's hashes.
    #[error(
        "{package} {version}: the index has no file with the lock's hashes ({hashes}); the lock is \
         stale or for another index: regenerate it"
    )]
    NotOnIndex {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The hashes the lock lists.
        hashes: String,
    },
    /// Resolving unlocked requirements failed.
    #[error(
        "{requirement}: {message}. Lock the dependencies (`uv lock` or `uv pip compile \
         --generate-hashes`) and build again"
    )]
    Unresolvable {
        /// The requirement (with who needs it).
        requirement: String,
        /// Why.
        message: String,
    },
    /// The requirements cannot all be met: which conflict, who needed each, why no release
    /// fits (the leaves of the resolver's derivation).
    #[error(
        "the requirements cannot all be met:\n{explanation}\n  fix: change or pin one of them \
         ({packages}) so that they agree, or lock the dependencies (`uv lock` or `uv pip compile \
         --generate-hashes`) and build again"
    )]
    Conflict {
        /// One line per requirement involved, each saying who needs it.
        explanation: String,
        /// The packages involved, comma-separated.
        packages: String,
    },
    /// A source distribution is not a usable archive.
    #[error(
        "{file}: not a usable source distribution: {message}; pin a version that publishes a \
         wheel, or report it to the package's maintainers"
    )]
    BadSdist {
        /// The sdist's file name.
        file: String,
        /// The problem.
        message: String,
    },
    /// Building a wheel from a source distribution failed.
    #[error(
        "{package} {version}: building its wheel from source failed: {message}\n\
         last lines of the build:\n{tail}\n  fix: {fix}"
    )]
    SdistBuild {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// What went wrong.
        message: String,
        /// The last 30 lines of the backend's output.
        tail: String,
        /// How to get past it.
        fix: String,
    },
    /// A wheel rebuilt from the sdist `terrarium.lock` records differs from the one it records.
    #[error(
        "{package} {version}: the wheel built again from its sdist has sha256 {actual}, but \
         terrarium.lock records {expected}: its build is not reproducible. Delete its `built` \
         entry from terrarium.lock to accept the new wheel"
    )]
    NotReproducible {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The hash in the lock.
        expected: Digest,
        /// The hash of the new build.
        actual: Digest,
    },
    /// The build sandbox could not run.
    #[error(transparent)]
    Sandbox(#[from] terrarium_sandbox::SandboxError),
    /// A build root could not be made (its Debian packages could not be resolved or fetched).
    #[error("{package}: its build root: {source}")]
    BuildRoot {
        /// The package being built.
        package: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A requirement, marker or version could not be parsed.
    #[error("{what}: {message}")]
    Parse {
        /// What was parsed (file or requirement).
        what: String,
        /// The problem.
        message: String,
    },
    /// A wheel file name does not follow the wheel spec.
    #[error("`{0}` is not a valid wheel file name (name-version-python-abi-platform.whl)")]
    BadWheelName(String),
    /// A wheel archive is malformed.
    #[error("{file}: not a valid wheel: {message}; delete it from the cache and build again")]
    BadWheel {
        /// The wheel.
        file: String,
        /// The problem.
        message: String,
    },
    /// A wheel member does not match the wheel's own RECORD (the wheel spec makes installers
    /// check it): the wheel was altered after it was built, or built broken.
    #[error(
        "{file}: `{member}` {problem}; the wheel does not match its own RECORD, so it was altered \
         after it was built or is broken (its download matched the lock, so fetching it again will \
         not help). Pin another version of the package, or check where the lock's hash came from"
    )]
    BadRecord {
        /// The wheel file.
        file: String,
        /// The archive member (path inside the wheel).
        member: String,
        /// How it disagrees with RECORD.
        problem: RecordProblem,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The image crate failed: a download (network, 404, truncation, offline with the file
    /// missing), the cache, or layer writing.
    #[error(transparent)]
    Image(#[from] terrarium_image::Error),
    /// A bug in terrarium.
    #[error("internal error: {0}")]
    Internal(String),
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// How a wheel member disagrees with the wheel's `.dist-info/RECORD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    /// The member's sha256 is not the one RECORD lists.
    #[error("has {actual}, but RECORD says {expected}")]
    HashMismatch {
        /// The hash in RECORD (`sha256=<urlsafe base64>`).
        expected: String,
        /// The member's hash, in the same form.
        actual: String,
    },
    /// The member's size is not the one RECORD lists.
    #[error("is {actual} bytes, but RECORD says {expected}")]
    SizeMismatch {
        /// The size in RECORD.
        expected: u64,
        /// The member's size.
        actual: u64,
    },
    /// The member is not in RECORD at all.
    #[error("is not listed in RECORD")]
    NotListed,
    /// RECORD lists the member without a hash (allowed only for RECORD itself and `.pyc` files).
    #[error("is listed in RECORD without a hash")]
    NoHash,
    /// RECORD hashes the member with an algorithm other than sha256.
    #[error("has a `{0}` hash in RECORD; terrarium checks sha256 only")]
    UnsupportedHash(String),
    /// The wheel has no RECORD.
    #[error("is missing")]
    Missing,
    /// A RECORD line is not `path,hash,size` CSV.
    #[error("line {line}: {message}")]
    Malformed {
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}
