//! `terrarium dev`: the dev container with the source mounted and a reloading server.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::outln;

/// Arguments of `terrarium dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The port on 127.0.0.1 to publish the server on (default: the service's own port).
    #[arg(long)]
    pub port: Option<u16>,
}

/// Run `terrarium dev`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (engine, plan, project) = super::engine::open(&args.dir)?;
    let port = args.port.unwrap_or(plan.port.value);
    terrarium_engine::ensure_port_free(port)?;
    eprintln!(
        "building the dev image of {} (as your UID, so files stay yours)…",
        plan.name
    );
    let image = terrarium_engine::build_dev_image(&engine, &plan, &project)?;
    let spec = terrarium_engine::dev_spec(&plan, &project, &image, port);
    let interrupts = super::engine::interrupts()?;
    outln!(
        "serving {} on http://127.0.0.1:{port}/ — edits under {} reload the server; Ctrl-C stops",
        plan.name,
        project.root.display()
    );
    let code = terrarium_engine::run_and_follow(&engine, &spec, interrupts)?;
    Ok(super::engine::exit_code(code))
}
