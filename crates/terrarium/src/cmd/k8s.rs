//! `terrarium k8s`: Kustomize manifests for Kubernetes (k8s/base, k8s/overlays/dev and prod).

use std::path::PathBuf;
use std::process::ExitCode;

use terrarium_plan::PlanOptions;

use crate::outln;

/// Arguments of `terrarium k8s`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system (or project) directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite manifests that exist (secrets files are never overwritten).
    #[arg(long)]
    pub force: bool,
}

/// Run `terrarium k8s`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = super::deploy::target(&args.dir, &PlanOptions::default())?;
    let env = terrarium_deploy::DotEnv::load(&args.dir)?;
    let files = terrarium_deploy::k8s::render(&target, &env);
    for written in terrarium_render::write_all(&args.dir, &files, args.force)? {
        outln!("{written}");
    }
    outln!("\nNext:");
    outln!(
        "  kubectl kustomize {}/k8s/overlays/dev      # what would be applied",
        args.dir.display()
    );
    outln!("  kubectl apply -k {}/k8s/overlays/dev", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
