//! Errors from the engine: each says what to do.

use std::path::PathBuf;

/// Why a Docker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No docker client on PATH.
    #[error(
        "no `docker` command found\n  fix: install Docker (Debian: `apt-get install docker.io`), or point TERRARIUM_DOCKER at a docker client"
    )]
    NoClient,
    /// The client can't reach an engine.
    #[error(
        "cannot reach a Docker engine: {detail}\n  fix: start it (`sudo systemctl start docker`, or `sudo dockerd &`), or set DOCKER_HOST to a running engine"
    )]
    NoEngine {
        /// What `docker info` said.
        detail: String,
    },
    /// A host port is already in use.
    #[error(
        "port {port} on 127.0.0.1 is already in use\n  fix: stop what is using it, or pick another port with --port"
    )]
    PortTaken {
        /// The port.
        port: u16,
    },
    /// No Compose is installed.
    #[error(
        "Docker Compose is not installed (neither `docker compose` nor `docker-compose` works)\n  fix: install the compose plugin, or Debian's `docker-compose`"
    )]
    NoCompose,
    /// The project has no compose file.
    #[error("{}: no compose.yaml\n  fix: run `terrarium init` to write one, or `terrarium up --init` to write it now", .0.display())]
    NoComposeFile(PathBuf),
    /// A docker command failed.
    #[error("`{command}` failed{}", if .stderr.is_empty() { String::new() } else { format!(":\n{}", .stderr.trim_end()) })]
    Command {
        /// The command line.
        command: String,
        /// Its standard error.
        stderr: String,
    },
    /// Services did not become healthy in time.
    #[error("services not healthy after {seconds} s: {}\n  fix: look at `terrarium logs SERVICE`", .services.join(", "))]
    Unhealthy {
        /// How long terrarium waited.
        seconds: u64,
        /// The services and their states.
        services: Vec<String>,
    },
    /// Spawning a process failed.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The error.
        source: std::io::Error,
    },
    /// A generated file could not be written.
    #[error(transparent)]
    Write(#[from] terrarium_render::WriteError),
    /// An image could not be read from terrarium's cache.
    #[error(transparent)]
    Image(#[from] terrarium_image::Error),
    /// The build context could not be read.
    #[error(transparent)]
    Context(#[from] terrarium_project::DetectError),
}
