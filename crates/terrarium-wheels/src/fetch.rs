//! Verified wheel downloads into the blob cache, through the same [`Fetcher`] (and its parallel
//! [`Fetcher::fetch_all`]) as Debian packages.

use std::path::PathBuf;

use terrarium_image::{Download, Expected, Fetcher, Progress};

use crate::error::Error;
use crate::select::Pin;

/// The download of `pin`: its URL, file name and sha256 (wheel sizes are rarely locked).
fn download(pin: &Pin) -> Download {
    Download {
        url: pin.url.clone(),
        what: pin.filename.clone(),
        expected: Expected {
            sha256: pin.sha256,
            size: None,
        },
    }
}

/// A fetch error of one of `pins`, a hash mismatch naming the package whose lock entry it
/// contradicts.
fn wheel_error(err: terrarium_image::Error, pins: &[Pin]) -> Error {
    match err {
        terrarium_image::Error::DigestMismatch {
            what,
            expected,
            actual,
        } => {
            let package = pins.iter().find(|pin| pin.filename == what).map_or_else(
                || what.clone(),
                |pin| format!("{} {}", pin.name, pin.version),
            );
            Error::HashMismatch {
                package,
                file: what,
                expected,
                actual,
            }
        }
        other => other.into(),
    }
}

/// The wheel of `pin`, from the cache when present and intact, else downloaded and checked
/// against the pin's sha256 (nothing is cached unless it matches).
pub fn fetch_wheel(
    fetcher: &Fetcher,
    pin: &Pin,
    progress: &dyn Progress,
) -> Result<PathBuf, Error> {
    let download = download(pin);
    fetcher
        .blob(&download.url, &download.what, download.expected, progress)
        .map(|stored| stored.path)
        .map_err(|err| wheel_error(err, std::slice::from_ref(pin)))
}

/// [`fetch_wheel`] for every pin, in parallel ([`Fetcher::fetch_all`]); paths in the order of
/// `pins`. The first error stops the rest.
pub fn fetch_all(
    fetcher: &Fetcher,
    pins: &[Pin],
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, Error> {
    let downloads: Vec<Download> = pins.iter().map(download).collect();
    let blobs = fetcher
        .fetch_all(&downloads, progress)
        .map_err(|err| wheel_error(err, pins))?;
    Ok(blobs.into_iter().map(|blob| blob.path).collect())
}
