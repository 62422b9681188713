//! The talk's own example, for real: `examples/loyalty` (points on Flask + PostgreSQL, rewards
//! on FastAPI, an nginx gateway, migrations as a one-off job) initialised and brought up by
//! terrarium on the real engine, then used through the gateway like GitHub and contributors
//! would: signed webhooks, balances, redemptions, replays, bad signatures, 20 concurrent
//! redemptions, a restart with the data intact; and each service's pytest suite run inside
//! its own container.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use predicates::prelude::*;
use sha2::Sha256;
use support::*;

/// The system under test; `terrarium down --volumes` when dropped.
struct Loyalty {
    dir: PathBuf,
    port: u16,
    secret: String,
    _parent: tempfile::TempDir,
}

impl Loyalty {
    fn up(&self) {
        terrarium()
            .args(["up"])
            .arg(&self.dir)
            .env("LOYALTY_PORT", self.port.to_string())
            .timeout(Duration::from_secs(600))
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "http://127.0.0.1:{}/",
                self.port
            )))
            .stdout(predicate::str::is_match(r"migrate\s+completed").expect("regex"));
    }

    fn signature(&self, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("hmac key");
        mac.update(body.as_bytes());
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={digest}")
    }

    fn webhook(
        &self,
        event: &str,
        delivery: &str,
        body: &str,
        signature: Option<&str>,
    ) -> Response {
        let signed = self.signature(body);
        let mut headers = vec![("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery)];
        let signature = signature.unwrap_or(&signed);
        if !signature.is_empty() {
            headers.push(("X-Hub-Signature-256", signature));
        }
        http_with("POST", self.port, "/webhooks/github", &headers, Some(body)).expect("webhook")
    }

    fn balance(&self, login: &str) -> i64 {
        let response = http(
            "GET",
            self.port,
            &format!("/api/contributors/{login}"),
            None,
        )
        .expect("balance");
        assert_eq!(response.status, 200, "{}", response.body);
        let json: serde_json::Value = serde_json::from_str(&response.body).expect("json");
        json["balance"].as_i64().expect("balance")
    }

    fn redeem(&self, login: &str, reward: &str) -> Response {
        let body = format!(r#"{{"login": "{login}", "reward": "{reward}"}}"#);
        http("POST", self.port, "/api/redemptions", Some(&body)).expect("redeem")
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

fn issue_closed(id: u64, login: &str, reason: &str) -> String {
    format!(
        r#"{{"action": "closed", "issue": {{"id": {id}, "number": {id}, "state_reason": "{reason}"}}, "sender": {{"login": "{login}"}}, "repository": {{"full_name": "pycon/sprints"}}}}"#
    )
}

fn run_pytest(dir: &Path, service: &str, env: &[String]) -> String {
    let tag = format!("terrarium-e2e/loyalty-{service}:dev");
    let context = dir.join(service);
    let image = build_image(&tag, &context, "Dockerfile.dev", &[]);
    let mount = format!("{}:/app", context.display());
    let mut args = vec!["run", "--rm", "--network", "loyalty_default", "-v", &mount];
    for e in env {
        args.extend(["-e", e.as_str()]);
    }
    args.extend([
        image.tag.as_str(),
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
    ]);
    let output = docker_output(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{service}'s tests failed in their container:\n{text}"
    );
    text
}

#[test]
fn the_loyalty_program_runs_under_terrarium() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("loyalty");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loyalty"),
        &dir,
    );
    terrarium()
        .args([
            "init",
            "--base",
            TEST_BASE,
            "--proxy-image",
            TEST_NGINX,
            "--postgres-image",
            TEST_POSTGRES,
        ])
        .arg(&dir)
        .assert()
        .success()
        .stdout(
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
        secret: secret_of("LOYALTY_WEBHOOK_SECRET"),
        dir: dir.clone(),
        port: free_port(),
        _parent: parent,
    };
    system.up();

    // A push credits one point per distinct commit to its author.
    let push = r#"{"repository": {"full_name": "pycon/sprints"}, "commits": [
        {"id": "a1", "author": {"username": "alice"}},
        {"id": "a2", "author": {"username": "alice"}},
        {"id": "a2", "author": {"username": "alice"}},
        {"id": "b1", "author": {"username": "bob"}}]}"#;
    let response = system.webhook("push", "delivery-1", push, None);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!((system.balance("alice"), system.balance("bob")), (2, 1));

    // A completed issue credits 5 to whoever closed it; not_planned credits nothing.
    assert_eq!(
        system
            .webhook(
                "issues",
                "delivery-2",
                &issue_closed(1001, "alice", "completed"),
                None
            )
            .status,
        200
    );
    assert_eq!(
        system
            .webhook(
                "issues",
                "delivery-3",
                &issue_closed(1002, "bob", "not_planned"),
                None
            )
            .status,
        200
    );
    assert_eq!((system.balance("alice"), system.balance("bob")), (7, 1));

    // Replays and bad signatures change nothing.
    let replay = system.webhook("push", "delivery-1", push, None);
    assert_eq!(replay.status, 200);
    assert!(replay.body.contains("duplicate"), "{}", replay.body);
    assert_eq!(
        system.webhook("push", "delivery-4", push, None).status,
        200,
        "same commits, new delivery"
    );
    let forged = system.webhook(
        "issues",
        "delivery-5",
        &issue_closed(1003, "mallory", "completed"),
        Some("sha256=0000"),
    );
    assert_eq!(forged.status, 401);
    assert_eq!(
        system
            .webhook(
                "issues",
                "delivery-6",
                &issue_closed(1004, "mallory", "completed"),
                Some("")
            )
            .status,
        401
    );
    assert_eq!((system.balance("alice"), system.balance("bob")), (7, 1));
    assert_eq!(
        http("GET", system.port, "/api/contributors/mallory", None)
            .expect("get")
            .status,
        404
    );

    // Redeem a coffee; too little for bob; unknown reward and contributor.
    let coffee = system.redeem("alice", "coffee");
    assert_eq!(coffee.status, 201, "{}", coffee.body);
    let voucher: serde_json::Value = serde_json::from_str(&coffee.body).expect("json");
    assert!(
        voucher["voucher"]
            .as_str()
            .is_some_and(|v| v.starts_with("COFFEE-")),
        "{}",
        coffee.body
    );
    assert_eq!(voucher["balance"], 2);
    assert_eq!(system.balance("alice"), 2);
    assert_eq!(system.redeem("bob", "coffee").status, 409);
    assert_eq!(system.redeem("alice", "yacht").status, 404);
    assert_eq!(system.redeem("nobody", "sticker").status, 404);
    let internal = http(
        "POST",
        system.port,
        "/internal/contributors/alice/debits",
        Some(r#"{"amount": 1}"#),
    )
    .expect("internal");
    assert_eq!(
        internal.status, 404,
        "the gateway does not route /internal/"
    );

    // 20 redemptions at once against a balance that covers 4: exactly 4 succeed.
    for id in 2001..2005 {
        assert_eq!(
            system
                .webhook(
                    "issues",
                    &format!("delivery-{id}"),
                    &issue_closed(id, "carol", "completed"),
                    None
                )
                .status,
            200
        );
    }
    assert_eq!(system.balance("carol"), 20);
    let port = system.port;
    let statuses: Vec<u16> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                http(
                    "POST",
                    port,
                    "/api/redemptions",
                    Some(r#"{"login": "carol", "reward": "coffee"}"#),
                )
                .map(|r| r.status)
                .unwrap_or(0)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        16,
        "{statuses:?}"
    );
    assert_eq!(system.balance("carol"), 0);

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

    // Each service's own tests, inside its dev container (points against the real PostgreSQL).
    let password = secret_of("POSTGRES_PASSWORD");
    let points = run_pytest(
        &dir,
        "points",
        &[format!(
            "TEST_DATABASE_URL=postgresql://loyalty:{password}@db:5432/loyalty"
        )],
    );
    assert!(points.contains(" passed"), "{points}");
    let rewards = run_pytest(&dir, "rewards", &[]);
    assert!(rewards.contains(" passed"), "{rewards}");

    // Down and up again: every balance is intact (named volume).
    terrarium().arg("down").arg(&dir).assert().success();
    system.up();
    assert_eq!(
        (
            system.balance("alice"),
            system.balance("bob"),
            system.balance("carol")
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
