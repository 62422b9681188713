//! `terrarium init`: write Dockerfile, Dockerfile.dev, .dockerignore and compose.yaml.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::outln;

use terrarium_plan::PlanOptions;
use terrarium_render::RenderOptions;

/// Arguments of `terrarium init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files that exist (a generated .env is never overwritten).
    #[arg(long)]
    pub force: bool,
    /// Add an nginx reverse proxy service in front of the app to compose.yaml.
    #[arg(long)]
    pub proxy: bool,
    /// Add a PostgreSQL service (named volume, health check) to compose.yaml.
    #[arg(long)]
    pub postgres: bool,
    /// Use this base image instead of the pinned official python image.
    #[arg(long, value_name = "IMAGE")]
    pub base: Option<String>,
    /// The image of the --proxy service (or of a system's gateway).
    #[arg(long, value_name = "IMAGE")]
    pub proxy_image: Option<String>,
    /// The image of the --postgres service (or of a system's PostgreSQL).
    #[arg(long, value_name = "IMAGE")]
    pub postgres_image: Option<String>,
    /// Also write a CI workflow: `github` (.github/workflows/terrarium.yml: lint, test on
    /// every supported Python, build and push to ghcr.io).
    #[arg(long, value_name = "SYSTEM", value_enum)]
    pub ci: Option<Ci>,
}

/// The CI systems `--ci` writes a workflow for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ci {
    /// GitHub Actions.
    Github,
}

/// Run `terrarium init`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = PlanOptions {
        base: args.base,
        proxy_image: args.proxy_image,
        postgres_image: args.postgres_image,
        ..PlanOptions::default()
    };
    let loaded = super::load(&args.dir, &options)?;
    if matches!(loaded, super::Loaded::System(_)) && (args.proxy || args.postgres) {
        return Err(super::InputError(format!(
            "{}: --proxy and --postgres are for a single project\n  fix: a system declares [gateway] and [postgres] in its terrarium.toml",
            args.dir.display()
        ))
        .into());
    }
    let mut files = super::render(
        &loaded,
        RenderOptions {
            proxy: args.proxy,
            postgres: args.postgres,
        },
    );
    if args.ci == Some(Ci::Github) {
        let images = match &loaded {
            super::Loaded::Project(_) => vec![terrarium_render::CiImage {
                dir: ".".into(),
                name: String::new(),
            }],
            super::Loaded::System(system) => system
                .services
                .iter()
                .map(|s| terrarium_render::CiImage {
                    dir: s.path.display().to_string(),
                    name: s.name.clone(),
                })
                .collect(),
        };
        files.push(terrarium_render::github_workflow(
            &images,
            env!("CARGO_PKG_REPOSITORY"),
        ));
    }
    let written = terrarium_render::write_all(&args.dir, &files, args.force)?;
    for outcome in &written {
        outln!("{outcome}");
    }
    let dir = args.dir.display();
    match &loaded {
        super::Loaded::Project(plan) => {
            for item in &plan.unsettled {
                outln!("note: {} (settle with: {})", item.message, item.key);
            }
            let port = plan.port.value;
            let published = if args.proxy { 8080 } else { port };
            outln!("\nNext:");
            outln!("  terrarium plan {dir}                # why each choice was made");
            match plan.workspace() {
                // A uv workspace member is built from the workspace root, where its lock is.
                Some(workspace) => outln!(
                    "  docker build -f {} -t {} {}",
                    args.dir.join("Dockerfile").display(),
                    plan.name,
                    args.dir.join(&workspace.root).display()
                ),
                None => outln!("  docker build -t {} {dir}", plan.name),
            }
            outln!("  docker run --rm -p 127.0.0.1:{port}:{port} {}", plan.name);
            outln!(
                "  terrarium up {dir}                  # then open http://127.0.0.1:{published}/"
            );
        }
        super::Loaded::System(system) => {
            for service in &system.services {
                for item in &service.plan.unsettled {
                    outln!(
                        "note: {}: {} (settle with: {})",
                        service.name,
                        item.message,
                        item.key
                    );
                }
            }
            outln!("\nNext:");
            outln!("  terrarium plan {dir}        # each service's decisions");
            outln!("  terrarium up {dir}          # build, start, wait for health");
            if let Some((gateway, _)) = &system.gateway {
                outln!(
                    "  then open http://127.0.0.1:{}/ (move it with {}=PORT)",
                    gateway.port,
                    gateway.port_env
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
