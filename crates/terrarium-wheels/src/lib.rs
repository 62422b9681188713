//! Python wheels for terrarium images.
//!
//! - [`Target`]: the image's platform (Linux x86_64, the distro's CPython and glibc), its marker
//!   environment and its compatibility tags, best first; [`WheelName`] parses wheel file names.
//! - [`pins_from_lock`]: one wheel per locked main-group package, by tag priority, its URL from
//!   the lock or the [`Index`] (PyPI's Simple API, PEP 691 JSON), its sha256 from the lock.
//! - [`resolve`](crate::resolve()): pins for requirements that are not locked (a server terrarium
//!   adds, an unlocked project), greedily, reading dependencies from the wheels themselves.
//! - [`fetch_wheel`] / [`fetch_all`]: verified downloads into the blob cache.
//! - [`install_wheel`] / [`build_deps_layer`]: wheels installed per the wheel spec into a
//!   reproducible layer (site-packages, `.data/` schemes, console scripts, RECORD, INSTALLER),
//!   every member checked against the wheel's RECORD first.

#![deny(missing_docs)]

mod error;
mod fetch;
mod index;
mod install;
mod layer;
mod resolve;
mod select;
mod tags;

pub use error::{Error, RecordProblem};
pub use fetch::{fetch_all, fetch_wheel};
pub use index::{DEFAULT_PAGE_MAX_AGE, Index, IndexFile, PYPI_SIMPLE, SIMPLE_JSON};
pub use install::{Installed, Spool, console_scripts, install_wheel, launcher, requires_dist};
pub use layer::{DepsLayer, build_deps_layer};
pub use resolve::{parse_requirement, resolve};
pub use select::{Pin, pins_from_lock};
pub use tags::{Tag, Target, WheelName};
