//! Verified wheel downloads into the blob cache, in parallel.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use terrarium_debian::{Fetcher, Progress};

use crate::error::Error;
use crate::select::Pin;

/// Parallel wheel downloads.
const DOWNLOAD_WORKERS: usize = 4;

/// The wheel of `pin`, from the cache when present and intact, else downloaded and checked
/// against the pin's sha256 (nothing is cached unless it matches).
pub fn fetch_wheel(
    fetcher: &Fetcher,
    pin: &Pin,
    progress: &dyn Progress,
) -> Result<PathBuf, Error> {
    fetcher
        .blob_checked(&pin.url, &pin.filename, pin.sha256, None, progress)
        .map(|stored| stored.path)
        .map_err(|err| match err {
            terrarium_debian::Error::HashMismatch {
                file,
                expected,
                actual,
            } => Error::HashMismatch {
                package: format!("{} {}", pin.name, pin.version),
                file,
                expected,
                actual,
            },
            other => other.into(),
        })
}

/// [`fetch_wheel`] for every pin, a few at a time; paths in the order of `pins`. The first
/// error stops the rest.
pub fn fetch_all(
    fetcher: &Fetcher,
    pins: &[Pin],
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, Error> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PathBuf, Error>>>> =
        Mutex::new((0..pins.len()).map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..DOWNLOAD_WORKERS.min(pins.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= pins.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let result = fetch_wheel(fetcher, &pins[i], progress);
                    if result.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(result);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::Internal("a download thread panicked".into()))?;
    let mut paths = Vec::with_capacity(pins.len());
    let mut first_error = None;
    for result in results {
        match result {
            Some(Ok(path)) => paths.push(path),
            Some(Err(err)) => {
                first_error.get_or_insert(err);
            }
            None => {}
        }
    }
    match first_error {
        Some(err) => Err(err),
        None if paths.len() == pins.len() => Ok(paths),
        None => Err(Error::Internal("a download did not run".into())),
    }
}
