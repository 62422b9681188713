//! `terrarium.lock`: the exact Debian packages and wheels of the last build, per distro (and per
//! architecture: amd64's at the distro's top level, as before other architectures, the others'
//! under `arch.NAME`), each section keyed by a digest of the inputs it was resolved from. When the inputs are unchanged
//! the next build installs exactly these (and needs no index, so it works offline); when they
//! change, that section is resolved again and rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use terrarium_debian::{Architecture, DebianPin, Distro};
use terrarium_image::Digest;
use terrarium_wheels::{BuiltWheel, LateRelease, Pin, is_sdist};

use crate::error::{BuildError, io_error};

/// The file name, beside the project's other files.
pub const LOCKFILE: &str = "terrarium.lock";

const HEADER: &str = "# terrarium.lock: written by `terrarium build`. The exact Debian packages and wheels of the\n\
# image, with their hashes, so the next build is identical and works offline. Commit it;\n\
# delete it (or change the project's dependencies) to resolve again.\n";

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockfile {
    /// Format version (1).
    pub version: u32,
    /// The Python the plan chose, so the next plan keeps it while the project still allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// The packages whose releases the last resolution took from after the cut-off (no
    /// earlier release had a wheel for the Python, or the earlier ones conflicted), each with
    /// the upload time of the file taken, as uv's `--exclude-newer-package NAME=MOMENT`: the
    /// plan reads them so the generated Dockerfile's uv, for which the cut-off is a hard
    /// limit, gives way for the same packages. From the amd64 image's wheels.
    #[serde(
        default,
        rename = "exclude-newer-package",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude_newer_package: Vec<String>,
    /// Per distro codename.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub distro: BTreeMap<String, DistroLock>,
    /// Per base image (as written in `base`), for builds on a base image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub base: BTreeMap<String, BaseLock>,
}

/// What a build on a base image installs, and the exact base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseLock {
    /// The base's manifest digest (the image ID for `docker://`): the next build uses exactly
    /// these bytes.
    pub digest: Digest,
    /// Its Python's full version, as it reported it.
    pub python: String,
    /// The wheels.
    pub wheels: Option<WheelsLock>,
}

/// What one distro's image installs: its amd64 image's, with the other architectures' in
/// [`arch`](Self::arch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistroLock {
    /// The Debian packages.
    pub debian: Option<DebianLock>,
    /// The wheels.
    pub wheels: Option<WheelsLock>,
    /// The wheels `terrarium test` adds over them (development and test dependencies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<WheelsLock>,
    /// The same for the images of other architectures, by Debian name (`arm64`): their own
    /// packages (each `.deb` is that architecture's) and wheels (chosen by its tags).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arch: BTreeMap<String, DistroLock>,
}

/// The Debian packages of the runtime and system layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebianLock {
    /// Digest of the inputs (distro, roots, system packages).
    pub inputs: Digest,
    /// The runtime layer's packages.
    pub runtime: Vec<DebianPin>,
    /// The system layer's packages (not in the runtime).
    #[serde(default)]
    pub system: Vec<DebianPin>,
}

/// The wheels of the deps layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelsLock {
    /// Digest of the inputs (the project's lock or requirements, added packages, target).
    pub inputs: Digest,
    /// The wheels (and the source distributions of packages that publish no wheel for the
    /// target).
    #[serde(default)]
    pub wheel: Vec<Pin>,
    /// The wheels terrarium built from those source distributions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub built: Vec<BuiltWheel>,
    /// Why packages nothing declares were added to the wheels (`setuptools 81.0.0: aiosql
    /// 3.3.1 imports pkg_resources (aiosql/__init__.py) without declaring setuptools`). `None`
    /// until the wheels were read for it (a lock written before terrarium did this): read
    /// then, without resolving the rest again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<String>>,
    /// The Debian packages the built wheels' libraries need beyond the runtime and the system
    /// packages (with what they depend on): added to the system layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<DebianPin>,
    /// The system libraries the binary wheels link without shipping them (the manylinux
    /// policy lets them: libstdc++, libgcc_s, libcrypt, X11, GL, GLib), and the Debian
    /// packages that have them. `None` until the wheels were read (a lock written before
    /// terrarium did this): read then, without resolving again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked: Option<Vec<LinkedLibrary>>,
    /// The releases among [`wheel`](Self::wheel) the resolver took from after the cut-off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<LateRelease>,
}

/// A library a binary wheel links from the system: `libstdc++.so.6` from `libstdc++6`, linked
/// by `greenlet 3.2.4`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkedLibrary {
    /// The Debian package that ships it.
    pub package: String,
    /// The soname the wheels name in `DT_NEEDED`.
    pub soname: String,
    /// The wheels that link it (`greenlet 3.2.4`).
    pub by: Vec<String>,
}

impl WheelsLock {
    /// [`late`](Self::late) as uv's `--exclude-newer-package` values (see
    /// [`LateRelease::own_cutoff`]).
    pub fn exclude_newer_package(&self) -> Vec<String> {
        self.late.iter().map(LateRelease::own_cutoff).collect()
    }

    /// Why each package of [`system`](Self::system) that a built wheel links directly is
    /// there: `libpq5 (libpq.so.5, linked by psycopg2 2.9.10)`.
    pub fn system_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        for pin in &self.system {
            let users: Vec<String> = self
                .built
                .iter()
                .filter(|b| b.system_packages.contains(&pin.name))
                .map(|b| format!("{} {}", b.name, b.version))
                .collect();
            if !users.is_empty() {
                reasons.push(format!("{} (linked by {})", pin.name, users.join(", ")));
            }
        }
        for library in self.linked.iter().flatten() {
            if self.system.iter().any(|p| p.name == library.package) {
                reasons.push(format!(
                    "{} ({}, linked by the wheels of {})",
                    library.package,
                    library.soname,
                    library.by.join(", ")
                ));
            }
        }
        reasons
    }

    /// What the deps layer installs: every wheel, with each sdist replaced by the wheel built
    /// from it.
    pub fn installed(&self) -> Vec<Pin> {
        self.wheel
            .iter()
            .map(|pin| {
                if !is_sdist(&pin.filename) {
                    return pin.clone();
                }
                self.built
                    .iter()
                    .find(|built| built.sdist == pin.sha256)
                    .map_or_else(|| pin.clone(), BuiltWheel::pin)
            })
            .collect()
    }
}

impl Lockfile {
    /// What the lock holds for `distro` on `architecture` (empty when nothing yet).
    pub fn section(&self, distro: Distro, architecture: Architecture) -> DistroLock {
        let top = self.distro.get(distro.codename());
        let section = match architecture {
            Architecture::Amd64 => top.cloned(),
            other => top.and_then(|top| top.arch.get(other.as_str()).cloned()),
        };
        let mut section = section.unwrap_or_default();
        if architecture != Architecture::Amd64 {
            section.arch.clear();
        }
        section
    }

    /// Record `section` for `distro` on `architecture`, keeping the other architectures'.
    pub fn set_section(
        &mut self,
        distro: Distro,
        architecture: Architecture,
        mut section: DistroLock,
    ) {
        let top = self.distro.entry(distro.codename().to_owned()).or_default();
        match architecture {
            Architecture::Amd64 => {
                section.arch = std::mem::take(&mut top.arch);
                *top = section;
            }
            other => {
                section.arch.clear();
                top.arch.insert(other.as_str().to_owned(), section);
            }
        }
    }

    /// Read `terrarium.lock` in `root`; an empty lock when there is none.
    pub fn read(root: &Path) -> Result<Self, BuildError> {
        let path = root.join(LOCKFILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    version: 1,
                    ..Self::default()
                });
            }
            Err(err) => return Err(io_error(&path)(err)),
        };
        let lock: Lockfile = toml::from_str(&text).map_err(|err| BuildError::BadLockfile {
            path: path.clone(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        if lock.version != 1 {
            return Err(BuildError::BadLockfile {
                path,
                message: format!("version {} is not supported (1 is)", lock.version),
            });
        }
        Ok(lock)
    }

    /// Write it into `root` atomically when its content changed; returns the path and whether
    /// it was written.
    pub fn write(&self, root: &Path) -> Result<(PathBuf, bool), BuildError> {
        let path = root.join(LOCKFILE);
        let body = toml::to_string(self).map_err(|err| BuildError::BadLockfile {
            path: path.clone(),
            message: err.to_string(),
        })?;
        let text = format!("{HEADER}\n{body}");
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok((path, false));
        }
        let mut file = tempfile::NamedTempFile::new_in(root).map_err(io_error(root))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io_error(&path))?;
        file.persist(&path)
            .map_err(|err| io_error(&path)(err.error))?;
        Ok((path, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheels(inputs: &str) -> WheelsLock {
        WheelsLock {
            inputs: Digest::of(inputs.as_bytes()),
            wheel: Vec::new(),
            built: Vec::new(),
            added: None,
            system: Vec::new(),
            linked: None,
            late: Vec::new(),
        }
    }

    #[test]
    fn each_architecture_has_its_own_section_and_amd64_stays_where_it_was() {
        let old = "version = 1\n\n[distro.bookworm.wheels]\ninputs = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n";
        let mut lock: Lockfile = toml::from_str(old).unwrap();
        let amd64 = lock.section(Distro::Bookworm, Architecture::Amd64);
        assert!(
            amd64.wheels.is_some(),
            "a lock from before reads as amd64's"
        );
        assert_eq!(
            lock.section(Distro::Bookworm, Architecture::Arm64),
            DistroLock::default()
        );

        let arm64 = DistroLock {
            wheels: Some(wheels("arm64")),
            ..DistroLock::default()
        };
        lock.set_section(Distro::Bookworm, Architecture::Arm64, arm64.clone());
        // Writing amd64's again keeps arm64's.
        lock.set_section(Distro::Bookworm, Architecture::Amd64, amd64.clone());
        let text = toml::to_string(&lock).unwrap();
        assert!(
            text.contains("[distro.bookworm.arch.arm64.wheels]"),
            "{text}"
        );
        let read: Lockfile = toml::from_str(&text).unwrap();
        assert_eq!(read.section(Distro::Bookworm, Architecture::Arm64), arm64);
        assert_eq!(
            read.section(Distro::Bookworm, Architecture::Amd64).wheels,
            amd64.wheels
        );
    }
}
