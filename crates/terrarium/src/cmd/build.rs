//! `terrarium build`: the production image without a Docker daemon.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use terrarium_build::{BuildOptions, Output, Reporter};
use terrarium_debian::{Architecture, Distro};
use terrarium_engine::LoadOutcome;
use terrarium_image::{
    Compression, ImageIndex, ImageRef, OCI_INDEX_MEDIA_TYPE, Progress, ProgressEvent,
};
use terrarium_registry::{
    Artifact, BlobOutcome, Manifest, PushOptions, PushReport, Pusher, Reference, ReferrerReport,
};

use crate::outln;

/// Arguments of `terrarium build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Debian release to build on: bookworm (CPython 3.11), trixie (CPython 3.13), forky
    /// (CPython 3.14, testing) or bullseye (CPython 3.9, end of life: for old pins); default from the project's Python constraints (`terrarium plan`
    /// shows the runtime and why).
    #[arg(long, value_parser = parse_distro)]
    pub distro: Option<Distro>,
    /// Build on this base image instead of a Debian runtime (overrides `base`):
    /// REGISTRY/REPOSITORY:TAG[@sha256:…], docker://NAME:TAG (the local engine) or
    /// oci:DIR[:NAME] (an OCI layout); its own Python runs the service.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Where to write the image: `oci:DIR`, `docker-archive:FILE` or `registry:REF`
    /// (repeatable; default: an OCI layout in the project's build/oci).
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    pub output: Vec<Target>,
    /// Push the image to a registry as REGISTRY/REPOSITORY:TAG (repeatable); prints
    /// `REGISTRY/REPOSITORY@sha256:…` last.
    #[arg(long, value_name = "REF", value_parser = parse_reference)]
    pub push: Vec<Reference>,
    /// A registry (`host:port`) that may be reached over plain HTTP, for pushes and base
    /// images (repeatable; localhost always may).
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Load the image into the local Docker engine.
    #[arg(long)]
    pub load: bool,
    /// Name the image (repeatable; `--load` defaults to NAME:latest from the project).
    #[arg(long, value_name = "NAME:TAG", value_parser = parse_tag)]
    pub tag: Vec<ImageRef>,
    /// Use only the cache; fail naming what is missing.
    #[arg(long)]
    pub offline: bool,
    /// Don't attach the SBOM (SPDX 2.3) to pushed images as an OCI referrer.
    #[arg(long)]
    pub no_sbom: bool,
    /// Leave bytecode out: a smaller image whose containers compile every module they import
    /// at each start (the root is read-only, so nothing is kept).
    #[arg(long)]
    pub no_bytecode: bool,
    /// How layers are compressed: gzip (every engine and registry reads it) or zstd (faster
    /// to compress and unpack; Docker 23+, containerd 1.5+, Podman 4+); default from
    /// `compression` in [tool.terrarium], else gzip.
    #[arg(long, value_name = "gzip|zstd", value_parser = parse_compression)]
    pub compression: Option<Compression>,
    /// Build for these platforms, comma-separated: linux/amd64, linux/arm64 (default from
    /// `platforms` in [tool.terrarium], else this machine's). Another architecture's image is
    /// assembled without emulation; several make an OCI image index (written with oci:DIR,
    /// pushed with --push); --load loads this machine's only.
    #[arg(long, value_name = "PLATFORMS", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Architecture>,
}

fn parse_platform(text: &str) -> Result<Architecture, String> {
    text.parse()
        .map_err(|err: terrarium_debian::UnknownPlatform| err.to_string())
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    text.parse()
        .map_err(|err: terrarium_image::UnknownCompression| err.to_string())
}

pub(crate) fn parse_distro(text: &str) -> Result<Distro, String> {
    text.parse().map_err(|err: terrarium_debian::UnknownSuite| {
        format!("{err}; use bookworm, trixie, forky or bullseye")
    })
}

/// A `--output` value: a file target or a registry.
#[derive(Debug, Clone)]
pub enum Target {
    /// `oci:DIR` or `docker-archive:FILE`.
    File(Output),
    /// `registry:REF`.
    Registry(Reference),
}

fn parse_target(text: &str) -> Result<Target, String> {
    match text.strip_prefix("registry:") {
        Some(reference) => parse_reference(reference).map(Target::Registry),
        None => text.parse().map(Target::File).map_err(|_: String| {
            format!("`{text}`: expected oci:DIR, docker-archive:FILE or registry:REF")
        }),
    }
}

fn parse_reference(text: &str) -> Result<Reference, String> {
    text.parse()
        .map_err(|err: terrarium_registry::Error| err.to_string())
}

fn parse_tag(text: &str) -> Result<ImageRef, String> {
    text.parse()
        .map_err(|err: terrarium_image::Error| err.to_string())
}

/// Progress bars on stderr (hidden when stderr is not a terminal) and stage lines.
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub(crate) fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for Bars {
    fn event(&self, event: &ProgressEvent<'_>) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match event {
            ProgressEvent::Started { what, total } => {
                let bar = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
                bar.set_style(
                    ProgressStyle::with_template(
                        "  {msg:40!} {bar:30} {binary_bytes:>10}/{binary_total_bytes:<10}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message((*what).to_owned());
                bars.insert((*what).to_owned(), bar);
            }
            ProgressEvent::Advanced { what, done, .. } => {
                if let Some(bar) = bars.get(*what) {
                    bar.set_position(*done);
                }
            }
            ProgressEvent::Finished { what, .. } => {
                if let Some(bar) = bars.remove(*what) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
            ProgressEvent::Notice { text } => {
                if self.multi.is_hidden() {
                    eprintln!("  {text}");
                } else {
                    let _ = self.multi.println(format!("  {text}"));
                }
            }
        }
    }
}

impl Reporter for Bars {
    fn stage(&self, text: &str) {
        if self.multi.is_hidden() {
            eprintln!("{text}…");
        } else {
            let _ = self.multi.println(format!("{text}…"));
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// The default tag: the plan's image name (already lowercase letters, digits and `-`).
fn default_tag(name: &str) -> Result<ImageRef, terrarium_image::Error> {
    format!("{name}:latest").parse()
}

/// Detect and plan the project in `dir` for a native build on `distro` (for `platforms`, when
/// given), with the build options from the environment and the project's `compression`.
pub(crate) fn prepare(
    dir: &std::path::Path,
    distro: Option<Distro>,
    base: Option<String>,
    platforms: Vec<Architecture>,
    offline: bool,
) -> anyhow::Result<(
    terrarium_project::Project,
    terrarium_plan::Plan,
    BuildOptions,
)> {
    let project = super::detect(dir)?;
    let plan = super::plan_project(
        &project,
        &terrarium_plan::PlanOptions {
            distro,
            base,
            platforms,
            ..terrarium_plan::PlanOptions::default()
        },
        offline,
    )?;
    let mut options = BuildOptions::from_env()?;
    options.offline = offline;
    if let Some(setting) = &project.config.compression {
        options.compression = setting.value.parse()?;
    }
    Ok((project, plan, options))
}

/// Run `terrarium build`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (project, plan, mut options) = prepare(
        &args.dir,
        args.distro,
        args.base.clone(),
        args.platform.clone(),
        args.offline,
    )?;
    options.bytecode = !args.no_bytecode;
    options.insecure_registries = args.insecure_registry.clone();
    if let Some(compression) = args.compression {
        options.compression = compression;
    }
    let mut tags = args.tag.clone();
    if args.load && tags.is_empty() {
        tags.push(default_tag(&plan.name)?);
    }
    let mut outputs = Vec::new();
    let mut pushes = args.push.clone();
    for target in &args.output {
        match target {
            Target::File(output) => outputs.push(output.clone()),
            Target::Registry(reference) => pushes.push(reference.clone()),
        }
    }
    if outputs.is_empty() && pushes.is_empty() && !args.load {
        outputs.push(terrarium_build::default_output(&project.root));
    }
    let platforms = &plan.platforms.value;
    let host = Architecture::host();
    if platforms.len() > 1
        && let Some(Output::DockerArchive(file)) = outputs
            .iter()
            .find(|o| matches!(o, Output::DockerArchive(_)))
    {
        anyhow::bail!(
            "{}: a docker archive holds one platform, and this build makes {}\n  fix: write \
             --output oci:DIR (an image index of every platform), or build one --platform",
            file.display(),
            platform_list(platforms)
        );
    }
    if args.load && !platforms.iter().any(|p| Some(*p) == host) {
        anyhow::bail!(
            "--load loads this machine's platform ({}), which this build doesn't make ({})\n  \
             fix: add {} to --platform, or write --output oci:DIR or --push instead",
            host.map_or("unknown", Architecture::platform),
            platform_list(platforms),
            host.map_or("it", Architecture::platform)
        );
    }

    let bars = Bars::new();
    let builds = terrarium_build::build_platforms(&plan, &options, &bars)?;
    let index = if builds.len() > 1 {
        Some(ImageIndex::store(
            &options.cache,
            builds.iter().map(|b| b.image.clone()).collect(),
        )?)
    } else {
        None
    };
    for output in &outputs {
        match (&index, output) {
            (Some(index), Output::Oci(dir)) => {
                terrarium_image::write_oci_index_layout(&options.cache, index, dir, &tags)?;
            }
            _ => {
                for build in &builds {
                    terrarium_build::publish(&options.cache, &build.image, output, &tags)?;
                }
            }
        }
    }
    let mut pushed = Vec::new();
    let mut referrers = Vec::new();
    if !pushes.is_empty() {
        let push_options = PushOptions::from_env(args.insecure_registry.clone())?;
        let mut pusher = Pusher::new(&options.cache, push_options, &bars);
        let mut images = Vec::new();
        for build in &builds {
            let artifact = Artifact::from_image(&options.cache, &build.image)?;
            let spdx = if args.no_sbom {
                None
            } else {
                Some(terrarium_build::sbom(build, &options)?.spdx_json())
            };
            images.push((build.architecture, artifact, spdx));
        }
        let index_artifact = match &index {
            Some(index) => {
                let path = options.cache.get(&index.digest())?.ok_or_else(|| {
                    anyhow::anyhow!("the image index {} left the cache", index.digest())
                })?;
                Some(Artifact {
                    blobs: Vec::new(),
                    manifest: Manifest::new(OCI_INDEX_MEDIA_TYPE, std::fs::read(&path)?),
                })
            }
            None => None,
        };
        for target in &pushes {
            for (architecture, artifact, spdx) in &images {
                if index_artifact.is_some() {
                    bars.stage(&format!("pushing {target} for {}", architecture.platform()));
                    let digest = artifact.manifest.digest.to_string();
                    pushed.push(pusher.push_as(artifact, target, &digest)?);
                } else {
                    bars.stage(&format!("pushing {target}"));
                    pushed.push(pusher.push(artifact, target)?);
                }
                if let Some(spdx) = spdx {
                    let referrer = pusher.attach(
                        &artifact.manifest,
                        target,
                        SPDX_MEDIA_TYPE,
                        "sbom.spdx.json",
                        spdx,
                        &options.mtime.rfc3339(),
                    )?;
                    referrers.push((target.clone(), referrer));
                }
            }
            if let Some(index_artifact) = &index_artifact {
                bars.stage(&format!("pushing the image index to {target}"));
                pushed.push(pusher.push(index_artifact, target)?);
            }
        }
    }
    let loaded = if args.load {
        let engine = terrarium_engine::Engine::unchecked();
        let native = builds
            .iter()
            .find(|b| Some(b.architecture) == host)
            .ok_or_else(|| anyhow::anyhow!("this machine's image was not built"))?;
        Some(engine.load_image(&options.cache, &native.image, &tags)?)
    } else {
        None
    };
    let elapsed = started.elapsed();

    for build in &builds {
        for warning in &build.warnings {
            eprintln!("warning: {warning}");
        }
    }
    for build in &builds {
        if builds.len() > 1 {
            outln!("{}:", build.architecture.platform());
        }
        outln!(
            "{:<8} {:>11} {:>13} {:>7}  digest",
            "layer",
            format!("size ({})", options.compression),
            "uncompressed",
            "cached"
        );
        let mut total = 0;
        for report in &build.layers {
            total += report.layer.uncompressed_size;
            outln!(
                "{:<8} {:>11} {:>13} {:>7}  {}",
                report.name,
                megabytes(report.layer.size),
                megabytes(report.layer.uncompressed_size),
                if report.cached { "yes" } else { "no" },
                report.layer.digest
            );
        }
        outln!(
            "image {} ({}, CPython {}, {}, {} uncompressed) built in {}",
            build.image.digest(),
            build.runtime,
            build.python,
            build.architecture.platform(),
            megabytes(total),
            format_duration(elapsed)
        );
        for note in &build.notes {
            outln!("{note}");
        }
    }
    if let Some(index) = &index {
        outln!(
            "image index {} ({})",
            index.digest(),
            platform_list(&builds.iter().map(|b| b.architecture).collect::<Vec<_>>())
        );
    }
    if let Some(build) = builds.iter().find(|b| b.lockfile_written) {
        outln!("wrote {}", build.lockfile.display());
    }
    for output in &outputs {
        match output {
            Output::Oci(dir) => outln!("wrote OCI layout {}", dir.display()),
            Output::DockerArchive(file) => outln!(
                "wrote {} (load it with `docker load -i {}`{})",
                file.display(),
                file.display(),
                match options.compression {
                    Compression::Gzip => "",
                    // Docker 20.10 reads zstd layers as a broken tar.
                    Compression::Zstd =>
                        "; zstd layers need Docker 23+: for an older engine use --load, which                          sends them uncompressed, or --compression gzip",
                }
            ),
        }
    }
    for report in &pushed {
        outln!("{}", push_summary(report));
    }
    for (target, referrer) in &referrers {
        outln!("{}", referrer_summary(target, referrer));
    }
    let port = plan.port.value;
    if let Some(report) = pushed.last() {
        // The pinned reference (the index's, for several platforms) comes last, on its own
        // line, for scripts (`| tail -1`); with several targets, one line each.
        let last: Vec<&PushReport> = pushed
            .iter()
            .filter(|r| index.is_none() || r.digest == report.digest)
            .collect();
        for report in last {
            outln!("{}", report.pinned());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(loaded) = &loaded {
        let tag = tags.first().map(ToString::to_string).unwrap_or_default();
        let how = match loaded {
            LoadOutcome::UpToDate => "the engine already had it, nothing sent".to_owned(),
            LoadOutcome::Retagged(moved) => {
                format!("the engine already had it, tagged {}", moved.join(", "))
            }
            LoadOutcome::Loaded {
                layers_sent,
                layers_present,
            } => format!(
                "{layers_sent} layer{} sent, {layers_present} already in the engine",
                if *layers_sent == 1 { "" } else { "s" }
            ),
        };
        let only = if builds.len() > 1 {
            format!(
                ", {} only: an engine holds one platform of a tag",
                host.map_or("this machine's platform", Architecture::platform)
            )
        } else {
            String::new()
        };
        outln!(
            "loaded {tag} ({how}{only}); run it: docker run --rm -p 127.0.0.1:{port}:{port} {tag}"
        );
    } else {
        outln!(
            "run it: terrarium build --load {} && docker run --rm -p 127.0.0.1:{port}:{port} IMAGE",
            args.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `linux/amd64 and linux/arm64`.
fn platform_list(platforms: &[Architecture]) -> String {
    platforms
        .iter()
        .map(|p| p.platform())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The artifact type of the SPDX SBOM referrer.
const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// `sbom REF: sha256:… (SPDX 2.3, referrer of the image[, listed in tag sha256-…])`.
fn referrer_summary(target: &Reference, referrer: &ReferrerReport) -> String {
    let listed = match &referrer.fallback_tag {
        Some(tag) => format!(", listed in tag {tag}: the registry has no referrers API"),
        None => String::new(),
    };
    format!(
        "sbom {}@{} (SPDX 2.3, a referrer of the image{listed})",
        target.name(),
        referrer.digest
    )
}

/// `pushed REF: 1 blob uploaded (0.1 MB), 2 mounted, 1 already there`.
fn push_summary(report: &PushReport) -> String {
    if report.up_to_date {
        return format!("pushed {}: up to date, nothing sent", report.target);
    }
    let count = |f: fn(&BlobOutcome) -> bool| report.blobs.iter().filter(|b| f(&b.outcome)).count();
    let uploaded = count(|o| matches!(o, BlobOutcome::Uploaded { .. }));
    let mounted = count(|o| matches!(o, BlobOutcome::Mounted { .. }));
    let present = count(|o| matches!(o, BlobOutcome::Present));
    format!(
        "pushed {}: {uploaded} blob{} uploaded ({}), {mounted} mounted, {present} already there",
        report.target,
        if uploaded == 1 { "" } else { "s" },
        megabytes(report.uploaded_bytes())
    )
}

fn format_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}
