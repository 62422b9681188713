//! `terrarium run`: the production image, run prod-like.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::outln;

/// Arguments of `terrarium run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The port on 127.0.0.1 to publish the service on (default: the service's own port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Read settings from this file (default: the project's .env when there is one).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
}

/// Run `terrarium run`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (engine, plan, project) = super::engine::open(&args.dir)?;
    let port = args.port.unwrap_or(plan.port.value);
    terrarium_engine::ensure_port_free(port)?;
    if let Some(file) = &args.env_file {
        anyhow::ensure!(file.is_file(), "{}: no such env file", file.display());
    }
    eprintln!(
        "building the production image of {} with its Dockerfile…",
        plan.name
    );
    let image = terrarium_engine::build_prod_image(&engine, &plan, &project)?;
    let spec = terrarium_engine::run_spec(&plan, &project, &image, port, args.env_file.as_deref());
    let interrupts = super::engine::interrupts()?;
    let volumes: Vec<String> = spec
        .volumes
        .iter()
        .map(|(v, p)| format!("{v} on {p}"))
        .collect();
    outln!(
        "running {} prod-like on http://127.0.0.1:{port}/ (read-only root, non-root{}); Ctrl-C sends SIGTERM",
        plan.name,
        if volumes.is_empty() {
            String::new()
        } else {
            format!(", volumes: {}", volumes.join(", "))
        }
    );
    let code = terrarium_engine::run_and_follow(&engine, &spec, interrupts)?;
    Ok(super::engine::exit_code(code))
}
