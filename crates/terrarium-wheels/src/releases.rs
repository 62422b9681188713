//! The files of releases the project pins exactly, read from the index before planning: their
//! wheel tags say which Pythons the release supports, their upload times date the project.

use std::str::FromStr;

use pep508_rs::pep440_rs::Version;

use crate::error::Error;
use crate::index::{Index, IndexFile};

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
    let mut results: Vec<Option<Result<Vec<IndexFile>, Error>>> =
        releases.iter().map(|_| None).collect();
    let chunk = releases.len().div_ceil(PARALLEL_PAGES).max(1);
    std::thread::scope(|scope| {
        for (slots, work) in results.chunks_mut(chunk).zip(releases.chunks(chunk)) {
            scope.spawn(move || {
                for (slot, (name, version)) in slots.iter_mut().zip(work) {
                    *slot = Some(release_files(index, name, version));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Internal("an index page was not read".into()))))
        .collect()
}
