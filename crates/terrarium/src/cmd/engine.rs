//! What the workflow commands share: connecting, planning, and Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

use terrarium_engine::{Engine, ProjectRef};
use terrarium_plan::{Plan, PlanOptions};

/// The engine, the plan and the project's identity for `dir`.
pub fn open(dir: &Path) -> anyhow::Result<(Engine, Plan, ProjectRef)> {
    let plan = super::load_plan(dir, &PlanOptions::default())?;
    let engine = Engine::connect()?;
    let project = ProjectRef::new(&plan)?;
    Ok((engine, plan, project))
}

/// A channel that receives one message per Ctrl-C (SIGINT) or SIGTERM.
pub fn interrupts() -> anyhow::Result<Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })?;
    Ok(rx)
}

/// A positional argument that is either the project directory or a service name: an existing
/// directory wins.
pub fn dir_or_service(target: Option<String>, dir: Option<PathBuf>) -> (PathBuf, Option<String>) {
    match (target, dir) {
        (Some(t), None) if Path::new(&t).is_dir() => (PathBuf::from(t), None),
        (target, dir) => (dir.unwrap_or_else(|| PathBuf::from(".")), target),
    }
}
