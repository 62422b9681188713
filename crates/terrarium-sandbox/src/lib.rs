//! Run a command inside a root file system that terrarium assembled from image layers (the
//! runtime, a build root, the deps), with host directories mounted in, and without a Docker
//! daemon: the image's own Python compiles bytecode, builds source distributions and runs build
//! steps such as Django's `collectstatic` exactly as it will run in the container.
//!
//! # How
//!
//! [`Rootfs::assemble`] unpacks layers (in order, later files replacing earlier ones) into a
//! directory of the cache, once per set of layers. A root of several layers starts as hard
//! links to the root of its first layer (the runtime, shared by every root of a build and by
//! every project on that runtime), so only the layers above it are unpacked again: unpacking
//! the 34 MB runtime into each root cost about a second per root on a slow disk. [`Rootfs::run`] then starts the command in
//! a new **user namespace** with its own **mount namespace** (the caller is mapped to root
//! inside, so no privilege is needed on the host), bind-mounts the root onto itself read-only,
//! mounts the host's `/dev` and `/proc`, a fresh tmpfs on `/tmp` and the requested
//! [`Mount`]s, `chroot`s into it and executes the command. This is buildah's "chroot isolation"
//! and what bubblewrap does, reduced to what a build needs; there was no maintained crate that
//! does just this, so the few system calls are made here with `rustix`.
//!
//! A command that must be free to write anywhere, as a Dockerfile's `RUN` is (a build step
//! whose package writes next to itself in site-packages), gets [`Run::changes`]: the root is
//! then an **overlayfs** whose lower layer is the assembled root and whose upper layer is a
//! host directory, mounted in the user namespace (Linux 5.11 and later, `userxattr`). The
//! assembled root is never written; [`changes`] reads what the command wrote, changed or
//! deleted from the upper layer, the way a container engine turns a `RUN` into a layer.
//!
//! # Options weighed
//!
//! - **The target's own dynamic loader** (`ROOT/lib64/ld-linux-x86-64.so.2 --library-path …
//!   ROOT/usr/bin/python3 …` with `PYTHONHOME=ROOT/usr`) needs no kernel feature at all and runs
//!   pure Python, but every process Python starts (`compileall -j`, a build backend calling
//!   `gcc`, `sys.executable`) escapes to the host's libraries and paths and fails: not enough.
//! - **chroot in a user namespace** (this crate) runs anything the root holds, gcc's helpers
//!   included, as long as the kernel allows unprivileged user namespaces
//!   (`kernel.unprivileged_userns_clone`, `user.max_user_namespaces`, AppArmor's
//!   `restrict_unprivileged_userns`). When it does not, [`SandboxError::Unsupported`] says
//!   which feature is missing.
//! - **A Docker engine** can run the same root as an imported image when the kernel refuses
//!   namespaces; generated Dockerfiles (`terrarium init`) are that path today.
//!
//! Linux only.

#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::mount::{MountFlags, MountPropagationFlags};
use terrarium_image::{Cache, Compression, Digest, Layer, Ownership};

/// Why a sandboxed command could not run.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel refuses what the sandbox needs.
    #[error("cannot run the image's own tools at build time: {feature} ({detail})\n  fix: {fix}")]
    Unsupported {
        /// The missing kernel feature.
        feature: &'static str,
        /// What the kernel said.
        detail: String,
        /// How to enable it, or what to use instead.
        fix: &'static str,
    },
    /// A layer could not be unpacked into the root.
    #[error("unpacking layer {digest} into a build root: {source}")]
    Unpack {
        /// The layer.
        digest: Digest,
        /// The error.
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("`{command}` failed ({status}) in the build root:\n{tail}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines of its output.
        tail: String,
    },
    /// The kernel refused the writable overlay of the root [`Run::changes`] asks for; the
    /// command did not run.
    #[error("no writable overlay of the build root: {detail}")]
    OverlayRefused {
        /// What the kernel said.
        detail: String,
    },
    /// A path or argument holds a NUL byte.
    #[error("`{0}` holds a NUL byte")]
    Nul(String),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] terrarium_image::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A host directory seen at `at` inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where it appears in the root (absolute).
    pub at: String,
    /// Whether the command may write to it.
    pub writable: bool,
}

/// A command to run in a root.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// The program (an absolute path inside the root) and its arguments.
    pub argv: Vec<String>,
    /// The whole environment (nothing is inherited from the host).
    pub env: Vec<(String, String)>,
    /// The working directory inside the root.
    pub cwd: String,
    /// Host directories to mount.
    pub mounts: Vec<Mount>,
    /// Kill the command when it runs longer.
    pub timeout: Option<std::time::Duration>,
    /// `None`: the root is read-only. `Some(dir)`: the command may write anywhere in the root,
    /// through an overlay whose upper layer is `dir/upper` on the host (with its work
    /// directory `dir/work`); [`changes`] then reads what it wrote. Commands run one after the
    /// other with the same `dir` see each other's changes, like the `RUN`s of a Dockerfile.
    pub changes: Option<PathBuf>,
}

/// What a command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// An assembled root file system: layers unpacked into a directory of the cache. Commands
/// see it read-only.
#[derive(Debug, Clone)]
pub struct Rootfs {
    dir: PathBuf,
}

/// Version of the assembled roots' layout; bump to assemble every root again.
const ROOT_RECIPE: &str = "terrarium-sandbox root v3";

/// The file of an assembled root that lists the owner of every path its layers give to
/// another user than root (the files themselves are the caller's: see [`Rootfs::owners`]).
const OWNERS: &str = ".owners";

/// Added to the errno of a failed overlay mount by the child, so the parent can tell the
/// kernel's refusal of the overlay from any other failure (errno values stay below 4096).
const OVERLAY_REFUSED: i32 = 0x1000;

/// The host name commands see, and the `/etc/hosts` a root gets when its layers have none
/// (a container engine writes both): code that resolves its own name at import time
/// (`gethostbyname(gethostname())` in a Django settings file) works at build time too.
const HOSTNAME: &str = "localhost";
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// Directories every assembled root has, so the sandbox can mount onto them.
const MOUNT_POINTS: &[&str] = &["dev", "proc", "tmp", "app", "terrarium"];

impl Rootfs {
    /// The root made of `layers` (bottom first), unpacked once into the cache and reused.
    pub fn assemble(cache: &Cache, layers: &[Layer]) -> Result<Rootfs, SandboxError> {
        let mut key = String::from(ROOT_RECIPE);
        for layer in layers {
            key.push('\n');
            key.push_str(&layer.digest.to_string());
        }
        let id = Digest::of(key.as_bytes()).hex();
        let roots = cache.root().join("roots");
        let dir = roots.join(&id);
        if dir.join(".complete").is_file() {
            return Ok(Rootfs { dir });
        }
        std::fs::create_dir_all(&roots).map_err(io_error(&roots))?;
        let temp = tempfile::Builder::new()
            .prefix(".assembling-")
            .tempdir_in(&roots)
            .map_err(io_error(&roots))?;
        let mut owners = BTreeMap::new();
        let above = match layers.split_first() {
            // Roots are never written in place (commands see them read-only, and unpacking
            // unlinks a file before writing it anew), so they can share their first layer's.
            Some((first, rest)) if !rest.is_empty() => {
                let base = Rootfs::assemble(cache, std::slice::from_ref(first))?;
                link_tree(&base.dir, temp.path(), true)?;
                owners = base.owners()?;
                rest
            }
            _ => layers,
        };
        for layer in above {
            unpack(cache, layer, temp.path(), &mut owners)?;
        }
        let list: String = owners
            .iter()
            .map(|(path, o)| format!("{}\t{}\t{}\t{}\t{path}\n", o.uid, o.gid, o.uname, o.gname))
            .collect();
        let owners_path = temp.path().join(OWNERS);
        std::fs::write(&owners_path, list).map_err(io_error(&owners_path))?;
        for point in MOUNT_POINTS {
            let path = temp.path().join(point);
            if std::fs::symlink_metadata(&path).is_err() {
                std::fs::create_dir_all(&path).map_err(io_error(&path))?;
            }
        }
        let hosts = temp.path().join("etc/hosts");
        if std::fs::symlink_metadata(&hosts).is_err() && temp.path().join("etc").is_dir() {
            std::fs::write(&hosts, HOSTS).map_err(io_error(&hosts))?;
        }
        let marker = temp.path().join(".complete");
        std::fs::write(&marker, key).map_err(io_error(&marker))?;
        let staged = temp.keep();
        if std::fs::rename(&staged, &dir).is_err() {
            // Another build assembled the same root meanwhile: use theirs.
            let _ = std::fs::remove_dir_all(&staged);
            if !dir.join(".complete").is_file() {
                return Err(SandboxError::Io {
                    path: dir,
                    source: std::io::Error::other("could not move the assembled root in place"),
                });
            }
        }
        Ok(Rootfs { dir })
    }

    /// A root already laid out in `dir` (tests, or a root assembled elsewhere).
    pub fn from_dir(dir: impl Into<PathBuf>) -> Rootfs {
        Rootfs { dir: dir.into() }
    }

    /// Where the root is on the host.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The paths (relative, `home/nonroot`) the root's layers give to another owner than
    /// root, with that owner. Unprivileged, the unpacked files all belong to the caller (root
    /// inside the sandbox), so a layer made from what a command changed takes the owners of
    /// paths that already existed from here. Empty for a root not made by [`Rootfs::assemble`].
    pub fn owners(&self) -> Result<BTreeMap<String, Ownership>, SandboxError> {
        let path = self.dir.join(OWNERS);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(err) => return Err(io_error(&path)(err)),
        };
        let bad = || SandboxError::Io {
            path: path.clone(),
            source: std::io::Error::other("a malformed line; remove the root to assemble it again"),
        };
        text.lines()
            .map(|line| {
                let mut fields = line.splitn(5, '\t');
                let mut next = || fields.next().ok_or_else(bad);
                let (uid, gid, uname, gname, rel) = (next()?, next()?, next()?, next()?, next()?);
                let owner = Ownership {
                    uid: uid.parse().map_err(|_| bad())?,
                    gid: gid.parse().map_err(|_| bad())?,
                    uname: uname.to_owned(),
                    gname: gname.to_owned(),
                };
                Ok((rel.to_owned(), owner))
            })
            .collect()
    }

    /// The overlay that lets a command write into the root, its changes kept in
    /// `changes/upper` (made here, with the work directory the kernel needs beside it): the
    /// directory the child mounts it from, and the options, whose paths are relative to that
    /// directory (the deepest one holding the root and `changes`), so a cache at a path with
    /// `,` or `:` needs no escaping. (Directories opened here and named `/proc/self/fd/N`
    /// would not do: overlayfs only takes paths of the child's own mount namespace.)
    fn overlay(&self, changes: &Path) -> Result<Overlay, SandboxError> {
        let upper = changes.join("upper");
        let work = changes.join("work");
        for dir in [&upper, &work] {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let absolute = |path: &Path| std::path::absolute(path).map_err(io_error(path));
        let (root, upper, work) = (absolute(&self.dir)?, absolute(&upper)?, absolute(&work)?);
        let mut from = PathBuf::new();
        for (a, b) in root.components().zip(upper.components()) {
            if a != b {
                break;
            }
            from.push(a);
        }
        let mut relative = Vec::new();
        for path in [&root, &upper, &work] {
            let rest = path.strip_prefix(&from).unwrap_or(path);
            let text = rest.to_str().filter(|t| !t.contains([',', ':', '\\']));
            let Some(text) = text else {
                return Err(SandboxError::OverlayRefused {
                    detail: format!(
                        "{} holds a character overlayfs options can't (',', ':' or '\\')",
                        path.display()
                    ),
                });
            };
            relative.push(if text.is_empty() { "." } else { text });
        }
        // `userxattr` (the `user.overlay.*` attributes an unprivileged mount may set) also
        // turns off metadata-only copies and directory redirects: every changed file is whole
        // in the upper layer, and renaming a directory of the root fails with EXDEV (as in
        // Docker), which `mv` and Python's `shutil.move` answer by copying.
        Ok(Overlay {
            from: c_path(&from)?,
            options: c_string(&format!(
                "lowerdir={},upperdir={},workdir={},userxattr",
                relative[0], relative[1], relative[2]
            ))?,
        })
    }

    /// `program` as an absolute path inside the root: as given when it has a `/`, else the
    /// first match in the `PATH` of `env` (looked up in the root, as the shell inside would).
    fn resolve(&self, program: &str, env: &[(String, String)]) -> Result<String, SandboxError> {
        if program.contains('/') {
            return Ok(program.to_owned());
        }
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str());
        path.split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
            .find(|candidate| {
                // A symlink is followed inside the root, not on the host.
                let host = self.dir.join(candidate.trim_start_matches('/'));
                std::fs::symlink_metadata(host).is_ok()
            })
            .ok_or_else(|| SandboxError::Failed {
                command: program.to_owned(),
                status: "not found".into(),
                tail: format!("no `{program}` in the root's PATH ({path})"),
            })
    }

    /// Run `run` inside the root; fails with its last 30 lines of output when it exits
    /// non-zero.
    pub fn run(&self, run: &Run) -> Result<Output, SandboxError> {
        check_user_namespaces()?;
        let overlay = match &run.changes {
            Some(changes) => Some(self.overlay(changes)?),
            None => None,
        };
        let plan = MountPlan::new(&self.dir, &run.mounts, overlay)?;
        for mount in &run.mounts {
            let point = self.dir.join(mount.at.trim_start_matches('/'));
            if !point.is_dir() {
                // Mount points under /tmp are made on the tmpfs, inside the sandbox.
                if !mount.at.starts_with("/tmp/") {
                    std::fs::create_dir_all(&point).map_err(io_error(&point))?;
                }
            }
        }
        let Some((program, args)) = run.argv.split_first() else {
            return Err(SandboxError::Nul("empty command".into()));
        };
        let program = self.resolve(program, &run.env)?;
        let cwd = c_string(&run.cwd)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(run.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (uid, gid) = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        let uid_map = format!("0 {uid} 1\n").into_bytes();
        let gid_map = format!("0 {gid} 1\n").into_bytes();
        // SAFETY: the closure runs in the forked child before exec; it only makes system calls
        // on data prepared above (no allocation, no locks).
        unsafe {
            command.pre_exec(move || enter(&plan, &uid_map, &gid_map, &cwd));
        }
        let line = run.argv.join(" ");
        let child = command.spawn().map_err(|err| match err.raw_os_error() {
            Some(code) if code > OVERLAY_REFUSED => SandboxError::OverlayRefused {
                detail: format!(
                    "the kernel refused to mount overlayfs in a user namespace ({})",
                    std::io::Error::from_raw_os_error(code - OVERLAY_REFUSED)
                ),
            },
            _ => SandboxError::Failed {
                command: line.clone(),
                status: "could not start".into(),
                tail: err.to_string(),
            },
        })?;
        let output = wait(child, run.timeout).map_err(|err| SandboxError::Failed {
            command: line.clone(),
            status: "did not finish".into(),
            tail: err.to_string(),
        })?;
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            return Err(SandboxError::Failed {
                command: line,
                status: output.status.to_string(),
                tail,
            });
        }
        Ok(Output {
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }
}

/// What commands run with [`Run::changes`] did to one path of the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path, relative to the root (`usr/local/lib/python3.11/dist-packages/x.css`).
    pub path: String,
    /// What is there now.
    pub kind: ChangeKind,
}

/// What a changed path of the root now is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A directory made, or one of the root that something was written into, with its
    /// permission bits; `opaque` when it replaced one of the root (removed and made again),
    /// so nothing the root had under it is left.
    Directory {
        /// Its permission bits (`0o7777`).
        mode: u32,
        /// Whether it hides what the root had under it.
        opaque: bool,
    },
    /// A regular file made or changed; its content is the host file `host`.
    File {
        /// The file on the host (in the overlay's upper layer).
        host: PathBuf,
        /// Its permission bits (`0o7777`).
        mode: u32,
    },
    /// A symbolic link made or changed.
    Symlink {
        /// Where it points.
        target: String,
    },
    /// Removed from the root.
    Deleted,
}

/// What the commands run with `changes: Some(dir)` wrote, changed and deleted in the root,
/// read from the overlay's upper layer in `dir`: every directory before what is in it, the
/// entries of a directory sorted by name. Nothing when no command ran with it. Sockets and
/// device nodes a command made are not changes a layer can hold, and are left out.
pub fn changes(dir: &Path) -> Result<Vec<Change>, SandboxError> {
    let upper = dir.join("upper");
    let mut out = Vec::new();
    if upper.is_dir() {
        changes_under(&upper, "", &mut out)?;
    }
    Ok(out)
}

fn changes_under(dir: &Path, prefix: &str, out: &mut Vec<Change>) -> Result<(), SandboxError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut children: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_error(dir))?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let host = child.path();
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            return Err(SandboxError::Io {
                path: host,
                source: std::io::Error::other("a build step wrote a file whose name is not UTF-8"),
            });
        };
        let path = format!("{prefix}{name}");
        let meta = std::fs::symlink_metadata(&host).map_err(io_error(&host))?;
        let mode = meta.mode() & 0o7777;
        let kind = if meta.file_type().is_char_device() && meta.rdev() == 0 {
            ChangeKind::Deleted
        } else if meta.is_dir() {
            let mut flag = [0u8; 8];
            let opaque = rustix::fs::lgetxattr(&host, "user.overlay.opaque", &mut flag[..])
                .is_ok_and(|n| flag[..n] == *b"y");
            ChangeKind::Directory { mode, opaque }
        } else if meta.is_file() {
            ChangeKind::File {
                host: host.clone(),
                mode,
            }
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&host).map_err(io_error(&host))?;
            ChangeKind::Symlink {
                target: target.to_string_lossy().into_owned(),
            }
        } else {
            continue;
        };
        let is_dir = matches!(kind, ChangeKind::Directory { .. });
        out.push(Change {
            path: path.clone(),
            kind,
        });
        if is_dir {
            changes_under(&host, &format!("{path}/"), out)?;
        }
    }
    Ok(())
}

/// Wait for `child`, collecting its output; kill it when `timeout` passes first.
fn wait(
    mut child: std::process::Child,
    timeout: Option<std::time::Duration>,
) -> std::io::Result<std::process::Output> {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if timeout.is_some_and(|limit| started.elapsed() > limit) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("still running after {:?}: killed", started.elapsed()),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Unpack one layer into `dir`, applying OCI whiteouts (`.wh.NAME` deletes `NAME` of the
/// layers below, `.wh..wh..opq` empties its directory): terrarium's own layers never delete,
/// but a base image's may. `owners` keeps the paths that belong to another user than root.
fn unpack(
    cache: &Cache,
    layer: &Layer,
    dir: &Path,
    owners: &mut BTreeMap<String, Ownership>,
) -> Result<(), SandboxError> {
    let failed = |source| SandboxError::Unpack {
        digest: layer.digest,
        source,
    };
    let path = cache
        .get(&layer.digest)?
        .ok_or_else(|| failed(std::io::Error::other("the layer is not in the cache")))?;
    let file = std::fs::File::open(&path).map_err(failed)?;
    let mut reader = std::io::BufReader::new(file);
    use std::io::BufRead;
    let magic = reader.fill_buf().map_err(failed)?;
    let stream: Box<dyn Read> = match Compression::detect(magic) {
        Some(compression) => compression.decoder(reader).map_err(failed)?,
        None => Box::new(reader),
    };
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(false);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    for entry in archive.entries().map_err(failed)? {
        let mut entry = entry.map_err(failed)?;
        let name = entry.path().map_err(failed)?.into_owned();
        let Some(file_name) = name.file_name().and_then(OsStr::to_str) else {
            entry.unpack_in(dir).map_err(failed)?;
            continue;
        };
        let rel = relative(&name);
        let parent_rel = name.parent().map(relative).unwrap_or_default();
        let parent = dir.join(name.parent().unwrap_or(Path::new("")));
        if file_name == ".wh..wh..opq" {
            if let Ok(children) = std::fs::read_dir(&parent) {
                for child in children.flatten() {
                    remove_path(&child.path()).map_err(failed)?;
                }
            }
            forget_under(owners, &parent_rel, false);
        } else if let Some(hidden) = file_name.strip_prefix(".wh.") {
            remove_path(&parent.join(hidden)).map_err(failed)?;
            let hidden = if parent_rel.is_empty() {
                hidden.to_owned()
            } else {
                format!("{parent_rel}/{hidden}")
            };
            forget_under(owners, &hidden, true);
        } else if matches!(
            entry.header().entry_type(),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
        ) {
            // Device nodes can't be made without privilege; the sandbox mounts the host's /dev.
        } else {
            let header = entry.header();
            let (uid, gid) = (header.uid().map_err(failed)?, header.gid().map_err(failed)?);
            // A name with a line break can't be listed (nor can a layer made by terrarium
            // hold one): it is taken as root's.
            if (uid != 0 || gid != 0) && !rel.contains('\n') {
                let name_of = |name: Option<&str>, id: u64| {
                    name.filter(|n| !n.is_empty() && !n.contains(['\t', '\n']))
                        .map_or_else(|| id.to_string(), str::to_owned)
                };
                let owner = Ownership {
                    uid,
                    gid,
                    uname: name_of(header.username().ok().flatten(), uid),
                    gname: name_of(header.groupname().ok().flatten(), gid),
                };
                owners.insert(rel.clone(), owner);
            } else {
                owners.remove(&rel);
            }
            entry.unpack_in(dir).map_err(failed)?;
        }
    }
    Ok(())
}

/// Files of an assembled root that belong to that root alone: written, not shared.
const OWN_FILES: &[&str] = &[OWNERS, ".complete"];

/// Recreate the tree under `from` in `to` (which exists) with hard links to its files (a copy
/// where the file system refuses a link), new directories of the same modes and the same
/// symbolic links. `top` skips the root's own files ([`OWN_FILES`]).
fn link_tree(from: &Path, to: &Path, top: bool) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    let entries = std::fs::read_dir(from).map_err(io_error(from))?;
    for entry in entries {
        let entry = entry.map_err(io_error(from))?;
        let name = entry.file_name();
        if top && OWN_FILES.iter().any(|own| name == OsStr::new(own)) {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let meta = std::fs::symlink_metadata(&source).map_err(io_error(&source))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(io_error(&target))?;
            link_tree(&source, &target, false)?;
            let mode = std::fs::Permissions::from_mode(meta.permissions().mode());
            std::fs::set_permissions(&target, mode).map_err(io_error(&target))?;
        } else if kind.is_symlink() {
            let points_to = std::fs::read_link(&source).map_err(io_error(&source))?;
            std::os::unix::fs::symlink(points_to, &target).map_err(io_error(&target))?;
        } else if kind.is_file() && std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).map_err(io_error(&target))?;
        }
    }
    Ok(())
}

/// A layer member's path as the root's relative path: `./home/nonroot/` is `home/nonroot`.
fn relative(name: &Path) -> String {
    name.to_string_lossy()
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Drop the owners of what a whiteout deleted: everything under `path`, and `path` itself
/// when `itself`.
fn forget_under(owners: &mut BTreeMap<String, Ownership>, path: &str, itself: bool) {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    owners.retain(|key, _| !(key.starts_with(&prefix) || itself && key == path));
}

/// Remove a file, link or directory tree (nothing when it is absent).
fn remove_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

fn c_string(text: &str) -> Result<CString, SandboxError> {
    CString::new(text).map_err(|_| SandboxError::Nul(text.to_owned()))
}

fn c_path(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SandboxError::Nul(path.display().to_string()))
}

/// How the child mounts the writable overlay of the root: from the directory `from`, with
/// `options` naming the layers relative to it.
struct Overlay {
    from: CString,
    options: CString,
}

/// Every path the child needs, as C strings made before the fork.
struct MountPlan {
    root: CString,
    dev: CString,
    proc_: CString,
    tmp: CString,
    /// (host, target, writable, made on the tmpfs)
    binds: Vec<(CString, CString, bool, bool)>,
    /// A writable overlay on the root, when the command may write to it.
    overlay: Option<Overlay>,
}

impl MountPlan {
    fn new(root: &Path, mounts: &[Mount], overlay: Option<Overlay>) -> Result<Self, SandboxError> {
        let mut binds = Vec::new();
        for mount in mounts {
            let target = root.join(mount.at.trim_start_matches('/'));
            binds.push((
                c_path(&mount.host)?,
                c_path(&target)?,
                mount.writable,
                mount.at.starts_with("/tmp/"),
            ));
        }
        Ok(Self {
            root: c_path(root)?,
            dev: c_path(&root.join("dev"))?,
            proc_: c_path(&root.join("proc"))?,
            tmp: c_path(&root.join("tmp"))?,
            binds,
            overlay,
        })
    }
}

/// In the child: a user and mount namespace, the root bound read-only (or the writable
/// overlay on it) with /dev, /proc, a tmpfs /tmp and the mounts, then chroot. The errno of a
/// failed overlay mount comes back raised by [`OVERLAY_REFUSED`].
fn enter(plan: &MountPlan, uid_map: &[u8], gid_map: &[u8], cwd: &CString) -> std::io::Result<()> {
    enter_namespaces(plan, uid_map, gid_map, cwd).map_err(|(errno, overlay)| {
        let code = errno.raw_os_error();
        std::io::Error::from_raw_os_error(if overlay {
            code + OVERLAY_REFUSED
        } else {
            code
        })
    })
}

/// [`enter`]'s system calls; the error says whether the overlay mount failed.
fn enter_namespaces(
    plan: &MountPlan,
    uid_map: &[u8],
    gid_map: &[u8],
    cwd: &CString,
) -> Result<(), (rustix::io::Errno, bool)> {
    let other = |errno| (errno, false);
    enter_root(uid_map, gid_map).map_err(other)?;
    if let Some(overlay) = &plan.overlay {
        rustix::process::chdir(overlay.from.as_c_str()).map_err(other)?;
        rustix::mount::mount(
            c"overlay",
            plan.root.as_c_str(),
            c"overlay",
            MountFlags::empty(),
            overlay.options.as_c_str(),
        )
        .map_err(|errno| (errno, true))?;
    } else {
        rustix::mount::mount_bind(plan.root.as_c_str(), plan.root.as_c_str()).map_err(other)?;
    }
    enter_mounts(plan, cwd).map_err(other)
}

/// The namespaces, the host name, the ID maps and private mounts.
fn enter_root(uid_map: &[u8], gid_map: &[u8]) -> rustix::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    // SAFETY: a single-threaded child right after fork; no file descriptor tables are shared.
    unsafe {
        rustix::thread::unshare_unsafe(
            rustix::thread::UnshareFlags::NEWUSER
                | rustix::thread::UnshareFlags::NEWNS
                | rustix::thread::UnshareFlags::NEWUTS,
        )?;
    }
    rustix::system::sethostname(HOSTNAME.as_bytes())?;
    let write = |path: &OsStr, bytes: &[u8]| -> rustix::io::Result<()> {
        let fd = rustix::fs::open(path, OFlags::WRONLY, Mode::empty())?;
        rustix::io::write(&fd, bytes)?;
        Ok(())
    };
    write(OsStr::new("/proc/self/setgroups"), b"deny")?;
    write(OsStr::new("/proc/self/uid_map"), uid_map)?;
    write(OsStr::new("/proc/self/gid_map"), gid_map)?;
    rustix::mount::mount_change(
        c"/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )?;
    Ok(())
}

/// On the root's mount: /dev, /proc, the tmpfs, the mounts; the root read-only unless it is
/// the overlay; chroot.
fn enter_mounts(plan: &MountPlan, cwd: &CString) -> rustix::io::Result<()> {
    use rustix::fs::Mode;
    rustix::mount::mount_bind_recursive(c"/dev", plan.dev.as_c_str())?;
    rustix::mount::mount_bind_recursive(c"/proc", plan.proc_.as_c_str())?;
    rustix::mount::mount(
        c"tmpfs",
        plan.tmp.as_c_str(),
        c"tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=1777",
    )?;
    for (host, target, writable, on_tmpfs) in &plan.binds {
        if *on_tmpfs {
            rustix::fs::mkdir(target.as_c_str(), Mode::from_raw_mode(0o755))?;
        }
        rustix::mount::mount_bind_recursive(host.as_c_str(), target.as_c_str())?;
        if !writable {
            rustix::mount::mount_remount(
                target.as_c_str(),
                MountFlags::BIND | MountFlags::RDONLY,
                c"",
            )?;
        }
    }
    // The root itself last, so the mounts inside it stay as asked.
    if plan.overlay.is_none() {
        rustix::mount::mount_remount(
            plan.root.as_c_str(),
            MountFlags::BIND | MountFlags::RDONLY,
            c"",
        )?;
    }
    // Modes as a container engine gives them, whatever the caller's umask.
    rustix::process::umask(Mode::from_raw_mode(0o022));
    rustix::process::chroot(plan.root.as_c_str())?;
    rustix::process::chdir(cwd.as_c_str())?;
    Ok(())
}

/// `ECANCELED`: how the probe child says "unshare worked".
const PROBE_DONE: i32 = 125;

/// Whether this process may make a user namespace: asked of a child that tries, so the error
/// can name the feature instead of a bare `EPERM`.
pub fn check_user_namespaces() -> Result<(), SandboxError> {
    let mut probe = Command::new("/proc/self/exe");
    probe
        .arg("--terrarium-sandbox-probe")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only a system call in the forked child.
    unsafe {
        probe.pre_exec(|| {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER)?;
            // Stop here with an error unshare never gives: the probe only needed to know that
            // unshare works.
            Err(std::io::Error::from_raw_os_error(PROBE_DONE))
        });
    }
    match probe.spawn() {
        Err(err) if err.raw_os_error() == Some(PROBE_DONE) => Ok(()),
        Ok(mut child) => {
            let _ = child.kill();
            let _ = child.wait();
            Ok(())
        }
        Err(err) => Err(SandboxError::Unsupported {
            feature: "user namespaces",
            detail: err.to_string(),
            fix: "allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, \
                  `sysctl user.max_user_namespaces=15000`, or AppArmor's \
                  `kernel.apparmor_restrict_unprivileged_userns=0`), or build with \
                  `terrarium init` and `docker build`",
        }),
    }
}

/// Test support, for this crate and the crates that run commands through it (feature
/// `testing`): a root made of the host's own programs, so a test needs no image.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use std::path::Path;

    use crate::{MOUNT_POINTS, Mount};

    /// A root that borrows the host's programs and libraries through read-only mounts, in the
    /// system's temporary directory; panics when it can't be made (tests only).
    pub fn host_root() -> (tempfile::TempDir, Vec<Mount>) {
        host_root_in(&std::env::temp_dir())
    }

    /// [`host_root`] in a directory of `parent`.
    pub fn host_root_in(parent: &Path) -> (tempfile::TempDir, Vec<Mount>) {
        let dir = tempfile::tempdir_in(parent).expect("a temporary root");
        for point in MOUNT_POINTS {
            std::fs::create_dir_all(dir.path().join(point)).expect("a mount point");
        }
        let mut mounts = Vec::new();
        for system in ["usr", "lib", "lib64", "bin", "etc"] {
            let host = Path::new("/").join(system);
            if host.is_dir() && !host.is_symlink() {
                mounts.push(Mount {
                    host,
                    at: format!("/{system}"),
                    writable: false,
                });
            } else if let Ok(target) = std::fs::read_link(&host) {
                std::os::unix::fs::symlink(target, dir.path().join(system))
                    .expect("a link to the host's directory");
            }
        }
        (dir, mounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{host_root, host_root_in};

    #[test]
    fn runs_as_root_inside_with_mounts_and_a_read_only_root() {
        let (dir, mut mounts) = host_root();
        let out = tempfile::tempdir().unwrap();
        mounts.push(Mount {
            host: out.path().to_path_buf(),
            at: "/terrarium/out".into(),
            writable: true,
        });
        let root = Rootfs::from_dir(dir.path());
        let output = root
            .run(&Run {
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "id -u; echo made > /terrarium/out/file; echo tmp > /tmp/t && cat /tmp/t; \
                     touch /not-here 2>/dev/null && echo root-writable || echo root-read-only"
                        .into(),
                ],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: "/".into(),
                mounts,
                timeout: None,
                changes: None,
            })
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            ["0", "tmp", "root-read-only"]
        );
        assert_eq!(
            std::fs::read_to_string(out.path().join("file")).unwrap(),
            "made\n"
        );
        assert!(!dir.path().join("not-here").exists());
    }

    #[test]
    fn a_failing_command_shows_its_last_lines() {
        let (dir, mounts) = host_root();
        let err = Rootfs::from_dir(dir.path())
            .run(&Run {
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "for i in $(seq 1 40); do echo line $i; done; exit 3".into(),
                ],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: "/".into(),
                mounts,
                timeout: None,
                changes: None,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 40") && err.contains("line 11"), "{err}");
        assert!(!err.contains("line 10\n"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
    }

    #[test]
    fn with_changes_a_command_writes_anywhere_and_the_root_stays_as_it_was() {
        let (dir, mounts) = host_root();
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("pkg")).unwrap();
        std::fs::create_dir_all(site.join("replaced")).unwrap();
        std::fs::write(site.join("pkg/existing.txt"), "old\n").unwrap();
        std::fs::write(site.join("gone.txt"), "gone\n").unwrap();
        std::fs::write(site.join("replaced/old.txt"), "old\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [
            ("site", 0o755),
            ("site/pkg", 0o755),
            ("site/pkg/existing.txt", 0o644),
        ] {
            let permissions = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(dir.path().join(path), permissions).unwrap();
        }
        let scratch = tempfile::tempdir().unwrap();
        let root = Rootfs::from_dir(dir.path());
        let run = |script: &str| {
            root.run(&Run {
                argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: "/".into(),
                mounts: mounts.clone(),
                timeout: None,
                changes: Some(scratch.path().to_path_buf()),
            })
        };
        run(
            "umask 077; mkdir -p /site/pkg/compiled && echo 'body{}' > /site/pkg/compiled/a.css \
             && ln -s a.css /site/pkg/compiled/link && echo new > /site/pkg/existing.txt \
             && rm /site/gone.txt && rm -r /site/replaced && mkdir /site/replaced \
             && echo new > /site/replaced/new.txt && echo scratch > /tmp/scratch",
        )
        .unwrap();
        // A second command sees what the first one wrote, as a Dockerfile's next RUN does.
        let second = run("cat /site/pkg/compiled/a.css; ls /site; ls /tmp").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&second.stdout),
            "body{}\npkg\nreplaced\n"
        );
        // The root itself is untouched.
        assert_eq!(
            std::fs::read_to_string(site.join("pkg/existing.txt")).unwrap(),
            "old\n"
        );
        assert!(site.join("gone.txt").is_file() && site.join("replaced/old.txt").is_file());
        assert!(!site.join("pkg/compiled").exists());

        let found = changes(scratch.path()).unwrap();
        let upper = scratch.path().join("upper");
        let dir_of = |mode, opaque| ChangeKind::Directory { mode, opaque };
        let file = |path: &str, mode| ChangeKind::File {
            host: upper.join(path),
            mode,
        };
        let expected = vec![
            ("site", dir_of(0o755, false)),
            ("site/gone.txt", ChangeKind::Deleted),
            ("site/pkg", dir_of(0o755, false)),
            // The command's umask 077 stays its own; the rest is made with 022.
            ("site/pkg/compiled", dir_of(0o700, false)),
            (
                "site/pkg/compiled/a.css",
                file("site/pkg/compiled/a.css", 0o600),
            ),
            (
                "site/pkg/compiled/link",
                ChangeKind::Symlink {
                    target: "a.css".into(),
                },
            ),
            (
                "site/pkg/existing.txt",
                file("site/pkg/existing.txt", 0o644),
            ),
            ("site/replaced", dir_of(0o700, true)),
            (
                "site/replaced/new.txt",
                file("site/replaced/new.txt", 0o600),
            ),
        ];
        let found: Vec<(&str, ChangeKind)> = found
            .iter()
            .map(|c| (c.path.as_str(), c.kind.clone()))
            .collect();
        assert_eq!(found, expected);
        assert_eq!(
            std::fs::read_to_string(upper.join("site/pkg/compiled/a.css")).unwrap(),
            "body{}\n"
        );
    }

    #[test]
    fn an_overlay_the_kernel_refuses_is_told_apart_and_the_command_does_not_run() {
        let (dir, mut mounts) = host_root();
        let out = tempfile::tempdir().unwrap();
        mounts.push(Mount {
            host: out.path().to_path_buf(),
            at: "/terrarium/out".into(),
            writable: true,
        });
        // A work directory inside the upper one: every kernel refuses that overlay.
        let scratch = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(scratch.path().join("upper/inside")).unwrap();
        std::os::unix::fs::symlink("upper/inside", scratch.path().join("work")).unwrap();
        let err = Rootfs::from_dir(dir.path())
            .run(&Run {
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "touch /terrarium/out/ran".into(),
                ],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: "/".into(),
                mounts,
                timeout: None,
                changes: Some(scratch.path().to_path_buf()),
            })
            .unwrap_err();
        let SandboxError::OverlayRefused { detail } = &err else {
            panic!("{err:?}");
        };
        assert!(
            detail.contains("overlayfs") && detail.contains("os error"),
            "{detail}"
        );
        assert!(!out.path().join("ran").exists());
        // A cache at a path with what overlayfs options can't hold (`,`, `:`, `\\`) is no
        // problem.
        let odd = tempfile::Builder::new()
            .prefix("a,b:c\\")
            .tempdir()
            .unwrap();
        let (dir, mounts) = host_root_in(odd.path());
        Rootfs::from_dir(dir.path())
            .run(&Run {
                argv: vec!["/bin/sh".into(), "-c".into(), "echo x > /made".into()],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: "/".into(),
                mounts,
                timeout: None,
                changes: Some(odd.path().join("changes")),
            })
            .unwrap();
        let made = odd.path().join("changes/upper/made");
        assert_eq!(std::fs::read_to_string(made).unwrap(), "x\n");
    }

    #[test]
    fn without_changes_a_write_outside_the_mounts_fails_and_nothing_is_collected() {
        let (dir, mounts) = host_root();
        let err = Rootfs::from_dir(dir.path())
            .run(&Run {
                argv: vec!["/bin/sh".into(), "-c".into(), "mkdir /site".into()],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: "/".into(),
                mounts,
                timeout: None,
                changes: None,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("Read-only file system"), "{err}");
        let nothing = tempfile::tempdir().unwrap();
        assert_eq!(changes(nothing.path()).unwrap(), Vec::new());
    }

    #[test]
    fn an_assembled_root_remembers_who_owns_what_its_layers_give_to_others() {
        use terrarium_image::{Content, Entry, LayerOptions, LayerPath, LayerTree};
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let options = LayerOptions {
            mtime: terrarium_image::Epoch::from_seconds(0),
            compression: Compression::Gzip,
        };
        let path = |p: &str| LayerPath::new(p).unwrap();
        let mut bottom = LayerTree::new();
        bottom.insert(
            Entry::directory(path("home/nonroot"), 0o700).owned_by(Ownership::nonroot()),
            Content::Empty,
        );
        bottom.insert(
            Entry::directory(path("var/lib/db"), 0o700).owned_by(Ownership::nonroot()),
            Content::Empty,
        );
        bottom.insert_bytes(path("var/lib/db/data"), 0o600, b"x".to_vec());
        let mut top = LayerTree::new();
        // A whiteout removes the directory (and so its owner); a root-owned entry replaces
        // one of another owner.
        top.insert_bytes(path("var/lib/.wh.db"), 0o644, Vec::new());
        top.insert(
            Entry::directory(path("srv"), 0o755).owned_by(Ownership::nonroot()),
            Content::Empty,
        );
        let layers = [
            bottom.write(&cache, options).unwrap(),
            top.write(&cache, options).unwrap(),
        ];
        let root = Rootfs::assemble(&cache, &layers).unwrap();
        let owners = root.owners().unwrap();
        let listed: Vec<(&str, u64)> = owners.iter().map(|(p, o)| (p.as_str(), o.uid)).collect();
        assert_eq!(listed, [("home/nonroot", 65532), ("srv", 65532)]);
        assert_eq!(owners["srv"], Ownership::nonroot());
        assert!(!root.path().join("var/lib/db").exists());
        assert!(
            Rootfs::from_dir(cache_dir.path())
                .owners()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_root_of_several_layers_shares_its_first_layers_files_and_never_writes_them() {
        use std::os::unix::fs::MetadataExt;
        use terrarium_image::{LayerOptions, LayerPath, LayerTree};
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let options = LayerOptions {
            mtime: terrarium_image::Epoch::from_seconds(0),
            compression: Compression::Gzip,
        };
        let path = |p: &str| LayerPath::new(p).unwrap();
        let mut runtime = LayerTree::new();
        runtime.insert_bytes(path("usr/lib/python3/os.py"), 0o644, b"runtime".to_vec());
        runtime.insert_bytes(path("usr/lib/python3/site.py"), 0o644, b"site".to_vec());
        runtime.insert_bytes(path("etc/os-release"), 0o644, b"debian".to_vec());
        let mut deps = LayerTree::new();
        // Replaces one of the runtime's files, and removes another.
        deps.insert_bytes(path("usr/lib/python3/os.py"), 0o644, b"patched".to_vec());
        deps.insert_bytes(path("usr/lib/python3/.wh.site.py"), 0o644, Vec::new());
        deps.insert_bytes(path("usr/local/lib/flask.py"), 0o644, b"flask".to_vec());
        let runtime = runtime.write(&cache, options).unwrap();
        let deps = deps.write(&cache, options).unwrap();

        let root = Rootfs::assemble(&cache, &[runtime.clone(), deps]).unwrap();
        let base = Rootfs::assemble(&cache, std::slice::from_ref(&runtime)).unwrap();
        let read = |root: &Rootfs, p: &str| std::fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read(&root, "usr/lib/python3/os.py"), "patched");
        assert_eq!(read(&root, "usr/local/lib/flask.py"), "flask");
        assert!(!root.path().join("usr/lib/python3/site.py").exists());
        // The runtime's own root is untouched, and the file both keep is one file.
        assert_eq!(read(&base, "usr/lib/python3/os.py"), "runtime");
        assert_eq!(read(&base, "usr/lib/python3/site.py"), "site");
        let ino = |root: &Rootfs, p: &str| std::fs::metadata(root.path().join(p)).unwrap().ino();
        assert_eq!(ino(&root, "etc/os-release"), ino(&base, "etc/os-release"));
        assert_ne!(
            ino(&root, "usr/lib/python3/os.py"),
            ino(&base, "usr/lib/python3/os.py")
        );
        // Each root has its own marker and list of owners.
        assert_ne!(ino(&root, ".complete"), ino(&base, ".complete"));
        assert_ne!(ino(&root, ".owners"), ino(&base, ".owners"));
    }

    #[test]
    fn a_command_that_hangs_is_killed_at_its_timeout() {
        let (dir, mounts) = host_root();
        let started = std::time::Instant::now();
        let err = Rootfs::from_dir(dir.path())
            .run(&Run {
                argv: vec!["/bin/sh".into(), "-c".into(), "sleep 30".into()],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: "/".into(),
                mounts,
                timeout: Some(std::time::Duration::from_millis(300)),
                changes: None,
            })
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(err.contains("killed"), "{err}");
    }
}
