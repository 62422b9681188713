//! Resolving requirements that are not locked (a server terrarium adds, an unlocked project)
//! into [`Pin`]s, on top of packages already pinned by the project's lock.
//!
//! The rule is pip's greedy one without backtracking: requirements are taken breadth-first in
//! the order given; a package already pinned must satisfy every later specifier (else the build
//! stops and says to lock the project); a new package gets its highest non-yanked, non-pre-release
//! version that satisfies the specifier, allows the target's Python and has a wheel for the
//! target; its `Requires-Dist` (read from the wheel's METADATA) are followed with its extras.
//! Markers are evaluated for the target at every level, the requirements given included: a
//! `pywin32; sys_platform == "win32"` is not resolved for a Linux image.
//! The result is recorded in `terrarium.lock`, so it is decided once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::str::FromStr;

use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, Requirement, VersionOrUrl};
use terrarium_image::Progress;
use terrarium_project::PackageName;

use crate::error::Error;
use crate::fetch::fetch_wheel;
use crate::index::{Index, IndexFile};
use crate::install::requires_dist;
use crate::sdist::{WheelBuilder, is_sdist};
use crate::select::{Pin, no_wheel};
use crate::tags::{Target, WheelName};

/// Parse a PEP 508 requirement; `what` names where it came from.
pub fn parse_requirement(text: &str, what: &str) -> Result<Requirement, Error> {
    Requirement::from_str(text).map_err(|err| Error::Parse {
        what: what.to_owned(),
        message: format!("bad requirement `{text}`: {err}"),
    })
}

struct Pending {
    requirement: Requirement,
    needed_by: String,
}

/// Resolve `requirements` (with who asked for them) for `target`, given `locked` pins that are
/// already decided. Requirements whose marker does not hold on the target are skipped (as
/// top-level requirements, no extras are active). A version without a wheel for the target is
/// pinned to its source distribution when `builder` builds them (its dependencies are read
/// from the wheel `builder` makes). Returns only the new pins, sorted by name.
pub fn resolve(
    requirements: Vec<(Requirement, String)>,
    locked: &[Pin],
    target: &Target,
    index: &Index,
    progress: &dyn Progress,
    builder: &dyn WheelBuilder,
) -> Result<Vec<Pin>, Error> {
    let env = target.marker_environment()?;
    let supported = target.supported_tags();
    let python = Version::from_str(&target.python_full)
        .map_err(|err| Error::Internal(format!("target python version: {err}")))?;
    let mut chosen: BTreeMap<String, (Version, bool)> = locked
        .iter()
        .filter_map(|pin| {
            Some((
                pin.name.clone(),
                (Version::from_str(&pin.version).ok()?, false),
            ))
        })
        .collect();
    let mut extras_done: BTreeMap<String, BTreeSet<ExtraName>> = BTreeMap::new();
    let mut metadata: BTreeMap<String, Vec<Requirement>> = BTreeMap::new();
    let mut new_pins = Vec::new();
    let mut queue: VecDeque<Pending> = requirements
        .into_iter()
        .filter(|(requirement, _)| requirement.evaluate_markers(&env, &[]))
        .map(|(requirement, needed_by)| Pending {
            requirement,
            needed_by,
        })
        .collect();
    while let Some(Pending {
        requirement,
        needed_by,
    }) = queue.pop_front()
    {
        let name = PackageName::new(requirement.name.as_ref())
            .as_str()
            .to_owned();
        let describe = || format!("{requirement} (needed by {needed_by})");
        let specifiers = match &requirement.version_or_url {
            None => VersionSpecifiers::empty(),
            Some(VersionOrUrl::VersionSpecifier(specifiers)) => specifiers.clone(),
            Some(VersionOrUrl::Url(_)) => {
                return Err(Error::Unresolvable {
                    requirement: describe(),
                    message: "direct URL requirements are not supported".into(),
                });
            }
        };
        if let Some((version, resolved_here)) = chosen.get(&name) {
            if !specifiers.contains(version) {
                return Err(Error::Unresolvable {
                    requirement: describe(),
                    message: format!("{name} {version} is already chosen"),
                });
            }
            // New extras of a package resolved here pull in their requirements.
            if *resolved_here {
                let done = extras_done.entry(name.clone()).or_default();
                let new: Vec<ExtraName> = requirement
                    .extras
                    .iter()
                    .filter(|e| !done.contains(*e))
                    .cloned()
                    .collect();
                if !new.is_empty() {
                    done.extend(new.iter().cloned());
                    let all: Vec<ExtraName> = done.iter().cloned().collect();
                    for dependency in metadata.get(&name).into_iter().flatten() {
                        if !dependency.evaluate_markers(&env, &[])
                            && dependency.evaluate_markers(&env, &all)
                        {
                            queue.push_back(Pending {
                                requirement: dependency.clone(),
                                needed_by: format!("{name}[extras]"),
                            });
                        }
                    }
                }
            }
            continue;
        }
        let not_found = |err| match err {
            Error::Image(terrarium_image::Error::NotFound { .. }) => Error::Unresolvable {
                requirement: describe(),
                message: format!("{name} is not on the index"),
            },
            other => other,
        };
        // An exact pin is the project's own choice; the cut-off dates only what it leaves open.
        let cutoff = index.exclude_newer().filter(|_| !is_exact(&specifiers));
        let mut files = index.files(&name, false).map_err(not_found)?;
        if cutoff.is_some()
            && !index.fetcher().offline()
            && files.iter().any(|f| f.upload_time.is_none())
        {
            // A page cached before upload times were kept: fetch it again to have them.
            files = index.files(&name, true).map_err(not_found)?;
        }
        let candidates: Vec<IndexFile> = match cutoff {
            Some(cutoff) => files
                .iter()
                .filter(|f| f.upload_time.is_none_or(|t| t <= cutoff))
                .cloned()
                .collect(),
            None => files.clone(),
        };
        let (version, wheel_file) = pick(
            &candidates,
            &specifiers,
            &python,
            &supported,
            builder.builds(),
        )
        .ok_or_else(|| {
            let allowed: Vec<&IndexFile> = candidates
                .iter()
                .filter(|f| version_of(&f.filename).is_some_and(|v| specifiers.contains(&v)))
                .collect();
            match allowed.last() {
                Some(last) => {
                    let version = version_of(&last.filename)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    let same: Vec<&IndexFile> = allowed
                        .iter()
                        .copied()
                        .filter(|f| {
                            version_of(&f.filename).map(|v| v.to_string()).as_ref()
                                == Some(&version)
                        })
                        .collect();
                    let wheels: Vec<String> = same
                        .iter()
                        .filter_map(|f| WheelName::from_str(&f.filename).ok())
                        .map(|w| w.tag_summary())
                        .collect();
                    let names: Vec<String> = same.iter().map(|f| f.filename.clone()).collect();
                    no_wheel(&name, &version, target, &wheels, &names)
                }
                None => Error::Unresolvable {
                    requirement: describe(),
                    message: match cutoff {
                        Some(cutoff) => format!(
                            "no version of {name} uploaded before {cutoff} (exclude-newer) \
                                 satisfies it; set a later `exclude-newer` in [tool.terrarium] \
                                 or pin {name}"
                        ),
                        None => format!("no version of {name} on the index satisfies it"),
                    },
                },
            }
        })?;
        let sha256 = wheel_file.sha256.ok_or_else(|| Error::Unresolvable {
            requirement: describe(),
            message: format!("the index gives no sha256 for {}", wheel_file.filename),
        })?;
        let pin = Pin {
            name: name.clone(),
            version: version.to_string(),
            filename: wheel_file.filename.clone(),
            url: wheel_file.url.clone(),
            sha256,
        };
        let stored = if is_sdist(&pin.filename) {
            builder.build(&pin)?
        } else {
            fetch_wheel(index.fetcher(), &pin, progress)?
        };
        let dependencies: Vec<Requirement> = requires_dist(&stored, &pin.filename)?
            .iter()
            .map(|text| parse_requirement(text, &pin.filename))
            .collect::<Result<_, _>>()?;
        let extras: Vec<ExtraName> = requirement.extras.clone();
        for dependency in &dependencies {
            if dependency.evaluate_markers(&env, &extras) {
                queue.push_back(Pending {
                    requirement: dependency.clone(),
                    needed_by: format!("{name} {version}"),
                });
            }
        }
        extras_done.insert(name.clone(), extras.into_iter().collect());
        metadata.insert(name.clone(), dependencies);
        chosen.insert(name, (version, true));
        new_pins.push(pin);
    }
    new_pins.sort();
    Ok(new_pins)
}

pub(crate) fn version_of(filename: &str) -> Option<Version> {
    let raw = if filename.ends_with(".whl") {
        WheelName::from_str(filename).ok()?.version
    } else {
        let stem = filename
            .strip_suffix(".tar.gz")
            .or_else(|| filename.strip_suffix(".zip"))?;
        stem.rsplit_once('-')?.1.to_owned()
    };
    Version::from_str(&raw).ok()
}

/// The highest acceptable version with a wheel for the target, and that wheel; with `sdists`,
/// the highest acceptable version with a wheel or else a source distribution (`.tar.gz`
/// preferred to `.zip`).
/// `==1.2.3` (or `===`): the requirement names one release.
fn is_exact(specifiers: &VersionSpecifiers) -> bool {
    use pep508_rs::pep440_rs::Operator;
    specifiers
        .iter()
        .any(|s| matches!(s.operator(), Operator::Equal | Operator::ExactEqual))
}

fn pick<'a>(
    files: &'a [IndexFile],
    specifiers: &VersionSpecifiers,
    python: &Version,
    supported: &[crate::tags::Tag],
    sdists: bool,
) -> Option<(Version, &'a IndexFile)> {
    let mut by_version: BTreeMap<Version, Vec<&IndexFile>> = BTreeMap::new();
    for file in files.iter().filter(|f| !f.yanked) {
        let Some(version) = version_of(&file.filename) else {
            continue;
        };
        if version.any_prerelease() || !specifiers.contains(&version) {
            continue;
        }
        let python_ok = file
            .requires_python
            .as_deref()
            .is_none_or(|rp| VersionSpecifiers::from_str(rp).is_ok_and(|s| s.contains(python)));
        if python_ok {
            by_version.entry(version).or_default().push(file);
        }
    }
    by_version.into_iter().rev().find_map(|(version, files)| {
        let wheel = files
            .iter()
            .filter_map(|f| {
                let wheel = WheelName::from_str(&f.filename).ok()?;
                Some((wheel.priority(supported)?, *f))
            })
            .min_by(|(pa, a), (pb, b)| pa.cmp(pb).then(a.filename.cmp(&b.filename)))
            .map(|(_, f)| f);
        let sdist = || {
            files
                .iter()
                .copied()
                .filter(|f| sdists && is_sdist(&f.filename) && f.sha256.is_some())
                .min_by_key(|f| (!f.filename.ends_with(".tar.gz"), f.filename.clone()))
        };
        wheel.or_else(sdist).map(|f| (version.clone(), f))
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use terrarium_image::{Cache, Fetcher, NoProgress};

    use super::*;
    use crate::sdist::NoBuilds;

    /// A wheel of `name` 1.0 whose METADATA lists `requires` as `Requires-Dist`.
    fn wheel(name: &str, requires: &[&str]) -> Vec<u8> {
        let dist_info = format!("{}-1.0.dist-info", name.replace('-', "_"));
        let mut metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n");
        for requirement in requires {
            metadata.push_str(&format!("Requires-Dist: {requirement}\n"));
        }
        metadata.push('\n');
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (member, content) in [
            (
                "WHEEL",
                "Wheel-Version: 1.0\nTag: py3-none-any\n".to_owned(),
            ),
            ("METADATA", metadata),
        ] {
            zip.start_file(format!("{dist_info}/{member}"), options)
                .unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// An offline index over a fresh cache holding `projects` (name, Requires-Dist): their
    /// index pages and their wheels. Any other project is missing, and asking for it fails.
    fn offline_index(dir: &std::path::Path, projects: &[(&str, &[&str])]) -> Index {
        let cache = Cache::new(dir);
        let index = Index::new(
            Fetcher::new(cache.clone(), true).unwrap(),
            "http://127.0.0.1:9",
        );
        for (name, requires) in projects {
            let bytes = wheel(name, requires);
            let filename = format!("{}-1.0-py3-none-any.whl", name.replace('-', "_"));
            let file = IndexFile {
                url: format!("http://127.0.0.1:9/{filename}"),
                filename,
                sha256: Some(cache.put_bytes(&bytes).unwrap()),
                size: Some(bytes.len() as u64),
                requires_python: None,
                yanked: false,
                upload_time: None,
            };
            index.remember(name, 0, &[file]).unwrap();
        }
        index
    }

    fn requirements(texts: &[&str]) -> Vec<(Requirement, String)> {
        texts
            .iter()
            .map(|text| (parse_requirement(text, "test").unwrap(), "test".to_owned()))
            .collect()
    }

    #[test]
    fn markers_are_evaluated_for_the_target_at_every_level() {
        let dir = tempfile::tempdir().unwrap();
        let index = offline_index(
            dir.path(),
            &[
                (
                    "demo",
                    &[
                        "dep-a",
                        "dep-b; extra == \"fast\"",
                        "dep-c; extra == \"later\"",
                        "dep-win; sys_platform == \"win32\"",
                        "dep-old; python_version < \"3.8\"",
                    ],
                ),
                ("dep-a", &[]),
                ("dep-b", &[]),
                ("dep-c", &[]),
            ],
        );
        let pins = resolve(
            requirements(&[
                "demo[fast]",
                "pywin32; sys_platform == \"win32\"",
                "tomli; python_version < \"3.11\"",
                "demo[later]; os_name == \"posix\"",
            ]),
            &[],
            &Target::bookworm(),
            &index,
            &NoProgress,
            &NoBuilds,
        )
        .unwrap();
        let names: Vec<&str> = pins.iter().map(|pin| pin.name.as_str()).collect();
        assert_eq!(names, ["demo", "dep-a", "dep-b", "dep-c"]);

        // A requirement whose marker holds is resolved: here it reaches the (offline) index.
        let err = resolve(
            requirements(&["pywin32; sys_platform == \"linux\""]),
            &[],
            &Target::bookworm(),
            &index,
            &NoProgress,
            &NoBuilds,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pywin32"), "{err}");
    }

    #[test]
    fn exclude_newer_dates_what_is_not_pinned_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let index = Index::new(
            Fetcher::new(cache.clone(), true).unwrap(),
            "http://127.0.0.1:9",
        );
        let files: Vec<IndexFile> = [
            ("1.0", "2021-03-01T00:00:00Z"),
            ("2.0", "2023-03-01T00:00:00Z"),
        ]
        .iter()
        .map(|(version, uploaded)| {
            let bytes = wheel("dep", &[]);
            let filename = format!("dep-{version}-py3-none-any.whl");
            IndexFile {
                url: format!("http://127.0.0.1:9/{filename}"),
                filename,
                sha256: Some(cache.put_bytes(&bytes).unwrap()),
                size: Some(bytes.len() as u64),
                requires_python: None,
                yanked: false,
                upload_time: Some(uploaded.parse().unwrap()),
            }
        })
        .collect();
        index.remember("dep", 0, &files).unwrap();
        let version = |index: &Index, text: &str| {
            let pins = resolve(
                requirements(&[text]),
                &[],
                &Target::bookworm(),
                index,
                &NoProgress,
                &NoBuilds,
            )?;
            Ok::<_, Error>(pins[0].version.clone())
        };
        assert_eq!(version(&index, "dep").unwrap(), "2.0");
        let dated = index
            .clone()
            .with_exclude_newer(Some("2022-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(version(&dated, "dep>=0.5").unwrap(), "1.0");
        assert_eq!(version(&dated, "dep==2.0").unwrap(), "2.0");
        let err = version(&dated, "dep>1.0").unwrap_err().to_string();
        assert!(err.contains("exclude-newer"), "{err}");
    }

    /// Builds every sdist into the wheel of the same name stored in the cache.
    struct CachedBuilds {
        cache: Cache,
        built: std::cell::RefCell<Vec<String>>,
    }

    impl WheelBuilder for CachedBuilds {
        fn build(&self, sdist: &Pin) -> Result<std::path::PathBuf, Error> {
            self.built.borrow_mut().push(sdist.filename.clone());
            let bytes = wheel(&sdist.name, &["dep-a"]);
            let digest = self.cache.put_bytes(&bytes)?;
            Ok(self.cache.blob_path(&digest))
        }
    }

    #[test]
    fn an_sdist_only_version_is_built_and_its_wheel_read_for_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let index = offline_index(dir.path(), &[("dep-a", &[])]);
        let sdist = IndexFile {
            upload_time: None,
            filename: "only-source-1.0.tar.gz".into(),
            url: "http://127.0.0.1:9/only-source-1.0.tar.gz".into(),
            sha256: Some(terrarium_image::Digest::of(b"sdist")),
            size: None,
            requires_python: None,
            yanked: false,
        };
        index.remember("only-source", 0, &[sdist]).unwrap();
        let builder = CachedBuilds {
            cache: Cache::new(dir.path()),
            built: Default::default(),
        };
        let pins = resolve(
            requirements(&["only-source==1.0"]),
            &[],
            &Target::bookworm(),
            &index,
            &NoProgress,
            &builder,
        )
        .unwrap();
        let files: Vec<&str> = pins.iter().map(|p| p.filename.as_str()).collect();
        assert_eq!(
            files,
            ["dep_a-1.0-py3-none-any.whl", "only-source-1.0.tar.gz"]
        );
        assert_eq!(*builder.built.borrow(), ["only-source-1.0.tar.gz"]);

        // A resolver that builds nothing finds no version with a wheel, and says so.
        let err = resolve(
            requirements(&["only-source==1.0"]),
            &[],
            &Target::bookworm(),
            &index,
            &NoProgress,
            &NoBuilds,
        )
        .unwrap_err();
        assert!(matches!(err, Error::SdistOnly { .. }), "{err}");
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(
            version_of("flask-3.1.2-py3-none-any.whl")
                .unwrap()
                .to_string(),
            "3.1.2"
        );
        assert_eq!(
            version_of("my-pkg-1.0rc1.tar.gz").unwrap().to_string(),
            "1.0rc1"
        );
        assert!(version_of("x.exe").is_none());
    }
}
