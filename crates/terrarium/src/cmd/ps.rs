//! `terrarium ps`: the containers terrarium started for this project.

use std::path::PathBuf;
use std::process::ExitCode;

use terrarium_engine::LABEL_ROLE;

use crate::outln;

/// Arguments of `terrarium ps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Run `terrarium ps`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (engine, plan, project) = super::engine::open(&args.dir)?;
    let containers = terrarium_engine::project_containers(&engine, &project)?;
    let services = match terrarium_engine::Compose::new(&engine, &args.dir, &plan.name) {
        Ok(compose) => compose.states()?,
        Err(_) => Vec::new(),
    };
    if containers.is_empty() && services.is_empty() {
        outln!(
            "no containers of {} (start one with `terrarium dev`, `run` or `up`)",
            plan.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{:<44} {:<8} {:<28} PORTS", "NAME", "ROLE", "STATUS");
    for c in &containers {
        outln!(
            "{:<44} {:<8} {:<28} {}",
            c.name,
            c.label(LABEL_ROLE).unwrap_or("-"),
            c.status,
            c.ports
        );
    }
    for s in &services {
        outln!(
            "{:<44} {:<8} {:<28} {}",
            s.service,
            "compose",
            s.state,
            s.published.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
