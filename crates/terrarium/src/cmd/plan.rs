//! `terrarium plan`.

use std::process::ExitCode;

/// Arguments of `terrarium plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: std::path::PathBuf,
}

/// Run `terrarium plan`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
