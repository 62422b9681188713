//! `terrarium test`: the project's tests inside its image, on every Python it supports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use terrarium_plan::PlanOptions;
use terrarium_test::{
    Cleanup, NO_TESTS, Outcome, PythonChoice, SuiteOptions, Target, TestError, TestImage,
};

use crate::outln;

/// Arguments of `terrarium test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory (or a terrarium.toml system: each service in turn).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The CPythons to run on: `all` (every one terrarium provides that the project's
    /// constraints allow) or a list like 3.11,3.13; default: the plan's Python.
    #[arg(long, value_name = "all|3.X,…")]
    pub python: Option<PythonChoice>,
    /// In a system, test only this service.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Write the JUnit XML here (pytest's own; unittest's counts otherwise; with several runs,
    /// one file each: junit.xml gives junit-3.11.xml, junit-3.13.xml, junit-points-3.11.xml in
    /// a system).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Leave the test containers, services and network after the run, for debugging.
    #[arg(long)]
    pub keep: bool,
    /// The image of the PostgreSQL service (default: the plan's `postgres-image`).
    #[arg(long, value_name = "IMAGE")]
    pub postgres_image: Option<String>,
    /// Seconds a service may take to become healthy.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub service_timeout: u64,
    /// Build from the cache only; fail naming what is missing.
    #[arg(long)]
    pub offline: bool,
    /// Arguments for the test runner (after `--`): pytest's, unittest's test names, or more
    /// arguments for a configured `[test] command`.
    #[arg(last = true, value_name = "RUNNER_ARGS")]
    pub runner_args: Vec<String>,
}

/// Run `terrarium test`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let targets = terrarium_test::targets(&args.dir, args.service.as_deref())?;
    let engine = terrarium_engine::Engine::connect()?;
    let cleanup = Cleanup::new(&engine);
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let cleanup = cleanup.clone();
        let interrupted = Arc::clone(&interrupted);
        ctrlc::set_handler(move || {
            interrupted.store(true, Ordering::SeqCst);
            eprintln!("interrupted: removing the test containers and networks…");
            cleanup.now();
            std::process::exit(130);
        })?;
    }
    let mut outcomes: Vec<(Option<String>, Outcome)> = Vec::new();
    for target in &targets {
        if let Some(service) = &target.service {
            eprintln!("testing service {service}…");
        }
        let result = test_target(&args, &engine, &cleanup, target);
        if interrupted.load(Ordering::SeqCst) {
            // The handler removes what is left and ends the process with 130.
            loop {
                std::thread::park();
            }
        }
        for outcome in result? {
            outcomes.push((target.service.clone(), outcome));
        }
    }
    print_outcomes(&args, &outcomes)?;
    let failed = outcomes
        .iter()
        .any(|(_, o)| !o.passed() && o.exit_code != NO_TESTS);
    let empty = outcomes.iter().any(|(_, o)| o.exit_code == NO_TESTS);
    Ok(if failed {
        ExitCode::FAILURE
    } else if empty {
        ExitCode::from(NO_TESTS as u8)
    } else {
        ExitCode::SUCCESS
    })
}

fn test_target(
    args: &Args,
    engine: &terrarium_engine::Engine,
    cleanup: &Cleanup,
    target: &Target,
) -> anyhow::Result<Vec<Outcome>> {
    let distros = match &args.python {
        Some(choice) => terrarium_test::pythons(&target.project, choice)?
            .into_iter()
            .map(Some)
            .collect(),
        None => vec![None],
    };
    let choice = terrarium_test::runner(&target.project);
    let mut build_options = terrarium_build::BuildOptions::from_env()?;
    build_options.offline = args.offline;
    build_options.test = Some(terrarium_test::test_dependencies(
        &target.project,
        &choice.runner,
    ));
    let bars = super::build::Bars::new();
    let mut suites = Vec::new();
    for distro in distros {
        let plan = super::plan_project(
            &target.project,
            &PlanOptions {
                distro,
                postgres_image: args
                    .postgres_image
                    .clone()
                    .or_else(|| target.postgres_image.clone()),
                ..PlanOptions::default()
            },
            args.offline,
        )?;
        let image = terrarium_test::build_image(engine, &plan, &build_options, &bars)?;
        for warning in &image.build.warnings {
            eprintln!("warning: {warning}");
        }
        suites.push((plan, image));
    }
    let options = SuiteOptions {
        runner: choice.runner.clone(),
        runner_args: args.runner_args.clone(),
        services: target.services.clone(),
        keep: args.keep,
        service_timeout: Duration::from_secs(args.service_timeout),
    };
    for (_, image) in &suites {
        eprintln!(
            "running the tests with {} ({}) on CPython {} ({})…",
            choice.runner.name(),
            choice.reason,
            image.distro.python_version(),
            image.distro
        );
    }
    let results: Vec<Result<Outcome, TestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = suites
            .iter()
            .map(|(plan, image): &(terrarium_plan::Plan, TestImage)| {
                let options = &options;
                scope
                    .spawn(move || terrarium_test::run_suite(engine, plan, image, options, cleanup))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(TestError::Io {
                        path: "test thread".into(),
                        source: std::io::Error::other("the thread running the suite panicked"),
                    })
                })
            })
            .collect()
    });
    let mut outcomes = Vec::new();
    for result in results {
        outcomes.push(result?);
    }
    Ok(outcomes)
}

fn junit_path(base: &Path, service: Option<&str>, python: &str, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "junit".into());
    let ext = base
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let service = service.map(|s| format!("-{s}")).unwrap_or_default();
    base.with_file_name(format!("{stem}{service}-{python}{ext}"))
}

fn print_outcomes(args: &Args, outcomes: &[(Option<String>, Outcome)]) -> anyhow::Result<()> {
    let with_service = outcomes.iter().any(|(s, _)| s.is_some());
    for (service, outcome) in outcomes {
        let what = match service {
            Some(s) => format!("{s}, CPython {}", outcome.distro.python_version()),
            None => format!("CPython {}", outcome.distro.python_version()),
        };
        outln!("── {what} ({}) ──", outcome.distro);
        outln!("{}", outcome.output.trim_end());
        if outcome.exit_code == NO_TESTS {
            outln!(
                "no tests found ({what}): the runner found nothing under /app; name test files test_*.py (or *_test.py), or pass paths after --"
            );
        }
    }
    outln!();
    let service_column = if with_service { "service  " } else { "" };
    outln!(
        "{service_column}{:<8} {:>7} {:>7} {:>8} {:>9}",
        "python",
        "passed",
        "failed",
        "skipped",
        "time"
    );
    for (service, outcome) in outcomes {
        let service = if with_service {
            format!("{:<9}", service.as_deref().unwrap_or(""))
        } else {
            String::new()
        };
        outln!(
            "{service}{:<8} {:>7} {:>7} {:>8} {:>8.1}s{}",
            outcome.distro.python_version(),
            outcome.counts.passed,
            outcome.counts.failed,
            outcome.counts.skipped,
            outcome.duration.as_secs_f64(),
            match outcome.exit_code {
                0 => String::new(),
                NO_TESTS => "  no tests".into(),
                code => format!("  exit {code}"),
            }
        );
    }
    if let Some(base) = &args.junit {
        let several = outcomes.len() > 1;
        for (service, outcome) in outcomes {
            let path = junit_path(
                base,
                service.as_deref(),
                outcome.distro.python_version(),
                several,
            );
            match &outcome.junit {
                Some(xml) => {
                    terrarium_test::write_junit(&path, xml)?;
                    outln!("wrote {}", path.display());
                }
                None => eprintln!(
                    "warning: the run reported no counts on CPython {}; {} not written",
                    outcome.distro.python_version(),
                    path.display()
                ),
            }
        }
    }
    let kept: Vec<&String> = outcomes.iter().flat_map(|(_, o)| &o.kept).collect();
    if !kept.is_empty() {
        outln!(
            "kept (--keep): {}; remove them with `docker rm -f -v CONTAINER` and `docker network rm NETWORK`",
            kept.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_paths_per_python() {
        let base = Path::new("out/junit.xml");
        assert_eq!(junit_path(base, None, "3.11", false), base);
        assert_eq!(
            junit_path(base, None, "3.13", true),
            Path::new("out/junit-3.13.xml")
        );
        assert_eq!(
            junit_path(base, Some("points"), "3.11", true),
            Path::new("out/junit-points-3.11.xml")
        );
    }
}
