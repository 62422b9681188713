//! `terrarium logs`: the logs of this project's containers, or of one compose service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

/// Arguments of `terrarium logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A compose service (from `terrarium up`), or the project directory.
    pub target: Option<String>,
    /// The project directory, when the first argument is a service.
    #[arg(long, short = 'C', value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep following new output.
    #[arg(long, short)]
    pub follow: bool,
}

/// Run `terrarium logs`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, service) = super::engine::dir_or_service(args.target, args.dir);
    let (engine, plan, project) = super::engine::open(&dir)?;
    let follow: &[&str] = if args.follow { &["--follow"] } else { &[] };
    if let Some(service) = service {
        let compose = terrarium_engine::Compose::new(&engine, &dir, &plan.name)?;
        let mut cmd = vec!["logs"];
        cmd.extend_from_slice(follow);
        cmd.push(&service);
        let status = compose.attached(&cmd)?;
        return Ok(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let mut containers = terrarium_engine::project_containers(&engine, &project)?;
    containers.sort_by_key(|c| c.state != "running");
    let Some(container) = containers.first() else {
        bail!(
            "no containers of {}: start one with `terrarium dev` or `terrarium run` (for compose services: `terrarium logs SERVICE`)",
            plan.name
        );
    };
    let mut cmd = vec!["logs".to_string()];
    cmd.extend(follow.iter().map(|s| s.to_string()));
    cmd.push(container.name.clone());
    let status = engine.attached(&cmd)?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
