//! Reproducible, streaming layer tars: [`LayerWriter`] writes entries in sorted order into a
//! gzip- or zstd-compressed tar (1 MiB chunks compressed in parallel, see [`crate::compress`])
//! inside the blob cache, hashing both the tar (the diff_id) and the compressed stream (the blob
//! digest) on the way; [`LayerTree`] collects entries from anywhere and writes
//! them sorted.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::{BlobWriter, Cache};
use crate::compress::{Compression, ParallelEncoder};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, io_error};
use crate::time::Epoch;

/// A path inside a layer: relative, `/`-separated, no `.`/`..` parts, no trailing slash.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerPath(String);

impl LayerPath {
    /// Normalise `path` (`./usr/bin/`, `/usr/bin` and `usr/bin` are all `usr/bin`).
    pub fn new(path: &str) -> Result<Self, Error> {
        let mut parts = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(Error::BadPath(path.to_owned())),
                part => parts.push(part),
            }
        }
        if parts.is_empty() || path.contains('\0') {
            return Err(Error::BadPath(path.to_owned()));
        }
        Ok(Self(parts.join("/")))
    }

    /// The normalised path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent directory, or `None` for a top-level entry.
    pub fn parent(&self) -> Option<LayerPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| LayerPath(parent.to_owned()))
    }

    /// `self/child`, normalised.
    pub fn join(&self, child: &str) -> Result<LayerPath, Error> {
        LayerPath::new(&format!("{}/{child}", self.0))
    }
}

impl fmt::Display for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Owner of a layer entry; always written explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ownership {
    /// Numeric user id.
    pub uid: u64,
    /// Numeric group id.
    pub gid: u64,
    /// User name.
    pub uname: String,
    /// Group name.
    pub gname: String,
}

impl Ownership {
    /// `0:0 root:root`.
    pub fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
        }
    }

    /// `65532:65532 nonroot:nonroot`, the user terrarium's images run as.
    pub fn nonroot() -> Self {
        Self {
            uid: 65532,
            gid: 65532,
            uname: "nonroot".into(),
            gname: "nonroot".into(),
        }
    }
}

/// What a layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Directory,
    /// A regular file of `size` bytes.
    File {
        /// The content's length.
        size: u64,
    },
    /// A symbolic link to `target` (written verbatim).
    Symlink {
        /// Where it points.
        target: String,
    },
    /// A hard link to an earlier file of the same layer.
    HardLink {
        /// The file it links to.
        target: LayerPath,
    },
}

/// One entry of a layer: path, kind, permission bits and owner. Times are never recorded; every
/// entry gets the layer's fixed mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it goes.
    pub path: LayerPath,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (including setuid/setgid/sticky), e.g. `0o755`.
    pub mode: u32,
    /// Who owns it.
    pub owner: Ownership,
}

impl Entry {
    /// A root-owned directory with `mode`.
    pub fn directory(path: LayerPath, mode: u32) -> Self {
        Self {
            path,
            kind: EntryKind::Directory,
            mode,
            owner: Ownership::root(),
        }
    }

    /// A root-owned file of `size` bytes with `mode`.
    pub fn file(path: LayerPath, size: u64, mode: u32) -> Self {
        Self {
            path,
            kind: EntryKind::File { size },
            mode,
            owner: Ownership::root(),
        }
    }

    /// A root-owned symlink to `target`.
    pub fn symlink(path: LayerPath, target: impl Into<String>) -> Self {
        Self {
            path,
            kind: EntryKind::Symlink {
                target: target.into(),
            },
            mode: 0o777,
            owner: Ownership::root(),
        }
    }

    /// The same entry owned by `owner`.
    pub fn owned_by(mut self, owner: Ownership) -> Self {
        self.owner = owner;
        self
    }
}

/// Settings that decide a layer's bytes (the default: mtime 0, gzip).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// The mtime of every entry.
    pub mtime: Epoch,
    /// How the tar is compressed.
    pub compression: Compression,
}

/// A layer stored in the cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// sha256 of the compressed blob (what manifests refer to).
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Number of entries in the tar.
    pub entries: u64,
    /// How the blob is compressed (records written before zstd existed are gzip).
    #[serde(default)]
    pub compression: Compression,
}

impl Layer {
    /// The OCI media type of the blob.
    pub fn media_type(&self) -> &'static str {
        self.compression.media_type()
    }
}

type Sink = tar::Builder<HashingWriter<ParallelEncoder<BlobWriter>>>;

/// Writes one layer: entries must come in sorted path order (byte order), so parents precede
/// their children and the same entries always give the same bytes. Nothing is held in memory
/// beyond the paths of files written (to check hard links).
pub struct LayerWriter {
    tar: Sink,
    mtime: u64,
    previous: Option<LayerPath>,
    files: HashSet<LayerPath>,
    entries: u64,
    failed: bool,
    compression: Compression,
}

impl fmt::Debug for LayerWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerWriter")
            .field("mtime", &self.mtime)
            .field("previous", &self.previous)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl LayerWriter {
    /// Start a layer in `cache`.
    pub fn new(cache: &Cache, options: LayerOptions) -> Result<Self, Error> {
        let blob = cache.writer()?;
        let encoder = ParallelEncoder::new(blob, options.compression);
        Ok(Self {
            tar: tar::Builder::new(HashingWriter::new(encoder)),
            mtime: options.mtime.seconds(),
            previous: None,
            files: HashSet::new(),
            entries: 0,
            failed: false,
            compression: options.compression,
        })
    }

    /// Append `entry`; for a file, `content` must yield exactly its size in bytes (it is not read
    /// for other kinds).
    ///
    /// After a failed `add` the tar may be inconsistent, so the writer refuses further entries
    /// and [`finish`](Self::finish) fails: a broken layer never reaches the cache.
    pub fn add(&mut self, entry: &Entry, content: impl Read) -> Result<(), Error> {
        if self.failed {
            return Err(Error::LayerAborted);
        }
        if let Some(previous) = &self.previous
            && entry.path <= *previous
        {
            return Err(Error::Unsorted {
                path: entry.path.to_string(),
                previous: previous.to_string(),
            });
        }
        if let EntryKind::HardLink { target } = &entry.kind
            && !self.files.contains(target)
        {
            return Err(Error::DanglingHardLink {
                path: entry.path.to_string(),
                target: target.to_string(),
            });
        }
        if let Err(err) = append_entry(&mut self.tar, entry, content, self.mtime) {
            self.failed = true;
            return Err(err);
        }
        if matches!(entry.kind, EntryKind::File { .. }) {
            self.files.insert(entry.path.clone());
        }
        self.previous = Some(entry.path.clone());
        self.entries += 1;
        Ok(())
    }

    /// Finish the tar, flush the compressor and move the blob into the cache by its digest.
    pub fn finish(self) -> Result<Layer, Error> {
        if self.failed {
            return Err(Error::LayerAborted);
        }
        let io_err = |source| Error::Io {
            path: PathBuf::from("<layer>"),
            source,
        };
        let hashing = self.tar.into_inner().map_err(io_err)?;
        let (diff_id, uncompressed_size, encoder) = hashing.finish();
        let blob = encoder.finish().map_err(io_err)?;
        let stored = blob.commit()?;
        Ok(Layer {
            digest: stored.digest,
            size: stored.size,
            diff_id,
            uncompressed_size,
            entries: self.entries,
            compression: self.compression,
        })
    }
}

/// Append one entry (with a PAX header first when a name does not fit ustar) to `tar`.
pub(crate) fn append_entry<W: io::Write>(
    tar: &mut tar::Builder<W>,
    entry: &Entry,
    content: impl Read,
    mtime: u64,
) -> Result<(), Error> {
    let tar_path = match entry.kind {
        EntryKind::Directory => format!("{}/", entry.path),
        _ => entry.path.to_string(),
    };
    let (header, pax) = header_for(entry, &tar_path, mtime)?;
    let io_err = |source| Error::Io {
        path: PathBuf::from(&tar_path),
        source,
    };
    if !pax.is_empty() {
        let mut pax_header = tar::Header::new_ustar();
        set_name_bytes(
            &mut pax_header,
            format!("PaxHeaders/{}", entry.path).as_bytes(),
        );
        pax_header.set_entry_type(tar::EntryType::XHeader);
        pax_header.set_mode(0o644);
        pax_header.set_mtime(mtime);
        pax_header.set_size(pax.len() as u64);
        finish_header(&mut pax_header);
        tar.append(&pax_header, pax.as_slice()).map_err(io_err)?;
    }
    match entry.kind {
        EntryKind::File { size } => {
            let mut limited = content.take(size);
            let mut counted = CountingReader {
                inner: &mut limited,
                count: 0,
            };
            tar.append(&header, &mut counted).map_err(io_err)?;
            let count = counted.count;
            let mut rest = limited.into_inner();
            let extra = rest.read(&mut [0u8; 1]).map_err(io_err)?;
            if count != size || extra != 0 {
                return Err(Error::SizeMismatch {
                    path: entry.path.to_string(),
                    declared: size,
                    actual: count + extra as u64,
                });
            }
        }
        _ => tar.append(&header, io::empty()).map_err(io_err)?,
    }
    Ok(())
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn header_for(entry: &Entry, tar_path: &str, mtime: u64) -> Result<(tar::Header, Vec<u8>), Error> {
    let mut header = tar::Header::new_ustar();
    let mut pax = Vec::new();
    if !set_ustar_path(&mut header, tar_path.as_bytes()) {
        push_pax_record(&mut pax, "path", tar_path.as_bytes());
        set_name_bytes(&mut header, truncate(tar_path.as_bytes(), 100));
    }
    let (kind, size, link) = match &entry.kind {
        EntryKind::Directory => (tar::EntryType::Directory, 0, None),
        EntryKind::File { size } => (tar::EntryType::Regular, *size, None),
        EntryKind::Symlink { target } => (tar::EntryType::Symlink, 0, Some(target.as_str())),
        EntryKind::HardLink { target } => (tar::EntryType::Link, 0, Some(target.as_str())),
    };
    header.set_entry_type(kind);
    if size >= 0o77777777777 {
        push_pax_record(&mut pax, "size", size.to_string().as_bytes());
    }
    header.set_size(size);
    if let Some(link) = link {
        if link.is_empty() || link.contains('\0') {
            return Err(Error::BadPath(format!("{} -> {link}", entry.path)));
        }
        if link.len() > 100 {
            push_pax_record(&mut pax, "linkpath", link.as_bytes());
        }
        header.as_old_mut().linkname = [0; 100];
        let bytes = truncate(link.as_bytes(), 100);
        header.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
    }
    header.set_mode(entry.mode & 0o7777);
    header.set_uid(entry.owner.uid);
    header.set_gid(entry.owner.gid);
    for (key, name) in [("uname", &entry.owner.uname), ("gname", &entry.owner.gname)] {
        if name.len() > 31 {
            push_pax_record(&mut pax, key, name.as_bytes());
        }
    }
    let ustar = header
        .as_ustar_mut()
        .ok_or_else(|| Error::BadPath(tar_path.to_owned()))?;
    copy_truncated(&mut ustar.uname, entry.owner.uname.as_bytes());
    copy_truncated(&mut ustar.gname, entry.owner.gname.as_bytes());
    header.set_mtime(mtime);
    finish_header(&mut header);
    Ok((header, pax))
}

fn finish_header(header: &mut tar::Header) {
    header.set_device_major(0).ok();
    header.set_device_minor(0).ok();
    header.set_cksum();
}

/// Put `path` into the ustar name (and prefix) fields; false when it does not fit.
fn set_ustar_path(header: &mut tar::Header, path: &[u8]) -> bool {
    if path.len() <= 100 {
        set_name_bytes(header, path);
        return true;
    }
    // Split at a `/` so that the prefix has at most 155 bytes and the name at most 100.
    let split = path
        .iter()
        .enumerate()
        .filter(|(i, byte)| **byte == b'/' && *i <= 155 && path.len() - i - 1 <= 100)
        .map(|(i, _)| i)
        .next_back();
    let (Some(split), Some(ustar)) = (split, header.as_ustar_mut()) else {
        return false;
    };
    if path.len() - split - 1 == 0 {
        return false;
    }
    copy_truncated(&mut ustar.prefix, &path[..split]);
    set_name_bytes(header, &path[split + 1..]);
    true
}

fn set_name_bytes(header: &mut tar::Header, name: &[u8]) {
    copy_truncated(&mut header.as_old_mut().name, name);
}

fn copy_truncated(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let bytes = truncate(value, field.len());
    field[..bytes.len()].copy_from_slice(bytes);
}

fn truncate(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

fn push_pax_record(pax: &mut Vec<u8>, key: &str, value: &[u8]) {
    // "<len> <key>=<value>\n" where <len> counts the whole record including its own digits.
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    pax.extend_from_slice(format!("{len} {key}=").as_bytes());
    pax.extend_from_slice(value);
    pax.push(b'\n');
}

/// A [`LayerTree`] entry's content: where a file's bytes come from (not to be confused with
/// `terrarium_project::Source`, where a fact about a project was read).
#[derive(Debug, Clone)]
pub enum Content {
    /// Bytes held in memory (for small generated files such as `/etc/passwd`).
    Bytes(Arc<[u8]>),
    /// A whole file on disk.
    Path(PathBuf),
    /// `len` bytes at `offset` of an open file (e.g. a file inside an uncompressed tar spool).
    Range {
        /// The file.
        file: Arc<File>,
        /// Where the content starts.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// Nothing (directories and links).
    Empty,
}

impl Content {
    fn reader(&self) -> Result<Box<dyn Read + '_>, Error> {
        Ok(match self {
            Content::Bytes(bytes) => Box::new(&bytes[..]),
            Content::Path(path) => Box::new(io::BufReader::with_capacity(
                1 << 16,
                File::open(path).map_err(io_error(path))?,
            )),
            Content::Range { file, offset, len } => Box::new(RangeReader {
                file,
                offset: *offset,
                remaining: *len,
            }),
            Content::Empty => Box::new(io::empty()),
        })
    }
}

struct RangeReader<'a> {
    file: &'a File,
    offset: u64,
    remaining: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Entries gathered in any order and written sorted: later entries replace earlier ones at the
/// same path (as when unpacking packages one after another), a directory never replaces a
/// directory (the first one's mode and owner stay), and missing parent directories are added
/// root-owned with mode 0755.
///
/// Only paths and metadata are held in memory; file contents stay where their [`Content`] says.
#[derive(Debug, Default)]
pub struct LayerTree {
    entries: BTreeMap<LayerPath, (Entry, Content)>,
}

impl LayerTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `entry` with its `content`.
    pub fn insert(&mut self, entry: Entry, content: Content) {
        if entry.kind == EntryKind::Directory
            && let Some((existing, _)) = self.entries.get(&entry.path)
            && existing.kind == EntryKind::Directory
        {
            return;
        }
        self.entries.insert(entry.path.clone(), (entry, content));
    }

    /// Add a small generated file.
    pub fn insert_bytes(&mut self, path: LayerPath, mode: u32, bytes: impl Into<Arc<[u8]>>) {
        let bytes = bytes.into();
        let entry = Entry::file(path, bytes.len() as u64, mode);
        self.insert(entry, Content::Bytes(bytes));
    }

    /// Remove the entry at `path` and everything under it.
    pub fn remove(&mut self, path: &LayerPath) {
        let prefix = format!("{path}/");
        self.entries
            .retain(|key, _| key != path && !key.as_str().starts_with(&prefix));
    }

    /// The entry at `path`.
    pub fn get(&self, path: &LayerPath) -> Option<&Entry> {
        self.entries.get(path).map(|(entry, _)| entry)
    }

    /// All entries in the order they will be written.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().map(|(entry, _)| entry)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The content of the regular file at `path`, when there is one (for small files such as
    /// certificates that generated files are made from).
    pub fn read_file(&self, path: &LayerPath) -> Result<Option<Vec<u8>>, Error> {
        let Some((entry, content)) = self.entries.get(path) else {
            return Ok(None);
        };
        if !matches!(entry.kind, EntryKind::File { .. }) {
            return Ok(None);
        }
        let mut out = Vec::new();
        content
            .reader()?
            .read_to_end(&mut out)
            .map_err(io_error(Path::new(path.as_str())))?;
        Ok(Some(out))
    }

    /// A tar needs a file before the hard links to it, but sorting can put a link first: make
    /// the first path of each group (in write order) the file and the others links to it.
    fn order_hard_links(&mut self) -> Result<(), Error> {
        let mut groups: BTreeMap<LayerPath, Vec<LayerPath>> = BTreeMap::new();
        for (path, (entry, _)) in &self.entries {
            if let EntryKind::HardLink { target } = &entry.kind {
                groups.entry(target.clone()).or_default().push(path.clone());
            }
        }
        for (target, links) in groups {
            let dangling = || Error::DanglingHardLink {
                path: links.first().map(ToString::to_string).unwrap_or_default(),
                target: target.to_string(),
            };
            let Some((file, content)) = self.entries.get(&target).cloned() else {
                return Err(dangling());
            };
            if !matches!(file.kind, EntryKind::File { .. }) {
                return Err(dangling());
            }
            let first = links.iter().min().filter(|first| **first < target).cloned();
            let Some(first) = first else { continue };
            let as_link = |path: &LayerPath| {
                let mut link = file.clone();
                link.path = path.clone();
                link.kind = EntryKind::HardLink {
                    target: first.clone(),
                };
                (link, Content::Empty)
            };
            for path in links.iter().chain([&target]).filter(|p| **p != first) {
                self.entries.insert(path.clone(), as_link(path));
            }
            let mut moved = file.clone();
            moved.path = first.clone();
            self.entries.insert(first.clone(), (moved, content));
        }
        Ok(())
    }

    /// Write every entry, sorted, into a new layer in `cache`.
    pub fn write(mut self, cache: &Cache, options: LayerOptions) -> Result<Layer, Error> {
        let missing: Vec<LayerPath> = self
            .entries
            .keys()
            .flat_map(|path| std::iter::successors(path.parent(), LayerPath::parent))
            .filter(|parent| !self.entries.contains_key(parent))
            .collect();
        for parent in missing {
            self.insert(Entry::directory(parent, 0o755), Content::Empty);
        }
        self.order_hard_links()?;
        let mut writer = LayerWriter::new(cache, options)?;
        for (entry, content) in self.entries.values() {
            writer.add(entry, content.reader()?)?;
        }
        writer.finish()
    }
}

/// Add the file or directory tree at `dir` on disk under `prefix` in `tree`, owned by `owner`,
/// keeping permission bits and symlinks (for the app layer and tests).
pub fn add_dir(
    tree: &mut LayerTree,
    dir: &Path,
    prefix: &LayerPath,
    owner: &Ownership,
) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(dir).map_err(io_error(dir))?;
    add_path(tree, dir, prefix.clone(), &meta, owner)
}

fn add_path(
    tree: &mut LayerTree,
    path: &Path,
    at: LayerPath,
    meta: &std::fs::Metadata,
    owner: &Ownership,
) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        let target = std::fs::read_link(path).map_err(io_error(path))?;
        let entry = Entry::symlink(at, target.to_string_lossy()).owned_by(owner.clone());
        tree.insert(entry, Content::Empty);
    } else if file_type.is_dir() {
        tree.insert(
            Entry::directory(at.clone(), mode).owned_by(owner.clone()),
            Content::Empty,
        );
        for child in std::fs::read_dir(path).map_err(io_error(path))? {
            let child = child.map_err(io_error(path))?;
            let name = child.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| Error::BadPath(child.path().display().to_string()))?;
            let child_meta = child.metadata().map_err(io_error(&child.path()))?;
            add_path(tree, &child.path(), at.join(name)?, &child_meta, owner)?;
        }
    } else if file_type.is_file() {
        let entry = Entry::file(at, meta.len(), mode).owned_by(owner.clone());
        tree.insert(entry, Content::Path(path.to_owned()));
    }
    Ok(())
}
