//! What the workflow commands share: connecting, planning, resolving "a directory or a service",
//! and Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

use terrarium_engine::{Compose, Engine, ProjectRef};
use terrarium_plan::{Plan, PlanOptions};

/// The engine, the plan and the project's identity for a single project in `dir`.
pub fn open(dir: &Path) -> anyhow::Result<(Engine, Plan, ProjectRef)> {
    let plan = super::load_plan(dir, &PlanOptions::default())?;
    let engine = Engine::connect()?;
    let project = ProjectRef::new(&plan)?;
    Ok((engine, plan, project))
}

/// The compose project in `dir`: a system's name from its terrarium.toml, else the project's.
pub fn compose(dir: &Path) -> anyhow::Result<(Engine, Compose)> {
    let name = match terrarium_project::detect_system(dir)? {
        Some(system) => system.name,
        None => super::load_plan(dir, &PlanOptions::default())?.name,
    };
    let engine = Engine::connect()?;
    let compose = Compose::new(&engine, dir, &name)?;
    Ok((engine, compose))
}

/// What a `[TARGET]` argument names.
pub enum Scope {
    /// A single project directory.
    Project(PathBuf),
    /// A compose service (or all of them, for a system root without a service).
    Services {
        /// The directory with compose.yaml.
        dir: PathBuf,
        /// The service, when one was named.
        service: Option<String>,
    },
}

/// Resolve `[TARGET]` and `--dir`: in a system, a service or job name is a service; otherwise an
/// existing directory is a project and anything else a compose service.
pub fn scope(target: Option<String>, dir: Option<PathBuf>) -> anyhow::Result<Scope> {
    let base = dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let system = terrarium_project::detect_system(&base)?;
    Ok(match (target, system) {
        (None, Some(_)) => Scope::Services {
            dir: base,
            service: None,
        },
        (None, None) => Scope::Project(base),
        (Some(t), Some(system))
            if system.services.iter().any(|s| s.name == t)
                || system.jobs.iter().any(|j| j.name == t) =>
        {
            Scope::Services {
                dir: base,
                service: Some(t),
            }
        }
        (Some(t), _) if dir.is_none() && Path::new(&t).is_dir() => Scope::Project(PathBuf::from(t)),
        (Some(t), _) => Scope::Services {
            dir: base,
            service: Some(t),
        },
    })
}

/// A channel that receives one message per Ctrl-C (SIGINT) or SIGTERM.
pub fn interrupts() -> anyhow::Result<Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })?;
    Ok(rx)
}

/// A container exit code as the process's: 0 stays 0, a stop by signal counts as success.
pub fn exit_code(code: i64) -> std::process::ExitCode {
    match code {
        0 | 130 | 143 => std::process::ExitCode::SUCCESS,
        other => std::process::ExitCode::from(u8::try_from(other).unwrap_or(1)),
    }
}
