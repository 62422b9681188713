//! Software bills of materials for terrarium images.
//!
//! [`scan`] reads an image's layers from the cache and lists what is installed, from the same
//! files a scanner reads: every Debian package (`var/lib/dpkg/status.d/`, with its license from
//! the DEP-5 `copyright` file) and every Python distribution (`*.dist-info/METADATA`), with the
//! sha256 of the `.deb` or wheel it came from when the lock gives one ([`Hashes`]). The result,
//! an [`Sbom`], renders as SPDX 2.3 ([`Sbom::spdx_json`]) and CycloneDX 1.6
//! ([`Sbom::cyclonedx_json`]), byte-identical for the same image.

#![deny(missing_docs)]

mod cyclonedx;
mod license;
mod purl;
mod scan;
mod spdx;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use terrarium_image::Digest;

pub use license::debian_license;
pub use scan::{scan, scan_cached};

/// Where a package comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ecosystem {
    /// A Debian package.
    Debian {
        /// `amd64`, `all`, …
        architecture: String,
        /// The source package when it differs from the binary package's name (`NAME`), or its
        /// version from the binary's (`NAME@VERSION`, a binNMU).
        source: Option<String>,
    },
    /// A Python distribution (wheel).
    Python,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Where it comes from.
    pub ecosystem: Ecosystem,
    /// Its name as installed (Debian package name; the distribution name from METADATA).
    pub name: String,
    /// Its exact version.
    pub version: String,
    /// Declared license as an SPDX expression (Debian's short names mapped; other names as
    /// `LicenseRef-…`), when the package states one.
    pub license: Option<String>,
    /// sha256 of the `.deb` or wheel it was installed from, when the lock records it.
    pub sha256: Option<Digest>,
    /// The file in the image that says it is installed.
    pub evidence: String,
}

/// What an SBOM describes and lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    /// The image's name (the project's).
    pub name: String,
    /// The image (manifest) digest.
    pub digest: Digest,
    /// Creation time, RFC 3339: the image's own, so the document is reproducible.
    pub created: String,
    /// The Debian release (`12`, `13`) from the image's os-release, for purls.
    pub distro_version: Option<String>,
    /// Packages, sorted by ecosystem then name.
    pub packages: Vec<Package>,
}

/// The sha256 of each `.deb` and wheel a build installed, keyed by name and version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashes {
    debian: HashMap<(String, String), Digest>,
    python: HashMap<(String, String), Digest>,
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become `-`.
pub fn normalize_python_name(name: &str) -> String {
    terrarium_project::PackageName::new(name)
        .as_str()
        .to_owned()
}

impl Hashes {
    /// Record a `.deb`'s hash.
    pub fn add_debian(&mut self, name: &str, version: &str, sha256: Digest) {
        self.debian
            .insert((name.to_owned(), version.to_owned()), sha256);
    }

    /// Record a wheel's hash (the name is normalised).
    pub fn add_python(&mut self, name: &str, version: &str, sha256: Digest) {
        self.python
            .insert((normalize_python_name(name), version.to_owned()), sha256);
    }

    fn lookup(&self, ecosystem: &Ecosystem, name: &str, version: &str) -> Option<Digest> {
        match ecosystem {
            Ecosystem::Debian { .. } => self
                .debian
                .get(&(name.to_owned(), version.to_owned()))
                .copied(),
            Ecosystem::Python => self
                .python
                .get(&(normalize_python_name(name), version.to_owned()))
                .copied(),
        }
    }
}

impl Sbom {
    /// The package URL of `package` (`pkg:deb/debian/…`, `pkg:pypi/…`).
    pub fn purl(&self, package: &Package) -> String {
        purl::purl(package, self.distro_version.as_deref())
    }

    /// The SPDX 2.3 JSON document.
    pub fn spdx_json(&self) -> Vec<u8> {
        spdx::document(self)
    }

    /// The CycloneDX 1.6 JSON document.
    pub fn cyclonedx_json(&self) -> Vec<u8> {
        cyclonedx::document(self)
    }
}

/// Everything that can go wrong while reading an image for its SBOM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A layer or the cache could not be read.
    #[error(transparent)]
    Image(#[from] terrarium_image::Error),
    /// A layer is not a readable gzip or zstd tar.
    #[error("layer {digest}: {message}; rebuild the image")]
    Layer {
        /// The layer.
        digest: Digest,
        /// What went wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_python_names() {
        assert_eq!(
            normalize_python_name("Flask_SQLAlchemy"),
            "flask-sqlalchemy"
        );
        assert_eq!(normalize_python_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_python_name("a--b__c"), "a-b-c");
    }
}
