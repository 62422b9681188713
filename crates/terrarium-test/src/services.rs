//! The services a suite needs, started on its internal network before the tests and removed
//! after them. PostgreSQL: the plan's `postgres-image`, a fresh random password, data in the
//! container's anonymous volume (removed with it), healthy when `pg_isready` answers over TCP
//! (the official image's first start runs a socket-only server while it initialises, so the
//! TCP check waits for the real one); the suite gets `DATABASE_URL`.

use std::time::{Duration, Instant};

use terrarium_engine::{Engine, ProjectRef, Role};
use terrarium_plan::Plan;

use crate::error::{TestError, io_error};
use crate::suite::SuiteOptions;

/// Start `service` as container `name` on `network` and wait until it is healthy; the
/// environment the suite needs to reach it.
pub(crate) fn start(
    engine: &Engine,
    plan: &Plan,
    project: &ProjectRef,
    service: &str,
    name: &str,
    network: &str,
    options: &SuiteOptions,
) -> Result<Vec<String>, TestError> {
    // Only PostgreSQL is known (the configuration refuses anything else).
    let image = plan.postgres_image.value.clone();
    let password = random_hex()?;
    let _ = engine.output(&[
        "rm".into(),
        "--force".into(),
        "--volumes".into(),
        name.to_string(),
    ]);
    let mut args: Vec<String> = vec![
        "run".into(),
        "--detach".into(),
        "--name".into(),
        name.to_string(),
    ];
    for (key, value) in project.labels(Role::Test) {
        args.extend(["--label".into(), format!("{key}={value}")]);
    }
    args.extend([
        "--network".into(),
        network.to_string(),
        "--network-alias".into(),
        service.to_string(),
        "--env".into(),
        format!("POSTGRES_PASSWORD={password}"),
        "--env".into(),
        "POSTGRES_DB=test".into(),
        "--health-cmd".into(),
        "pg_isready -U postgres -d test -h 127.0.0.1".into(),
        "--health-interval".into(),
        "1s".into(),
        "--health-timeout".into(),
        "5s".into(),
        "--health-retries".into(),
        "3".into(),
        "--health-start-period".into(),
        format!("{}s", options.service_timeout.as_secs().max(1)),
        image.clone(),
    ]);
    engine.output(&args)?;
    wait_healthy(engine, service, name, &image, options.service_timeout)?;
    Ok(vec![format!(
        "DATABASE_URL=postgresql://postgres:{password}@{service}:5432/test"
    )])
}

fn wait_healthy(
    engine: &Engine,
    service: &str,
    name: &str,
    image: &str,
    timeout: Duration,
) -> Result<(), TestError> {
    let deadline = Instant::now() + timeout;
    let state = loop {
        let state = engine
            .inspect(
                name,
                "{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
            )
            .unwrap_or_default();
        let mut fields = state.split_whitespace();
        let (status, code, health) = (
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
        );
        match (status, health) {
            ("running", "healthy") => return Ok(()),
            ("running", "unhealthy") => break "unhealthy".to_string(),
            ("exited" | "dead", _) => break format!("exited with code {code}"),
            _ if Instant::now() >= deadline => {
                break format!("still starting after {} s", timeout.as_secs());
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let logs = engine
        .command()
        .args(["logs", "--tail", "20", name])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default();
    let logs = logs
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    Err(TestError::Unhealthy {
        service: service.to_string(),
        image: image.to_string(),
        state,
        logs: if logs.is_empty() {
            "    (no output)".into()
        } else {
            logs
        },
    })
}

/// 16 random bytes from the kernel, as hex: a password that lives as long as the run.
fn random_hex() -> Result<String, TestError> {
    use std::io::Read as _;
    let path = std::path::Path::new("/dev/urandom");
    let mut bytes = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_error(path))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
