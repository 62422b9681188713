//! `terrarium up`: start every service of compose.yaml, wait for health, print the URLs.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use terrarium_render::RenderOptions;

use crate::outln;

/// Arguments of `terrarium up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Write the Docker files first when compose.yaml is missing, without asking.
    #[arg(long)]
    pub init: bool,
    /// Seconds to wait for the services to become healthy.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
}

/// Run `terrarium up`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let has_compose = terrarium_engine::compose_file(&args.dir).is_some();
    if !has_compose
        && (args.init
            || ask(&format!(
                "{} has no compose.yaml; write the Docker files now (terrarium init)? [y/N] ",
                args.dir.display()
            ))?)
    {
        let loaded = super::load(&args.dir, &terrarium_plan::PlanOptions::default())?;
        let files: Vec<_> = super::render(&loaded, RenderOptions::default())
            .into_iter()
            .filter(|f| !args.dir.join(&f.path).exists())
            .collect();
        for written in terrarium_render::write_all(&args.dir, &files, false)? {
            outln!("{written}");
        }
    }
    let (_, compose) = super::engine::compose(&args.dir)?;
    compose.up()?;
    eprintln!("waiting for health checks (up to {} s)…", args.timeout);
    let states = compose.wait_healthy(Duration::from_secs(args.timeout))?;
    for state in &states {
        let urls: Vec<String> = state
            .published
            .iter()
            .map(|p| format!("http://{p}/"))
            .collect();
        let shown = if state.exit_code == Some(0) {
            "completed"
        } else {
            state.state.as_str()
        };
        outln!("{:<12} {:<10} {}", state.service, shown, urls.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask a yes/no question on the terminal; no terminal means no.
fn ask(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
