//! Run a command inside a root file system that terrarium assembled from image layers (the
//! runtime, a build root, the deps), with host directories mounted in, and without a Docker
//! daemon: the image's own Python compiles bytecode, builds source distributions and runs build
//! steps such as Django's `collectstatic` exactly as it will run in the container.
//!
//! # How
//!
//! [`Rootfs::assemble`] unpacks layers (in order, later files replacing earlier ones) into a
//! directory of the cache, once per set of layers. [`Rootfs::run`] then starts the command in
//! a new **user namespace** with its own **mount namespace** (the caller is mapped to root
//! inside, so no privilege is needed on the host), bind-mounts the root onto itself read-only,
//! mounts the host's `/dev` and `/proc`, a fresh tmpfs on `/tmp` and the requested
//! [`Mount`]s, `chroot`s into it and executes the command. This is buildah's "chroot isolation"
//! and what bubblewrap does, reduced to what a build needs; there was no maintained crate that
//! does just this, so the few system calls are made here with `rustix`.
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

use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::mount::{MountFlags, MountPropagationFlags};
use terrarium_image::{Cache, Compression, Digest, Layer};

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
const ROOT_RECIPE: &str = "terrarium-sandbox root v2";

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
        for layer in layers {
            unpack(cache, layer, temp.path())?;
        }
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
        let plan = MountPlan::new(&self.dir, &run.mounts)?;
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
            command.pre_exec(move || {
                enter(&plan, &uid_map, &gid_map, &cwd).map_err(std::io::Error::from)
            });
        }
        let line = run.argv.join(" ");
        let child = command.spawn().map_err(|err| SandboxError::Failed {
            command: line.clone(),
            status: "could not start".into(),
            tail: err.to_string(),
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
/// but a base image's may.
fn unpack(cache: &Cache, layer: &Layer, dir: &Path) -> Result<(), SandboxError> {
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
        let parent = dir.join(name.parent().unwrap_or(Path::new("")));
        if file_name == ".wh..wh..opq" {
            if let Ok(children) = std::fs::read_dir(&parent) {
                for child in children.flatten() {
                    remove_path(&child.path()).map_err(failed)?;
                }
            }
        } else if let Some(hidden) = file_name.strip_prefix(".wh.") {
            remove_path(&parent.join(hidden)).map_err(failed)?;
        } else if matches!(
            entry.header().entry_type(),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
        ) {
            // Device nodes can't be made without privilege; the sandbox mounts the host's /dev.
        } else {
            entry.unpack_in(dir).map_err(failed)?;
        }
    }
    Ok(())
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

/// Every path the child needs, as C strings made before the fork.
struct MountPlan {
    root: CString,
    dev: CString,
    proc_: CString,
    tmp: CString,
    /// (host, target, writable, made on the tmpfs)
    binds: Vec<(CString, CString, bool, bool)>,
}

impl MountPlan {
    fn new(root: &Path, mounts: &[Mount]) -> Result<Self, SandboxError> {
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
        })
    }
}

/// In the child: a user and mount namespace, the root bound read-only with /dev, /proc, a
/// tmpfs /tmp and the mounts, then chroot.
fn enter(
    plan: &MountPlan,
    uid_map: &[u8],
    gid_map: &[u8],
    cwd: &CString,
) -> rustix::io::Result<()> {
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
    rustix::mount::mount_bind(plan.root.as_c_str(), plan.root.as_c_str())?;
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
    rustix::mount::mount_remount(
        plan.root.as_c_str(),
        MountFlags::BIND | MountFlags::RDONLY,
        c"",
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A root that borrows the host's programs and libraries through read-only mounts.
    fn host_root() -> (tempfile::TempDir, Vec<Mount>) {
        let dir = tempfile::tempdir().unwrap();
        for point in MOUNT_POINTS {
            std::fs::create_dir_all(dir.path().join(point)).unwrap();
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
                std::os::unix::fs::symlink(target, dir.path().join(system)).unwrap();
            }
        }
        (dir, mounts)
    }

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
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 40") && err.contains("line 11"), "{err}");
        assert!(!err.contains("line 10\n"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
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
            })
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(err.contains("killed"), "{err}");
    }
}
