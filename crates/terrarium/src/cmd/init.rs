//! `terrarium init`.

use std::process::ExitCode;

/// Arguments of `terrarium init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: std::path::PathBuf,
}

/// Run `terrarium init`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
