//! `terrarium plan`: what terrarium decided for a project, and why.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::outln;

use terrarium_plan::{Origin, PlanOptions};

/// Arguments of `terrarium plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Print the plan as JSON (schema `terrarium.plan/v1`, documented in the README).
    #[arg(long)]
    pub json: bool,
    /// Use this base image instead of the pinned official python image.
    #[arg(long, value_name = "IMAGE")]
    pub base: Option<String>,
}

/// Run `terrarium plan`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = PlanOptions {
        base: args.base,
        ..PlanOptions::default()
    };
    let plan = super::load_plan(&args.dir, &options)?;
    if args.json {
        let text = serde_json::to_string_pretty(&terrarium_plan::to_json(&plan))?;
        outln!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    outln!("Plan for {} ({})\n", plan.name, args.dir.display());
    for decision in plan.decisions() {
        let marker = match decision.origin {
            Origin::Config => " [configured]",
            Origin::Default | Origin::Detected => "",
        };
        outln!("{}: {}{marker}", decision.key, decision.text);
        outln!("    {}", decision.reason);
    }
    if !plan.unsettled.is_empty() {
        outln!("\nTo settle:");
        for item in &plan.unsettled {
            outln!("  - {} (settle with: {})", item.message, item.key);
        }
    }
    Ok(ExitCode::SUCCESS)
}
