//! `terrarium plan`: what terrarium decided for a project (or each service of a system), and why.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use terrarium_plan::{Origin, Plan, PlanOptions};

use crate::outln;

/// Arguments of `terrarium plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Print the plan as JSON (schema `terrarium.plan/v2`, or `terrarium.system-plan/v2` for a
    /// system; documented in the README).
    #[arg(long)]
    pub json: bool,
    /// Use this base image instead of the pinned official python image, for the Dockerfile and
    /// for `terrarium build` (which then runs the base's Python: the plan takes it from the tag).
    #[arg(long, value_name = "IMAGE")]
    pub base: Option<String>,
}

fn print_plan(plan: &Plan, indent: &str) -> anyhow::Result<()> {
    for decision in plan.decisions() {
        let marker = match decision.origin {
            Origin::Config => " [configured]",
            Origin::Default | Origin::Detected => "",
        };
        outln!("{indent}{}: {}{marker}", decision.key, decision.text);
        outln!("{indent}    {}", decision.reason);
    }
    if !plan.unsettled.is_empty() {
        outln!("\n{indent}To settle:");
        for item in &plan.unsettled {
            outln!("{indent}  - {} (settle with: {})", item.message, item.key);
        }
    }
    Ok(())
}

/// Run `terrarium plan`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = PlanOptions {
        base: args.base,
        ..PlanOptions::default()
    };
    match super::load(&args.dir, &options)? {
        super::Loaded::Project(plan) => {
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&terrarium_plan::to_json(&plan))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            outln!("Plan for {} ({})\n", plan.name, args.dir.display());
            print_plan(&plan, "")?;
        }
        super::Loaded::System(system) => {
            if args.json {
                let document = json!({
                    "schema": "terrarium.system-plan/v2",
                    "name": system.name,
                    "services": system.services.iter().map(|s| json!({
                        "name": s.name,
                        "path": s.path,
                        "env": s.env,
                        "plan": terrarium_plan::to_json(&s.plan),
                    })).collect::<Vec<_>>(),
                    "jobs": system.jobs.iter().map(|j| json!({"name": j.name, "service": j.service, "command": j.command, "before": j.before})).collect::<Vec<_>>(),
                    "gateway": system.gateway.as_ref().map(|(g, image)| json!({
                        "image": image.value,
                        "port": g.port,
                        "port_env": g.port_env,
                        "routes": g.routes.iter().map(|r| json!({"path": r.prefix, "service": r.service})).collect::<Vec<_>>(),
                    })),
                    "postgres": system.postgres.as_ref().map(|(p, image)| json!({
                        "image": image.value, "database": p.database, "user": p.user, "clients": p.clients,
                    })),
                });
                outln!("{}", serde_json::to_string_pretty(&document)?);
                return Ok(ExitCode::SUCCESS);
            }
            outln!(
                "Plan for the {} system ({}): {} services\n",
                system.name,
                args.dir.display(),
                system.services.len()
            );
            for service in &system.services {
                outln!("service {} ({}/)", service.name, service.path.display());
                print_plan(&service.plan, "  ")?;
                outln!("");
            }
            for job in &system.jobs {
                outln!(
                    "job {}: {} in the {} image, before {}",
                    job.name,
                    job.command.join(" "),
                    job.service,
                    job.before.join(", ")
                );
            }
            if let Some((gateway, image)) = &system.gateway {
                outln!(
                    "gateway: {} on 127.0.0.1:${{{}:-{}}}",
                    image.value,
                    gateway.port_env,
                    gateway.port
                );
                for route in &gateway.routes {
                    outln!("  {} -> {}", route.prefix, route.service);
                }
            }
            if let Some((postgres, image)) = &system.postgres {
                outln!(
                    "postgres: {} (database {}, user {}) for {}",
                    image.value,
                    postgres.database,
                    postgres.user,
                    postgres.clients.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
