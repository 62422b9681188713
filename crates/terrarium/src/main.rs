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
    /// Write Dockerfile, Dockerfile.dev, .dockerignore and compose.yaml for a project.
    Init(cmd::init::Args),
    /// Check Dockerfiles and compose files against the lessons.
    Lint(cmd::lint::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => cmd::plan::run(args),
        Command::Init(args) => cmd::init::run(args),
        Command::Lint(args) => cmd::lint::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => cmd::report(&err),
    }
}
