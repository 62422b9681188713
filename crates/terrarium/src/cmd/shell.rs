//! `terrarium shell`: a shell (or a command) in a fresh dev container, in the running one, or in
//! a running compose service.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use terrarium_engine::{LABEL_ROLE, Role};

use super::engine::Scope;

/// Arguments of `terrarium shell`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A project directory, or a running compose service (`terrarium shell points`).
    pub target: Option<String>,
    /// The project directory, when the first argument is a service.
    #[arg(long, short = 'C', value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Exec into the project's running dev or prod container instead of starting a new one (L15).
    #[arg(long)]
    pub running: bool,
    /// The command to run instead of an interactive shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Run `terrarium shell`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    // An exec into a running container needs the shell spelled out; a fresh one defaults to it.
    let exec_command = || {
        if args.command.is_empty() {
            terrarium_engine::default_shell()
        } else {
            args.command.clone()
        }
    };
    let status = match super::engine::scope(args.target, args.dir)? {
        Scope::Services { dir, service } => {
            let Some(service) = service else {
                bail!("name the service to open a shell in: terrarium shell SERVICE");
            };
            let (_, compose) = super::engine::compose(&dir)?;
            let mut exec = vec!["exec".to_string()];
            if !tty {
                exec.push("-T".into());
            }
            exec.push(service);
            exec.extend(exec_command());
            let exec: Vec<&str> = exec.iter().map(String::as_str).collect();
            compose.attached(&exec)?
        }
        Scope::Project(dir) => {
            let (engine, plan, project) = super::engine::open(&dir)?;
            if args.running {
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
                exec.extend(exec_command());
                engine.attached(&exec)?
            } else {
                eprintln!("building the dev image of {}…", plan.name);
                let image = terrarium_engine::build_dev_image(&engine, &plan, &project)?;
                let spec =
                    terrarium_engine::shell_spec(&project, &image, args.command.clone(), tty);
                engine.attached(&spec.args(false))?
            }
        }
    };
    Ok(ExitCode::from(
        u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
    ))
}
