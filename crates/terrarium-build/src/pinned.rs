//! What the package index says about the releases a project pins exactly, for the plan's
//! Python and `exclude-newer` decisions (the plan itself reads no network).

use std::str::FromStr;
use std::time::Duration;

use pep508_rs::pep440_rs::{Operator, VersionSpecifiers};

use terrarium_image::Fetcher;
use terrarium_plan::PinnedRelease;
use terrarium_project::{DependencySource, Group, LockedPackage, PackageName, Project, Source};
use terrarium_wheels::{Index, IndexFile, is_sdist};

use crate::BuildOptions;

/// A pinned release's files rarely change once uploaded: a cached page this young is used.
const RELEASE_PAGE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether the plan of `project` needs [`pinned_releases`]: the Python is not already settled
/// (by the configuration or the Python `terrarium.lock` records) and a lock records no file
/// names or a requirement has a capped range; or its requirements pin releases exactly
/// without a lock, and the Python or the era is not settled (the era also by git history).
pub fn needs_pinned_releases(project: &Project) -> bool {
    let settled = python_settled(project);
    if !settled && (!unnamed_locked(project).is_empty() || !capped_ranges(project).is_empty()) {
        return true;
    }
    let DependencySource::Requirements {
        file,
        lock: None,
        dev,
    } = &project.dependencies
    else {
        return false;
    };
    if !file
        .requirements
        .iter()
        .chain(dev.iter().flat_map(|d| d.requirements.iter()))
        .any(|line| line.is_pinned())
    {
        return false;
    }
    let era_settled =
        project.config.exclude_newer.is_some() || project.dependencies_changed.is_some();
    !(settled && era_settled)
}

/// The index's files of every release `project` pins exactly (in its requirements, or in a
/// lock that records no file names), and of the newest release each capped range allows,
/// best effort: a release the index doesn't answer for (offline without a cached page, a
/// private package) is left out, and the plan decides without it.
pub fn pinned_releases(project: &Project, options: &BuildOptions) -> Vec<PinnedRelease> {
    if !needs_pinned_releases(project) {
        return Vec::new();
    }
    let Ok(fetcher) = Fetcher::new(options.cache.clone(), options.offline) else {
        return Vec::new();
    };
    let index = Index::new(fetcher, options.index_url.clone()).with_max_age(RELEASE_PAGE_MAX_AGE);
    let locked = unnamed_locked(project);
    if let Some(lock) = project.dependencies.lock()
        && !locked.is_empty()
    {
        let wanted: Vec<(String, String)> = locked
            .iter()
            .map(|p| (p.name.as_str().to_owned(), p.version.clone()))
            .collect();
        let results = terrarium_wheels::releases_files(&index, &wanted);
        return locked
            .into_iter()
            .zip(results)
            .filter_map(|(package, files)| {
                let files = files.ok().filter(|f| !f.is_empty())?;
                Some(release(
                    package.name.clone(),
                    &package.version,
                    Source::file(&lock.path),
                    false,
                    &files,
                ))
            })
            .collect();
    }
    let mut releases = exact_pins(project, &index);
    if !python_settled(project) {
        releases.extend(range_releases(project, &index));
    }
    releases
}

/// Whether the plan's Python is settled without the index: by the configuration, or by the
/// Python the last build recorded in `terrarium.lock`.
fn python_settled(project: &Project) -> bool {
    project.config.python.is_some() || project.locked_python.is_some()
}

/// The releases a requirements file without a lock pins with `==`.
fn exact_pins(project: &Project, index: &Index) -> Vec<PinnedRelease> {
    let DependencySource::Requirements {
        file,
        lock: None,
        dev,
    } = &project.dependencies
    else {
        return Vec::new();
    };
    // The development requirements' pins date the project too: the dev image resolves with
    // the same cut-off, which must not exclude them.
    let main = file
        .requirements
        .iter()
        .map(|line| (line, &file.path, false));
    let dev_only = dev.iter().flat_map(|d| {
        d.requirements
            .iter()
            .filter(|line| !file.requirements.iter().any(|m| m.name == line.name))
            .map(move |line| (line, &d.path, true))
    });
    let pinned: Vec<_> = main
        .chain(dev_only)
        .filter(|(line, _, _)| line.marker.is_none())
        .filter_map(|(line, path, dev)| Some((line, path, dev, line.pinned_version()?)))
        .collect();
    let wanted: Vec<(String, String)> = pinned
        .iter()
        .map(|(line, _, _, version)| (line.name.as_str().to_owned(), (*version).to_owned()))
        .collect();
    let results = terrarium_wheels::releases_files(index, &wanted);
    pinned
        .into_iter()
        .zip(results)
        .filter_map(|((line, path, dev, version), files)| {
            let files = files.ok().filter(|f| !f.is_empty())?;
            Some(release(
                line.name.clone(),
                version,
                Source::line(path, line.line),
                dev,
                &files,
            ))
        })
        .collect()
}

/// The newest release of each capped range, as of the project's era when it is settled (the
/// configuration's `exclude-newer`, else the last commit that changed the dependencies).
fn range_releases(project: &Project, index: &Index) -> Vec<PinnedRelease> {
    let ranges = capped_ranges(project);
    let before = project
        .config
        .exclude_newer
        .as_ref()
        .map(|cutoff| cutoff.value)
        .or(project.dependencies_changed.as_ref().map(|c| c.value));
    let wanted: Vec<(String, VersionSpecifiers)> = ranges
        .iter()
        .map(|r| (r.name.as_str().to_owned(), r.specifiers.clone()))
        .collect();
    let results = terrarium_wheels::newest_releases_in(index, &wanted, before);
    ranges
        .into_iter()
        .zip(results)
        .filter_map(|(range, found)| {
            let (version, files) = found.ok().flatten()?;
            let mut release = release(
                range.name,
                &version.to_string(),
                range.source,
                false,
                &files,
            );
            release.range = Some(range.specifiers.to_string());
            Some(release)
        })
        .collect()
}

/// A requirement whose range has an upper bound (`<0.30`, `<=`, `~=`, `==0.29.*`) and is no
/// exact pin: an installer takes the newest release it allows, whose wheels may stop short of
/// the newest Python (`asyncpg = "^0.29.0"` has none for 3.13).
struct CappedRange {
    name: PackageName,
    specifiers: VersionSpecifiers,
    source: Source,
}

/// The capped ranges of the main requirements: a requirements file without a lock, or
/// `[project].dependencies` / `[tool.poetry.dependencies]` without one. Requirements with
/// markers are left out (they may not apply to the image).
fn capped_ranges(project: &Project) -> Vec<CappedRange> {
    let capped = |text: &str| {
        VersionSpecifiers::from_str(text).ok().filter(|specifiers| {
            specifiers.iter().any(|s| {
                matches!(
                    s.operator(),
                    Operator::LessThan
                        | Operator::LessThanEqual
                        | Operator::TildeEqual
                        | Operator::EqualStar
                )
            })
        })
    };
    match &project.dependencies {
        DependencySource::Requirements {
            file, lock: None, ..
        } => file
            .requirements
            .iter()
            .filter(|line| line.marker.is_none() && !line.is_pinned())
            .filter_map(|line| {
                Some(CappedRange {
                    name: line.name.clone(),
                    specifiers: capped(&line.specifiers)?,
                    source: Source::line(&file.path, line.line),
                })
            })
            .collect(),
        DependencySource::Unlocked {
            manifest,
            requirements,
            ..
        } => requirements
            .iter()
            .filter_map(|text| {
                let requirement =
                    pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(text).ok()?;
                if !requirement.marker.is_true() {
                    return None;
                }
                let Some(pep508_rs::VersionOrUrl::VersionSpecifier(specifiers)) =
                    &requirement.version_or_url
                else {
                    return None;
                };
                Some(CappedRange {
                    name: PackageName::new(requirement.name.as_ref()),
                    specifiers: capped(&specifiers.to_string())?,
                    source: Source::file(manifest),
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The main packages of the project's lock whose file names it doesn't record (a Pipfile.lock
/// or a hashed requirements file keeps only hashes): the index tells which Pythons their
/// wheels serve and when they were released.
fn unnamed_locked(project: &Project) -> Vec<&LockedPackage> {
    let Some(lock) = project.dependencies.lock() else {
        return Vec::new();
    };
    lock.packages
        .iter()
        .filter(|p| p.group == Group::Main && p.artifacts.iter().all(|a| a.filename.is_none()))
        .collect()
}

/// A release as the plan reads it, from the index's files.
fn release(
    name: PackageName,
    version: &str,
    source: Source,
    dev: bool,
    files: &[IndexFile],
) -> PinnedRelease {
    PinnedRelease {
        dev,
        name,
        version: version.to_owned(),
        source,
        wheels: files
            .iter()
            .filter(|f| f.filename.ends_with(".whl"))
            .map(|f| f.filename.clone())
            .collect(),
        has_sdist: files.iter().any(|f| is_sdist(&f.filename)),
        uploaded: files.iter().filter_map(|f| f.upload_time).max(),
        range: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        let project = terrarium_project::detect(dir.path()).unwrap();
        (dir, project)
    }

    #[test]
    fn capped_ranges_are_those_with_an_upper_bound() {
        let (_dir, project) = detected(&[
            ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
            (
                "requirements.txt",
                "flask==3.1.2\nasyncpg>=0.29,<0.30\nrequests>=2\nuvloop~=0.19.0\n\
                 httptools==0.6.*\nwin32ctypes<1 ; sys_platform == 'win32'\n",
            ),
        ]);
        let ranges: Vec<(String, String, String)> = capped_ranges(&project)
            .into_iter()
            .map(|r| {
                (
                    r.name.as_str().to_owned(),
                    r.specifiers.to_string(),
                    r.source.to_string(),
                )
            })
            .collect();
        assert_eq!(
            ranges,
            [
                ("asyncpg", ">=0.29, <0.30", "requirements.txt:2"),
                ("uvloop", "~=0.19.0", "requirements.txt:4"),
                ("httptools", "==0.6.*", "requirements.txt:5"),
            ]
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        );
        assert!(needs_pinned_releases(&project));
    }

    #[test]
    fn poetry_carets_are_capped_ranges() {
        let (_dir, project) = detected(&[
            ("main.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
            (
                "pyproject.toml",
                "[tool.poetry]\nname = \"p\"\nversion = \"0.1.0\"\n\n\
                 [tool.poetry.dependencies]\npython = \"^3.11\"\nfastapi = \"*\"\n\
                 asyncpg = \"^0.29.0\"\n",
            ),
        ]);
        let ranges: Vec<String> = capped_ranges(&project)
            .iter()
            .map(|r| format!("{} {}", r.name.as_str(), r.specifiers))
            .collect();
        assert_eq!(ranges, ["asyncpg >=0.29.0, <0.30"]);
    }
}
