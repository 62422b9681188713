//! The package index: the PyPI Simple API in its JSON form (PEP 691), with the file list of each
//! project kept in the cache's metadata so that warm and offline builds need no network.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pep508_rs::pep440_rs::Version;
use serde::{Deserialize, Serialize};
use terrarium_image::{Digest, Fetcher};

use crate::error::Error;
use crate::resolve::version_of;

/// The Simple API media type asked for (PEP 691).
pub const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// PyPI's Simple API.
pub const PYPI_SIMPLE: &str = "https://pypi.org/simple";

/// How long a cached project page is used before it is fetched again.
pub const DEFAULT_PAGE_MAX_AGE: Duration = Duration::from_secs(3600);

/// How many project pages [`Index::prefetch`] fetches at once.
const PREFETCH_CONNECTIONS: usize = 8;

/// Seconds since the epoch (0 if the clock is before it).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One file of a project on the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    /// The file name (`flask-3.1.2-py3-none-any.whl`, `pkg-1.0.tar.gz`).
    pub filename: String,
    /// Absolute download URL.
    pub url: String,
    /// Its sha256, when the index gives one.
    pub sha256: Option<Digest>,
    /// Its size, when the index gives it (PEP 700).
    pub size: Option<u64>,
    /// `Requires-Python`, when given.
    pub requires_python: Option<String>,
    /// Whether the file is yanked (PEP 592).
    pub yanked: bool,
    /// When it was uploaded (PEP 700), when the index says.
    #[serde(default)]
    pub upload_time: Option<jiff::Timestamp>,
}

/// A Simple-API index reached through a [`Fetcher`] (which decides the cache and offline mode).
#[derive(Debug, Clone)]
pub struct Index {
    fetcher: Fetcher,
    base: String,
    max_age: Duration,
    exclude_newer: Option<jiff::Timestamp>,
}

#[derive(Deserialize)]
struct Page {
    files: Vec<PageFile>,
}

#[derive(Deserialize)]
struct PageFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(rename = "requires-python")]
    requires_python: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(rename = "upload-time")]
    upload_time: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CachedPage {
    fetched: u64,
    files: Vec<IndexFile>,
}

impl Index {
    /// An index at `base` (the Simple API root, e.g. [`PYPI_SIMPLE`]).
    pub fn new(fetcher: Fetcher, base: impl Into<String>) -> Self {
        Self {
            fetcher,
            base: base.into().trim_end_matches('/').to_owned(),
            max_age: DEFAULT_PAGE_MAX_AGE,
            exclude_newer: None,
        }
    }

    /// Resolve requirements that are not pinned exactly as of `cutoff`: files uploaded later
    /// are not candidates (uv's `--exclude-newer`).
    pub fn with_exclude_newer(mut self, cutoff: Option<jiff::Timestamp>) -> Self {
        self.exclude_newer = cutoff;
        self
    }

    /// The cut-off of [`with_exclude_newer`](Self::with_exclude_newer).
    pub fn exclude_newer(&self) -> Option<jiff::Timestamp> {
        self.exclude_newer
    }

    /// Reuse cached project pages for up to `max_age` (offline builds always reuse them).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The fetcher (downloads, cache, offline mode).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    fn meta_key(&self, name: &str) -> String {
        format!("pypi/{}/{name}.json", terrarium_image::url_key(&self.base))
    }

    /// The files of project `name` (normalized per PEP 503). With `refresh`, a cached page is
    /// fetched again (online) even when it is fresh: used when a locked hash is not on it.
    pub fn files(&self, name: &str, refresh: bool) -> Result<Vec<IndexFile>, Error> {
        Ok(self.page(name, refresh)?.files)
    }

    /// [`files`](Self::files) with the time its page was fetched.
    fn page(&self, name: &str, refresh: bool) -> Result<CachedPage, Error> {
        let cached = self.cached(name)?;
        if let Some(page) = cached {
            let fresh = self.is_fresh(page.fetched) && !refresh;
            if fresh || self.fetcher.offline() {
                return Ok(page);
            }
        }
        let fetched = now();
        let files = self.fetch_page(name)?;
        Ok(CachedPage { fetched, files })
    }

    /// The files of release `version` of `name` (those [`version_of`] gives that version), as
    /// fresh as [`files`](Self::files) would give them. Each release read is also kept on its
    /// own with its page's fetch time, so reading a pinned release again parses its handful of
    /// files, not every release's (pytest's page is 130 kB); with `refresh`, the page is
    /// fetched again.
    pub fn release(
        &self,
        name: &str,
        version: &Version,
        refresh: bool,
    ) -> Result<Vec<IndexFile>, Error> {
        let key = format!(
            "pypi/{}/releases/{name}/{version}.json",
            terrarium_image::url_key(&self.base)
        );
        let cache = self.fetcher.cache();
        if !refresh
            && let Some(bytes) = cache.read_meta(&key)?
            && let Ok(record) = serde_json::from_slice::<CachedPage>(&bytes)
            && (self.is_fresh(record.fetched) || self.fetcher.offline())
        {
            return Ok(record.files);
        }
        let page = self.page(name, refresh)?;
        let record = CachedPage {
            fetched: page.fetched,
            files: page
                .files
                .into_iter()
                .filter(|file| version_of(&file.filename).is_some_and(|v| v == *version))
                .collect(),
        };
        let json = serde_json::to_vec(&record).map_err(|err| Error::Internal(err.to_string()))?;
        cache.write_meta(&key, &json)?;
        Ok(record.files)
    }

    /// Fetch the pages of `names` that are not fresh in the cache, eight at a
    /// time over the fetcher's pooled connections, so that the [`files`](Self::files) calls of a
    /// resolution find them there. Returns how many pages were fetched. Offline it does nothing;
    /// a page that fails is left for `files` to fetch again and report in its context (which
    /// requirement asked for it), so failures are not returned here.
    pub fn prefetch<S: AsRef<str> + Sync>(&self, names: &[S]) -> Result<usize, Error> {
        if self.fetcher.offline() {
            return Ok(0);
        }
        let mut stale = Vec::new();
        for name in names {
            let name = name.as_ref();
            let fresh = self
                .cached(name)?
                .is_some_and(|page| self.is_fresh(page.fetched));
            if !fresh && !stale.contains(&name) {
                stale.push(name);
            }
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let fetched = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..PREFETCH_CONNECTIONS.min(stale.len()) {
                scope.spawn(|| {
                    while let Some(name) =
                        stale.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        if self.fetch_page(name).is_ok() {
                            fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        Ok(fetched.into_inner())
    }

    /// The cached page of `name`, if any (an unreadable record counts as none).
    fn cached(&self, name: &str) -> Result<Option<CachedPage>, Error> {
        Ok(self
            .fetcher
            .cache()
            .read_meta(&self.meta_key(name))?
            .and_then(|bytes| serde_json::from_slice::<CachedPage>(&bytes).ok()))
    }

    /// Whether a page fetched at `fetched` (seconds since the epoch) is young enough to use.
    fn is_fresh(&self, fetched: u64) -> bool {
        now().saturating_sub(fetched) < self.max_age.as_secs()
    }

    /// Fetch the page of `name`, remember it and return its files.
    fn fetch_page(&self, name: &str) -> Result<Vec<IndexFile>, Error> {
        let now = now();
        let url = format!("{}/{name}/", self.base);
        let body = self.fetcher.get_small_as(&url, Some(SIMPLE_JSON))?;
        let page: Page = serde_json::from_slice(&body).map_err(|err| Error::Parse {
            what: url.clone(),
            message: format!("not a PEP 691 JSON project page: {err}"),
        })?;
        let files: Vec<IndexFile> = page
            .files
            .into_iter()
            .map(|file| IndexFile {
                url: absolute(&url, &file.url),
                sha256: file
                    .hashes
                    .get("sha256")
                    .and_then(|hex| Digest::from_hex(&hex.to_ascii_lowercase()).ok()),
                size: file.size,
                requires_python: file.requires_python.filter(|r| !r.trim().is_empty()),
                yanked: !matches!(file.yanked, serde_json::Value::Bool(false))
                    && !file.yanked.is_null(),
                upload_time: file.upload_time.and_then(|t| t.parse().ok()),
                filename: file.filename,
            })
            .collect();
        self.remember(name, now, &files)?;
        Ok(files)
    }

    /// Keep the `files` of project `name`, fetched at `fetched` (seconds since the epoch), in
    /// the cache's metadata for [`files`](Self::files).
    pub(crate) fn remember(
        &self,
        name: &str,
        fetched: u64,
        files: &[IndexFile],
    ) -> Result<(), Error> {
        let record = CachedPage {
            fetched,
            files: files.to_vec(),
        };
        let json = serde_json::to_vec(&record).map_err(|err| Error::Internal(err.to_string()))?;
        self.fetcher
            .cache()
            .write_meta(&self.meta_key(name), &json)?;
        Ok(())
    }
}

/// Resolve a possibly relative file URL against the page URL.
fn absolute(page: &str, url: &str) -> String {
    if url.contains("://") {
        return url.to_owned();
    }
    let origin_end = page
        .find("://")
        .and_then(|i| page[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(page.len());
    if url.starts_with('/') {
        format!("{}{url}", &page[..origin_end])
    } else {
        format!("{}/{url}", page.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn joins_relative_urls() {
        let page = "https://pypi.org/simple/flask/";
        assert_eq!(absolute(page, "https://f/x.whl"), "https://f/x.whl");
        assert_eq!(
            absolute(page, "/packages/x.whl"),
            "https://pypi.org/packages/x.whl"
        );
        assert_eq!(
            absolute(page, "x.whl"),
            "https://pypi.org/simple/flask/x.whl"
        );
    }

    /// A Simple API on 127.0.0.1 answering `/simple/NAME/` for `names` (404 otherwise), each
    /// answer 200 ms late, one thread per connection; returns its root, the requests served and
    /// the most connections that were open at once.
    fn slow_index(names: &'static [&'static str]) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/simple", listener.local_addr().unwrap());
        let (served, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let open = Arc::new(AtomicUsize::new(0));
        let (served_in, peak_in) = (Arc::clone(&served), Arc::clone(&peak));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (served, peak, open) = (
                    Arc::clone(&served_in),
                    Arc::clone(&peak_in),
                    Arc::clone(&open),
                );
                std::thread::spawn(move || {
                    let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now_open, Ordering::SeqCst);
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).ok();
                    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    let name = path.trim_start_matches("/simple/").trim_end_matches('/');
                    let (status, body) = if names.contains(&name) {
                        let body = format!(
                            r#"{{"files":[{{"filename":"{name}-1.0-py3-none-any.whl","url":"{name}-1.0-py3-none-any.whl","hashes":{{"sha256":"{}"}}}}]}}"#,
                            "ab".repeat(32)
                        );
                        (200, body)
                    } else {
                        (404, String::new())
                    };
                    let mut stream = stream;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).ok();
                    stream.write_all(body.as_bytes()).ok();
                    served.fetch_add(1, Ordering::SeqCst);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (base, served, peak)
    }

    #[test]
    fn prefetch_fetches_pages_at_once_into_the_cache_and_leaves_failures_to_files() {
        const NAMES: &[&str] = &["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
        let (base, served, peak) = slow_index(NAMES);
        let dir = tempfile::tempdir().unwrap();
        let cache = terrarium_image::Cache::new(dir.path().to_owned());
        let index = Index::new(Fetcher::new(cache.clone(), false).unwrap(), &base);
        let mut names: Vec<&str> = NAMES.to_vec();
        names.extend(["missing", "alpha"]);
        assert_eq!(index.prefetch(&names).unwrap(), NAMES.len());
        assert_eq!(
            served.load(Ordering::SeqCst),
            NAMES.len() + 1,
            "each name once"
        );
        assert!(
            peak.load(Ordering::SeqCst) > 1,
            "pages were fetched concurrently"
        );

        // Every page is in the cache: an offline index reads them without the server.
        let offline = Index::new(Fetcher::new(cache, true).unwrap(), &base);
        for name in NAMES {
            let files = offline.files(name, false).unwrap();
            assert_eq!(
                files[0].url,
                format!("{base}/{name}/{name}-1.0-py3-none-any.whl")
            );
        }
        // Fresh pages are not fetched again; the missing one is, and `files` reports it.
        let before = served.load(Ordering::SeqCst);
        assert_eq!(index.prefetch(&NAMES[..2]).unwrap(), 0);
        assert_eq!(served.load(Ordering::SeqCst), before);
        let err = index.files("missing", false).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        // Offline, prefetch does nothing.
        assert_eq!(offline.prefetch(&["missing"]).unwrap(), 0);
    }
}
