//! `terrarium deploy swarm`: the system as a Docker Swarm stack (stack.yaml), deployed and
//! watched through `docker stack`; `--status` and `--rm`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use terrarium_deploy::{Swarm, SwarmOptions, Target};
use terrarium_plan::PlanOptions;

use crate::outln;

/// Arguments of `terrarium deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    engine: Engine,
}

#[derive(Debug, clap::Subcommand)]
enum Engine {
    /// Deploy to Docker Swarm with `docker stack deploy` (writes stack.yaml when missing).
    Swarm(SwarmArgs),
}

/// Arguments of `terrarium deploy swarm`.
#[derive(Debug, clap::Args)]
pub struct SwarmArgs {
    /// The system (or project) directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Show each service's replicas, health and last update instead of deploying.
    #[arg(long, conflicts_with = "rm")]
    pub status: bool,
    /// Remove the stack and the secrets terrarium created for it; named volumes stay.
    #[arg(long)]
    pub rm: bool,
    /// Write stack.yaml (and the gateway's config) when missing, then stop: no engine needed.
    #[arg(long, conflicts_with_all = ["status", "rm"])]
    pub write_only: bool,
    /// Seconds to wait for the rollout.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// The gateway's image, when stack.yaml is written.
    #[arg(long, value_name = "IMAGE")]
    pub proxy_image: Option<String>,
    /// PostgreSQL's image, when stack.yaml is written.
    #[arg(long, value_name = "IMAGE")]
    pub postgres_image: Option<String>,
}

/// The system or project in `dir` as something to deploy.
pub fn target(dir: &std::path::Path, options: &PlanOptions) -> anyhow::Result<Target> {
    Ok(match super::load(dir, options)? {
        super::Loaded::System(system) => Target::system(*system),
        super::Loaded::Project(plan) => Target::single(*plan),
    })
}

/// Run `terrarium deploy`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Engine::Swarm(args) = args.engine;
    let options = PlanOptions {
        proxy_image: args.proxy_image,
        postgres_image: args.postgres_image,
        ..PlanOptions::default()
    };
    let target = target(&args.dir, &options)?;
    if !args.status && !args.rm {
        let files: Vec<_> = terrarium_deploy::render_stack(&target)
            .into_iter()
            .filter(|f| !args.dir.join(&f.path).exists())
            .collect();
        for written in terrarium_render::write_all(&args.dir, &files, false)? {
            outln!("{written}");
        }
    }
    if args.write_only {
        return Ok(ExitCode::SUCCESS);
    }
    let engine = terrarium_engine::Engine::connect()?;
    let swarm = Swarm::new(engine, target, &args.dir);
    if args.rm {
        let kept = swarm.remove()?;
        outln!("removed stack {}", swarm.name());
        if !kept.is_empty() {
            outln!("kept volumes: {}", kept.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.status {
        let report = swarm.deploy(
            &SwarmOptions {
                timeout: Duration::from_secs(args.timeout),
            },
            &mut |line| eprintln!("{line}…"),
        )?;
        for (service, image) in &report.images {
            outln!("image    {service:<12} {image}");
        }
        for secret in &report.secrets_created {
            outln!("secret   {secret} (from .env)");
        }
        if let Some(node) = &report.db_node_labelled {
            outln!("db       pinned to node {node}");
        }
    }
    let statuses = swarm.status()?;
    outln!(
        "{:<24} {:>8} {:>8}  {:<20} IMAGE",
        "SERVICE",
        "REPLICAS",
        "HEALTHY",
        "UPDATE"
    );
    for s in statuses {
        let replicas = match s.desired {
            Some(desired) => format!("{}/{desired}", s.running),
            None => "completed".to_string(),
        };
        outln!(
            "{:<24} {:>8} {:>8}  {:<20} {}",
            s.name,
            replicas,
            s.healthy,
            s.update.as_deref().unwrap_or("-"),
            s.image
        );
    }
    Ok(ExitCode::SUCCESS)
}
