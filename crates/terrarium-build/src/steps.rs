//! Build steps, natively: Django's `collectstatic` (and any `build-steps` of the plan) run in
//! the sandbox on the image's own Python with the dependencies installed, in a copy of the
//! build context at `/app`, with the image's environment and a placeholder for each setting
//! the image must be given at run time (the Dockerfile's `RUN` gets the same). What a step
//! writes under `/app` goes into the app layer, where `RUN` would have left it.
//!
//! # Writes outside `/app`
//!
//! A step may write anywhere, as a Dockerfile's `RUN` may: a staticfiles finder that compiles
//! SCSS into its own package directory in site-packages while `collectstatic` lists it, a code
//! generator, a package that caches compiled assets next to itself. So the steps see the root
//! through a writable overlay (`terrarium_sandbox::Run::changes`): the assembled root stays
//! untouched, and what they wrote, changed or deleted outside `/app` is read back from the
//! overlay's upper layer and goes into the **app layer at its real path**, as `RUN` leaves it
//! in the image: files and new directories root-owned (a path the layers below already have
//! keeps their owner), modes as the step made them under umask 022, the image's fixed mtime,
//! sorted like every entry of a layer; a deletion is an OCI whiteout (`.wh.NAME`), a directory
//! removed and made again is opaque (`.wh..wh..opq`). Left out, as scratch: `/tmp` (a fresh
//! tmpfs; `HOME` is `/tmp`) and `__pycache__` directories (the image's bytecode is compiled by
//! hash, the same on every build). Keeping them, rather than discarding them, is what makes
//! the image work when the app reads them at run time (the finder's compiled CSS); the app
//! layer rather than a layer of their own because the steps run again whenever any file of
//! the context changes, exactly when the app layer is rewritten anyway.
//!
//! When the kernel refuses the overlay (Linux before 5.11, or a cache on a file system
//! overlayfs can't write its upper layer to), the steps run on the read-only root as before;
//! a step that then fails says which path it could not write, and why.
//!
//! Outputs are cached by everything they depend on: the steps, the layers below, and the
//! content of every file of the context; an unchanged project runs no step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use terrarium_image::{Cache, Content, Digest, Entry, LayerPath, LayerTree, Ownership};
use terrarium_plan::Plan;
use terrarium_project::ContextKind;
use terrarium_sandbox::{ChangeKind, Mount, Rootfs, Run, SandboxError};

use crate::app::APP_DIR;
use crate::error::{BuildError, io_error};

/// Version of the build-step recipe; bump to run every step again.
const RECIPE: &str = "terrarium build steps v2";

/// A path a build step wrote, changed or deleted, its content stored in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepOutput {
    /// Its path in the image, relative to `/` (`app/staticfiles/site.css`,
    /// `usr/local/lib/python3.11/dist-packages/theme/site.css`).
    pub path: String,
    /// What is there now.
    pub kind: OutputKind,
    /// Its owner when not root: a path of the layers below keeps theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// What a build step left at a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum OutputKind {
    /// A directory; `opaque` when it replaced one of the layers below.
    Directory {
        /// Permission bits.
        mode: u32,
        /// Whether it hides what the layers below had under it.
        opaque: bool,
    },
    /// A regular file.
    File {
        /// Its content in the cache.
        blob: Digest,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Where it points.
        target: String,
    },
    /// Removed from the layers below.
    Deleted,
}

/// An owner other than root, as the layers below give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Owner {
    uid: u64,
    gid: u64,
    uname: String,
    gname: String,
}

impl From<Owner> for Ownership {
    fn from(owner: Owner) -> Self {
        Ownership {
            uid: owner.uid,
            gid: owner.gid,
            uname: owner.uname,
            gname: owner.gname,
        }
    }
}

/// The key of the steps' outputs.
fn key(plan: &Plan, below: &[Digest]) -> Result<Digest, BuildError> {
    let mut text = format!("{RECIPE}\n");
    for step in &plan.build_steps.value {
        text.push_str(&step.join("\u{1f}"));
        text.push('\n');
    }
    for (name, value) in plan.image_env().iter().chain(&plan.build_placeholders()) {
        text.push_str(&format!("{name}={value}\n"));
    }
    for digest in below {
        text.push_str(&format!("{digest}\n"));
    }
    for entry in plan.context_rules()?.walk(&plan.root)? {
        let content = match &entry.kind {
            ContextKind::File { executable, .. } => {
                let bytes = std::fs::read(&entry.source).map_err(io_error(&entry.source))?;
                format!("{} {executable}", Digest::of(&bytes))
            }
            ContextKind::Directory => "dir".into(),
            ContextKind::Symlink(target) => format!("-> {target}"),
        };
        text.push_str(&format!("{}\t{content}\n", entry.path));
    }
    Ok(Digest::of(text.as_bytes()))
}

/// For an image of another architecture, whose steps ran in this machine's image of the plan
/// (see `build_platforms`): the outputs must hold no machine code, which would be this
/// machine's. Static files (`collectstatic`), generated sources and data are the same on
/// every architecture; an ELF file stops the build, naming it.
pub(crate) fn check_portable(
    cache: &Cache,
    plan: &Plan,
    outputs: &[StepOutput],
    architecture: terrarium_debian::Architecture,
) -> Result<(), BuildError> {
    for output in outputs {
        let OutputKind::File { blob, .. } = &output.kind else {
            continue;
        };
        let Some(path) = cache.get(blob)? else {
            continue;
        };
        let mut magic = Vec::new();
        let file = std::fs::File::open(&path).map_err(io_error(&path))?;
        std::io::Read::read_to_end(&mut std::io::Read::take(file, 4), &mut magic)
            .map_err(io_error(&path))?;
        if magic == b"\x7fELF" {
            let steps: Vec<String> = plan.build_steps.value.iter().map(|s| s.join(" ")).collect();
            return Err(BuildError::ForeignPlatform {
                platform: architecture.platform().to_owned(),
                message: format!(
                    "the build steps ({}) ran on this machine's image and wrote machine code \
                     for it: /{}",
                    steps.join("; "),
                    output.path
                ),
                fix: format!(
                    "build {} on a machine of that architecture (`terrarium build --platform \
                     {}` there), or make the binary a dependency with a wheel for it",
                    architecture.platform(),
                    architecture.platform()
                ),
            });
        }
    }
    Ok(())
}

/// The paths the plan's build steps wrote, changed or deleted, in the order a layer lists
/// them: from the cache, or run in the root `root` gives (the runtime, system, deps and
/// bytecode layers, digests `below`).
pub(crate) fn outputs(
    cache: &Cache,
    plan: &Plan,
    below: &[Digest],
    root: impl FnOnce() -> Result<Rootfs, BuildError>,
) -> Result<Vec<StepOutput>, BuildError> {
    if plan.build_steps.value.is_empty() {
        return Ok(Vec::new());
    }
    let key = key(plan, below)?;
    let meta = format!("build-steps/{}", key.hex());
    if let Some(bytes) = cache.read_meta(&meta)?
        && let Ok(outputs) = serde_json::from_slice::<Vec<StepOutput>>(&bytes)
        && outputs.iter().all(|o| match &o.kind {
            OutputKind::File { blob, .. } => cache.get(blob).ok().flatten().is_some(),
            _ => true,
        })
    {
        return Ok(outputs);
    }
    let root = root()?;
    let work = tempfile::Builder::new()
        .prefix("build-steps-")
        .tempdir_in(cache.tmp_dir()?)
        .map_err(io_error(cache.root()))?;
    let app = work.path().join("app");
    let before: BTreeSet<String> = plan
        .context_rules()?
        .materialize(&plan.root, &app, false)?
        .into_iter()
        .map(|e| e.path)
        .collect();
    let changes = work.path().join("root");
    let mut env = crate::bytecode::sandbox_env(plan);
    env.retain(|(k, _)| k != "PYTHONPATH");
    env.push(("PYTHONPATH".into(), "/app".into()));
    // Why the root is read-only, once the kernel refused the overlay.
    let mut refused: Option<String> = None;
    for step in &plan.build_steps.value {
        let run = Run {
            argv: step.clone(),
            env: env.clone(),
            cwd: "/app".into(),
            mounts: vec![Mount {
                host: app.clone(),
                at: "/app".into(),
                writable: true,
            }],
            timeout: Some(Duration::from_secs(600)),
            changes: None,
        };
        run_step(&root, run, &changes, &mut refused)
            .map_err(|err| step_error(step, err, refused.as_deref()))?;
    }
    let mut outputs = Vec::new();
    collect(cache, &app, &app, &before, &mut outputs)?;
    outside_app(cache, &root, &changes, &mut outputs)?;
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = serde_json::to_vec(&outputs).map_err(|err| BuildError::Runtime {
        message: format!("recording the build steps' outputs: {err}"),
    })?;
    cache.write_meta(&meta, &manifest)?;
    Ok(outputs)
}

/// Run one step on the writable overlay whose changes go to `changes`, or on the read-only
/// root once the kernel refused the overlay (`refused` then says why, for the next steps and
/// the error of one that fails).
fn run_step(
    root: &Rootfs,
    mut run: Run,
    changes: &Path,
    refused: &mut Option<String>,
) -> Result<(), SandboxError> {
    if refused.is_none() {
        run.changes = Some(changes.to_path_buf());
        match root.run(&run) {
            Err(SandboxError::OverlayRefused { detail }) => *refused = Some(detail),
            result => return result.map(drop),
        }
    }
    run.changes = None;
    root.run(&run).map(drop)
}

/// Lay the steps' `outputs` into `tree` (the app layer's), over what it has: a directory
/// already in the tree keeps its entry (a volume keeps its owner), a deletion becomes an OCI
/// whiteout, an opaque directory gets its `.wh..wh..opq`.
pub(crate) fn add_outputs(
    cache: &Cache,
    tree: &mut LayerTree,
    outputs: Vec<StepOutput>,
) -> Result<(), BuildError> {
    for output in outputs {
        let path = LayerPath::new(&output.path)?;
        let owned = |entry: Entry| match &output.owner {
            Some(owner) => entry.owned_by(owner.clone().into()),
            None => entry,
        };
        match output.kind {
            OutputKind::Directory { mode, opaque } => {
                tree.insert(owned(Entry::directory(path.clone(), mode)), Content::Empty);
                if opaque {
                    tree.insert_bytes(path.join(".wh..wh..opq")?, 0o644, Vec::new());
                }
            }
            OutputKind::File { blob, mode } => {
                let file = cache.get(&blob)?.ok_or_else(|| BuildError::Runtime {
                    message: format!("a build step's output {blob} left the cache"),
                })?;
                let size = std::fs::metadata(&file).map_err(io_error(&file))?.len();
                tree.remove(&path);
                tree.insert(owned(Entry::file(path, size, mode)), Content::Path(file));
            }
            OutputKind::Symlink { target } => {
                tree.remove(&path);
                tree.insert(owned(Entry::symlink(path, target)), Content::Empty);
            }
            OutputKind::Deleted => {
                // What a step deleted is not in the image, whatever the layer put there.
                tree.remove(&path);
                let name = output.path.rsplit('/').next().unwrap_or(&output.path);
                let whiteout = match path.parent() {
                    Some(parent) => parent.join(&format!(".wh.{name}"))?,
                    None => LayerPath::new(&format!(".wh.{name}"))?,
                };
                tree.insert_bytes(whiteout, 0o644, Vec::new());
            }
        }
    }
    Ok(())
}

/// Every new path under `dir` (not in `before`), at its path in the image: directories 0755,
/// files 0644 or 0755, stored in the cache, as the rest of `/app`.
fn collect(
    cache: &Cache,
    base: &Path,
    dir: &Path,
    before: &BTreeSet<String>,
    out: &mut Vec<StepOutput>,
) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    for child in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let child = child.map_err(io_error(dir))?;
        let path = child.path();
        let rel = path
            .strip_prefix(base)
            .map_err(|_| BuildError::Runtime {
                message: format!("{} is outside {}", path.display(), base.display()),
            })?
            .to_string_lossy()
            .into_owned();
        // Bytecode a step left behind is compiled again, the same for every file, later.
        if rel.ends_with("__pycache__") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(io_error(&path))?;
        let new = !before.contains(&rel);
        let at = format!("{APP_DIR}/{rel}");
        if meta.is_dir() {
            if new {
                out.push(StepOutput {
                    path: at,
                    kind: OutputKind::Directory {
                        mode: 0o755,
                        opaque: false,
                    },
                    owner: None,
                });
            }
            collect(cache, base, &path, before, out)?;
        } else if meta.is_file() && new {
            let bytes = std::fs::read(&path).map_err(io_error(&path))?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            out.push(StepOutput {
                path: at,
                kind: OutputKind::File {
                    blob: cache.put_bytes(&bytes)?,
                    mode: if executable { 0o755 } else { 0o644 },
                },
                owner: None,
            });
        }
    }
    Ok(())
}

/// What the steps wrote, changed or deleted outside `/app` (the overlay's upper layer in
/// `changes`), less the scratch: `__pycache__` directories. A path the root's layers give to
/// another owner than root keeps that owner.
fn outside_app(
    cache: &Cache,
    root: &Rootfs,
    changes: &Path,
    out: &mut Vec<StepOutput>,
) -> Result<(), BuildError> {
    let found = terrarium_sandbox::changes(changes)?;
    if found.is_empty() {
        return Ok(());
    }
    let owners: BTreeMap<String, Ownership> = root.owners()?;
    for change in found {
        if change.path.split('/').any(|part| part == "__pycache__") {
            continue;
        }
        let kind = match change.kind {
            ChangeKind::Directory { mode, opaque } => OutputKind::Directory { mode, opaque },
            ChangeKind::File { host, mode } => {
                let bytes = std::fs::read(&host).map_err(io_error(&host))?;
                OutputKind::File {
                    blob: cache.put_bytes(&bytes)?,
                    mode,
                }
            }
            ChangeKind::Symlink { target } => OutputKind::Symlink { target },
            ChangeKind::Deleted => OutputKind::Deleted,
        };
        let owner = owners.get(&change.path).map(|o| Owner {
            uid: o.uid,
            gid: o.gid,
            uname: o.uname.clone(),
            gname: o.gname.clone(),
        });
        out.push(StepOutput {
            path: change.path,
            kind,
            owner,
        });
    }
    Ok(())
}

/// The error of a step that failed: the step, its last lines, and when its output names a
/// path it could not write, that path and why (with the kernel's refusal of the overlay when
/// the root was read-only).
fn step_error(step: &[String], err: SandboxError, refused: Option<&str>) -> BuildError {
    let tail = match &err {
        SandboxError::Failed { tail, .. } => tail.as_str(),
        _ => "",
    };
    let (blocked, fix) = match (unwritable(tail), refused) {
        (Some(write), Some(refused)) => (
            format!(
                "\n  it could not write {write}: the root was read-only, without a writable \
                 overlay ({refused})"
            ),
            "a step that writes outside /app needs a writable overlay of the build root: use \
             Linux 5.11 or later, with the cache (TERRARIUM_CACHE_DIR) on a local file system \
             such as ext4, xfs or btrfs; or build with `terrarium init` and `docker build`"
                .to_owned(),
        ),
        (Some(write), None) => (
            format!("\n  it could not write {write}"),
            "the rest of the root is writable for a step, but not /proc, /sys or /dev, and a \
             directory of the layers below can't be renamed (copy it instead, as in Docker): \
             run the step in `terrarium shell` to see why"
                .to_owned(),
        ),
        (None, _) => (
            String::new(),
            "run it in `terrarium shell` to see why; settings it needs at build time get \
             placeholders (set them in [tool.terrarium] env to give real defaults)"
                .to_owned(),
        ),
    };
    BuildError::BuildStep {
        step: step.join(" "),
        source: Box::new(err),
        blocked,
        fix,
    }
}

/// Why a write failed, as tools print it, and the reason's words in the error.
const WRITE_ERRORS: &[(&str, &str)] = &[
    ("Read-only file system", "read-only file system"),
    ("Permission denied", "permission denied"),
    (
        "Invalid cross-device link",
        "a directory of the root can't be renamed",
    ),
];

/// The last write the output `tail` says failed: `PATH (reason)`, or just the reason when the
/// line names no absolute path (Python's `OSError: [Errno 30] Read-only file system: '/x'`,
/// coreutils' `cannot create directory '/x': Read-only file system`, the shell's `cannot
/// create /x: Read-only file system`).
fn unwritable(tail: &str) -> Option<String> {
    tail.lines().rev().find_map(|line| {
        let (text, reason) = WRITE_ERRORS.iter().find(|(text, _)| line.contains(text))?;
        // Unquoted, the path is the last one before the reason (after the program's name).
        let path = quoted_path(line).or_else(|| {
            line.split(text)
                .next()?
                .split_whitespace()
                .map(|word| word.trim_end_matches(':'))
                .rfind(|word| word.starts_with('/') && word.len() > 1)
        });
        Some(match path {
            Some(path) => format!("{path} ({reason})"),
            None => format!("a path ({reason})"),
        })
    })
}

/// The first absolute path quoted in `line` with `'` or `"`.
fn quoted_path(line: &str) -> Option<&str> {
    for quote in ['\'', '"'] {
        let mut parts = line.split(quote);
        parts.next();
        while let Some(inside) = parts.next() {
            if inside.starts_with('/') {
                return Some(inside);
            }
            parts.next();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_reads_back() {
        let outputs = vec![
            StepOutput {
                path: "app/staticfiles".into(),
                kind: OutputKind::Directory {
                    mode: 0o755,
                    opaque: false,
                },
                owner: None,
            },
            StepOutput {
                path: "app/staticfiles/site.css".into(),
                kind: OutputKind::File {
                    blob: Digest::of(b"body{}"),
                    mode: 0o644,
                },
                owner: None,
            },
            StepOutput {
                path: "home/nonroot/.cache".into(),
                kind: OutputKind::Symlink {
                    target: "/tmp".into(),
                },
                owner: Some(Owner {
                    uid: 65532,
                    gid: 65532,
                    uname: "nonroot".into(),
                    gname: "nonroot".into(),
                }),
            },
            StepOutput {
                path: "usr/local/lib/python3.11/dist-packages/old.css".into(),
                kind: OutputKind::Deleted,
                owner: None,
            },
        ];
        let text = serde_json::to_vec(&outputs).unwrap();
        assert_eq!(
            serde_json::from_slice::<Vec<StepOutput>>(&text).unwrap(),
            outputs
        );
        assert!(serde_json::from_slice::<Vec<StepOutput>>(b"app\tx\t-\n").is_err());
    }

    #[test]
    fn a_step_runs_on_the_read_only_root_once_the_kernel_refuses_the_overlay() {
        let (dir, mut mounts) = terrarium_sandbox::testing::host_root();
        let out = tempfile::tempdir().unwrap();
        mounts.push(Mount {
            host: out.path().to_path_buf(),
            at: "/terrarium/out".into(),
            writable: true,
        });
        let root = Rootfs::from_dir(dir.path());
        let run = |script: &str| Run {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: "/".into(),
            mounts: mounts.clone(),
            timeout: None,
            changes: None,
        };
        let mut refused = None;
        // Writable: the write outside the mounts is a change.
        let good = tempfile::tempdir().unwrap();
        run_step(&root, run("echo x > /made"), good.path(), &mut refused).unwrap();
        assert_eq!(refused, None);
        let made = terrarium_sandbox::changes(good.path()).unwrap();
        assert_eq!(made.len(), 1, "{made:?}");
        // A work directory inside the upper one: every kernel refuses that overlay.
        let bad = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(bad.path().join("upper/inside")).unwrap();
        std::os::unix::fs::symlink("upper/inside", bad.path().join("work")).unwrap();
        run_step(
            &root,
            run("echo ran > /terrarium/out/ran"),
            bad.path(),
            &mut refused,
        )
        .unwrap();
        assert!(out.path().join("ran").is_file());
        let why = refused.clone().unwrap();
        assert!(why.contains("overlayfs"), "{why}");
        // The next step is not offered the overlay again, and its failed write says why.
        let err = run_step(&root, run("echo x > /made"), good.path(), &mut refused).unwrap_err();
        let step = vec!["sh".to_owned()];
        let text = step_error(&step, err, refused.as_deref()).to_string();
        assert!(
            text.contains(
                "it could not write /made (read-only file system): the root was \
                 read-only, without a writable overlay"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_failed_write_names_the_path_and_why() {
        let python = "Traceback (most recent call last):\n  File \"/app/manage.py\", line 9\n\
            OSError: [Errno 30] Read-only file system: \
            '/usr/local/lib/python3.11/dist-packages/theme/compiled'";
        assert_eq!(
            unwritable(python).as_deref(),
            Some("/usr/local/lib/python3.11/dist-packages/theme/compiled (read-only file system)")
        );
        assert_eq!(
            unwritable("mkdir: cannot create directory '/proc/x': Permission denied").as_deref(),
            Some("/proc/x (permission denied)")
        );
        assert_eq!(
            unwritable("/bin/sh: 1: cannot create /etc/motd: Read-only file system").as_deref(),
            Some("/etc/motd (read-only file system)")
        );
        assert_eq!(
            unwritable("OSError: [Errno 18] Invalid cross-device link: '/usr/a' -> '/usr/b'")
                .as_deref(),
            Some("/usr/a (a directory of the root can't be renamed)")
        );
        assert_eq!(
            unwritable("django.core.exceptions.ImproperlyConfigured"),
            None
        );

        let failed = SandboxError::Failed {
            command: "python manage.py collectstatic --noinput".into(),
            status: "exit status: 1".into(),
            tail: python.into(),
        };
        let step: Vec<String> = ["python", "manage.py", "collectstatic", "--noinput"]
            .map(String::from)
            .to_vec();
        let text = step_error(&step, failed, Some("mounting overlayfs: EPERM")).to_string();
        assert!(
            text.starts_with("build step `python manage.py collectstatic --noinput` failed"),
            "{text}"
        );
        assert!(text.contains("OSError: [Errno 30]"), "{text}");
        assert!(
            text.contains(
                "it could not write /usr/local/lib/python3.11/dist-packages/theme/compiled \
                 (read-only file system): the root was read-only, without a writable overlay \
                 (mounting overlayfs: EPERM)"
            ),
            "{text}"
        );
        assert!(
            text.contains("fix: a step that writes outside /app"),
            "{text}"
        );
    }
}
