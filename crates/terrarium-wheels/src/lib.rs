//! Python wheels for terrarium images.
//!
//! - [`Target`]: the image's platform (Linux x86_64 or aarch64, the distro's CPython and glibc), its marker
//!   environment and its compatibility tags, best first; [`WheelName`] parses wheel file names.
//! - [`pins_from_lock`]: one wheel per locked main-group package, by tag priority, its URL from
//!   the lock or the [`Index`] (PyPI's Simple API, PEP 691 JSON), its sha256 from the lock;
//!   [`Index::prefetch`] fetches a known set of project pages concurrently beforehand.
//! - [`resolve`](crate::resolve()): pins for requirements that are not locked (a server terrarium
//!   adds, an unlocked project) with PubGrub, backtracking, reading dependencies from the
//!   wheels themselves; a conflict says which requirements clash and who needed them.
//! - [`fetch_wheel`] / [`fetch_all`]: verified downloads into the blob cache.
//! - [`Source`]: a source distribution unpacked and built into a wheel by its PEP 517 backend
//!   on the target's own Python in a sandbox, the wheel normalised to be reproducible
//!   ([`normalize_wheel`]) and its ELF files' needed libraries read ([`elf_needed`]).
//! - [`install_wheel`] / [`build_deps_layer`]: wheels installed per the wheel spec into a
//!   reproducible layer (site-packages, `.data/` schemes, console scripts, RECORD, INSTALLER),
//!   every member checked against the wheel's RECORD first.

#![deny(missing_docs)]

mod error;
mod fetch;
mod index;
mod install;
mod layer;
mod releases;
mod resolve;
mod sdist;
mod select;
mod tags;

pub use error::{Error, RecordProblem};
pub use fetch::{fetch_all, fetch_wheel};
pub use index::{DEFAULT_PAGE_MAX_AGE, Index, IndexFile, PYPI_SIMPLE, SIMPLE_JSON};
pub use install::{
    Installed, Spool, console_scripts, install_wheel, launcher, requires_dist,
    undeclared_pkg_resources,
};
pub use layer::{DepsLayer, build_deps_layer};
pub use releases::{
    NewestRelease, newest_release_in, newest_releases_in, release_files, releases_files,
};
pub use resolve::{LateRelease, Resolution, parse_requirement, resolve, resolve_dated};
pub use sdist::{
    BUILD_EPOCH, BuildContext, BuildSystem, Built, BuiltWheel, FRONTEND, LEGACY_BACKEND,
    LEGACY_REQUIRES, NoBuilds, Source, WheelBuilder, elf_needed, is_sdist, missing_header,
    normalize_wheel,
};
pub use select::{Pin, pins_from_lock, pins_from_lock_group};
pub use tags::{PythonLayout, Tag, Target, WheelName};
