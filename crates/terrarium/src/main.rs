//! terrarium: Python web services into containers the right way.
//!
//! This binary only parses arguments and prints; the work happens in the library crates.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Python web services into containers the right way.
#[derive(Debug, Parser)]
#[command(name = "terrarium", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what terrarium decided for a project, and why.
    Plan(cmd::plan::Args),
    /// Build the production image without a Docker daemon (OCI layout, docker-archive, --load).
    Build(cmd::build::Args),
    /// Print the software bill of materials (SPDX or CycloneDX) of the image `build` makes, or
    /// of any image (REGISTRY/REPO:TAG, docker://NAME, oci:DIR).
    Sbom(cmd::sbom::Args),
    /// Write Dockerfile, Dockerfile.dev, .dockerignore and compose.yaml for a project.
    Init(cmd::init::Args),
    /// Check Dockerfiles and compose files against the lessons.
    Lint(cmd::lint::Args),
    /// Develop in a container: source mounted, reloading server on 127.0.0.1, as your UID.
    Dev(cmd::dev::Args),
    /// A shell (or `-- CMD`) in a fresh dev container, or `--running` in the running one.
    Shell(cmd::shell::Args),
    /// Run the production image prod-like: read-only root, named volumes, SIGTERM on Ctrl-C.
    Run(cmd::run::Args),
    /// Show the logs of this project's containers, or of one compose service.
    Logs(cmd::logs::Args),
    /// List the containers terrarium started for this project.
    Ps(cmd::ps::Args),
    /// Stop and remove the containers terrarium started for this project.
    Stop(cmd::stop::Args),
    /// Run the project's tests in its image (production plus dev dependencies), on each Python.
    Test(cmd::test::Args),
    /// Start every service of compose.yaml, wait for health, print the URLs.
    Up(cmd::up::Args),
    /// Remove the compose services (named volumes stay unless --volumes).
    Down(cmd::down::Args),
    /// Deploy the system to an orchestrator: `deploy swarm` (Docker Swarm stack).
    Deploy(cmd::deploy::Args),
    /// Write Kustomize manifests for Kubernetes (k8s/base, k8s/overlays/dev and prod).
    K8s(cmd::k8s::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => cmd::plan::run(args),
        Command::Build(args) => cmd::build::run(args),
        Command::Sbom(args) => cmd::sbom::run(args),
        Command::Init(args) => cmd::init::run(args),
        Command::Lint(args) => cmd::lint::run(args),
        Command::Dev(args) => cmd::dev::run(args),
        Command::Shell(args) => cmd::shell::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Logs(args) => cmd::logs::run(args),
        Command::Ps(args) => cmd::ps::run(args),
        Command::Stop(args) => cmd::stop::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::Up(args) => cmd::up::run(args),
        Command::Down(args) => cmd::down::run(args),
        Command::Deploy(args) => cmd::deploy::run(args),
        Command::K8s(args) => cmd::k8s::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => cmd::report(&err),
    }
}
