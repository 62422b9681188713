//! One module per subcommand; each has an `Args` (clap) and a `run` function.

pub mod build;
pub mod deploy;
pub mod dev;
pub mod down;
pub mod engine;
pub mod init;
pub mod k8s;
pub mod lint;
pub mod logs;
pub mod plan;
pub mod ps;
pub mod run;
pub mod sbom;
pub mod shell;
pub mod stop;
pub mod test;
pub mod up;

use std::process::ExitCode;

/// Exit code for bad input or usage: the user has something to fix.
pub const EXIT_INPUT: u8 = 2;

/// Print an error with its chain of causes and pick the exit code.
///
/// Errors that come from reading the user's project (bad files, missing directory) exit with 2;
/// anything else (Docker failing, I/O on our side) exits with 1.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let message = err.to_string();
    eprintln!("error: {message}");
    // Errors that quote their cause (`{package}: its build root: {source}`) say it once.
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            eprintln!("  caused by: {cause}");
        }
    }
    if is_input_error(err) {
        ExitCode::from(EXIT_INPUT)
    } else {
        ExitCode::FAILURE
    }
}

fn is_input_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<InputError>()
            || cause.is::<terrarium_project::DetectError>()
            || cause.is::<terrarium_plan::PlanError>()
            || cause
                .downcast_ref::<terrarium_build::BuildError>()
                .is_some_and(terrarium_build::BuildError::is_input_error)
            || matches!(
                cause.downcast_ref::<terrarium_engine::EngineError>(),
                Some(terrarium_engine::EngineError::NoComposeFile(_))
            )
            || cause
                .downcast_ref::<terrarium_test::TestError>()
                .is_some_and(terrarium_test::TestError::is_input_error)
            || cause.is::<terrarium_test::TargetError>()
            || cause
                .downcast_ref::<terrarium_deploy::DeployError>()
                .is_some_and(terrarium_deploy::DeployError::is_input_error)
            || matches!(
                cause.downcast_ref::<terrarium_render::WriteError>(),
                Some(terrarium_render::WriteError::Exists { .. })
            )
    })
}

/// A single project's plan, or a multi-service system's.
pub enum Loaded {
    /// One Python service.
    Project(Box<terrarium_plan::Plan>),
    /// Several services from a terrarium.toml with [services].
    System(Box<terrarium_plan::SystemPlan>),
}

/// Read `dir` as a system when its terrarium.toml names services, else as one project.
pub fn load(
    dir: &std::path::Path,
    options: &terrarium_plan::PlanOptions,
) -> anyhow::Result<Loaded> {
    match terrarium_project::detect_system(dir)? {
        Some(system) => Ok(Loaded::System(Box::new(terrarium_plan::plan_system(
            &system, options,
        )?))),
        None => Ok(Loaded::Project(Box::new(load_plan(dir, options)?))),
    }
}

/// Render every file `init` writes for what `load` found.
pub fn render(
    loaded: &Loaded,
    options: terrarium_render::RenderOptions,
) -> Vec<terrarium_render::RenderedFile> {
    match loaded {
        Loaded::Project(plan) => terrarium_render::render(plan, options),
        Loaded::System(system) => terrarium_render::render_system(system),
    }
}

/// Read the project in `dir` and plan it: the first two steps of every command.
pub fn load_plan(
    dir: &std::path::Path,
    options: &terrarium_plan::PlanOptions,
) -> anyhow::Result<terrarium_plan::Plan> {
    let project = detect(dir)?;
    plan_project(&project, options, false)
}

/// Read the project in `dir`, its code scan remembered in the cache while the sources don't
/// change (see `terrarium_project::detect_remembered`); without a cache directory, read afresh.
pub fn detect(dir: &std::path::Path) -> anyhow::Result<terrarium_project::Project> {
    match terrarium_image::Cache::from_env() {
        Ok(cache) => Ok(terrarium_project::detect_remembered(
            dir,
            &cache.meta_path("scan")?,
        )?),
        Err(_) => Ok(terrarium_project::detect(dir)?),
    }
}

/// Plan `project`, first asking the package index about the releases it pins exactly when
/// the plan needs that (their wheels rule Pythons out, their upload times date the project).
/// The index is best effort: unreachable, the plan decides without it.
pub fn plan_project(
    project: &terrarium_project::Project,
    options: &terrarium_plan::PlanOptions,
    offline: bool,
) -> anyhow::Result<terrarium_plan::Plan> {
    let mut options = options.clone();
    if terrarium_build::needs_pinned_releases(project)
        && let Ok(mut build) = terrarium_build::BuildOptions::from_env()
    {
        build.offline = offline;
        options.pinned = terrarium_build::pinned_releases(project, &build);
    }
    Ok(terrarium_plan::plan(project, &options)?)
}

/// A usage mistake the user has to fix (exit code 2), with what to do.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// `println!` that ends the process quietly when stdout is closed (`terrarium plan | head`)
/// instead of panicking on the broken pipe.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(err) = writeln!(std::io::stdout(), $($arg)*) {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(err.into());
        }
    }};
}
