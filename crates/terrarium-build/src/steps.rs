//! Build steps, natively: Django's `collectstatic` (and any `build-steps` of the plan) run in
//! the sandbox on the image's own Python with the dependencies installed, in a copy of the
//! build context at `/app`, with the image's environment and a placeholder for each setting
//! the image must be given at run time (the Dockerfile's `RUN` gets the same). What a step
//! writes under `/app` goes into the app layer, where `RUN` would have left it.
//!
//! Outputs are cached by everything they depend on: the steps, the layers below, and the
//! content of every file of the context; an unchanged project runs no step.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use terrarium_image::{Cache, Digest};
use terrarium_plan::Plan;
use terrarium_project::ContextKind;
use terrarium_sandbox::{Mount, Rootfs, Run};

use crate::error::{BuildError, io_error};

/// Version of the build-step recipe; bump to run every step again.
const RECIPE: &str = "terrarium build steps v1";

/// A file a build step wrote, stored in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepOutput {
    /// Its path under `/app`, relative (`staticfiles/site.css`).
    pub path: String,
    /// Its content in the cache; `None` for a directory.
    pub blob: Option<Digest>,
    /// Whether it is executable.
    pub executable: bool,
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
        let Some(digest) = output.blob else { continue };
        let Some(path) = cache.get(&digest)? else {
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
                     for it: /app/{}",
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

fn parse_manifest(text: &str) -> Option<Vec<StepOutput>> {
    text.lines()
        .map(|line| {
            let mut fields = line.split('\t');
            let path = fields.next()?.to_owned();
            let blob = match fields.next()? {
                "" => None,
                digest => Some(digest.parse().ok()?),
            };
            let executable = fields.next()? == "x";
            Some(StepOutput {
                path,
                blob,
                executable,
            })
        })
        .collect()
}

fn manifest(outputs: &[StepOutput]) -> String {
    outputs
        .iter()
        .map(|o| {
            format!(
                "{}\t{}\t{}\n",
                o.path,
                o.blob.map(|d| d.to_string()).unwrap_or_default(),
                if o.executable { "x" } else { "-" }
            )
        })
        .collect()
}

/// The files the plan's build steps write under /app: from the cache, or run in the root
/// `root` gives (the runtime, system, deps and bytecode layers, digests `below`).
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
        && let Some(outputs) = parse_manifest(&String::from_utf8_lossy(&bytes))
        && outputs
            .iter()
            .filter_map(|o| o.blob)
            .all(|d| cache.get(&d).ok().flatten().is_some())
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
    let mut env = crate::bytecode::sandbox_env(plan);
    env.retain(|(k, _)| k != "PYTHONPATH");
    env.push(("PYTHONPATH".into(), "/app".into()));
    for step in &plan.build_steps.value {
        root.run(&Run {
            argv: step.clone(),
            env: env.clone(),
            cwd: "/app".into(),
            mounts: vec![Mount {
                host: app.clone(),
                at: "/app".into(),
                writable: true,
            }],
            timeout: Some(Duration::from_secs(600)),
        })
        .map_err(|err| BuildError::BuildStep {
            step: step.join(" "),
            source: Box::new(err),
        })?;
    }
    let mut outputs = Vec::new();
    collect(cache, &app, &app, &before, &mut outputs)?;
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    cache.write_meta(&meta, manifest(&outputs).as_bytes())?;
    Ok(outputs)
}

/// Every new path under `dir` (not in `before`): directories, and files stored in the cache.
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
        if meta.is_dir() {
            if new {
                out.push(StepOutput {
                    path: rel.clone(),
                    blob: None,
                    executable: true,
                });
            }
            collect(cache, base, &path, before, out)?;
        } else if meta.is_file() && new {
            let bytes = std::fs::read(&path).map_err(io_error(&path))?;
            out.push(StepOutput {
                path: rel,
                blob: Some(cache.put_bytes(&bytes)?),
                executable: meta.permissions().mode() & 0o111 != 0,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_reads_back() {
        let outputs = vec![
            StepOutput {
                path: "staticfiles".into(),
                blob: None,
                executable: true,
            },
            StepOutput {
                path: "staticfiles/site.css".into(),
                blob: Some(Digest::of(b"body{}")),
                executable: false,
            },
        ];
        assert_eq!(parse_manifest(&manifest(&outputs)), Some(outputs));
        assert_eq!(parse_manifest("only-a-path"), None);
    }
}
