//! From a project's lock to one wheel per package for the target: markers evaluated, the best
//! wheel by tag priority, its URL from the lock or the index, its sha256 from the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerTree};
use serde::{Deserialize, Serialize};
use terrarium_image::Digest;
use terrarium_project::{Group, Lock, LockedPackage};

use crate::error::Error;
use crate::index::{Index, IndexFile};
use crate::sdist::is_sdist;
use crate::tags::{Tag, Target, WheelName};

/// One wheel chosen for the image: enough to fetch and verify it again without any index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pin {
    /// Normalized distribution name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// The wheel's file name.
    pub filename: String,
    /// Where to download it.
    pub url: String,
    /// Its sha256 (from the lock, or from the index for packages terrarium resolved itself).
    pub sha256: Digest,
}

/// A candidate wheel: file name, URL and hash.
struct Candidate {
    wheel: WheelName,
    url: String,
    sha256: Digest,
}

/// A description of the target for error messages.
pub(crate) fn describe(target: &Target) -> String {
    format!(
        "CPython {}, manylinux {} glibc 2.{}",
        target.python_version(),
        target.architecture.machine(),
        target.glibc_minor
    )
}

/// Whether `marker` (from `what`) holds on `env`; no marker always holds.
pub(crate) fn marker_holds(
    marker: Option<&str>,
    env: &MarkerEnvironment,
    what: &str,
) -> Result<bool, Error> {
    let Some(marker) = marker.filter(|m| !m.trim().is_empty()) else {
        return Ok(true);
    };
    let tree = MarkerTree::from_str(marker).map_err(|err| Error::Parse {
        what: what.to_owned(),
        message: format!("bad environment marker `{marker}`: {err}"),
    })?;
    Ok(tree.evaluate(env, &[]))
}

/// The best wheel among `candidates` for `supported` tags.
fn best(candidates: Vec<Candidate>, supported: &[Tag]) -> Option<Candidate> {
    candidates
        .into_iter()
        .filter_map(|c| c.wheel.priority(supported).map(|p| (p, c)))
        .min_by(|(pa, a), (pb, b)| pa.cmp(pb).then(a.wheel.filename.cmp(&b.wheel.filename)))
        .map(|(_, c)| c)
}

/// The wheels to install for the main group of `lock` on `target`: the best wheel of each
/// package, or its source distribution when no wheel runs on the target (terrarium builds it).
/// Packages whose marker does not hold on the target are left out; when a lock lists several versions of a package (forks
/// by Python version), the highest one with a wheel for the target is taken. Locks that record
/// only hashes (Pipfile.lock, requirements files) or file names without URLs (poetry.lock) are
/// completed from `index` by matching the hashes.
pub fn pins_from_lock(lock: &Lock, target: &Target, index: &Index) -> Result<Vec<Pin>, Error> {
    pins_from_lock_group(lock, Group::Main, target, index)
}

/// The wheels to install for one `group` of `lock` on `target`, chosen as [`pins_from_lock`]
/// chooses the main group's: `terrarium test` installs the dev group over the main one.
pub fn pins_from_lock_group(
    lock: &Lock,
    group: Group,
    target: &Target,
    index: &Index,
) -> Result<Vec<Pin>, Error> {
    let env = target.marker_environment()?;
    let supported = target.supported_tags();
    let what = lock.path.display().to_string();
    let mut by_name: BTreeMap<String, Vec<&LockedPackage>> = BTreeMap::new();
    for package in &lock.packages {
        if package.group != group || !marker_holds(package.marker.as_deref(), &env, &what)? {
            continue;
        }
        by_name
            .entry(package.name.as_str().to_owned())
            .or_default()
            .push(package);
    }
    let mut pins = Vec::new();
    for (name, mut versions) in by_name {
        versions.sort_by(|a, b| compare_versions(&b.version, &a.version));
        let mut first_error = None;
        let mut chosen = None;
        for package in versions {
            match pin_package(package, target, &supported, index) {
                Ok(pin) => {
                    chosen = Some(pin);
                    break;
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match (chosen, first_error) {
            (Some(pin), _) => pins.push(pin),
            (None, Some(err)) => return Err(err),
            (None, None) => {
                return Err(Error::Internal(format!("{name}: no locked version")));
            }
        }
    }
    Ok(pins)
}

fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use pep508_rs::pep440_rs::Version;
    match (Version::from_str(a), Version::from_str(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

fn pin_package(
    package: &LockedPackage,
    target: &Target,
    supported: &[Tag],
    index: &Index,
) -> Result<Pin, Error> {
    let name = package.name.as_str();
    let hashes: BTreeSet<Digest> = package
        .artifacts
        .iter()
        .filter_map(|a| a.hash.as_ref())
        .filter(|h| h.algorithm == "sha256")
        .filter_map(|h| Digest::from_hex(&h.digest).ok())
        .collect();
    if hashes.is_empty() {
        return Err(Error::NoHash {
            package: name.to_owned(),
            version: package.version.clone(),
        });
    }
    // The lock's own files: those with a URL and a sha256 (uv.lock, pylock.toml).
    let locked_files: Vec<(String, String, Digest)> = package
        .artifacts
        .iter()
        .filter_map(|artifact| {
            let url = artifact.url.clone()?;
            let filename = artifact
                .filename
                .clone()
                .or_else(|| url.rsplit('/').next().map(str::to_owned))?;
            let hash = artifact.hash.as_ref().filter(|h| h.algorithm == "sha256")?;
            Some((filename, url, Digest::from_hex(&hash.digest).ok()?))
        })
        .collect();
    let with_urls: Vec<Candidate> = locked_files
        .iter()
        .filter_map(|(filename, url, sha256)| {
            Some(Candidate {
                wheel: WheelName::from_str(filename).ok()?,
                url: url.clone(),
                sha256: *sha256,
            })
        })
        .collect();
    let locked_sdists = sdist_pin(package, locked_files);
    let (candidates, filenames, sdists) = if with_urls.is_empty() && locked_sdists.is_none() {
        let mut files = index.files(name, false)?;
        if !files
            .iter()
            .any(|f| f.sha256.is_some_and(|h| hashes.contains(&h)))
        {
            files = index.files(name, true)?;
        }
        let matching: Vec<&IndexFile> = files
            .iter()
            .filter(|f| f.sha256.is_some_and(|h| hashes.contains(&h)))
            .collect();
        if matching.is_empty() {
            return Err(Error::NotOnIndex {
                package: name.to_owned(),
                version: package.version.clone(),
                hashes: hashes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let filenames: Vec<String> = matching.iter().map(|f| f.filename.clone()).collect();
        let sdists = sdist_pin(
            package,
            matching
                .iter()
                .filter_map(|f| Some((f.filename.clone(), f.url.clone(), f.sha256?)))
                .collect(),
        );
        let candidates = matching
            .into_iter()
            .filter_map(|f| {
                Some(Candidate {
                    wheel: WheelName::from_str(&f.filename).ok()?,
                    url: f.url.clone(),
                    sha256: f.sha256?,
                })
            })
            .collect();
        (candidates, filenames, sdists)
    } else {
        let filenames = package
            .artifacts
            .iter()
            .filter_map(|a| {
                a.filename
                    .clone()
                    .or_else(|| a.url.as_deref()?.rsplit('/').next().map(str::to_owned))
            })
            .collect();
        (with_urls, filenames, locked_sdists)
    };
    let wheels: Vec<String> = candidates.iter().map(|c| c.wheel.tag_summary()).collect();
    match best(candidates, supported) {
        Some(candidate) => Ok(Pin {
            name: name.to_owned(),
            version: package.version.clone(),
            filename: candidate.wheel.filename,
            url: candidate.url,
            sha256: candidate.sha256,
        }),
        None => match sdists {
            // No wheel runs on the target: terrarium builds one from the source distribution.
            Some(sdist) => Ok(sdist),
            None => Err(no_wheel(
                name,
                &package.version,
                target,
                &wheels,
                &filenames,
            )),
        },
    }
}

/// The source distribution among `files` (name, URL, sha256), `.tar.gz` preferred.
fn sdist_pin(package: &LockedPackage, files: Vec<(String, String, Digest)>) -> Option<Pin> {
    files
        .into_iter()
        .filter(|(filename, _, _)| is_sdist(filename))
        .min_by_key(|(filename, _, _)| (!filename.ends_with(".tar.gz"), filename.clone()))
        .map(|(filename, url, sha256)| Pin {
            name: package.name.as_str().to_owned(),
            version: package.version.clone(),
            filename,
            url,
            sha256,
        })
}

/// The error for a package version without a usable wheel: sdist-only or unsupported platform.
pub(crate) fn no_wheel(
    name: &str,
    version: &str,
    target: &Target,
    wheels: &[String],
    filenames: &[String],
) -> Error {
    if wheels.is_empty()
        && let Some(sdist) = filenames
            .iter()
            .find(|f| f.ends_with(".tar.gz") || f.ends_with(".zip"))
    {
        return Error::SdistOnly {
            package: name.to_owned(),
            version: version.to_owned(),
            file: sdist.clone(),
        };
    }
    Error::NoCompatibleWheel {
        package: name.to_owned(),
        version: version.to_owned(),
        target: describe(target),
        found: if wheels.is_empty() {
            "no wheels".to_owned()
        } else {
            wheels.join(", ")
        },
    }
}

#[cfg(test)]
mod tests {
    use terrarium_image::{Cache, Fetcher};
    use terrarium_project::{Artifact, Hash, LockFormat, PackageName};

    use super::*;

    fn artifact(filename: &str, hex: &str) -> Artifact {
        Artifact {
            filename: Some(filename.to_owned()),
            url: Some(format!("https://files.example.invalid/{filename}")),
            hash: Some(Hash {
                algorithm: "sha256".into(),
                digest: hex.to_owned(),
            }),
        }
    }

    #[test]
    fn a_package_without_a_wheel_for_the_target_is_pinned_to_its_sdist() {
        let sdist = "1".repeat(64);
        let mac = "2".repeat(64);
        let lock = Lock {
            format: LockFormat::UvLock,
            path: "uv.lock".into(),
            packages: vec![LockedPackage {
                name: PackageName::new("psycopg2"),
                version: "2.9.10".into(),
                group: Group::Main,
                marker: None,
                artifacts: vec![
                    artifact("psycopg2-2.9.10.tar.gz", &sdist),
                    artifact("psycopg2-2.9.10-cp311-cp311-win_amd64.whl", &mac),
                ],
            }],
            workspace: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let index = Index::new(
            Fetcher::new(Cache::new(dir.path()), true).unwrap(),
            "http://127.0.0.1:9",
        );
        let pins = pins_from_lock(&lock, &Target::bookworm(), &index).unwrap();
        assert_eq!(pins.len(), 1);
        assert_eq!(pins[0].filename, "psycopg2-2.9.10.tar.gz");
        assert_eq!(pins[0].sha256.hex(), sdist);

        // Without the sdist, the error names the platforms found.
        let mut wheels_only = lock.clone();
        wheels_only.packages[0].artifacts.remove(0);
        let err = pins_from_lock(&wheels_only, &Target::bookworm(), &index)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unsupported wheel platform") && err.contains("win_amd64"),
            "{err}"
        );
    }
}
