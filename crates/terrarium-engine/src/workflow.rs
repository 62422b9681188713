//! The daily workflow on top of the engine: the dev container (source mounted, host UID,
//! reloading server), a shell in it, and the production image run prod-like (read-only root,
//! named volumes, SIGTERM with a grace period). Containers carry labels naming their project,
//! so `ps`, `logs` and `stop` touch nothing else.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

use sha2::{Digest as _, Sha256};
use terrarium_plan::Plan;

use crate::docker::{BuildRequest, ContainerInfo, Engine};
use crate::error::EngineError;

/// The label naming the project directory a container belongs to.
pub const LABEL_PROJECT: &str = "io.terrarium.project";
/// The label naming the container's role (`dev`, `run`, `shell`).
pub const LABEL_ROLE: &str = "io.terrarium.role";

/// What a container terrarium starts is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The dev server with the source mounted.
    Dev,
    /// The production image run prod-like.
    Run,
    /// A one-off shell or command in a dev container.
    Shell,
    /// `terrarium test`: the test suite, or a service it needs.
    Test,
}

impl Role {
    /// The role as its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Dev => "dev",
            Role::Run => "run",
            Role::Shell => "shell",
            Role::Test => "test",
        }
    }
}

/// A project as the engine sees it: a name and a stable id from its directory.
#[derive(Debug, Clone)]
pub struct ProjectRef {
    /// The plan's name.
    pub name: String,
    /// The project directory, absolute.
    pub root: PathBuf,
    id: String,
}

impl ProjectRef {
    /// The project of `plan`.
    pub fn new(plan: &Plan) -> Result<ProjectRef, EngineError> {
        let root = std::fs::canonicalize(&plan.root).map_err(|source| EngineError::Spawn {
            command: format!("resolve {}", plan.root.display()),
            source,
        })?;
        let digest = Sha256::digest(root.to_string_lossy().as_bytes());
        let id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Ok(ProjectRef {
            name: plan.name.clone(),
            root,
            id,
        })
    }

    /// The container name for a role: unique per project directory.
    pub fn container(&self, role: Role) -> String {
        format!("terrarium-{}-{}-{}", self.name, self.id, role.as_str())
    }

    /// The image tag for the dev (`dev`) or production (`prod`) image.
    pub fn image(&self, kind: &str) -> String {
        format!("terrarium/{}:{kind}", self.name)
    }

    /// The named volume for a data directory.
    pub fn volume(&self, path: &str) -> String {
        format!(
            "terrarium-{}-{}-{}",
            self.name,
            self.id,
            terrarium_plan::volume_name(path)
        )
    }

    /// `label=value` filters that select this project's containers.
    pub fn filters(&self) -> Vec<String> {
        vec![format!("{LABEL_PROJECT}={}", self.root.display())]
    }

    /// The labels of a container this project starts in `role`.
    pub fn labels(&self, role: Role) -> Vec<(String, String)> {
        vec![
            (LABEL_PROJECT.to_string(), self.root.display().to_string()),
            (LABEL_ROLE.to_string(), role.as_str().to_string()),
        ]
    }
}

/// Everything `docker run` needs for one container.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// Container name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Published ports as (host, container); always on 127.0.0.1.
    pub ports: Vec<(u16, u16)>,
    /// Bind mounts as (host path, container path).
    pub binds: Vec<(PathBuf, String)>,
    /// Named volumes as (volume, container path).
    pub volumes: Vec<(String, String)>,
    /// An env file.
    pub env_file: Option<PathBuf>,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// tmpfs mounts.
    pub tmpfs: Vec<String>,
    /// Run a tiny init as PID 1 that forwards signals (for dev servers that ignore them as PID 1).
    pub init: bool,
    /// Keep stdin open and allocate a TTY.
    pub tty: bool,
    /// Remove when it exits.
    pub remove: bool,
    /// Seconds between SIGTERM and SIGKILL on stop.
    pub stop_timeout: Option<u32>,
    /// The command (empty: the image's).
    pub command: Vec<String>,
}

impl RunSpec {
    /// The `docker run` arguments; `detach` starts it in the background.
    pub fn args(&self, detach: bool) -> Vec<String> {
        let mut args = vec!["run".to_string()];
        if detach {
            args.push("--detach".into());
        }
        if self.remove {
            args.push("--rm".into());
        }
        if self.tty {
            args.extend(["--interactive".into(), "--tty".into()]);
        }
        args.extend(["--name".into(), self.name.clone()]);
        for (key, value) in &self.labels {
            args.extend(["--label".into(), format!("{key}={value}")]);
        }
        for (host, container) in &self.ports {
            args.extend(["--publish".into(), format!("127.0.0.1:{host}:{container}")]);
        }
        for (host, container) in &self.binds {
            args.extend(["--volume".into(), format!("{}:{container}", host.display())]);
        }
        for (volume, path) in &self.volumes {
            args.extend(["--volume".into(), format!("{volume}:{path}")]);
        }
        if let Some(file) = &self.env_file {
            args.extend(["--env-file".into(), file.display().to_string()]);
        }
        if self.read_only {
            args.push("--read-only".into());
        }
        for path in &self.tmpfs {
            args.extend(["--tmpfs".into(), path.clone()]);
        }
        if self.init {
            args.push("--init".into());
        }
        if let Some(timeout) = self.stop_timeout {
            args.extend(["--stop-timeout".into(), timeout.to_string()]);
        }
        args.push(self.image.clone());
        args.extend(self.command.iter().cloned());
        args
    }
}

/// What `docker build` reads: a Dockerfile and a context directory.
struct BuildInputs {
    dockerfile: PathBuf,
    context: PathBuf,
    /// Keeps the generated files until the build is done.
    _temp: Option<tempfile::TempDir>,
}

/// The project's own Dockerfile when it has one (the user owns it and its context), else the
/// one `terrarium init` would write, rendered into a temporary directory outside the context,
/// with the plan's `.dockerignore` rules beside it as `<Dockerfile>.dockerignore`, which BuildKit
/// reads instead of the context's. The classic builder reads only the context's own
/// `.dockerignore`, so without BuildKit the context is a copy with the rules applied. Either
/// way nothing the rules leave out (`.env`, `.git`, keys, virtualenvs) reaches the image (L22).
fn build_inputs(engine: &Engine, plan: &Plan, name: &str) -> Result<BuildInputs, EngineError> {
    let own = plan.root.join(name);
    if own.is_file() {
        return Ok(BuildInputs {
            dockerfile: own,
            context: plan.root.clone(),
            _temp: None,
        });
    }
    let rendered = terrarium_render::render(plan, terrarium_render::RenderOptions::default());
    let ignore_name = format!("{name}.dockerignore");
    let files: Vec<terrarium_render::RenderedFile> = rendered
        .into_iter()
        .filter_map(|mut f| {
            if f.path == Path::new(name) {
                Some(f)
            } else if f.path == Path::new(".dockerignore") {
                f.path = PathBuf::from(&ignore_name);
                Some(f)
            } else {
                None
            }
        })
        .collect();
    let dir = tempfile::tempdir().map_err(|source| EngineError::Spawn {
        command: "create a temporary directory".into(),
        source,
    })?;
    terrarium_render::write_all(dir.path(), &files, false)?;
    let context = if engine.has_buildkit() {
        plan.root.clone()
    } else {
        let context = dir.path().join("context");
        plan.context_rules()?
            .materialize(&plan.root, &context, true)?;
        context
    };
    Ok(BuildInputs {
        dockerfile: dir.path().join(name),
        context,
        _temp: Some(dir),
    })
}

/// The host user's UID and GID, for dev images whose files must stay the user's (L11, L16).
pub fn host_user() -> (u32, u32) {
    (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    )
}

/// Build (or, with Docker's layer cache, reuse) the dev image as the host user.
pub fn build_dev_image(
    engine: &Engine,
    plan: &Plan,
    project: &ProjectRef,
) -> Result<String, EngineError> {
    let inputs = build_inputs(engine, plan, "Dockerfile.dev")?;
    let tag = project.image("dev");
    let (uid, gid) = host_user();
    engine.build(&BuildRequest {
        context: &inputs.context,
        dockerfile: &inputs.dockerfile,
        tag: &tag,
        build_args: vec![
            ("UID".into(), uid.to_string()),
            ("GID".into(), gid.to_string()),
        ],
        labels: vec![(LABEL_PROJECT.into(), project.root.display().to_string())],
    })?;
    Ok(tag)
}

/// Build the production image from the project's Dockerfile (or the generated one).
pub fn build_prod_image(
    engine: &Engine,
    plan: &Plan,
    project: &ProjectRef,
) -> Result<String, EngineError> {
    let inputs = build_inputs(engine, plan, "Dockerfile")?;
    let tag = project.image("prod");
    engine.build(&BuildRequest {
        context: &inputs.context,
        dockerfile: &inputs.dockerfile,
        tag: &tag,
        build_args: Vec::new(),
        labels: vec![(LABEL_PROJECT.into(), project.root.display().to_string())],
    })?;
    Ok(tag)
}

fn env_file(project: &ProjectRef, explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => Some(project.root.join(".env")).filter(|p| p.is_file()),
    }
}

/// The dev container: source mounted on /app, the dev server on 0.0.0.0 published on
/// 127.0.0.1:`host_port`, `.env` when present, an init that forwards Ctrl-C.
pub fn dev_spec(plan: &Plan, project: &ProjectRef, image: &str, host_port: u16) -> RunSpec {
    RunSpec {
        name: project.container(Role::Dev),
        image: image.to_string(),
        labels: project.labels(Role::Dev),
        ports: vec![(host_port, plan.port.value)],
        binds: vec![(project.root.clone(), "/app".into())],
        env_file: env_file(project, None),
        init: true,
        stop_timeout: Some(10),
        ..RunSpec::default()
    }
}

/// The command that opens an interactive shell in any image: bash where there is one, else sh.
pub fn default_shell() -> Vec<String> {
    [
        "sh",
        "-c",
        "command -v bash >/dev/null && exec bash || exec sh",
    ]
    .map(String::from)
    .to_vec()
}

/// A fresh dev container running `command` (a shell when empty), with the same mounts and user.
pub fn shell_spec(project: &ProjectRef, image: &str, command: Vec<String>, tty: bool) -> RunSpec {
    let command = if command.is_empty() {
        default_shell()
    } else {
        command
    };
    RunSpec {
        name: format!("{}-{}", project.container(Role::Shell), std::process::id()),
        image: image.to_string(),
        labels: project.labels(Role::Shell),
        binds: vec![(project.root.clone(), "/app".into())],
        env_file: env_file(project, None),
        init: true,
        tty,
        remove: true,
        command,
        ..RunSpec::default()
    }
}

/// The production image run prod-like: read-only root, tmpfs /tmp, the declared volumes as
/// named volumes (data survives run after run), port on 127.0.0.1, 10 s to stop on SIGTERM.
pub fn run_spec(
    plan: &Plan,
    project: &ProjectRef,
    image: &str,
    host_port: u16,
    env: Option<&Path>,
) -> RunSpec {
    RunSpec {
        name: project.container(Role::Run),
        image: image.to_string(),
        labels: project.labels(Role::Run),
        ports: vec![(host_port, plan.port.value)],
        volumes: plan
            .volumes
            .value
            .iter()
            .map(|v| (project.volume(&v.path), v.path.clone()))
            .collect(),
        env_file: env_file(project, env),
        read_only: true,
        tmpfs: vec!["/tmp".into()],
        stop_timeout: Some(10),
        ..RunSpec::default()
    }
}

/// Start `spec` in the background (replacing a leftover container of the same name), stream
/// its logs, and stop it with SIGTERM when `interrupt` fires. Returns the container's exit
/// code; the container is removed afterwards.
pub fn run_and_follow(
    engine: &Engine,
    spec: &RunSpec,
    interrupt: Receiver<()>,
) -> Result<i64, EngineError> {
    let _ = engine.remove(&spec.name);
    engine.output(&spec.args(true))?;
    let mut logs = engine.spawn(&["logs".into(), "--follow".into(), spec.name.clone()])?;
    enum Event {
        Interrupt,
        Exited(Result<String, EngineError>),
    }
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let tx = tx.clone();
        let engine = engine.clone();
        let name = spec.name.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Event::Exited(engine.output(&["wait".into(), name])));
        })
    };
    std::thread::spawn(move || {
        if interrupt.recv().is_ok() {
            let _ = tx.send(Event::Interrupt);
        }
    });
    let mut code = None;
    while code.is_none() {
        match rx.recv() {
            Ok(Event::Interrupt) => {
                eprintln!("stopping {} (SIGTERM, 10 s grace)…", spec.name);
                engine.stop(&spec.name, spec.stop_timeout.unwrap_or(10))?;
            }
            Ok(Event::Exited(result)) => code = Some(result?.trim().parse::<i64>().unwrap_or(-1)),
            Err(_) => code = Some(-1),
        }
    }
    let _ = waiter.join();
    let _ = logs.wait();
    engine.remove(&spec.name)?;
    Ok(code.unwrap_or(-1))
}

/// This project's containers terrarium started.
pub fn project_containers(
    engine: &Engine,
    project: &ProjectRef,
) -> Result<Vec<ContainerInfo>, EngineError> {
    engine.containers(&project.filters())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments_publish_on_localhost_only() {
        let spec = RunSpec {
            name: "c".into(),
            image: "img".into(),
            ports: vec![(18000, 8000)],
            volumes: vec![("v".into(), "/data".into())],
            read_only: true,
            tmpfs: vec!["/tmp".into()],
            stop_timeout: Some(10),
            command: vec!["id".into()],
            ..RunSpec::default()
        };
        assert_eq!(
            spec.args(true),
            [
                "run",
                "--detach",
                "--name",
                "c",
                "--publish",
                "127.0.0.1:18000:8000",
                "--volume",
                "v:/data",
                "--read-only",
                "--tmpfs",
                "/tmp",
                "--stop-timeout",
                "10",
                "img",
                "id"
            ]
        );
    }
}
