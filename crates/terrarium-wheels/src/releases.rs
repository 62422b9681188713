//! The files of releases the project pins exactly, or that its capped ranges would install,
//! read from the index before planning: their wheel tags say which Pythons the release
//! supports, their upload times date the project.

use std::str::FromStr;

use std::collections::BTreeMap;

use pep508_rs::pep440_rs::{Version, VersionSpecifiers};

use crate::error::Error;
use crate::index::{Index, IndexFile};
use crate::resolve::version_of;

/// How many index pages are fetched at once.
const PARALLEL_PAGES: usize = 8;

/// The files of `version` of project `name` (empty when the index has no such release), with
/// their upload times when the index gives them.
pub fn release_files(index: &Index, name: &str, version: &str) -> Result<Vec<IndexFile>, Error> {
    let wanted = Version::from_str(version).map_err(|err| Error::Parse {
        what: format!("{name}=={version}"),
        message: err.to_string(),
    })?;
    let files = index.release(name, &wanted, false)?;
    if !index.fetcher().offline() && files.iter().any(|f| f.upload_time.is_none()) {
        // A page cached before upload times were kept: fetch it again to have them.
        return index.release(name, &wanted, true);
    }
    Ok(files)
}

/// [`release_files`] of every `(name, version)`, fetched in parallel; results in input order.
pub fn releases_files(
    index: &Index,
    releases: &[(String, String)],
) -> Vec<Result<Vec<IndexFile>, Error>> {
    parallel(releases, |(name, version)| {
        release_files(index, name, version)
    })
}

/// The newest release a range allows, with its files; `None` when no release fits.
pub type NewestRelease = Option<(Version, Vec<IndexFile>)>;

/// The newest final release of project `name` that `specifiers` allow, uploaded no later than
/// `before` when given, with its files: what an installer picks for a capped range
/// (`asyncpg>=0.29,<0.30`), so that its wheels can rule Pythons out before planning like an
/// exact pin's. `None` when no release fits.
pub fn newest_release_in(
    index: &Index,
    name: &str,
    specifiers: &VersionSpecifiers,
    before: Option<jiff::Timestamp>,
) -> Result<NewestRelease, Error> {
    let mut releases: BTreeMap<Version, Vec<IndexFile>> = BTreeMap::new();
    for file in index.files(name, false)? {
        let Some(version) = version_of(&file.filename) else {
            continue;
        };
        if file.yanked || version.any_prerelease() || !specifiers.contains(&version) {
            continue;
        }
        releases.entry(version).or_default().push(file);
    }
    Ok(releases.into_iter().rev().find(|(_, files)| {
        let first = files.iter().filter_map(|f| f.upload_time).min();
        before.is_none_or(|cutoff| first.is_none_or(|moment| moment <= cutoff))
    }))
}

/// [`newest_release_in`] of every `(name, specifiers)`, fetched in parallel; results in input
/// order.
pub fn newest_releases_in(
    index: &Index,
    ranges: &[(String, VersionSpecifiers)],
    before: Option<jiff::Timestamp>,
) -> Vec<Result<NewestRelease, Error>> {
    parallel(ranges, |(name, specifiers)| {
        newest_release_in(index, name, specifiers, before)
    })
}

/// `work` on every item, [`PARALLEL_PAGES`] threads at a time; results in input order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> Result<R, Error> + Sync,
) -> Vec<Result<R, Error>> {
    let mut results: Vec<Option<Result<R, Error>>> = items.iter().map(|_| None).collect();
    let chunk = items.len().div_ceil(PARALLEL_PAGES).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        for (slots, items) in results.chunks_mut(chunk).zip(items.chunks(chunk)) {
            scope.spawn(move || {
                for (slot, item) in slots.iter_mut().zip(items) {
                    *slot = Some(work(item));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Internal("an index page was not read".into()))))
        .collect()
}
