//! The code scan remembered between runs: scanning the Python sources compiles about forty
//! regexes (most of a no-change build's CPU time), so its result is kept on disk with the
//! stamps of everything it read, and reused while none of them changed, as git's index trusts
//! a file whose stat data is unchanged.
//!
//! A stamp is a file's size, modification and status-change times (nanoseconds) and inode, or
//! its absence: editing a file changes its modification time, restoring that time (`touch -d`)
//! changes its status-change time, replacing it (an editor's rename) its inode. Besides the
//! sources, `manage.py` and `__init__.py` are stamped in every directory above a source (the
//! scan asks whether they exist there), so adding or removing one is seen. Timestamps are
//! coarse, so a change in the same tick as an earlier one could look like no change (git's
//! "racy clean" problem): nothing modified in the last two seconds is trusted, and then the
//! scan runs and is not recorded. The record also names the running executable (its path and
//! stamp), so a new terrarium never reads an older one's record.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::code::{App, EnvVar};
use crate::django::DjangoProject;
use crate::error::DetectError;
use crate::{Fact, Write};

/// What the code scan found: the part of a [`crate::Project`] read from the Python sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scanned {
    pub apps: Vec<Fact<App>>,
    pub ports: Vec<Fact<u16>>,
    pub env: Vec<Fact<EnvVar>>,
    pub health_routes: Vec<Fact<String>>,
    pub writes: Vec<Fact<Write>>,
    pub django: Option<DjangoProject>,
}

/// A file's or directory's stat data that any change of its content or entries alters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
}

/// How long a path must be left alone before its stamp can be trusted.
const RACY_WINDOW: Duration = Duration::from_secs(2);

impl Stamp {
    /// The stamp of `path` (`None` when it doesn't exist), and whether it changed too recently
    /// to be trusted.
    fn of(path: &Path) -> (Option<Stamp>, bool) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return (None, false);
        };
        let nanos = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
        let stamp = Stamp {
            size: meta.size(),
            mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let newest = stamp.mtime_ns.max(stamp.ctime_ns);
        let racy = now - newest < RACY_WINDOW.as_nanos() as i128;
        (Some(stamp), racy)
    }
}

/// The scan's record on disk: who wrote it, for which project, the stamps it was made with.
#[derive(Serialize, Deserialize)]
struct Record {
    executable: String,
    root: PathBuf,
    stamps: Vec<(PathBuf, Option<Stamp>)>,
    scanned: Scanned,
}

/// The running executable and its stamp: a rebuilt or upgraded terrarium scans again.
fn executable() -> Option<String> {
    let path = std::env::current_exe().ok()?;
    let (stamp, _) = Stamp::of(&path);
    let stamp = stamp?;
    Some(format!(
        "{} {} {} {} {}",
        env!("CARGO_PKG_VERSION"),
        path.display(),
        stamp.size,
        stamp.mtime_ns,
        stamp.inode
    ))
}

/// What the scan of `sources` (relative to `root`) reads: the sources, and `manage.py` and
/// `__init__.py` in every directory above a source, the root included (whether they exist
/// there; the root's `manage.py` is read even when ignored). With their stamps, and whether
/// any is too recent to trust.
fn stamps(root: &Path, sources: &[PathBuf]) -> (Vec<(PathBuf, Option<Stamp>)>, bool) {
    let mut paths: BTreeSet<PathBuf> = BTreeSet::new();
    for source in sources {
        paths.insert(source.clone());
        for dir in source.ancestors().skip(1) {
            paths.insert(dir.join("manage.py"));
            paths.insert(dir.join("__init__.py"));
        }
    }
    let mut racy = false;
    let stamps = paths
        .into_iter()
        .map(|path| {
            let (stamp, recent) = Stamp::of(&root.join(&path));
            racy |= recent;
            (path, stamp)
        })
        .collect();
    (stamps, racy)
}

/// Where the record of `root` lives in `dir`: one per project directory, replaced by each
/// new scan.
fn record_path(dir: &Path, root: &Path) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    dir.join(format!("{:016x}.json", hasher.finish()))
}

/// The scan of `sources` in `root`: from the record in `dir` when nothing it read changed,
/// else `scan()`, recorded there when everything it read is old enough to be trusted. An
/// unreadable record counts as none; a record that can't be written is only a missed saving.
pub(crate) fn scan_remembered(
    dir: &Path,
    root: &Path,
    sources: &[PathBuf],
    scan: impl FnOnce() -> Result<Scanned, DetectError>,
) -> Result<Scanned, DetectError> {
    let Some(executable) = executable() else {
        return scan();
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let (stamps, racy) = stamps(&root, sources);
    let path = record_path(dir, &root);
    if !racy
        && let Ok(bytes) = std::fs::read(&path)
        && let Ok(record) = serde_json::from_slice::<Record>(&bytes)
        && record.executable == executable
        && record.root == root
        && record.stamps == stamps
    {
        return Ok(record.scanned);
    }
    let scanned = scan()?;
    if !racy {
        let record = Record {
            executable,
            root,
            stamps,
            scanned,
        };
        let _ = write_atomically(dir, &path, &record);
        return Ok(record.scanned);
    }
    Ok(scanned)
}

/// Write `record` to `path` in `dir` through a temporary file and a rename.
fn write_atomically(dir: &Path, path: &Path, record: &Record) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut file, record)?;
    file.flush()?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fs::{self, File};

    use super::*;

    const APP: &str = "from flask import Flask\napp = Flask(__name__)\napp.run(port=5000)\n";

    fn settle() {
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
    }

    fn ports(project: &crate::Project) -> Vec<u16> {
        project.ports.iter().map(|p| p.value).collect()
    }

    #[test]
    fn an_unchanged_project_reads_the_record_and_a_recent_change_is_never_trusted() {
        let project = tempfile::tempdir().unwrap();
        let records = tempfile::tempdir().unwrap();
        fs::write(project.path().join("app.py"), APP).unwrap();
        let sources = vec![PathBuf::from("app.py")];
        let scans = Cell::new(0);
        let scan = || {
            scans.set(scans.get() + 1);
            let found = crate::detect(project.path())?;
            Ok(Scanned {
                apps: found.apps,
                ports: found.ports,
                env: found.env,
                health_routes: found.health_routes,
                writes: found.writes,
                django: found.django,
            })
        };
        // Just written: scanned every time, never recorded.
        scan_remembered(records.path(), project.path(), &sources, scan).unwrap();
        scan_remembered(records.path(), project.path(), &sources, scan).unwrap();
        assert_eq!(scans.get(), 2);
        assert_eq!(fs::read_dir(records.path()).unwrap().count(), 0);
        settle();
        let first = scan_remembered(records.path(), project.path(), &sources, scan).unwrap();
        let again = scan_remembered(records.path(), project.path(), &sources, scan).unwrap();
        assert_eq!(scans.get(), 3, "the second run reads the record");
        assert_eq!(first, again);
        // Another file written beside the sources (terrarium.lock after a build): no rescan.
        fs::write(project.path().join("terrarium.lock"), "").unwrap();
        scan_remembered(records.path(), project.path(), &sources, scan).unwrap();
        assert_eq!(scans.get(), 3);
        // A manage.py appears beside them (the scan looks for one there): scanned again.
        fs::write(project.path().join("manage.py"), "").unwrap();
        settle();
        scan_remembered(records.path(), project.path(), &sources, scan).unwrap();
        assert_eq!(scans.get(), 4);
    }

    #[test]
    fn a_content_change_is_seen_even_with_the_same_size_and_modification_time() {
        let project = tempfile::tempdir().unwrap();
        let records = tempfile::tempdir().unwrap();
        let app = project.path().join("app.py");
        fs::write(&app, APP).unwrap();
        settle();
        let found = crate::detect_remembered(project.path(), records.path()).unwrap();
        assert_eq!(ports(&found), [5000]);
        assert_eq!(fs::read_dir(records.path()).unwrap().count(), 1);
        // Same length, and the old modification time put back, in place (same inode).
        let mtime = fs::metadata(&app).unwrap().modified().unwrap();
        fs::write(&app, APP.replace("5000", "5001")).unwrap();
        File::options()
            .write(true)
            .open(&app)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let found = crate::detect_remembered(project.path(), records.path()).unwrap();
        assert_eq!(ports(&found), [5001], "changed just now");
        settle();
        let found = crate::detect_remembered(project.path(), records.path()).unwrap();
        assert_eq!(ports(&found), [5001], "changed a while ago");
        let found = crate::detect_remembered(project.path(), records.path()).unwrap();
        assert_eq!(ports(&found), [5001], "from the new record");
    }
}
