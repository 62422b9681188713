//! `terrarium sbom`: the software bill of materials of the image `terrarium build` makes, or of
//! any image (a registry, the local engine, an OCI layout).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use terrarium_debian::Distro;

use super::build::{Bars, parse_distro, prepare};

/// Document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
}

/// Arguments of `terrarium sbom`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory, or an image that terrarium did not build:
    /// REGISTRY/REPOSITORY:TAG[@sha256:…], docker://NAME:TAG or oci:DIR[:NAME] (anything that
    /// is not a directory).
    #[arg(default_value = ".", value_name = "DIR|IMAGE")]
    pub dir: PathBuf,
    /// Document format.
    #[arg(long, value_enum, default_value = "spdx")]
    pub format: Format,
    /// Debian release the image is built on (as for `terrarium build`).
    #[arg(long, value_parser = parse_distro)]
    pub distro: Option<Distro>,
    /// Use only the cache.
    #[arg(long)]
    pub offline: bool,
    /// A registry (`host:port`) an IMAGE may be pulled from over plain HTTP (repeatable;
    /// localhost always may).
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

/// Run `terrarium sbom`: build (usually all cached), or fetch the image, and print the
/// document on stdout.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sbom = if args.dir.is_dir() {
        let (_, plan, options) = prepare(&args.dir, args.distro, None, Vec::new(), args.offline)?;
        let build = terrarium_build::build(&plan, &options, &Bars::new())?;
        terrarium_build::sbom(&build, &options)?
    } else {
        let mut options = terrarium_build::BuildOptions::from_env()?;
        options.offline = args.offline;
        options.insecure_registries = args.insecure_registry.clone();
        terrarium_build::image_sbom(&args.dir.to_string_lossy(), &options, &Bars::new())?
    };
    let document = match args.format {
        Format::Spdx => sbom.spdx_json(),
        Format::Cyclonedx => sbom.cyclonedx_json(),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(&document)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
