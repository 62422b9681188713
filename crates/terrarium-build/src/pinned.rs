//! What the package index says about the releases a project pins exactly, for the plan's
//! Python and `exclude-newer` decisions (the plan itself reads no network).

use std::time::Duration;

use terrarium_image::Fetcher;
use terrarium_plan::PinnedRelease;
use terrarium_project::{DependencySource, Project, Source};
use terrarium_wheels::{Index, is_sdist};

use crate::BuildOptions;

/// A pinned release's files rarely change once uploaded: a cached page this young is used.
const RELEASE_PAGE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether the plan of `project` needs [`pinned_releases`]: its requirements pin releases
/// exactly without a lock, and the Python or the era is not already settled (by the
/// configuration, the Python `terrarium.lock` records, or git history).
pub fn needs_pinned_releases(project: &Project) -> bool {
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
    let python_settled = project.config.python.is_some() || project.locked_python.is_some();
    let era_settled =
        project.config.exclude_newer.is_some() || project.dependencies_changed.is_some();
    !(python_settled && era_settled)
}

/// The index's files of every release `project`'s requirements pin exactly, best effort: a
/// release the index doesn't answer for (offline without a cached page, a private package) is
/// left out, and the plan decides without it.
pub fn pinned_releases(project: &Project, options: &BuildOptions) -> Vec<PinnedRelease> {
    if !needs_pinned_releases(project) {
        return Vec::new();
    }
    let DependencySource::Requirements { file, dev, .. } = &project.dependencies else {
        return Vec::new();
    };
    let Ok(fetcher) = Fetcher::new(options.cache.clone(), options.offline) else {
        return Vec::new();
    };
    let index = Index::new(fetcher, options.index_url.clone()).with_max_age(RELEASE_PAGE_MAX_AGE);
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
    let results = terrarium_wheels::releases_files(&index, &wanted);
    pinned
        .into_iter()
        .zip(results)
        .filter_map(|((line, path, dev, version), files)| {
            let files = files.ok().filter(|f| !f.is_empty())?;
            Some(PinnedRelease {
                dev,
                name: line.name.clone(),
                version: version.to_owned(),
                source: Source::line(path, line.line),
                wheels: files
                    .iter()
                    .filter(|f| f.filename.ends_with(".whl"))
                    .map(|f| f.filename.clone())
                    .collect(),
                has_sdist: files.iter().any(|f| is_sdist(&f.filename)),
                uploaded: files.iter().filter_map(|f| f.upload_time).max(),
            })
        })
        .collect()
}
