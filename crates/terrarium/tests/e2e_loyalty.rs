//! The talk's own example, for real: `examples/loyalty` (points on Flask + PostgreSQL, rewards
//! on FastAPI, an nginx gateway, migrations as a one-off job) initialised and brought up by
//! terrarium on the real engine, then used through the gateway like GitHub and contributors
//! would: signed webhooks, balances, redemptions, replays, bad signatures, 20 concurrent
//! redemptions, a restart with the data intact. Each service's pytest suite runs under
//! `terrarium test` in `e2e_test.rs`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use predicates::prelude::*;
use support::loyalty::{Gateway, check_promises};
use support::*;

/// The system under test; `terrarium down --volumes` when dropped.
struct Loyalty {
    dir: PathBuf,
    gateway: Gateway,
    _parent: tempfile::TempDir,
}

impl Loyalty {
    fn up(&self) {
        terrarium()
            .args(["up"])
            .arg(&self.dir)
            .env("LOYALTY_PORT", self.gateway.port.to_string())
            .timeout(Duration::from_secs(600))
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "http://127.0.0.1:{}/",
                self.gateway.port
            )))
            .stdout(predicate::str::is_match(r"migrate\s+completed").expect("regex"));
    }
}

impl Drop for Loyalty {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(logs) = terrarium().args(["logs", "-C"]).arg(&self.dir).output()
        {
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        let _ = terrarium()
            .args(["down", "--volumes"])
            .arg(&self.dir)
            .output();
    }
}

#[test]
fn the_loyalty_program_runs_under_terrarium() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("loyalty");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loyalty"),
        &dir,
    );
    init_with_stand_ins(&dir, &[]).stdout(
        predicate::str::contains("wrote points/Dockerfile")
            .and(predicate::str::contains("wrote gateway/nginx.conf")),
    );
    let env = std::fs::read_to_string(dir.join(".env")).expect(".env");
    let secret_of = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{name} in .env:\n{env}"))
    };
    let system = Loyalty {
        gateway: Gateway {
            secret: secret_of("LOYALTY_WEBHOOK_SECRET"),
            port: free_port(),
        },
        dir: dir.clone(),
        _parent: parent,
    };
    system.up();
    check_promises(&system.gateway);

    // One service at a time: logs and a shell.
    let logs = terrarium()
        .args(["logs", "points", "-C"])
        .arg(&dir)
        .output()
        .expect("logs");
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("POST /webhooks/github"),
        "{}",
        String::from_utf8_lossy(&logs.stdout)
    );
    terrarium()
        .args(["shell", "points", "-C"])
        .arg(&dir)
        .args(["--", "id", "-u"])
        .assert()
        .success()
        .stdout("65532\n");

    // Each service's own tests run with `terrarium test` (e2e_test.rs), points against its
    // own PostgreSQL.

    // Down and up again: every balance is intact (named volume).
    terrarium().arg("down").arg(&dir).assert().success();
    system.up();
    let gateway = &system.gateway;
    assert_eq!(
        (
            gateway.balance("alice"),
            gateway.balance("bob"),
            gateway.balance("carol")
        ),
        (2, 1, 0)
    );
    terrarium()
        .args(["down", "--volumes"])
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(
        docker(&[
            "volume",
            "ls",
            "--quiet",
            "--filter",
            "label=com.docker.compose.project=loyalty"
        ]),
        ""
    );
}
