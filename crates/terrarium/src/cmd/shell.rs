//! `terrarium shell`: a shell (or a command) in a fresh dev container, or in the running one.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use terrarium_engine::{LABEL_ROLE, Role};

/// Arguments of `terrarium shell`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Exec into the project's running dev or prod container instead of starting a new one (L15).
    #[arg(long)]
    pub running: bool,
    /// The command to run instead of an interactive shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Run `terrarium shell`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (engine, plan, project) = super::engine::open(&args.dir)?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let status = if args.running {
        let running: Vec<_> = terrarium_engine::project_containers(&engine, &project)?
            .into_iter()
            .filter(|c| c.state == "running")
            .collect();
        let pick = |role: Role| {
            running
                .iter()
                .find(|c| c.label(LABEL_ROLE) == Some(role.as_str()))
        };
        let Some(container) = pick(Role::Dev).or_else(|| pick(Role::Run)) else {
            bail!(
                "no running container of {}: start one with `terrarium dev` or `terrarium run`",
                plan.name
            );
        };
        let mut exec = vec!["exec".to_string()];
        if tty {
            exec.extend(["--interactive".into(), "--tty".into()]);
        }
        exec.push(container.name.clone());
        if args.command.is_empty() {
            exec.extend([
                "sh".into(),
                "-c".into(),
                "command -v bash >/dev/null && exec bash || exec sh".into(),
            ]);
        } else {
            exec.extend(args.command);
        }
        engine.attached(&exec)?
    } else {
        eprintln!("building the dev image of {}…", plan.name);
        let image = terrarium_engine::build_dev_image(&engine, &plan, &project)?;
        let spec = terrarium_engine::shell_spec(&project, &image, args.command, tty);
        engine.attached(&spec.args(false))?
    };
    Ok(ExitCode::from(
        u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
    ))
}
