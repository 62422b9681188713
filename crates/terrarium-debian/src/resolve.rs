//! Choosing the package set: from root packages, follow `Pre-Depends` and `Depends` to a closed
//! set, and record it as a lockable [`PackageSet`].
//!
//! # How choices are made
//! Dependencies are followed breadth-first from the roots, in the order the roots are given
//! and fields are written, so the result is the same on every run. For each dependency group
//! (`a | b | c`):
//! 1. Alternatives naming an *excluded* package ([`ResolveOptions::excluded`], by default the
//!    packages that only maintainer scripts need: `debconf`, `perl-base`, `dpkg`, ...) are
//!    removed. If none remain, the group is dropped and recorded in
//!    [`Resolution::dropped`]: maintainer scripts never run in terrarium images.
//! 2. If any remaining alternative is already satisfied by a chosen package (by name or by its
//!    `Provides`), nothing is added. This keeps the set small.
//! 3. Otherwise the *first* alternative (the maintainer's preference, as apt does) that a real
//!    package satisfies is chosen, taking its highest version that meets the constraint
//!    (security updates included).
//! 4. Otherwise, when the first satisfiable alternative is virtual, its provider is chosen by
//!    `Priority` (required, important, standard, optional), then by name; a versioned
//!    dependency only accepts a versioned `Provides` (Debian policy 7.5).
//! 5. If nothing satisfies the group, resolution fails naming the dependency and its user.
//!
//! One version of each package is chosen; a later dependency that needs another version of an
//! already chosen package is an error.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use terrarium_image::Digest;

use crate::error::Error;
use crate::packages::{Package, PackageIndex};
use crate::relation::{Dependency, Relation};
use crate::suite::{Architecture, Distro, Suite};
use crate::version::Version;

/// Packages whose only role in an image would be to run maintainer scripts or manage
/// packages; dependencies on them are dropped (see the module docs).
pub const SCRIPT_ONLY_PACKAGES: &[&str] = &[
    "adduser",
    "bash",
    "cdebconf",
    "coreutils",
    "dash",
    "debconf",
    "debconf-2.0",
    "debianutils",
    "dpkg",
    "init-system-helpers",
    "install-info",
    "lsb-base",
    "openssl",
    "passwd",
    "perl-base",
    "sensible-utils",
    "sysvinit-utils",
    "ucf",
];

/// Options for [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOptions {
    /// Names never pulled in as dependencies (roots are always installed).
    pub excluded: BTreeSet<String>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        Self {
            excluded: SCRIPT_ONLY_PACKAGES
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        }
    }
}

/// One Debian package pinned to an exact .deb, as `terrarium.lock` records it: enough to fetch
/// and verify it again without any index (the Debian counterpart of a wheel pin; a Python
/// lock's entry is `terrarium_project::LockedPackage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebianPin {
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: Version,
    /// `amd64`, `all`, ...
    pub architecture: String,
    /// The suite it comes from (decides the archive URL).
    pub suite: Suite,
    /// Path of the .deb relative to the archive root.
    pub filename: String,
    /// Size of the .deb.
    pub size: u64,
    /// sha256 of the .deb.
    pub sha256: Digest,
}

impl From<&Package> for DebianPin {
    fn from(package: &Package) -> Self {
        Self {
            name: package.name.clone(),
            version: package.version.clone(),
            architecture: package.architecture.clone(),
            suite: package.suite,
            filename: package.filename.clone(),
            size: package.size,
            sha256: package.sha256,
        }
    }
}

/// A resolved, lockable set of packages, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageSet {
    /// The distro.
    pub distro: Distro,
    /// The architecture.
    pub architecture: Architecture,
    /// The packages, sorted by name.
    pub packages: Vec<DebianPin>,
}

impl PackageSet {
    /// Total size of the .debs in bytes.
    pub fn download_size(&self) -> u64 {
        self.packages.iter().map(|package| package.size).sum()
    }

    /// The package called `name`.
    pub fn get(&self, name: &str) -> Option<&DebianPin> {
        self.packages.iter().find(|package| package.name == name)
    }
}

/// A dependency left out because all its alternatives are excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedDependency {
    /// The package that declares it.
    pub package: String,
    /// The dependency as written.
    pub dependency: String,
}

/// The result of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The chosen packages.
    pub packages: PackageSet,
    /// Dependencies dropped by the exclusion rule, for `terrarium plan` to explain.
    pub dropped: Vec<DroppedDependency>,
}

/// Resolve `roots` (package names) against `index`; see the module docs for the rules.
pub fn resolve(
    index: &PackageIndex,
    distro: Distro,
    architecture: Architecture,
    roots: &[&str],
    options: &ResolveOptions,
) -> Result<Resolution, Error> {
    let mut chosen: BTreeMap<String, &Package> = BTreeMap::new();
    let mut queue: VecDeque<&Package> = VecDeque::new();
    let mut dropped = Vec::new();
    for root in roots {
        let package = *index
            .versions(root)
            .first()
            .ok_or_else(|| Error::UnknownPackage((*root).to_owned()))?;
        if chosen.insert(package.name.clone(), package).is_none() {
            queue.push_back(package);
        }
    }
    while let Some(package) = queue.pop_front() {
        for dependency in package.dependencies()? {
            let alternatives: Vec<&Relation> = dependency
                .alternatives
                .iter()
                .filter(|relation| !options.excluded.contains(&relation.name))
                .collect();
            if alternatives.is_empty() {
                dropped.push(DroppedDependency {
                    package: package.name.clone(),
                    dependency: dependency.to_string(),
                });
                continue;
            }
            if alternatives
                .iter()
                .any(|relation| satisfied_by_chosen(relation, &chosen))
            {
                continue;
            }
            let pick = choose(index, &alternatives, &chosen, package, &dependency)?;
            chosen.insert(pick.name.clone(), pick);
            queue.push_back(pick);
        }
    }
    let packages = chosen.values().map(|package| (*package).into()).collect();
    Ok(Resolution {
        packages: PackageSet {
            distro,
            architecture,
            packages,
        },
        dropped,
    })
}

fn satisfied_by_chosen(relation: &Relation, chosen: &BTreeMap<String, &Package>) -> bool {
    if let Some(package) = chosen.get(&relation.name)
        && relation.accepts(Some(&package.version))
    {
        return true;
    }
    chosen.values().any(|package| {
        package
            .provides
            .iter()
            .any(|(name, version)| *name == relation.name && relation.accepts(version.as_ref()))
    })
}

fn choose<'a>(
    index: &'a PackageIndex,
    alternatives: &[&Relation],
    chosen: &BTreeMap<String, &Package>,
    needed_by: &Package,
    dependency: &Dependency,
) -> Result<&'a Package, Error> {
    let unsatisfiable = |reason: String| Error::Unsatisfiable {
        dependency: dependency.to_string(),
        needed_by: format!("{} {}", needed_by.name, needed_by.version),
        reason,
    };
    for relation in alternatives {
        let real = index
            .versions(&relation.name)
            .into_iter()
            .find(|package| relation.accepts(Some(&package.version)));
        let pick = match real {
            Some(package) => Some(package),
            None => {
                let mut providers: Vec<&Package> = index
                    .providers(&relation.name)
                    .into_iter()
                    .filter(|(_, version)| relation.accepts(*version))
                    .map(|(package, _)| package)
                    .collect();
                providers.sort_by(|a, b| {
                    (a.priority_rank(), &a.name)
                        .cmp(&(b.priority_rank(), &b.name))
                        .then(b.version.cmp(&a.version))
                });
                providers.into_iter().next()
            }
        };
        if let Some(package) = pick {
            if let Some(existing) = chosen.get(&package.name) {
                return Err(unsatisfiable(format!(
                    "it needs {} {} but {} was already chosen",
                    package.name, package.version, existing.version
                )));
            }
            return Ok(package);
        }
    }
    Err(unsatisfiable(
        "no package in the indices satisfies any alternative".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Pocket;

    fn index(text: &str) -> PackageIndex {
        let mut index = PackageIndex::new();
        let suite = Suite {
            distro: Distro::Bookworm,
            pocket: Pocket::Release,
        };
        index
            .add_packages_file(text.as_bytes(), suite, "Packages")
            .unwrap();
        index
    }

    fn stanza(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {}\n{extra}\n",
            "0".repeat(64)
        )
    }

    fn names(resolution: &Resolution) -> Vec<&str> {
        resolution
            .packages
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect()
    }

    #[test]
    fn follows_alternatives_providers_and_exclusions() {
        let text = [
            stanza("app", "1", "Depends: liba (>= 2) | libb, mail-transport-agent, debconf | debconf-2.0\nPre-Depends: libc6"),
            stanza("liba", "1", ""),
            stanza("liba", "2", "Depends: libc6"),
            stanza("libb", "1", ""),
            stanza("libc6", "2.36", ""),
            stanza("postfix", "3", "Provides: mail-transport-agent\nPriority: optional"),
            stanza("exim4", "4", "Provides: mail-transport-agent\nPriority: standard"),
        ]
        .join("\n");
        let index = index(&text);
        let resolution = resolve(
            &index,
            Distro::Bookworm,
            Architecture::Amd64,
            &["app"],
            &ResolveOptions::default(),
        )
        .unwrap();
        assert_eq!(names(&resolution), ["app", "exim4", "liba", "libc6"]);
        assert_eq!(
            resolution.packages.get("liba").unwrap().version.as_str(),
            "2"
        );
        assert_eq!(resolution.dropped.len(), 1);
        assert_eq!(resolution.dropped[0].dependency, "debconf | debconf-2.0");
    }

    #[test]
    fn reports_unsatisfiable_and_unknown() {
        let index = index(&stanza("app", "1", "Depends: missing (>= 1)"));
        let opts = ResolveOptions::default();
        let err = resolve(
            &index,
            Distro::Bookworm,
            Architecture::Amd64,
            &["app"],
            &opts,
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing (>= 1)"), "{err}");
        let err = resolve(
            &index,
            Distro::Bookworm,
            Architecture::Amd64,
            &["nope"],
            &opts,
        )
        .unwrap_err();
        assert!(matches!(err, Error::UnknownPackage(_)));
    }
}
