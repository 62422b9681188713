//! `terrarium down`: remove the compose services' containers; volumes only when asked.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `terrarium down`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Also remove the named volumes, and with them the data.
    #[arg(long)]
    pub volumes: bool,
}

/// Run `terrarium down`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (_, compose) = super::engine::compose(&args.dir)?;
    compose.down(args.volumes)?;
    Ok(ExitCode::SUCCESS)
}
