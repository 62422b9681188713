//! `terrarium init --proxy --postgres` on a fixture, brought up with the compose CLI against the
//! real engine (local nginx and postgres test images, since nothing can be pulled): the app
//! answers through the proxy, PostgreSQL is healthy, data goes through to the named volume.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

/// A compose project taken down, volumes included, when dropped.
struct ComposeProject {
    command: Vec<String>,
    dir: std::path::PathBuf,
    name: String,
    proxy_port: u16,
}

impl ComposeProject {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.command[0])
            .args(&self.command[1..])
            .args(["-p", &self.name])
            .args(args)
            .current_dir(&self.dir)
            .env("PROXY_PORT", self.proxy_port.to_string())
            // Compose v1 builds through the engine API (the docker CLI first on PATH may lack buildx).
            .env("COMPOSE_DOCKER_CLI_BUILD", "0")
            .output()
            .expect("run compose")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "compose {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn logs(&self) -> String {
        let out = self.run(&["logs", "--no-color"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--volumes", "--remove-orphans", "--rmi", "local"]);
    }
}

#[test]
fn proxy_and_postgres_come_up_and_the_app_answers_through_the_proxy() {
    let dir = fixture("notes-volume");
    init_with_stand_ins(dir.path(), &["--proxy", "--postgres"]);
    let env = std::fs::read_to_string(dir.path().join(".env")).expect(".env written");
    assert!(
        env.lines()
            .any(|l| l.starts_with("POSTGRES_PASSWORD=") && l.len() > 30),
        "{env}"
    );
    let compose_text =
        std::fs::read_to_string(dir.path().join("compose.yaml")).expect("compose.yaml");
    assert!(
        !compose_text.contains(env.lines().last().unwrap_or("")),
        "the password stays out of compose.yaml"
    );

    let project = ComposeProject {
        command: compose_command(),
        dir: dir.path().to_path_buf(),
        name: format!("terrariume2e{}", std::process::id()),
        proxy_port: free_port(),
    };
    project.ok(&["up", "-d", "--build"]);

    let port = project.proxy_port;
    wait_for(port, "/health", Duration::from_secs(120), |r| {
        r.status == 200
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", project.logs()));
    let proxy_health = http("GET", port, "/nginx-health", None).expect("proxy health");
    assert_eq!(proxy_health.status, 200);

    let created = http(
        "POST",
        port,
        "/notes",
        Some(r#"{"text": "through the proxy"}"#),
    )
    .expect("post");
    assert_eq!(created.status, 201, "{}", created.body);
    let id: serde_json::Value = serde_json::from_str(&created.body).expect("json");
    let note = http(
        "GET",
        port,
        &format!("/notes/{}", id["id"].as_str().expect("id")),
        None,
    )
    .expect("get");
    assert!(note.body.contains("through the proxy"), "{}", note.body);

    let db = project.ok(&["ps", "-q", "db"]);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Health.Status}}", &db]),
        "healthy"
    );
    let app = project.ok(&["ps", "-q", "app"]);
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", &app]),
        "true"
    );
    let published = docker(&["port", &app]);
    assert!(
        published.is_empty(),
        "behind the proxy the app publishes no port: {published}"
    );
    let proxy = project.ok(&["ps", "-q", "proxy"]);
    assert!(docker(&["port", &proxy]).contains(&format!("127.0.0.1:{port}")));
}
