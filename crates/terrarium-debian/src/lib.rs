//! terrarium's Debian archive client.
//!
//! - [`Archive`]: fetches `InRelease` for a [`Suite`] (bullseye, bookworm, trixie, forky and
//!   their security suites), verifies its OpenPGP signature against the Debian archive keys embedded in this
//!   crate ([`Keyring`]), fetches `Packages.gz` (else `Packages.xz`) verified by the sha256 in the signed
//!   [`Release`], and downloads .debs verified by sha256 into the blob cache (through
//!   terrarium-image's `Fetcher`, which wheels use too).
//! - [`resolve`]: from root package names to a closed, lockable [`PackageSet`] (see the
//!   [`resolve`](crate::resolve()) docs for how alternatives and virtual packages are chosen).
//! - [`unpack_into`] / [`build_runtime_layer`]: .deb contents into a reproducible
//!   terrarium-image layer, with `var/lib/dpkg/status.d/` entries; maintainer scripts never run.
//!
//! Progress is reported through terrarium-image's `Progress`, never printed.

#![deny(missing_docs)]

mod archive;
mod deb;
mod deb822;
mod error;
mod keyring;
mod packages;
mod relation;
mod release;
mod resolve;
mod rootfs;
mod suite;
mod version;

pub use archive::{Archive, DEFAULT_INDEX_MAX_AGE};
pub use deb::{DebControl, UnpackOptions, add_merged_usr_links, read_control, unpack_into};
pub use deb822::{Stanza, StanzaReader, parse_all};
pub use error::Error;
pub use keyring::Keyring;
pub use packages::{Package, PackageIndex};
pub use relation::{Dependency, Op, Relation, parse_relations};
pub use release::{IndexFile, Release};
pub use resolve::{
    DebianPin, DroppedDependency, PackageSet, Resolution, ResolveOptions, SCRIPT_ONLY_PACKAGES,
    resolve,
};
pub use rootfs::{
    CA_BUNDLE, accounts, add_base_files, build_packages_layer, build_runtime_layer, os_release,
    runtime_layer_key,
};
pub use suite::{Architecture, Distro, Mirror, Pocket, Suite, UnknownPlatform, UnknownSuite};
pub use version::{BadVersion, Version};
