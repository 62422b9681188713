//! One suite run: the test image built natively and loaded into the engine (skipped when the
//! engine already has it), the services started on an internal network, the runner run in a
//! container of the image with the source mounted read-only on /app, and its counts read back.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use terrarium_build::{Build, BuildOptions, Output, Reporter};
use terrarium_debian::Distro;
use terrarium_engine::{Engine, LABEL_PROJECT, ProjectRef, Role};
use terrarium_image::ImageRef;
use terrarium_plan::Plan;

use crate::cleanup::Cleanup;
use crate::error::{TestError, io_error};
use crate::junit::Counts;
use crate::runner::{Runner, junit_of};

/// Where the container writes its JUnit XML.
const OUT_DIR: &str = "/terrarium/out";

/// How to run the suites.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The test runner.
    pub runner: Runner,
    /// Arguments passed on to the runner (after `--`).
    pub runner_args: Vec<String>,
    /// The services to start beside the tests (`postgres`).
    pub services: Vec<String>,
    /// Leave the containers and network after the run, for debugging.
    pub keep: bool,
    /// How long a service may take to become healthy.
    pub service_timeout: Duration,
}

/// A test image in the engine.
#[derive(Debug)]
pub struct TestImage {
    /// Its tag in the engine.
    pub tag: String,
    /// The Debian release, and so the CPython, it runs.
    pub distro: Distro,
    /// Whether this run loaded it (false: the engine had this very image already).
    pub loaded: bool,
    /// The native build.
    pub build: Build,
}

/// One suite's result on one Python.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The Debian release, and so the CPython, it ran on.
    pub distro: Distro,
    /// Passed, failed and skipped, from pytest's JUnit XML or unittest's summary (zero when
    /// the run reported none).
    pub counts: Counts,
    /// The runner's exit code (5: no tests were collected).
    pub exit_code: i32,
    /// From starting the container to its exit.
    pub duration: Duration,
    /// What the runner printed.
    pub output: String,
    /// pytest's JUnit XML, or one made from unittest's counts.
    pub junit: Option<String>,
    /// Containers and networks left running by `--keep`.
    pub kept: Vec<String>,
}

impl Outcome {
    /// Whether every test passed (and some ran).
    pub fn passed(&self) -> bool {
        self.exit_code == 0
    }
}

/// Build `plan`'s test image natively (the production layers plus the `test` layer of
/// `options.test`) and load it into the engine as `terrarium/NAME:test-3.X`, unless the engine
/// already has exactly this image under that tag.
pub fn build_image(
    engine: &Engine,
    plan: &Plan,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<TestImage, TestError> {
    let distro = plan.runtime.value.ok_or_else(|| TestError::NoRuntime {
        reason: plan.runtime.reason.clone(),
    })?;
    let build = terrarium_build::build(plan, options, reporter)?;
    let project = ProjectRef::new(plan)?;
    let tag = project.image(&format!("test-{}", distro.python_version()));
    let present = engine
        .inspect(&tag, "{{.Id}}")
        .map(|id| id.trim().to_string())
        .unwrap_or_default();
    let wanted = [
        build.image.config.digest.to_string(),
        build.image.digest().to_string(),
    ];
    let loaded = !wanted.contains(&present);
    if loaded {
        reporter.stage(&format!("loading {tag} into the engine"));
        let dir = options.cache.tmp_dir()?;
        let archive = tempfile::Builder::new()
            .prefix("terrarium-test-")
            .suffix(".tar")
            .tempfile_in(&dir)
            .map_err(io_error(&dir))?;
        let reference: ImageRef = tag.parse()?;
        terrarium_build::publish(
            &options.cache,
            &build.image,
            &Output::DockerArchive(archive.path().to_owned()),
            &[reference],
        )?;
        engine.output(&[
            "load".into(),
            "--quiet".into(),
            "--input".into(),
            archive.path().display().to_string(),
        ])?;
    }
    Ok(TestImage {
        tag,
        distro,
        loaded,
        build,
    })
}

/// Run the suite of `plan` in `image`, with the services of `options`; everything started is
/// removed afterwards (also on errors) unless `options.keep`.
pub fn run_suite(
    engine: &Engine,
    plan: &Plan,
    image: &TestImage,
    options: &SuiteOptions,
    cleanup: &Cleanup,
) -> Result<Outcome, TestError> {
    let project = ProjectRef::new(plan)?;
    let base = format!(
        "{}-{}",
        project.container(Role::Test),
        image.distro.python_version().replace('.', "")
    );
    let mut started: Vec<String> = Vec::new();
    let result = run_in(
        engine,
        plan,
        image,
        options,
        cleanup,
        &project,
        &base,
        &mut started,
    );
    match &result {
        Ok(outcome) if options.keep => cleanup.forget(&outcome.kept),
        _ => cleanup.release(&started),
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    engine: &Engine,
    plan: &Plan,
    image: &TestImage,
    options: &SuiteOptions,
    cleanup: &Cleanup,
    project: &ProjectRef,
    base: &str,
    started: &mut Vec<String>,
) -> Result<Outcome, TestError> {
    let mut env: Vec<String> = vec!["PYTHONDONTWRITEBYTECODE=1".into()];
    let network = if options.services.is_empty() {
        "none".to_string()
    } else {
        // An internal network: the suite reaches its services and nothing else.
        let network = base.to_string();
        let _ = engine.output(&["network".into(), "rm".into(), network.clone()]);
        engine.output(&[
            "network".into(),
            "create".into(),
            "--internal".into(),
            "--label".into(),
            format!("{LABEL_PROJECT}={}", project.root.display()),
            network.clone(),
        ])?;
        cleanup.network(&network);
        started.push(network.clone());
        for service in &options.services {
            let name = format!("{base}-{service}");
            cleanup.container(&name);
            started.push(name.clone());
            env.extend(crate::services::start(
                engine, plan, project, service, &name, &network, options,
            )?);
        }
        network
    };
    let out = tempfile::Builder::new()
        .prefix("terrarium-test-")
        .tempdir()
        .map_err(io_error(&std::env::temp_dir()))?;
    // The suite runs as the image's user, not the caller: it must be able to write here.
    set_mode(out.path(), 0o777)?;
    let name = base.to_string();
    let _ = engine.remove(&name);
    let user = &plan.user.value;
    let mut args: Vec<String> = vec!["run".into(), "--name".into(), name.clone()];
    for (key, value) in project.labels(Role::Test) {
        args.extend(["--label".into(), format!("{key}={value}")]);
    }
    args.extend([
        "--read-only".into(),
        "--tmpfs".into(),
        "/tmp".into(),
        "--user".into(),
        format!("{}:{}", user.uid, user.gid),
        "--network".into(),
        network,
        "--volume".into(),
        format!("{}:/app:ro", project.root.display()),
        "--volume".into(),
        format!("{}:{OUT_DIR}", out.path().display()),
        "--workdir".into(),
        options.runner.workdir(),
    ]);
    for e in env {
        args.extend(["--env".into(), e]);
    }
    args.push(image.tag.clone());
    args.extend(options.runner.argv(
        &format!("/usr/bin/python{}", image.distro.python_version()),
        &format!("{OUT_DIR}/junit.xml"),
        &options.runner_args,
    ));
    cleanup.container(&name);
    started.push(name.clone());
    let started_at = Instant::now();
    let output = engine
        .command()
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestError::Io {
            path: engine.client().display().to_string(),
            source,
        })?;
    let duration = started_at.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(out.path().join("junit.xml")).ok();
    let counts = options.runner.counts(&text, written.as_deref());
    let junit = written.or_else(|| counts.map(|c| junit_of(&options.runner.name(), c)));
    let exit_code = options
        .runner
        .exit_code(output.status.code().unwrap_or(-1), counts);
    Ok(Outcome {
        distro: image.distro,
        counts: counts.unwrap_or_default(),
        exit_code,
        duration,
        output: text,
        junit,
        kept: if options.keep {
            started.clone()
        } else {
            Vec::new()
        },
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), TestError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_error(path))
}

/// Write a JUnit report to `path` atomically (a temporary file beside it, then a rename).
pub fn write_junit(path: &Path, xml: &str) -> Result<(), TestError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io_error(dir))?;
    std::io::Write::write_all(&mut file, xml.as_bytes()).map_err(io_error(path))?;
    file.persist(path).map_err(|err| TestError::Io {
        path: path.display().to_string(),
        source: err.error,
    })?;
    Ok(())
}
