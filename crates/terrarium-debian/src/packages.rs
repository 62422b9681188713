//! Binary package indices (`Packages`): the fields terrarium needs from each stanza, across the
//! suites of a distro.

use std::collections::HashMap;
use std::io::BufRead;

use terrarium_image::Digest;

use crate::deb822::StanzaReader;
use crate::error::Error;
use crate::relation::{Dependency, parse_relations};
use crate::suite::Suite;
use crate::version::Version;

/// A binary package as listed in an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package:`
    pub name: String,
    /// `Version:`
    pub version: Version,
    /// `Architecture:` (`amd64`, `all`, ...).
    pub architecture: String,
    /// The suite whose index lists it.
    pub suite: Suite,
    /// `Filename:`, relative to the archive root.
    pub filename: String,
    /// `Size:` of the .deb.
    pub size: u64,
    /// `SHA256:` of the .deb.
    pub sha256: Digest,
    /// `Priority:` (`required`, `important`, `standard`, `optional`).
    pub priority: Option<String>,
    /// `Provides:`: virtual names with their optional versions.
    pub provides: Vec<(String, Option<Version>)>,
    pre_depends: String,
    depends: String,
}

impl Package {
    /// `Pre-Depends` then `Depends`, parsed.
    pub fn dependencies(&self) -> Result<Vec<Dependency>, Error> {
        let mut out = Vec::new();
        for (field, text) in [
            ("Pre-Depends", &self.pre_depends),
            ("Depends", &self.depends),
        ] {
            out.extend(parse_relations(text).map_err(|message| Error::Parse {
                file: format!("{} {} ({field})", self.name, self.version),
                message,
            })?);
        }
        Ok(out)
    }

    /// Rank of `Priority` for choosing among providers: required first.
    pub(crate) fn priority_rank(&self) -> u8 {
        match self.priority.as_deref() {
            Some("required") => 0,
            Some("important") => 1,
            Some("standard") => 2,
            Some("optional") => 3,
            _ => 4,
        }
    }
}

const KEPT_FIELDS: [&str; 10] = [
    "Package",
    "Version",
    "Architecture",
    "Filename",
    "Size",
    "SHA256",
    "Priority",
    "Provides",
    "Pre-Depends",
    "Depends",
];

fn keep_field(name: &str) -> bool {
    KEPT_FIELDS
        .iter()
        .any(|kept| kept.eq_ignore_ascii_case(name))
}

/// Packages from one or more suites, indexed by name and by what they provide.
#[derive(Debug, Default)]
pub struct PackageIndex {
    packages: Vec<Package>,
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<usize>>,
}

impl PackageIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add every stanza of a `Packages` file (already decompressed) from `suite`; `file` names
    /// it in errors. Only the fields terrarium needs are kept.
    pub fn add_packages_file(
        &mut self,
        reader: impl BufRead,
        suite: Suite,
        file: &str,
    ) -> Result<usize, Error> {
        let mut stanzas = StanzaReader::new(reader, file, Some(keep_field));
        let mut added = 0;
        while let Some(stanza) = stanzas.next_stanza()? {
            let parse_err = |message: String| Error::Parse {
                file: file.to_owned(),
                message,
            };
            let name = stanza
                .get("Package")
                .ok_or_else(|| parse_err("stanza without Package".into()))?;
            let required = |field: &str| {
                stanza
                    .get(field)
                    .ok_or_else(|| parse_err(format!("package {name} has no {field}")))
            };
            let version = Version::parse(required("Version")?)
                .map_err(|err| parse_err(format!("package {name}: {err}")))?;
            let sha256 = Digest::from_hex(required("SHA256")?)
                .map_err(|err| parse_err(format!("package {name}: {err}")))?;
            let size = required("Size")?
                .parse()
                .map_err(|_| parse_err(format!("package {name}: bad Size")))?;
            let provides = match stanza.get("Provides") {
                Some(text) => parse_relations(text)
                    .map_err(|err| parse_err(format!("package {name}: Provides: {err}")))?
                    .into_iter()
                    .flat_map(|dep| dep.alternatives)
                    .map(|rel| (rel.name, rel.constraint.map(|(_, version)| version)))
                    .collect(),
                None => Vec::new(),
            };
            let package = Package {
                name: name.to_owned(),
                version,
                architecture: required("Architecture")?.to_owned(),
                suite,
                filename: required("Filename")?.to_owned(),
                size,
                sha256,
                priority: stanza.get("Priority").map(str::to_owned),
                provides,
                pre_depends: stanza.get("Pre-Depends").unwrap_or("").to_owned(),
                depends: stanza.get("Depends").unwrap_or("").to_owned(),
            };
            self.insert(package);
            added += 1;
        }
        Ok(added)
    }

    /// Add one package.
    pub fn insert(&mut self, package: Package) {
        let index = self.packages.len();
        self.by_name
            .entry(package.name.clone())
            .or_default()
            .push(index);
        for (virtual_name, _) in &package.provides {
            self.providers
                .entry(virtual_name.clone())
                .or_default()
                .push(index);
        }
        self.packages.push(package);
    }

    /// Number of packages.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Every version of the package called `name`, highest first (security updates win ties
    /// over the release by coming later).
    pub fn versions(&self, name: &str) -> Vec<&Package> {
        let mut found: Vec<&Package> = self
            .by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| &self.packages[i])
            .collect();
        found.sort_by(|a, b| b.version.cmp(&a.version).then(b.suite.cmp(&a.suite)));
        found
    }

    /// The packages that provide `virtual_name`, with the provided version.
    pub fn providers(&self, virtual_name: &str) -> Vec<(&Package, Option<&Version>)> {
        self.providers
            .get(virtual_name)
            .into_iter()
            .flatten()
            .map(|&i| &self.packages[i])
            .filter_map(|package| {
                package
                    .provides
                    .iter()
                    .find(|(name, _)| name == virtual_name)
                    .map(|(_, version)| (package, version.as_ref()))
            })
            .collect()
    }
}
