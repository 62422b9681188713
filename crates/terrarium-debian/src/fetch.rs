//! HTTP downloads into the blob cache: streamed, hashed while written, checked for truncation,
//! size and sha256, and never cached unless they verify.

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use terrarium_image::{Cache, Digest, StoredBlob};

use crate::error::Error;
use crate::progress::{Progress, ProgressEvent};

/// What a download must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Exact size in bytes.
    pub size: u64,
    /// sha256.
    pub sha256: Digest,
}

/// An HTTP client that fetches into a [`Cache`]. TLS uses rustls with the platform's trust store
/// (on Linux the system CA bundle), so a proxy whose CA is installed there works.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: Arc<OnceLock<reqwest::blocking::Client>>,
    cache: Cache,
    offline: bool,
}

const ATTEMPTS: usize = 3;

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
        self.blob_checked(url, what, expected.sha256, Some(expected.size), progress)
    }

    /// Like [`blob`](Self::blob) for a file whose size is not known in advance (only its
    /// sha256, as in most Python lock files); a download shorter than the server's
    /// `Content-Length` is still reported as [`Error::Truncated`].
    pub fn blob_checked(
        &self,
        url: &str,
        what: &str,
        sha256: Digest,
        size: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<StoredBlob, Error> {
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
            return Err(Error::SizeMismatch {
                file: what.to_owned(),
                expected: size,
                actual: writer.written(),
            });
        }
        let stored = writer
            .commit_expecting(&sha256, what)
            .map_err(|err| match err {
                terrarium_image::Error::DigestMismatch {
                    what,
                    expected,
                    actual,
                } => Error::HashMismatch {
                    file: what,
                    expected,
                    actual,
                },
                other => other.into(),
            })?;
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
            match self.download(
                url,
                url,
                None,
                &mut out,
                &headers,
                &crate::progress::NoProgress,
            ) {
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

/// An error and its sources on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
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
