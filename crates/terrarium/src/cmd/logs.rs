//! `terrarium logs`: the logs of this project's containers, or of compose services.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use super::engine::Scope;

/// Arguments of `terrarium logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A compose service (`terrarium logs points`), or a project directory.
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
    let follow: &[&str] = if args.follow { &["--follow"] } else { &[] };
    let status = match super::engine::scope(args.target, args.dir)? {
        Scope::Services { dir, service } => {
            let (_, compose) = super::engine::compose(&dir)?;
            let mut cmd = vec!["logs", "--no-color"];
            cmd.extend_from_slice(follow);
            if let Some(service) = &service {
                cmd.push(service);
            }
            compose.attached(&cmd)?
        }
        Scope::Project(dir) => {
            let (engine, plan, project) = super::engine::open(&dir)?;
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
            engine.attached(&cmd)?
        }
    };
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
