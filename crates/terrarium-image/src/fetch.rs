//! HTTP downloads into the blob cache: streamed, hashed while written, checked for truncation,
//! size and sha256, and never cached unless they verify. One fetcher serves every download of a
//! build (Debian indices and packages, the Python index and wheels), so retries, limits, offline
//! mode and parallelism are decided in one place.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::cache::{Cache, StoredBlob};
use crate::digest::Digest;
use crate::error::Error;
use crate::progress::{NoProgress, Progress, ProgressEvent};

/// What a download must be: a signed index or a lock says so, and nothing else is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// sha256.
    pub sha256: Digest,
    /// Exact size in bytes, when known (Debian indices give it; most Python locks do not, and
    /// then a download shorter than the server's `Content-Length` is still caught).
    pub size: Option<u64>,
}

/// One blob of a [`Fetcher::fetch_all`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Where to get it.
    pub url: String,
    /// Its name in progress events and errors (a file name).
    pub what: String,
    /// What it must be.
    pub expected: Expected,
}

/// An HTTP client that fetches into a [`Cache`]. TLS uses rustls with the platform's trust store
/// (on Linux the system CA bundle), so a proxy whose CA is installed there works.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: Arc<OnceLock<reqwest::blocking::Client>>,
    cache: Cache,
    offline: bool,
}

/// Attempts per download: network errors and truncation are retried, anything else is not.
const ATTEMPTS: usize = 3;

/// Parallel downloads of [`Fetcher::fetch_all`]: enough to hide latency, few enough to be polite
/// to mirrors.
const DOWNLOAD_WORKERS: usize = 4;

/// The most [`Fetcher::get_small`] accepts (InRelease files are well under 1 MiB).
pub const MAX_SMALL_DOWNLOAD: usize = 16 << 20;

struct LimitedBuffer(Vec<u8>);

impl Write for LimitedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_SMALL_DOWNLOAD {
            return Err(std::io::Error::other(format!(
                "larger than {MAX_SMALL_DOWNLOAD} bytes; this is not an index file"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Fetcher {
    /// A fetcher storing into `cache`; with `offline`, only the cache is used.
    pub fn new(cache: Cache, offline: bool) -> Result<Self, Error> {
        Ok(Self {
            client: Arc::new(OnceLock::new()),
            cache,
            offline,
        })
    }

    /// The HTTP client, made on first use (a warm or offline build never needs one, and making
    /// it loads the trust store and starts a runtime thread).
    fn client(&self) -> Result<&reqwest::blocking::Client, Error> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("terrarium/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|err| Error::Network {
                url: "(client setup)".into(),
                message: error_chain(&err),
            })?;
        Ok(self.client.get_or_init(|| client))
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Whether the fetcher works from the cache alone.
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// The blob `expected.sha256`, from the cache when present and intact, else downloaded from
    /// `url`, verified and cached. `what` names the file in progress events and errors.
    pub fn blob(
        &self,
        url: &str,
        what: &str,
        expected: Expected,
        progress: &dyn Progress,
    ) -> Result<StoredBlob, Error> {
        let Expected { sha256, size } = expected;
        if let Some(path) = self.cache.get(&sha256)? {
            let size = match size {
                Some(size) => size,
                None => std::fs::metadata(&path)
                    .map_err(|source| Error::Io {
                        path: path.clone(),
                        source,
                    })?
                    .len(),
            };
            progress.event(&ProgressEvent::Finished { what, cached: true });
            return Ok(StoredBlob {
                digest: sha256,
                size,
                path,
            });
        }
        if self.offline {
            return Err(Error::Offline {
                what: format!("{what} ({sha256})"),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_blob(url, what, sha256, size, progress) {
                Err(Error::Network { .. } | Error::Truncated { .. }) if attempt < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(500 * attempt as u64));
                }
                result => return result,
            }
        }
    }

    /// [`blob`](Self::blob) for every download, [`DOWNLOAD_WORKERS`] at a time; blobs in the
    /// order of `downloads`. The first failure stops handing out work, and the error of the
    /// earliest failed download is returned.
    pub fn fetch_all(
        &self,
        downloads: &[Download],
        progress: &dyn Progress,
    ) -> Result<Vec<StoredBlob>, Error> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<StoredBlob, Error>>>> =
            Mutex::new((0..downloads.len()).map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..DOWNLOAD_WORKERS.min(downloads.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(download) = downloads.get(i) else {
                            break;
                        };
                        let result =
                            self.blob(&download.url, &download.what, download.expected, progress);
                        let failed = result.is_err();
                        if let Ok(mut results) = results.lock() {
                            results[i] = Some(result);
                        }
                        if failed {
                            // Stop handing out work; the first error is reported.
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // A worker that panicked re-raised its panic when the scope ended, so a poisoned lock
        // holds only finished results.
        let results = results
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut blobs = Vec::with_capacity(results.len());
        let mut skipped = None;
        for (result, download) in results.into_iter().zip(downloads) {
            match result {
                Some(result) => blobs.push(result?),
                None => skipped = skipped.or(Some(download)),
            }
        }
        if let Some(download) = skipped {
            return Err(Error::Network {
                url: download.url.clone(),
                message: "not downloaded because another download failed".into(),
            });
        }
        Ok(blobs)
    }

    fn try_blob(
        &self,
        url: &str,
        what: &str,
        sha256: Digest,
        size: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<StoredBlob, Error> {
        let mut writer = self.cache.writer()?;
        self.download(url, what, size, &mut writer, &[], progress)?;
        if let Some(size) = size
            && writer.written() != size
        {
            return Err(Error::DownloadSizeMismatch {
                what: what.to_owned(),
                expected: size,
                actual: writer.written(),
            });
        }
        let stored = writer.commit_expecting(&sha256, what)?;
        progress.event(&ProgressEvent::Finished {
            what,
            cached: false,
        });
        Ok(stored)
    }

    /// GET `url` into memory (for small, signed metadata such as InRelease); refuses more than
    /// [`MAX_SMALL_DOWNLOAD`] bytes.
    pub fn get_small(&self, url: &str) -> Result<Vec<u8>, Error> {
        self.get_small_as(url, None)
    }

    /// [`get_small`](Self::get_small) asking for the media type `accept` (e.g. the PyPI Simple
    /// API's `application/vnd.pypi.simple.v1+json`).
    pub fn get_small_as(&self, url: &str, accept: Option<&str>) -> Result<Vec<u8>, Error> {
        if self.offline {
            return Err(Error::Offline {
                what: url.to_owned(),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut out = LimitedBuffer(Vec::new());
            let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
            match self.download(url, url, None, &mut out, &headers, &NoProgress) {
                Ok(()) => return Ok(out.0),
                Err(Error::Network { .. } | Error::Truncated { .. }) if attempt < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(500 * attempt as u64));
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn download(
        &self,
        url: &str,
        what: &str,
        expected_size: Option<u64>,
        out: &mut dyn Write,
        headers: &[(&str, &str)],
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let network = |message: String| Error::Network {
            url: url.to_owned(),
            message,
        };
        let mut request = self.client()?.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send().map_err(|err| network(error_chain(&err)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                url: url.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(network(format!("HTTP {status}")));
        }
        let total = expected_size.or(response.content_length());
        progress.event(&ProgressEvent::Started { what, total });
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        loop {
            let n = match response.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // A connection that closes early surfaces here: report it as truncation
                    // when we know how much should have come.
                    return Err(match total {
                        Some(expected) if done < expected => Error::Truncated {
                            url: url.to_owned(),
                            expected,
                            actual: done,
                        },
                        _ => network(error_chain(&err)),
                    });
                }
            };
            out.write_all(&buf[..n]).map_err(|err| Error::Io {
                path: what.into(),
                source: err,
            })?;
            done += n as u64;
            progress.event(&ProgressEvent::Advanced { what, done, total });
        }
        if let Some(expected) = total
            && done < expected
        {
            return Err(Error::Truncated {
                url: url.to_owned(),
                expected,
                actual: done,
            });
        }
        Ok(())
    }
}

/// An error and its sources on one line (`error sending request: connection refused`), for
/// messages that must say why, not only what.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// What the test server answers for a path: status, body, and the `Content-Length` it
    /// announces (more than the body simulates a cut connection).
    struct Reply {
        status: u16,
        body: Vec<u8>,
        declared: usize,
    }

    impl Reply {
        fn ok(body: &[u8]) -> Self {
            Self {
                status: 200,
                body: body.to_vec(),
                declared: body.len(),
            }
        }
    }

    /// Serve `replies` over HTTP on 127.0.0.1 (404 for other paths); returns the base URL and
    /// the count of requests served.
    fn serve(replies: HashMap<&'static str, Reply>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).ok();
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let missing = Reply {
                    status: 404,
                    body: Vec::new(),
                    declared: 0,
                };
                let reply = replies.get(path.as_str()).unwrap_or(&missing);
                let head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.status, reply.declared
                );
                stream.write_all(head.as_bytes()).ok();
                stream.write_all(&reply.body).ok();
            }
        });
        (base, requests)
    }

    fn download(base: &str, path: &str, body: &[u8], size: Option<u64>) -> Download {
        Download {
            url: format!("{base}{path}"),
            what: path.trim_start_matches('/').to_owned(),
            expected: Expected {
                sha256: Digest::of(body),
                size,
            },
        }
    }

    #[test]
    fn fetches_in_order_caches_and_then_works_offline() {
        let bodies: Vec<Vec<u8>> = (0..7).map(|i| format!("blob {i}").into_bytes()).collect();
        let paths = ["/0", "/1", "/2", "/3", "/4", "/5", "/6"];
        let (base, requests) = serve(
            paths
                .iter()
                .zip(&bodies)
                .map(|(path, body)| (*path, Reply::ok(body)))
                .collect(),
        );
        let downloads: Vec<Download> = paths
            .iter()
            .zip(&bodies)
            .enumerate()
            .map(|(i, (path, body))| {
                // Sizes known for some (Debian), unknown for others (wheels).
                let size = (i % 2 == 0).then_some(body.len() as u64);
                download(&base, path, body, size)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let fetcher = Fetcher::new(cache.clone(), false).unwrap();
        let blobs = fetcher.fetch_all(&downloads, &NoProgress).unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 7);
        for (blob, body) in blobs.iter().zip(&bodies) {
            assert_eq!(blob.digest, Digest::of(body));
            assert_eq!(blob.size, body.len() as u64);
            assert_eq!(std::fs::read(&blob.path).unwrap(), *body);
        }

        let cached = AtomicUsize::new(0);
        let progress = |event: &ProgressEvent<'_>| {
            if matches!(event, ProgressEvent::Finished { cached: true, .. }) {
                cached.fetch_add(1, Ordering::SeqCst);
            }
        };
        let offline = Fetcher::new(cache, true).unwrap();
        assert_eq!(offline.fetch_all(&downloads, &progress).unwrap(), blobs);
        assert_eq!(cached.load(Ordering::SeqCst), 7);
        assert_eq!(requests.load(Ordering::SeqCst), 7, "the cache answered");
        assert_eq!(offline.fetch_all(&[], &NoProgress).unwrap(), []);
    }

    #[test]
    fn a_wrong_hash_or_size_is_not_cached_and_names_the_file() {
        let (base, _) = serve(HashMap::from([("/pkg.deb", Reply::ok(b"tampered"))]));
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let fetcher = Fetcher::new(cache.clone(), false).unwrap();

        let genuine = download(&base, "/pkg.deb", b"genuine", None);
        let err = fetcher
            .blob(&genuine.url, "pkg.deb", genuine.expected, &NoProgress)
            .unwrap_err();
        match &err {
            Error::DigestMismatch {
                what,
                expected,
                actual,
            } => {
                assert_eq!(what, "pkg.deb");
                assert_eq!(*expected, Digest::of(b"genuine"));
                assert_eq!(*actual, Digest::of(b"tampered"));
            }
            other => panic!("expected a digest mismatch, got {other}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&Digest::of(b"genuine").to_string()),
            "{message}"
        );
        assert!(message.contains("retry"), "{message}");

        let sized = download(&base, "/pkg.deb", b"tampered", Some(3));
        let err = fetcher
            .blob(&sized.url, "pkg.deb", sized.expected, &NoProgress)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DownloadSizeMismatch {
                    expected: 3,
                    actual: 8,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("pkg.deb: "), "{err}");
        assert_eq!(cache.get(&Digest::of(b"tampered")).unwrap(), None);
        assert_eq!(
            std::fs::read_dir(cache.tmp_dir().unwrap()).unwrap().count(),
            0
        );
    }

    #[test]
    fn truncation_is_retried_and_reported_and_404_is_not_retried() {
        let (base, requests) = serve(HashMap::from([(
            "/cut",
            Reply {
                status: 200,
                body: b"half".to_vec(),
                declared: 8,
            },
        )]));
        let dir = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(Cache::new(dir.path()), false).unwrap();
        let cut = download(&base, "/cut", b"halfhalf", None);
        let err = fetcher
            .blob(&cut.url, &cut.what, cut.expected, &NoProgress)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    expected: 8,
                    actual: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&cut.url), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), ATTEMPTS);

        let err = fetcher.get_small(&format!("{base}/gone")).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("/gone"), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), ATTEMPTS + 1);
    }

    #[test]
    fn the_first_failed_download_of_a_batch_is_reported() {
        let (base, _) = serve(HashMap::from([("/good", Reply::ok(b"good"))]));
        let dir = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(Cache::new(dir.path()), false).unwrap();
        let downloads = [
            download(&base, "/good", b"good", Some(4)),
            download(&base, "/missing.whl", b"x", None),
        ];
        let err = fetcher.fetch_all(&downloads, &NoProgress).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("/missing.whl"), "{err}");
    }

    #[test]
    fn offline_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(Cache::new(dir.path()), true).unwrap();
        let wanted = download("http://127.0.0.1:9", "/netbase.deb", b"x", Some(1));
        let err = fetcher.fetch_all(&[wanted], &NoProgress).unwrap_err();
        assert!(matches!(err, Error::Offline { .. }), "{err}");
        assert!(err.to_string().contains("netbase.deb"), "{err}");
        let err = fetcher
            .get_small("http://127.0.0.1:9/InRelease")
            .unwrap_err();
        assert!(matches!(err, Error::Offline { .. }), "{err}");
    }
}
