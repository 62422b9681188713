//! The Docker engine through its CLI: the client the user already has (TTYs, contexts,
//! credentials and BuildKit come with it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};

use crate::error::EngineError;

/// How image builds get BuildKit with this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BuildKit {
    /// The buildx plugin is installed: the client's default is right.
    Plugin,
    /// An older client with BuildKit built in: ask for it.
    Builtin,
    /// A newer client without buildx: use the classic builder explicitly.
    Unavailable,
}

/// A connection to a Docker engine through the `docker` client.
#[derive(Debug, Clone)]
pub struct Engine {
    client: PathBuf,
    /// Detected on first need: asking costs a process or two, and loading an image or running
    /// a container never needs it.
    buildkit: Arc<OnceLock<BuildKit>>,
}

/// A container terrarium started, as `docker ps` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ContainerInfo {
    /// Its id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its name.
    #[serde(rename = "Names")]
    pub name: String,
    /// Its image.
    #[serde(rename = "Image")]
    pub image: String,
    /// Running, exited, …
    #[serde(rename = "State")]
    pub state: String,
    /// Human status ("Up 3 minutes (healthy)").
    #[serde(rename = "Status")]
    pub status: String,
    /// Published ports.
    #[serde(rename = "Ports")]
    pub ports: String,
    /// Labels, comma separated.
    #[serde(rename = "Labels")]
    pub labels: String,
}

impl ContainerInfo {
    /// The value of one label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .split(',')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }
}

/// An image build.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The build context.
    pub context: &'a Path,
    /// The Dockerfile (anywhere; it need not be in the context).
    pub dockerfile: &'a Path,
    /// The tag.
    pub tag: &'a str,
    /// `--build-arg` values.
    pub build_args: Vec<(String, String)>,
    /// Labels.
    pub labels: Vec<(String, String)>,
}

pub(crate) fn command_line(client: &Path, args: &[String]) -> String {
    let mut line = client.display().to_string();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

impl Engine {
    /// Find the client (`$TERRARIUM_DOCKER`, else `docker` on PATH) and check that it reaches an
    /// engine.
    pub fn connect() -> Result<Engine, EngineError> {
        let engine = Engine::unchecked();
        engine.check()?;
        Ok(engine)
    }

    /// The client (`$TERRARIUM_DOCKER`, else `docker` on PATH), not yet asked whether it reaches
    /// an engine: for a caller whose first command tells (see [`Engine::check`]).
    pub fn unchecked() -> Engine {
        let client =
            PathBuf::from(std::env::var("TERRARIUM_DOCKER").unwrap_or_else(|_| "docker".into()));
        Engine {
            client,
            buildkit: Arc::new(OnceLock::new()),
        }
    }

    /// Check that the client exists and reaches an engine; the error says what to fix.
    pub fn check(&self) -> Result<(), EngineError> {
        let client = &self.client;
        let output = Command::new(client)
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdin(Stdio::null())
            .output()
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => EngineError::NoClient,
                _ => EngineError::Spawn {
                    command: client.display().to_string(),
                    source: err,
                },
            })?;
        if !output.status.success() {
            let detail = String::from_utf8_lossy(&output.stderr)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("docker info failed")
                .trim()
                .to_string();
            return Err(EngineError::NoEngine { detail });
        }
        Ok(())
    }

    /// Whether builds go through BuildKit (which reads `<Dockerfile>.dockerignore`).
    pub fn has_buildkit(&self) -> bool {
        !matches!(self.buildkit(), BuildKit::Unavailable)
    }

    fn buildkit(&self) -> BuildKit {
        *self.buildkit.get_or_init(|| detect_buildkit(&self.client))
    }

    /// The client binary.
    pub fn client(&self) -> &Path {
        &self.client
    }

    /// A `docker` command with the environment terrarium wants.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.client);
        match self.buildkit() {
            BuildKit::Plugin => {}
            BuildKit::Builtin => {
                command.env("DOCKER_BUILDKIT", "1");
            }
            BuildKit::Unavailable => {
                command.env("DOCKER_BUILDKIT", "0");
            }
        }
        command
    }

    /// Run docker with `args`, capturing output; an error carries its stderr.
    pub fn output(&self, args: &[String]) -> Result<String, EngineError> {
        let output = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| EngineError::Spawn {
                command: command_line(&self.client, args),
                source,
            })?;
        if !output.status.success() {
            return Err(EngineError::Command {
                command: command_line(&self.client, args),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Run docker with `args` attached to the terminal; returns its exit status.
    pub fn attached(&self, args: &[String]) -> Result<ExitStatus, EngineError> {
        self.command()
            .args(args)
            .status()
            .map_err(|source| EngineError::Spawn {
                command: command_line(&self.client, args),
                source,
            })
    }

    /// Start docker with `args` as a child whose output goes to the terminal.
    pub fn spawn(&self, args: &[String]) -> Result<Child, EngineError> {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| EngineError::Spawn {
                command: command_line(&self.client, args),
                source,
            })
    }

    /// Build an image; the build's progress goes to stderr.
    pub fn build(&self, request: &BuildRequest<'_>) -> Result<(), EngineError> {
        let mut args = vec![
            "build".to_string(),
            "--tag".into(),
            request.tag.to_string(),
            "--file".into(),
            request.dockerfile.display().to_string(),
        ];
        for (key, value) in &request.build_args {
            args.push("--build-arg".into());
            args.push(format!("{key}={value}"));
        }
        for (key, value) in &request.labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.push(request.context.display().to_string());
        let output = self
            .command()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| EngineError::Spawn {
                command: command_line(&self.client, &args),
                source,
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(EngineError::Command {
                command: command_line(&self.client, &args),
                stderr: stderr.into_owned(),
            });
        }
        Ok(())
    }

    /// Whether an image with this tag exists locally.
    pub fn image_exists(&self, tag: &str) -> bool {
        self.output(&[
            "image".into(),
            "inspect".into(),
            "--format".into(),
            "{{.Id}}".into(),
            tag.into(),
        ])
        .is_ok()
    }

    /// Containers (running or not) that carry every label in `labels` (`key=value`).
    pub fn containers(&self, labels: &[String]) -> Result<Vec<ContainerInfo>, EngineError> {
        let mut args = vec![
            "ps".to_string(),
            "--all".into(),
            "--no-trunc".into(),
            "--format".into(),
            "{{json .}}".into(),
        ];
        for label in labels {
            args.push("--filter".into());
            args.push(format!("label={label}"));
        }
        let text = self.output(&args)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| EngineError::Command {
                    command: command_line(&self.client, &args),
                    stderr: format!("unexpected output {l:?}: {e}"),
                })
            })
            .collect()
    }

    /// One field of `docker inspect` (a Go template), for a container or image.
    pub fn inspect(&self, target: &str, template: &str) -> Result<String, EngineError> {
        self.output(&[
            "inspect".into(),
            "--format".into(),
            template.into(),
            target.into(),
        ])
    }

    /// Stop a container with SIGTERM, then SIGKILL after `timeout` seconds.
    pub fn stop(&self, container: &str, timeout: u32) -> Result<(), EngineError> {
        self.output(&[
            "stop".into(),
            "--time".into(),
            timeout.to_string(),
            container.into(),
        ])
        .map(|_| ())
    }

    /// Remove a container (and its anonymous volumes), running or not.
    pub fn remove(&self, container: &str) -> Result<(), EngineError> {
        self.output(&[
            "rm".into(),
            "--force".into(),
            "--volumes".into(),
            container.into(),
        ])
        .map(|_| ())
    }
}

fn detect_buildkit(client: &Path) -> BuildKit {
    let quiet = |args: &[&str]| {
        Command::new(client)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if quiet(&["buildx", "version"]).is_some() {
        return BuildKit::Plugin;
    }
    let major = quiet(&["version", "--format", "{{.Client.Version}}"])
        .and_then(|v| v.split('.').next().and_then(|m| m.parse::<u32>().ok()))
        .unwrap_or(0);
    if (18..23).contains(&major) {
        BuildKit::Builtin
    } else {
        BuildKit::Unavailable
    }
}

/// Fail early, with the fix, when a host port on 127.0.0.1 is taken.
pub fn ensure_port_free(port: u16) -> Result<(), EngineError> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(|_| ())
        .map_err(|_| EngineError::PortTaken { port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_from_ps_output() {
        let info: ContainerInfo = serde_json::from_str(
            r#"{"ID":"abc","Names":"terrarium-x-dev","Image":"terrarium/x:dev","State":"running","Status":"Up 2 seconds","Ports":"127.0.0.1:8000->8000/tcp","Labels":"io.terrarium.role=dev,io.terrarium.project=/src/x"}"#,
        )
        .unwrap();
        assert_eq!(info.label("io.terrarium.role"), Some("dev"));
        assert_eq!(info.label("io.terrarium.project"), Some("/src/x"));
        assert_eq!(info.label("io.terrarium"), None);
    }

    #[test]
    fn a_taken_port_is_reported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = ensure_port_free(port).unwrap_err().to_string();
        assert!(
            err.contains(&format!("port {port} on 127.0.0.1 is already in use"))
                && err.contains("--port"),
            "{err}"
        );
        drop(listener);
        ensure_port_free(port).unwrap();
    }
}
