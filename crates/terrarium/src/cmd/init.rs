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
    /// The image of the --proxy service.
    #[arg(long, value_name = "IMAGE", requires = "proxy")]
    pub proxy_image: Option<String>,
    /// The image of the --postgres service.
    #[arg(long, value_name = "IMAGE", requires = "postgres")]
    pub postgres_image: Option<String>,
}

/// Run `terrarium init`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = PlanOptions {
        base: args.base,
        proxy_image: args.proxy_image,
        postgres_image: args.postgres_image,
    };
    let plan = super::load_plan(&args.dir, &options)?;
    let files = terrarium_render::render(
        &plan,
        RenderOptions {
            proxy: args.proxy,
            postgres: args.postgres,
        },
    );
    let written = terrarium_render::write_all(&args.dir, &files, args.force)?;
    for outcome in &written {
        outln!("{outcome}");
    }
    for item in &plan.unsettled {
        outln!("note: {} (settle with: {})", item.message, item.key);
    }
    let port = plan.port.value;
    let published = if args.proxy { 8080 } else { port };
    outln!("\nNext:");
    outln!(
        "  terrarium plan {}                # why each choice was made",
        args.dir.display()
    );
    outln!("  docker build -t {} {}", plan.name, args.dir.display());
    outln!("  docker run --rm -p 127.0.0.1:{port}:{port} {}", plan.name);
    outln!("  docker compose up --build        # then open http://127.0.0.1:{published}/");
    Ok(ExitCode::SUCCESS)
}
