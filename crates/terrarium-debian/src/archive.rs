//! The Debian archive client: signed InRelease, verified Packages indices, verified .deb
//! downloads, all through the blob cache.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use terrarium_image::{Digest, Download, Expected, Fetcher, Progress, canonical_json};

use crate::error::Error;
use crate::keyring::Keyring;
use crate::packages::PackageIndex;
use crate::release::Release;
use crate::resolve::{
    DebianPin, DroppedDependency, PackageSet, Resolution, ResolveOptions, resolve,
};
use crate::suite::{Architecture, Distro, Mirror, Suite};

/// How long a fetched `InRelease` is reused before it is fetched again.
pub const DEFAULT_INDEX_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// A client for one mirror and architecture.
#[derive(Debug)]
pub struct Archive {
    fetcher: Fetcher,
    mirror: Mirror,
    /// Loaded on the first signature check: a build whose packages are all in terrarium.lock
    /// reads no index and never needs it.
    keyring: std::sync::OnceLock<Keyring>,
    architecture: Architecture,
    index_max_age: Duration,
    allow_expired: bool,
    /// Releases used past their `Valid-Until` (only with [`Archive::allow_expired`]).
    expired: std::sync::Mutex<Vec<String>>,
    /// Package indices read in this process, by distro: several resolutions share one.
    indices: Mutex<HashMap<Distro, Arc<PackageIndex>>>,
}

/// Version of the resolution memo; part of its key, so a resolver change invalidates it.
const RESOLVE_MEMO: &str = "terrarium-debian resolution v1";

/// A remembered [`Resolution`], stored under a digest of everything that decides it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Memo {
    packages: PackageSet,
    dropped: Vec<(String, String)>,
}

impl Archive {
    /// A client using `fetcher` (which decides the cache and offline mode) and `mirror`.
    pub fn new(
        fetcher: Fetcher,
        mirror: Mirror,
        architecture: Architecture,
    ) -> Result<Self, Error> {
        Ok(Self {
            fetcher,
            mirror,
            keyring: std::sync::OnceLock::new(),
            architecture,
            index_max_age: DEFAULT_INDEX_MAX_AGE,
            allow_expired: false,
            expired: std::sync::Mutex::new(Vec::new()),
            indices: Mutex::new(HashMap::new()),
        })
    }

    /// Use a signed Release past its `Valid-Until` instead of refusing it: for a mirror that is
    /// frozen on purpose (a snapshot), like apt's `Check-Valid-Until=false`. The signature is
    /// still checked; what is lost is the protection against a mirror replaying old indices,
    /// so each such Release is reported by [`expired_releases`](Self::expired_releases).
    pub fn allow_expired(mut self, allow: bool) -> Self {
        self.allow_expired = allow;
        self
    }

    /// The Releases used past their `Valid-Until`, as `suite (expired at …)`.
    pub fn expired_releases(&self) -> Vec<String> {
        self.expired.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The embedded Debian keyring, parsed once.
    fn keyring(&self) -> Result<&Keyring, Error> {
        if let Some(keyring) = self.keyring.get() {
            return Ok(keyring);
        }
        let loaded = Keyring::debian()?;
        Ok(self.keyring.get_or_init(|| loaded))
    }

    /// Reuse a cached `InRelease` for up to `max_age` (offline mode always reuses it).
    pub fn with_index_max_age(mut self, max_age: Duration) -> Self {
        self.index_max_age = max_age;
        self
    }

    /// The blob cache it stores into.
    pub fn cache(&self) -> &terrarium_image::Cache {
        self.fetcher.cache()
    }

    /// The architecture.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    fn meta_key(&self, suite: Suite) -> String {
        format!(
            "debian/{}/{}/InRelease",
            terrarium_image::url_key(self.mirror.base(suite)),
            suite.name()
        )
    }

    /// The verified Release of `suite`: from the cache when fresh enough, else fetched. The
    /// signature is checked every time, and a Release past its `Valid-Until` is refused
    /// (except offline, where the lock's hashes are what protect the build).
    pub fn release(&self, suite: Suite) -> Result<Release, Error> {
        let cache = self.fetcher.cache();
        let key = self.meta_key(suite);
        let cached = cache.read_meta(&key)?;
        let fresh = cache_age(cache.root().join("meta").join(&key))
            .is_some_and(|age| age <= self.index_max_age);
        if let Some(bytes) = &cached
            && (fresh || self.fetcher.offline())
        {
            match self.parse_release(bytes, suite) {
                Ok(release) => return Ok(release),
                // A cached copy that no longer verifies is dropped and fetched again.
                Err(_) if !self.fetcher.offline() => cache.remove_meta(&key)?,
                Err(err) => return Err(err),
            }
        }
        if self.fetcher.offline() {
            return Err(terrarium_image::Error::Offline {
                what: format!("{suite} InRelease"),
            }
            .into());
        }
        let url = self
            .mirror
            .url(suite, &format!("dists/{}/InRelease", suite.name()));
        let bytes = self.fetcher.get_small(&url)?;
        let release = self.parse_release(&bytes, suite)?;
        cache.write_meta(&key, &bytes)?;
        Ok(release)
    }

    /// Verify and parse InRelease bytes for `suite`.
    pub fn parse_release(&self, bytes: &[u8], suite: Suite) -> Result<Release, Error> {
        let name = suite.name();
        let text = self.keyring()?.verify_inrelease(bytes, &name)?;
        let release = Release::parse(&text, &format!("{name} InRelease"))?;
        if release.codename != name && release.suite != name {
            return Err(Error::WrongSuite {
                expected: name,
                actual: release.codename,
            });
        }
        if !self.fetcher.offline()
            && let Some(valid_until) = release.valid_until_epoch()?
        {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if valid_until < now {
                let until = release.valid_until.clone().unwrap_or_default();
                if !self.allow_expired {
                    return Err(Error::Expired {
                        suite: name,
                        valid_until: until,
                    });
                }
                if let Ok(mut expired) = self.expired.lock() {
                    let note = format!("{name} (expired at {until})");
                    if !expired.contains(&note) {
                        expired.push(note);
                    }
                }
            }
        }
        Ok(release)
    }

    /// The `main` Packages index of `suite` as `release` lists it: its path and entry. The gzip
    /// one where the suite publishes it (bookworm's is 12 MB against 8.8 MB for xz, but it
    /// decompresses about five times faster, and the download is not the slower part), else
    /// the xz one (the security suites publish only that).
    fn packages_file<'r>(
        &self,
        suite: Suite,
        release: &'r Release,
    ) -> Result<(String, &'r crate::release::IndexFile), Error> {
        let dir = format!("main/binary-{}", self.architecture);
        for compressed in ["Packages.gz", "Packages.xz"] {
            let file = format!("{dir}/{compressed}");
            if let Some(listed) = release.file(&file) {
                return Ok((file, listed));
            }
        }
        Err(Error::NotInRelease {
            suite: suite.name(),
            file: format!("{dir}/Packages.xz"),
        })
    }

    /// Add the `main` Packages index of `suite` (verified against `release`) to `index`.
    pub fn add_packages(
        &self,
        suite: Suite,
        release: &Release,
        index: &mut PackageIndex,
        progress: &dyn Progress,
    ) -> Result<usize, Error> {
        let dir = format!("main/binary-{}", self.architecture);
        let (file, listed) = self.packages_file(suite, release)?;
        let path = if release.acquire_by_hash {
            format!("{dir}/by-hash/SHA256/{}", listed.sha256.hex())
        } else {
            file.clone()
        };
        let url = self
            .mirror
            .url(suite, &format!("dists/{}/{path}", suite.name()));
        let what = format!("{suite}/{file}");
        let blob = self.fetcher.blob(
            &url,
            &what,
            Expected {
                sha256: listed.sha256,
                size: Some(listed.size),
            },
            progress,
        )?;
        let reader = std::fs::File::open(&blob.path).map_err(crate::error::io_error(&blob.path))?;
        let reader = BufReader::with_capacity(1 << 16, reader);
        let decoder: Box<dyn std::io::Read> = if file.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        } else {
            Box::new(liblzma::read::XzDecoder::new(reader))
        };
        index.add_packages_file(BufReader::with_capacity(1 << 16, decoder), suite, &what)
    }

    /// The package index of `distro`: its release and security suites.
    pub fn index(&self, distro: Distro, progress: &dyn Progress) -> Result<PackageIndex, Error> {
        let mut index = PackageIndex::new();
        for suite in distro.suites() {
            let release = self.release(suite)?;
            self.add_packages(suite, &release, &mut index, progress)?;
        }
        Ok(index)
    }

    /// [`resolve`] `roots` on `distro`, remembered in the cache under the sha256 of every
    /// `Packages` index it reads (from the signed Releases), the roots and the options: the
    /// same question against the same indices is answered without decompressing and parsing
    /// them again (about 50 MB for bookworm's `main`). The index itself is read at most once
    /// per process.
    pub fn resolve(
        &self,
        distro: Distro,
        roots: &[&str],
        options: &ResolveOptions,
        progress: &dyn Progress,
    ) -> Result<Resolution, Error> {
        let mut indices = Vec::new();
        for suite in distro.suites() {
            let release = self.release(suite)?;
            let listed = self.packages_file(suite, &release)?.1;
            indices.push((suite.name(), listed.sha256.to_string()));
        }
        let key = Digest::of(&canonical_json(&serde_json::json!({
            "memo": RESOLVE_MEMO,
            "architecture": self.architecture,
            "indices": indices,
            "roots": roots,
            "excluded": options.excluded,
        }))?);
        let cache = self.fetcher.cache();
        let meta_key = format!("debian/resolved/{}.json", key.hex());
        if let Some(bytes) = cache.read_meta(&meta_key)? {
            match serde_json::from_slice::<Memo>(&bytes) {
                Ok(memo) if memo.packages.distro == distro => {
                    return Ok(Resolution {
                        packages: memo.packages,
                        dropped: memo
                            .dropped
                            .into_iter()
                            .map(|(package, dependency)| DroppedDependency {
                                package,
                                dependency,
                            })
                            .collect(),
                    });
                }
                _ => cache.remove_meta(&meta_key)?,
            }
        }
        let index = self.shared_index(distro, progress)?;
        let resolution = resolve(&index, distro, self.architecture, roots, options)?;
        let memo = Memo {
            packages: resolution.packages.clone(),
            dropped: resolution
                .dropped
                .iter()
                .map(|d| (d.package.clone(), d.dependency.clone()))
                .collect(),
        };
        let bytes = serde_json::to_vec(&memo).map_err(|err| Error::Parse {
            file: meta_key.clone(),
            message: err.to_string(),
        })?;
        cache.write_meta(&meta_key, &bytes)?;
        Ok(resolution)
    }

    /// The index of `distro`, read once per process.
    fn shared_index(
        &self,
        distro: Distro,
        progress: &dyn Progress,
    ) -> Result<Arc<PackageIndex>, Error> {
        if let Some(index) = self
            .indices
            .lock()
            .ok()
            .and_then(|i| i.get(&distro).cloned())
        {
            return Ok(index);
        }
        let index = Arc::new(self.index(distro, progress)?);
        if let Ok(mut indices) = self.indices.lock() {
            indices.insert(distro, index.clone());
        }
        Ok(index)
    }

    /// The .deb of `package`, verified by its sha256, from the cache or downloaded.
    pub fn fetch(&self, package: &DebianPin, progress: &dyn Progress) -> Result<PathBuf, Error> {
        let download = self.download(package);
        let blob = self
            .fetcher
            .blob(&download.url, &download.what, download.expected, progress)?;
        Ok(blob.path)
    }

    /// Every .deb of `set`, fetched in parallel; paths in the set's order.
    pub fn fetch_all(
        &self,
        set: &PackageSet,
        progress: &dyn Progress,
    ) -> Result<Vec<PathBuf>, Error> {
        let downloads: Vec<Download> = set.packages.iter().map(|p| self.download(p)).collect();
        let blobs = self.fetcher.fetch_all(&downloads, progress)?;
        Ok(blobs.into_iter().map(|blob| blob.path).collect())
    }

    /// Where the .deb of `package` is on the mirror, its file name, size and sha256.
    fn download(&self, package: &DebianPin) -> Download {
        let what = package
            .filename
            .rsplit('/')
            .next()
            .unwrap_or(&package.filename);
        Download {
            url: self.mirror.url(package.suite, &package.filename),
            what: what.to_owned(),
            expected: Expected {
                sha256: package.sha256,
                size: Some(package.size),
            },
        }
    }
}

fn cache_age(path: PathBuf) -> Option<Duration> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    SystemTime::now().duration_since(modified).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(files: &[&str]) -> Release {
        let mut text = "Origin: Debian\nCodename: bookworm\nSHA256:\n".to_owned();
        for file in files {
            text.push_str(&format!(" {} 12 {file}\n", "0".repeat(64)));
        }
        Release::parse(&text, "test").unwrap()
    }

    #[test]
    fn the_gzip_index_is_read_where_the_suite_publishes_one_else_the_xz_one() {
        let scratch = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(terrarium_image::Cache::new(scratch.path()), true).unwrap();
        let archive = Archive::new(fetcher, Mirror::default(), Architecture::Amd64).unwrap();
        let suite = Distro::Bookworm.suites()[0];
        let both = release(&[
            "main/binary-amd64/Packages",
            "main/binary-amd64/Packages.gz",
            "main/binary-amd64/Packages.xz",
        ]);
        let (file, _) = archive.packages_file(suite, &both).unwrap();
        assert_eq!(file, "main/binary-amd64/Packages.gz");
        let xz_only = release(&[
            "main/binary-amd64/Packages",
            "main/binary-amd64/Packages.xz",
        ]);
        let (file, _) = archive.packages_file(suite, &xz_only).unwrap();
        assert_eq!(file, "main/binary-amd64/Packages.xz");
        let neither = release(&["main/binary-amd64/Packages"]);
        assert!(matches!(
            archive.packages_file(suite, &neither),
            Err(Error::NotInRelease { .. })
        ));
    }
}
