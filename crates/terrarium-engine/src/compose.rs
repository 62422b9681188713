//! Docker Compose for several services: terrarium writes the compose file and lets Compose run
//! it (`docker compose` when the plugin is there, else `docker-compose`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::docker::Engine;
use crate::error::EngineError;

/// A compose project: the CLI, the directory with compose.yaml, and the project name.
#[derive(Debug, Clone)]
pub struct Compose {
    argv: Vec<String>,
    dir: PathBuf,
    project: String,
    engine: Engine,
}

/// The state of one service's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// The service.
    pub service: String,
    /// The container id.
    pub container: String,
    /// `healthy`, `starting`, `unhealthy`, or the container state when it has no health check.
    pub state: String,
    /// The exit code, for a container that stopped.
    pub exit_code: Option<i64>,
    /// Host addresses of its published ports (`127.0.0.1:8080`).
    pub published: Vec<String>,
}

impl ServiceState {
    fn ready(&self) -> bool {
        matches!(self.state.as_str(), "healthy" | "running")
            || (self.state == "exited" && self.exit_code == Some(0))
    }

    fn failed(&self) -> bool {
        self.state == "unhealthy"
            || (self.state == "exited" && self.exit_code != Some(0))
            || self.state == "dead"
    }
}

/// The compose file in `dir`, under any of the names Compose looks for.
pub fn compose_file(dir: &Path) -> Option<PathBuf> {
    [
        "compose.yaml",
        "compose.yml",
        "docker-compose.yaml",
        "docker-compose.yml",
    ]
    .iter()
    .map(|name| dir.join(name))
    .find(|path| path.is_file())
}

impl Compose {
    /// Find a compose CLI and bind it to the compose file in `dir`.
    pub fn new(engine: &Engine, dir: &Path, project: &str) -> Result<Compose, EngineError> {
        if compose_file(dir).is_none() {
            return Err(EngineError::NoComposeFile(dir.to_path_buf()));
        }
        let works = |argv: &[&str]| {
            Command::new(argv[0])
                .args(&argv[1..])
                .arg("version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let client = engine.client().display().to_string();
        let argv = if works(&[&client, "compose"]) {
            vec![client, "compose".to_string()]
        } else if works(&["docker-compose"]) {
            vec!["docker-compose".to_string()]
        } else {
            return Err(EngineError::NoCompose);
        };
        Ok(Compose {
            argv,
            dir: dir.to_path_buf(),
            project: project.to_string(),
            engine: engine.clone(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .args(["--project-name", &self.project])
            .args(args)
            .current_dir(&self.dir);
        if self.argv[0] == "docker-compose" {
            // Compose v1 builds through the engine API: the docker CLI on PATH may lack buildx.
            command.env("COMPOSE_DOCKER_CLI_BUILD", "0");
        }
        command
    }

    fn line(&self, args: &[&str]) -> String {
        format!(
            "{} --project-name {} {}",
            self.argv.join(" "),
            self.project,
            args.join(" ")
        )
    }

    /// Run compose attached to the terminal.
    pub fn attached(&self, args: &[&str]) -> Result<ExitStatus, EngineError> {
        self.command(args)
            .status()
            .map_err(|source| EngineError::Spawn {
                command: self.line(args),
                source,
            })
    }

    /// Run compose, capturing its output; an error carries stderr.
    pub fn output(&self, args: &[&str]) -> Result<String, EngineError> {
        let output = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| EngineError::Spawn {
                command: self.line(args),
                source,
            })?;
        if !output.status.success() {
            return Err(EngineError::Command {
                command: self.line(args),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// `up --detach --build`: build and start every service.
    pub fn up(&self) -> Result<(), EngineError> {
        let status = self.attached(&["up", "--detach", "--build"])?;
        if status.success() {
            Ok(())
        } else {
            Err(EngineError::Command {
                command: self.line(&["up", "--detach", "--build"]),
                stderr: String::new(),
            })
        }
    }

    /// `down`: remove the containers and networks; named volumes too only with `volumes`.
    pub fn down(&self, volumes: bool) -> Result<(), EngineError> {
        let mut args = vec!["down", "--remove-orphans"];
        if volumes {
            args.push("--volumes");
        }
        let status = self.attached(&args)?;
        if status.success() {
            Ok(())
        } else {
            Err(EngineError::Command {
                command: self.line(&args),
                stderr: String::new(),
            })
        }
    }

    /// The state of every service's container.
    pub fn states(&self) -> Result<Vec<ServiceState>, EngineError> {
        let ids = self.output(&["ps", "--all", "--quiet"])?;
        let mut states = Vec::new();
        for id in ids.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let fields = self.engine.inspect(
                id,
                "{{index .Config.Labels \"com.docker.compose.service\"}}|{{.State.Status}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{.State.ExitCode}}|{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostIp}}:{{.HostPort}} {{end}}{{end}}",
            )?;
            let parts: Vec<&str> = fields.splitn(5, '|').collect();
            if parts.len() < 5 {
                continue;
            }
            let health = parts[2].trim();
            let state = if health.is_empty() || parts[1] != "running" {
                parts[1].to_string()
            } else {
                health.to_string()
            };
            states.push(ServiceState {
                service: parts[0].to_string(),
                container: id.to_string(),
                exit_code: (parts[1] == "exited").then(|| parts[3].parse().unwrap_or(-1)),
                state,
                published: parts[4].split_whitespace().map(str::to_string).collect(),
            });
        }
        states.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(states)
    }

    /// Wait until every service is healthy (or running without a health check, or a one-off
    /// that exited 0). Fails as soon as one is unhealthy or exited with an error.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<Vec<ServiceState>, EngineError> {
        let start = Instant::now();
        loop {
            let states = self.states()?;
            let failed: Vec<String> = states
                .iter()
                .filter(|s| s.failed())
                .map(|s| format!("{} is {}", s.service, s.state))
                .collect();
            if !failed.is_empty() {
                return Err(EngineError::Unhealthy {
                    seconds: start.elapsed().as_secs(),
                    services: failed,
                });
            }
            if !states.is_empty() && states.iter().all(ServiceState::ready) {
                return Ok(states);
            }
            if start.elapsed() >= timeout {
                return Err(EngineError::Unhealthy {
                    seconds: timeout.as_secs(),
                    services: states
                        .iter()
                        .filter(|s| !s.ready())
                        .map(|s| format!("{} is {}", s.service, s.state))
                        .collect(),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
