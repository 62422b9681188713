//! `terrarium stop`: stop and remove the containers terrarium started for this project.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::outln;

/// Arguments of `terrarium stop`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Run `terrarium stop`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (engine, plan, project) = super::engine::open(&args.dir)?;
    let containers = terrarium_engine::project_containers(&engine, &project)?;
    if containers.is_empty() {
        outln!("no containers of {} to stop", plan.name);
    }
    for container in containers {
        if container.state == "running" {
            engine.stop(&container.name, 10)?;
        }
        engine.remove(&container.name)?;
        outln!("stopped {}", container.name);
    }
    Ok(ExitCode::SUCCESS)
}
