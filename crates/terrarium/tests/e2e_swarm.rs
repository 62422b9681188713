//! The loyalty program on Docker Swarm, for real: the test engine becomes a single-node swarm
//! (left again afterwards), `terrarium deploy swarm` builds the images, creates the Swarm
//! secrets and deploys `stack.yaml` with 3 replicas of points and rewards; the gateway keeps
//! the program's promises; under load, a rolling update of points fails no request, an image
//! whose health check never passes rolls back by itself, and a replica killed mid-load loses no
//! committed point.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::loyalty::{Gateway, check_promises};
use support::*;

/// The engine as a swarm for the test: initialised when it was not one, left when dropped.
struct SwarmMode {
    joined_here: bool,
}

impl SwarmMode {
    fn enter() -> SwarmMode {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        if state == "active" {
            return SwarmMode { joined_here: false };
        }
        docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            "127.0.0.1:2377",
        ]);
        SwarmMode { joined_here: true }
    }
}

impl Drop for SwarmMode {
    fn drop(&mut self) {
        if self.joined_here {
            // Only swarm services go; plain containers and compose projects keep running.
            let _ = docker_output(&["swarm", "leave", "--force"]);
        }
    }
}

/// A deployed stack: removed with its volumes and images when dropped.
struct Stack {
    name: String,
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Stack {
    fn deploy(&self, port: u16) -> std::process::Output {
        terrarium()
            .args(["deploy", "swarm"])
            .arg(&self.dir)
            .args([
                "--proxy-image",
                TEST_NGINX,
                "--postgres-image",
                TEST_POSTGRES,
                "--timeout",
                "400",
            ])
            .env("LOYALTY_PORT", port.to_string())
            .env("TERRARIUM_DOCKER", docker_bin())
            .timeout(Duration::from_secs(900))
            .output()
            .expect("terrarium deploy swarm")
    }

    fn service(&self, name: &str) -> String {
        format!("{}_{name}", self.name)
    }

    /// Containers of one service on this node.
    fn containers(&self, service: &str) -> Vec<String> {
        docker(&[
            "ps",
            "--quiet",
            "--filter",
            &format!(
                "label=com.docker.swarm.service.name={}",
                self.service(service)
            ),
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }

    fn image(&self, service: &str) -> String {
        docker(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            &self.service(service),
        ])
    }

    fn running(&self, service: &str) -> String {
        docker(&[
            "service",
            "ls",
            "--filter",
            &format!("name={}", self.service(service)),
            "--format",
            "{{.Replicas}}",
        ])
    }

    fn sql(&self, query: &str) -> String {
        let db = self.containers("db");
        let db = db.first().expect("the db container");
        docker(&[
            "exec", db, "psql", "-U", "loyalty", "-d", "loyalty", "-At", "-F", " ", "-c", query,
        ])
    }

    fn logs(&self, service: &str) -> String {
        let out = docker_output(&["service", "logs", "--raw", &self.service(service)]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for service in ["points", "rewards", "gateway", "migrate", "db"] {
                eprintln!("--- {service}:\n{}", self.logs(service));
            }
        }
        let _ = terrarium()
            .args(["deploy", "swarm", "--rm"])
            .arg(&self.dir)
            .env("TERRARIUM_DOCKER", docker_bin())
            .output();
        let start = Instant::now();
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        while start.elapsed() < Duration::from_secs(60)
            && !docker_output(&["ps", "--all", "--quiet", "--filter", &label])
                .stdout
                .is_empty()
        {
            std::thread::sleep(Duration::from_millis(500));
        }
        let volumes = String::from_utf8_lossy(
            &docker_output(&["volume", "ls", "--quiet", "--filter", &label]).stdout,
        )
        .into_owned();
        for volume in volumes.lines() {
            let _ = docker_output(&["volume", "rm", volume]);
        }
        let images = String::from_utf8_lossy(
            &docker_output(&[
                "images",
                "--format",
                "{{.Repository}}:{{.Tag}}",
                "--filter",
                &format!("reference={}/*", self.name),
            ])
            .stdout,
        )
        .into_owned();
        for image in images.lines() {
            let _ = docker_output(&["rmi", image]);
        }
    }
}

/// What the load generator saw.
#[derive(Debug, Default)]
struct Tally {
    redeemed: usize,
    reads: usize,
    /// Requests whose outcome is unknown or wrong: status, or the connection error.
    failures: Vec<String>,
}

/// Bounded load on 127.0.0.1: one thread per login, each redeeming a sticker and reading its
/// balance, about 5 times a second, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Tally>)>,
}

impl Load {
    fn start(port: u16, logins: &[String]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = logins
            .iter()
            .map(|login| {
                let stop = stop.clone();
                let login = login.clone();
                let name = login.clone();
                let handle = std::thread::spawn(move || {
                    let mut tally = Tally::default();
                    let body = format!(r#"{{"login": "{login}", "reward": "sticker"}}"#);
                    while !stop.load(Ordering::Relaxed) {
                        match http("POST", port, "/api/redemptions", Some(&body)) {
                            Ok(r) if r.status == 201 => tally.redeemed += 1,
                            Ok(r) => tally
                                .failures
                                .push(format!("redeem {} {}", r.status, r.body)),
                            Err(err) => tally.failures.push(format!("redeem: {err}")),
                        }
                        match http("GET", port, &format!("/api/contributors/{login}"), None) {
                            Ok(r) if r.status == 200 => tally.reads += 1,
                            Ok(r) => tally.failures.push(format!("read {} {}", r.status, r.body)),
                            Err(err) => tally.failures.push(format!("read: {err}")),
                        }
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    tally
                });
                (name, handle)
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> Vec<(String, Tally)> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|(login, t)| (login, t.join().expect("load thread")))
            .collect()
    }
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn edit(path: &Path, from: &str, to: &str) {
    let source = std::fs::read_to_string(path).expect("read source");
    assert!(source.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, source.replacen(from, to, 1)).expect("write source");
}

#[test]
fn the_loyalty_program_scales_out_on_swarm() {
    let _swarm = SwarmMode::enter();
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("loyalty");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loyalty"),
        &dir,
    );
    // A stack name of its own: other tests may use the engine at the same time.
    let name = format!("tswarm{}", std::process::id());
    edit(
        &dir.join("terrarium.toml"),
        "name = \"loyalty\"",
        &format!("name = \"{name}\""),
    );
    init_with_stand_ins(&dir, &[]);
    let env = std::fs::read_to_string(dir.join(".env")).expect(".env");
    let secret_of = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{key} in .env:\n{env}"))
    };
    let stack = Stack {
        name: name.clone(),
        dir: dir.clone(),
        _parent: parent,
    };
    let port = free_port();
    let gateway = Gateway {
        port,
        secret: secret_of("LOYALTY_WEBHOOK_SECRET"),
    };

    // First deploy: 3 replicas each, every one healthy, the migration completed.
    let first = stack.deploy(port);
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("wrote stack.yaml"), "{out}");
    for service in ["points", "rewards"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&stack.service(service)))
            .unwrap_or_else(|| panic!("{service} in the status:\n{out}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&fields[1..3], ["3/3", "3"], "{line}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with(&stack.service("migrate")) && l.contains("completed")),
        "{out}"
    );

    // Secrets are Swarm secrets: no value in the stack file nor in any service's spec; only
    // the gateway publishes a port.
    let stack_file = std::fs::read_to_string(dir.join("stack.yaml")).expect("stack.yaml");
    for service in ["points", "rewards", "migrate", "db", "gateway"] {
        let spec = docker(&["service", "inspect", &stack.service(service)]);
        for secret in ["POSTGRES_PASSWORD", "LOYALTY_WEBHOOK_SECRET"] {
            let value = secret_of(secret);
            assert!(!spec.contains(&value), "{secret} in {service}'s spec");
            assert!(!stack_file.contains(&value), "{secret} in stack.yaml");
        }
        let ports = docker(&[
            "service",
            "inspect",
            "--format",
            "{{json .Spec.EndpointSpec.Ports}}",
            &stack.service(service),
        ]);
        assert_eq!(
            ports != "null" && ports != "[]",
            service == "gateway",
            "{service}: {ports}"
        );
    }

    // The same promises as under compose.
    wait_for(port, "/api/rewards", Duration::from_secs(60), |r| {
        r.status == 200
    })
    .expect("the gateway answers");
    check_promises(&gateway);

    // Plenty of points for the load.
    let logins: Vec<String> = (0..4).map(|i| format!("load{i}")).collect();
    for login in &logins {
        gateway.credit(login, 2000, &format!("credit-{login}"));
        assert_eq!(gateway.balance(login), 2000);
    }

    // A rolling update of points to a new image, under load: no request fails.
    let old_image = stack.image("points");
    edit(
        &dir.join("points/points/__init__.py"),
        "",
        "# rolled out by the swarm test\n",
    );
    let load = Load::start(port, &logins);
    let started = Instant::now();
    let update = stack.deploy(port);
    let seconds = started.elapsed().as_secs();
    std::thread::sleep(Duration::from_secs(2));
    let tallies = load.finish();
    assert!(update.status.success(), "{}", text(&update));
    let new_image = stack.image("points");
    assert_ne!(new_image, old_image);
    assert_eq!(stack.running("points"), "3/3");
    let redeemed: usize = tallies.iter().map(|(_, t)| t.redeemed).sum();
    let failures: Vec<&String> = tallies.iter().flat_map(|(_, t)| &t.failures).collect();
    eprintln!(
        "rolling update: {seconds} s, {redeemed} redemptions and {} reads, {} failed",
        tallies.iter().map(|(_, t)| t.reads).sum::<usize>(),
        failures.len()
    );
    assert!(redeemed > 20, "the load ran: {tallies:?}");
    assert!(
        failures.is_empty(),
        "failed during the update: {failures:?}"
    );
    let mut committed: Vec<usize> = tallies.iter().map(|(_, t)| t.redeemed).collect();

    // An image whose health check never passes: Swarm rolls back by itself, still no request
    // fails (the old replicas keep serving).
    edit(
        &dir.join("points/points/app.py"),
        "_db().ping(HEALTH_TIMEOUT)",
        "raise RuntimeError(\"broken on purpose by the swarm test\")",
    );
    let load = Load::start(port, &logins);
    let broken = stack.deploy(port);
    let tallies = load.finish();
    let out = text(&broken);
    assert!(!broken.status.success(), "{out}");
    assert!(out.contains("rolled it back"), "{out}");
    assert_eq!(
        stack.image("points"),
        new_image,
        "back on the previous image"
    );
    assert_eq!(stack.running("points"), "3/3");
    let failures: Vec<&String> = tallies.iter().flat_map(|(_, t)| &t.failures).collect();
    assert!(
        failures.is_empty(),
        "failed during the rollback: {failures:?}"
    );
    for (count, (_, tally)) in committed.iter_mut().zip(&tallies) {
        *count += tally.redeemed;
    }
    let status = terrarium()
        .args(["deploy", "swarm", "--status"])
        .arg(&dir)
        .env("TERRARIUM_DOCKER", docker_bin())
        .output()
        .expect("status");
    let status = text(&status);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with(&stack.service("points")) && l.contains("rollback_completed")),
        "{status}"
    );

    // A replica killed mid-load: requests in flight on it may fail, but every committed
    // redemption is in the ledger, and the ledger adds up to every balance.
    let load = Load::start(port, &logins);
    std::thread::sleep(Duration::from_secs(3));
    let victim = stack.containers("points");
    docker(&["kill", &victim[0]]);
    let start = Instant::now();
    while stack.running("points") != "3/3" || stack.containers("points").contains(&victim[0]) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "points did not get its replica back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    let tallies = load.finish();
    eprintln!(
        "kill: {} redemptions, {} requests failed",
        tallies.iter().map(|(_, t)| t.redeemed).sum::<usize>(),
        tallies.iter().map(|(_, t)| t.failures.len()).sum::<usize>()
    );
    for ((login, tally), before) in tallies.iter().zip(&committed) {
        let known = before + tally.redeemed;
        let unknown = tally
            .failures
            .iter()
            .filter(|f| f.starts_with("redeem"))
            .count();
        let row = stack.sql(&format!(
            "SELECT c.balance, sum(e.amount), count(*) FILTER (WHERE e.kind = 'debit') \
             FROM contributors c JOIN ledger_entries e ON e.contributor_id = c.id \
             WHERE c.login = '{login}' GROUP BY c.balance"
        ));
        let numbers: Vec<usize> = row
            .split_whitespace()
            .map(|n| n.parse().expect("number"))
            .collect();
        let [balance, ledger, debits] = numbers[..] else {
            panic!("{login}: {row}");
        };
        assert_eq!(
            balance, ledger,
            "{login}: the ledger adds up to the balance"
        );
        assert!(
            debits >= known && debits <= known + unknown,
            "{login}: {debits} debits booked, {known} confirmed, {unknown} unknown"
        );
        assert_eq!(balance, 2000 - 2 * debits, "{login}");
        assert_eq!(gateway.balance(login) as usize, balance);
    }

    // --rm removes the stack and keeps the data.
    let removed = terrarium()
        .args(["deploy", "swarm", "--rm"])
        .arg(&dir)
        .env("TERRARIUM_DOCKER", docker_bin())
        .output()
        .expect("rm");
    let out = text(&removed);
    assert!(removed.status.success(), "{out}");
    assert!(
        out.contains(&format!("kept volumes: {name}_pgdata")),
        "{out}"
    );
}
