//! The content-addressed blob cache: `<root>/blobs/sha256/<hex>`, written atomically and checked
//! by hash on every read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tempfile::NamedTempFile;

use crate::compress::Compression;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, io_error};
use crate::layer::Layer;

/// The environment variable that overrides the cache location.
pub const CACHE_DIR_ENV: &str = "TERRARIUM_CACHE_DIR";

/// terrarium's cache directory: blobs by sha256 (debs, wheels, layers, configs, manifests) and
/// index metadata under `meta/`.
///
/// Every write goes to a temporary file in the cache and is renamed into place, so an interrupted
/// write never leaves a partial entry. An entry is hashed when it is written or first read, and
/// hashed again whenever its size, modification time or inode differ from what was recorded
/// then (a stamp under `meta/verified/`); a corrupt entry is removed and reported as missing, so
/// callers fetch it again. Re-hashing a 15 MB runtime layer on every warm build cost more than
/// the rest of the build.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Stamps of the blobs this process has hashed or written (shared by clones), so a second
    /// `get` in one build does not even read the stamp file.
    verified: Arc<Mutex<HashMap<Digest, String>>>,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            verified: Arc::default(),
        }
    }

    /// The cache at `$TERRARIUM_CACHE_DIR`, else `$XDG_CACHE_HOME/terrarium`, else
    /// `~/.cache/terrarium`.
    pub fn from_env() -> Result<Self, Error> {
        let nonempty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(dir) = nonempty(CACHE_DIR_ENV) {
            return Ok(Self::new(dir));
        }
        if let Some(dir) = nonempty("XDG_CACHE_HOME") {
            return Ok(Self::new(PathBuf::from(dir).join("terrarium")));
        }
        match nonempty("HOME") {
            Some(home) => Ok(Self::new(
                PathBuf::from(home).join(".cache").join("terrarium"),
            )),
            None => Err(Error::NoCacheDir),
        }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// A directory for temporary files on the same filesystem as the cache (so renames into the
    /// cache are atomic).
    pub fn tmp_dir(&self) -> Result<PathBuf, Error> {
        let dir = self.root.join("tmp");
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(dir)
    }

    /// Delete temporary files older than `max_age` left by processes that were killed while
    /// writing (a write in progress is never older than a build). Returns how many were removed.
    pub fn prune_tmp(&self, max_age: std::time::Duration) -> Result<usize, Error> {
        let dir = self.root.join("tmp");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(io_error(&dir)(err)),
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            let stale = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= max_age);
            if stale && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The path of the blob with `digest` when it is present and its content hashes to `digest`.
    ///
    /// A corrupt entry is deleted and `None` is returned, so the caller fetches it again.
    pub fn get(&self, digest: &Digest) -> Result<Option<PathBuf>, Error> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_error(&path)(err)),
        };
        let metadata = file.metadata().map_err(io_error(&path))?;
        if settled(&metadata) {
            let current = stamp(&metadata);
            let remembered = self
                .verified
                .lock()
                .ok()
                .and_then(|v| v.get(digest).cloned());
            let trusted = remembered.as_deref() == Some(current.as_str())
                || self.read_meta(&stamp_key(digest))?.as_deref() == Some(current.as_bytes());
            if trusted {
                self.remember_verified(digest, current);
                return Ok(Some(path));
            }
        }
        let (actual, size) = Digest::of_reader(io::BufReader::with_capacity(1 << 16, file))
            .map_err(io_error(&path))?;
        if actual == *digest && size == metadata.len() {
            self.mark_verified(digest)?;
            return Ok(Some(path));
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(None),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error(&path)(err)),
        }
    }

    fn remember_verified(&self, digest: &Digest, stamp: String) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.insert(*digest, stamp);
        }
    }

    /// Record that the blob with `digest` hashed correctly, in this process and, once it has
    /// settled, on disk. A blob modified in the last two seconds is not trusted by its stamp:
    /// timestamps are coarse, and a change within the same tick would look like no change
    /// (git's "racy clean" problem). It is hashed again next time, and stamped then.
    fn mark_verified(&self, digest: &Digest) -> Result<(), Error> {
        let path = self.blob_path(digest);
        let metadata = fs::metadata(&path).map_err(io_error(&path))?;
        let current = stamp(&metadata);
        if settled(&metadata) {
            self.write_meta(&stamp_key(digest), current.as_bytes())?;
        }
        self.remember_verified(digest, current);
        Ok(())
    }

    /// Store `bytes` and return their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let mut writer = self.writer()?;
        writer.write_all(bytes).map_err(io_error(self.root()))?;
        Ok(writer.commit()?.digest)
    }

    /// A writer for a new blob; [`BlobWriter::commit`] moves it into place under its digest.
    pub fn writer(&self) -> Result<BlobWriter, Error> {
        let dir = self.tmp_dir()?;
        let file = NamedTempFile::new_in(&dir).map_err(io_error(&dir))?;
        Ok(BlobWriter {
            cache: self.clone(),
            inner: HashingWriter::new(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// Read the metadata entry `key` (a relative path like `debian/bookworm/InRelease`).
    ///
    /// Metadata is not content-addressed; its reader must verify it (Debian indices carry a
    /// signature).
    pub fn read_meta(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.meta_path(key)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error(&path)(err)),
        }
    }

    /// Atomically replace the metadata entry `key` with `bytes`.
    pub fn write_meta(&self, key: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.meta_path(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut file = NamedTempFile::new_in(dir).map_err(io_error(dir))?;
        file.write_all(bytes).map_err(io_error(&path))?;
        file.as_file().sync_all().map_err(io_error(&path))?;
        file.persist(&path)
            .map_err(|err| io_error(&path)(err.error))?;
        Ok(())
    }

    /// Remove the metadata entry `key` if it exists.
    pub fn remove_meta(&self, key: &str) -> Result<(), Error> {
        let path = self.meta_path(key)?;
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error(&path)(err)),
            _ => Ok(()),
        }
    }

    /// The layer remembered under `key` (a digest of everything that decides its content),
    /// when its blob is still in the cache and intact; lets a build skip re-creating a layer
    /// whose inputs did not change. Records are kept per `compression` (and its level and chunk
    /// size), so a build asking for zstd never gets the gzip layer of the same inputs.
    pub fn cached_layer(
        &self,
        key: &Digest,
        compression: Compression,
    ) -> Result<Option<Layer>, Error> {
        let meta_key = format!("layers/{}/{}", compression.format(), key.hex());
        let Some(bytes) = self.read_meta(&meta_key)? else {
            return Ok(None);
        };
        let Ok(layer) = serde_json::from_slice::<Layer>(&bytes) else {
            self.remove_meta(&meta_key)?;
            return Ok(None);
        };
        if layer.compression != compression || self.get(&layer.digest)?.is_none() {
            self.remove_meta(&meta_key)?;
            return Ok(None);
        }
        Ok(Some(layer))
    }

    /// Remember `layer` under `key` (and its compression) for [`cached_layer`](Self::cached_layer).
    pub fn remember_layer(&self, key: &Digest, layer: &Layer) -> Result<(), Error> {
        let json = serde_json::to_vec(layer).map_err(|err| Error::Oci {
            what: "layer record",
            message: err.to_string(),
        })?;
        let format = layer.compression.format();
        self.write_meta(&format!("layers/{format}/{}", key.hex()), &json)
    }

    /// Where the metadata entry or directory `key` lives, for a reader that keeps its own files
    /// there (the project scan's records).
    pub fn meta_path(&self, key: &str) -> Result<PathBuf, Error> {
        let valid = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty() && part != "." && part != ".." && !part.contains('\\')
            });
        if !valid {
            return Err(Error::BadMetaKey(key.to_owned()));
        }
        Ok(self.root.join("meta").join(key))
    }
}

/// A blob being written into the [`Cache`]: hashed while written, renamed into place by its
/// digest on [`commit`](Self::commit). Dropping it without committing deletes the temporary file.
#[derive(Debug)]
pub struct BlobWriter {
    cache: Cache,
    inner: HashingWriter<BufWriter<NamedTempFile>>,
}

/// A blob stored in the [`Cache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The blob's sha256.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Where it lives in the cache.
    pub path: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    /// Move the blob into place under its digest.
    pub fn commit(self) -> Result<StoredBlob, Error> {
        self.commit_inner(None)
    }

    /// Move the blob into place only when it hashes to `expected`; otherwise discard it and
    /// return [`Error::DigestMismatch`] naming `what`.
    pub fn commit_expecting(self, expected: &Digest, what: &str) -> Result<StoredBlob, Error> {
        self.commit_inner(Some((expected, what)))
    }

    fn commit_inner(self, expected: Option<(&Digest, &str)>) -> Result<StoredBlob, Error> {
        let tmp_dir = self.cache.root.join("tmp");
        let (digest, size, buffered) = self.inner.finish();
        let file = buffered
            .into_inner()
            .map_err(|err| io_error(&tmp_dir)(err.into_error()))?;
        if let Some((expected, what)) = expected
            && digest != *expected
        {
            return Err(Error::DigestMismatch {
                what: what.to_owned(),
                expected: *expected,
                actual: digest,
            });
        }
        // A blob the cache already holds intact (an unchanged app layer, config or manifest)
        // is not written again: no sync, no rename.
        if let Some(path) = self.cache.get(&digest)? {
            return Ok(StoredBlob { digest, size, path });
        }
        file.as_file().sync_all().map_err(io_error(&tmp_dir))?;
        let path = self.cache.blob_path(&digest);
        let dir = path.parent().unwrap_or(&self.cache.root);
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        file.persist(&path)
            .map_err(|err| io_error(&path)(err.error))?;
        self.cache.mark_verified(&digest)?;
        Ok(StoredBlob { digest, size, path })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How long a blob must be left alone before its stamp can be trusted.
const RACY_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a blob has been left alone long enough for its stamp to mean anything.
fn settled(metadata: &fs::Metadata) -> bool {
    metadata
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age >= RACY_WINDOW)
}

/// A URL as one component of a metadata key: every character but ASCII letters and digits as
/// `_` (`https://pypi.org/simple` → `https___pypi_org_simple`).
pub fn url_key(url: &str) -> String {
    url.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The metadata key of a blob's verification stamp.
fn stamp_key(digest: &Digest) -> String {
    format!("verified/{}", digest.hex())
}

/// What must not change for a verified blob to stay verified: size, mtime and inode.
fn stamp(metadata: &fs::Metadata) -> String {
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let inode = 0u64;
    format!("{} {mtime} {inode}", metadata.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_verifies_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let digest = cache.put_bytes(b"hello").unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        let path = cache.get(&digest).unwrap().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");

        // A corrupt entry is detected, removed and reported missing, even by the process that
        // wrote it: a blob touched in the last seconds is always hashed again.
        fs::write(&path, b"hellO").unwrap();
        assert_eq!(cache.get(&digest).unwrap(), None);
        let digest = cache.put_bytes(b"hello").unwrap();
        fs::write(&path, b"hell").unwrap();
        assert_eq!(cache.get(&digest).unwrap(), None);
        let digest = cache.put_bytes(b"hello").unwrap();
        fs::write(&path, b"hellO").unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.get(&digest).unwrap(), None);
        assert!(!path.exists());
        assert_eq!(cache.get(&Digest::of(b"other")).unwrap(), None);
    }

    #[test]
    fn settled_blobs_are_stamped_and_any_change_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let digest = cache.put_bytes(b"a settled blob").unwrap();
        let path = cache.blob_path(&digest);
        let stamp_path = dir.path().join("meta").join(stamp_key(&digest));
        assert!(
            !stamp_path.exists(),
            "a blob written just now is not stamped"
        );

        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(an_hour_ago).unwrap();
        drop(file);
        assert!(Cache::new(dir.path()).get(&digest).unwrap().is_some());
        assert!(stamp_path.exists(), "a settled blob is stamped once hashed");

        // The stamp is what a later process checks: same size, mtime and inode, no re-hash.
        fs::write(&path, b"A settled blob").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(an_hour_ago).unwrap();
        drop(file);
        assert!(Cache::new(dir.path()).get(&digest).unwrap().is_some());

        // Any change to size, mtime or inode makes the next process hash it, and catch it.
        fs::write(&path, b"A settled blob").unwrap();
        assert_eq!(Cache::new(dir.path()).get(&digest).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn prunes_stale_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.prune_tmp(std::time::Duration::ZERO).unwrap(), 0);
        fs::write(
            cache.tmp_dir().unwrap().join("left-by-a-killed-build"),
            b"x",
        )
        .unwrap();
        assert_eq!(
            cache
                .prune_tmp(std::time::Duration::from_secs(3600))
                .unwrap(),
            0
        );
        assert_eq!(cache.prune_tmp(std::time::Duration::ZERO).unwrap(), 1);
    }

    #[test]
    fn mismatched_commit_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let mut writer = cache.writer().unwrap();
        writer.write_all(b"abc").unwrap();
        let err = writer
            .commit_expecting(&Digest::of(b"xyz"), "x.deb")
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("x.deb"));
        assert_eq!(fs::read_dir(cache.tmp_dir().unwrap()).unwrap().count(), 0);
        assert!(!cache.blob_path(&Digest::of(b"abc")).exists());
    }

    #[test]
    fn meta_entries_are_replaced_atomically_and_keys_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.read_meta("debian/x").unwrap(), None);
        cache.write_meta("debian/x", b"1").unwrap();
        cache.write_meta("debian/x", b"2").unwrap();
        assert_eq!(cache.read_meta("debian/x").unwrap().unwrap(), b"2");
        cache.remove_meta("debian/x").unwrap();
        assert_eq!(cache.read_meta("debian/x").unwrap(), None);
        for bad in ["", "../x", "a//b", "/abs"] {
            assert!(matches!(
                cache.write_meta(bad, b""),
                Err(Error::BadMetaKey(_))
            ));
        }
    }
}
