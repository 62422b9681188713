//! Docker Swarm: `stack.yaml` (the system as a stack: replicas, start-first rolling updates that
//! roll back by themselves, restart policies, resources, health checks, Swarm secrets, the
//! gateway as the only published port, PostgreSQL pinned to one node with its volume) and the
//! driver that builds the images and runs `docker stack deploy` (see [`Swarm`]).

mod driver;

use std::path::PathBuf;

use terrarium_plan::{ServicePlan, SystemPlan, volume_name};
use terrarium_render::RenderedFile;

use crate::yaml::{Node, map, strings};
use crate::{Setting, Target, env_name, settings};

pub use driver::{DeployError, DeployReport, ServiceStatus, Swarm, SwarmOptions, stack_exists};

/// The stack file's name, beside terrarium.toml (or the project's files).
pub const STACK_FILE: &str = "stack.yaml";
/// The gateway's nginx config for Swarm, delivered to it as a Swarm config.
pub const GATEWAY_CONF: &str = "gateway/nginx.stack.conf";
/// Where Swarm mounts secrets in a container.
const SECRETS_DIR: &str = "/run/secrets";

/// Loads every file of /run/secrets into the environment under its own name, then executes
/// the service's command: apps that read settings only from the environment (L10) get Swarm
/// secrets without a value ever being written into the stack file or the image. Python is in
/// every image terrarium writes or builds; the command replaces it as PID 1.
/// An empty file (an optional secret the operator didn't give) leaves the variable unset.
const SECRETS_LAUNCHER: &str = "import os, sys; d = '/run/secrets'; os.environ.update({n: v for n in os.listdir(d) for v in [open(os.path.join(d, n)).read()] if v}); os.execvp(sys.argv[1], sys.argv[1:])";

/// The Swarm secret key of a setting (`LOYALTY_WEBHOOK_SECRET` -> `loyalty_webhook_secret`).
pub fn secret_key(setting: &str) -> String {
    setting.to_ascii_lowercase()
}

/// The variable `docker stack deploy` reads a service's image from (`POINTS_IMAGE`).
pub fn image_variable(service: &str) -> String {
    format!("{}_IMAGE", env_name(service))
}

/// The variable that versions the gateway's config (Swarm configs can't change in place).
pub const GATEWAY_CONF_VARIABLE: &str = "GATEWAY_CONF_VERSION";

/// The node label that pins the database: `node.labels.<this> == true`.
pub fn db_node_label(system: &str) -> String {
    format!("terrarium.{system}.db")
}

/// One secret the stack needs: its key in the stack file and the variable it is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSecret {
    /// Its key in the stack file and its name's suffix (`postgres_password`).
    pub key: String,
    /// What it holds.
    pub source: SecretSource,
    /// Whether a missing value stops the deploy.
    pub required: bool,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A variable of the operator's environment or `.env`.
    Variable(String),
    /// `DATABASE_URL` for the system's PostgreSQL, made from its user, database and password.
    DatabaseUrl,
}

/// Every secret of the system, in a fixed order.
pub fn stack_secrets(system: &SystemPlan) -> Vec<StackSecret> {
    let mut out: Vec<StackSecret> = Vec::new();
    let mut push = |secret: StackSecret| {
        if !out.iter().any(|s| s.key == secret.key) {
            out.push(secret);
        }
    };
    if system.postgres.is_some() {
        push(StackSecret {
            key: "postgres_password".into(),
            source: SecretSource::Variable("POSTGRES_PASSWORD".into()),
            required: true,
        });
    }
    for (client, service) in clients(system) {
        for setting in settings(system, service, &client) {
            match setting {
                Setting::Secret { name, required } => push(StackSecret {
                    key: secret_key(&name),
                    source: SecretSource::Variable(name),
                    required,
                }),
                Setting::DatabaseUrl => push(StackSecret {
                    key: "database_url".into(),
                    source: SecretSource::DatabaseUrl,
                    required: true,
                }),
                _ => {}
            }
        }
    }
    out
}

/// Every container that runs a service's image: the jobs first, then the services.
pub(crate) fn clients(system: &SystemPlan) -> Vec<(String, &ServicePlan)> {
    let mut out: Vec<(String, &ServicePlan)> = system
        .jobs
        .iter()
        .filter_map(|job| Some((job.name.clone(), system.service(&job.service)?)))
        .collect();
    out.extend(system.services.iter().map(|s| (s.name.clone(), s)));
    out
}

/// The stack file and, with a gateway, its nginx config.
pub fn render_stack(target: &Target) -> Vec<RenderedFile> {
    let system = &target.system;
    let mut files = vec![RenderedFile {
        path: PathBuf::from(STACK_FILE),
        contents: stack_file(target),
        secret: false,
        merge: None,
    }];
    if system.gateway.is_some() {
        files.push(RenderedFile {
            path: PathBuf::from(GATEWAY_CONF),
            contents: gateway_conf(system),
            secret: false,
            merge: None,
        });
    }
    files
}

fn duration(seconds: u32) -> Node {
    Node::Str(format!("{seconds}s"))
}

fn resources(cpus: &str, memory: &str, reserve_cpus: &str, reserve_memory: &str) -> Node {
    map([
        (
            "limits",
            map([("cpus", cpus.into()), ("memory", memory.into())]),
        ),
        (
            "reservations",
            map([
                ("cpus", reserve_cpus.into()),
                ("memory", reserve_memory.into()),
            ]),
        ),
    ])
}

/// A rolling update that starts the new task first, waits for its health check, and rolls
/// back by itself on the first failure.
fn start_first_update() -> Node {
    map([
        ("parallelism", 1u16.into()),
        ("delay", duration(5)),
        ("order", "start-first".into()),
        ("failure_action", "rollback".into()),
        ("monitor", duration(30)),
        ("max_failure_ratio", 0u16.into()),
    ])
}

/// For what must never run twice at once (a database on its volume, a port on the node).
fn stop_first_update(failure_action: &str) -> Node {
    map([
        ("parallelism", 1u16.into()),
        ("order", "stop-first".into()),
        ("failure_action", failure_action.into()),
        ("monitor", duration(30)),
    ])
}

fn environment(entries: &[(String, String)]) -> Node {
    map(entries.iter().map(|(k, v)| (k.clone(), Node::from(v))))
}

fn secret_refs(keys: &[(String, String)]) -> Node {
    Node::List(
        keys.iter()
            .map(|(key, target)| map([("source", key.into()), ("target", target.into())]))
            .collect(),
    )
}

/// A Python service or job: image, command, settings, secrets, read-only root.
fn app_service(
    system: &SystemPlan,
    service: &ServicePlan,
    client: &str,
    job_command: Option<&[String]>,
) -> Node {
    let plan = &service.plan;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut secrets: Vec<(String, String)> = Vec::new();
    for setting in settings(system, service, client) {
        match setting {
            Setting::Value { name, value } if name == "PORT" => env.push((name, value)),
            Setting::Value { name, value } => {
                let text = format!("${{{name}:-{value}}}");
                env.push((name, text));
            }
            Setting::Required { name } => {
                let text = format!("${{{name}:?set {name} in your environment or .env}}");
                env.push((name, text));
            }
            Setting::Secret { name, .. } => secrets.push((secret_key(&name), name)),
            Setting::DatabaseUrl => {
                secrets.push(("database_url".into(), "DATABASE_URL".into()));
            }
        }
    }
    let command: Vec<String> = job_command
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| plan.command.value.clone());
    let mut node = map([(
        "image",
        Node::Str(format!(
            "${{{}:?build the {} image and set {} (terrarium deploy swarm does both)}}",
            image_variable(&service.name),
            service.name,
            image_variable(&service.name)
        )),
    )]);
    if !secrets.is_empty() {
        let mut argv = vec!["python".to_string(), "-c".into(), SECRETS_LAUNCHER.into()];
        argv.extend(command);
        node = node.with("command", strings(argv));
    } else if job_command.is_some() {
        node = node.with("command", strings(command));
    }
    if !env.is_empty() {
        node = node.with("environment", environment(&env));
    }
    if !secrets.is_empty() {
        node = node.with("secrets", secret_refs(&secrets));
    }
    node = node.with("read_only", true);
    let mut mounts = vec![map([("type", "tmpfs".into()), ("target", "/tmp".into())])];
    if job_command.is_none() {
        mounts.extend(plan.volumes.value.iter().map(|v| {
            map([
                ("type", "volume".into()),
                (
                    "source",
                    Node::Str(format!("{}-{}", service.name, volume_name(&v.path))),
                ),
                ("target", Node::from(&v.path)),
            ])
        }));
    }
    node = node.with("volumes", Node::List(mounts));
    node
}

fn stack_file(target: &Target) -> String {
    let system = &target.system;
    let name = &system.name;
    let has_db = system.postgres.is_some();
    let front_back = system.gateway.is_some() && has_db;
    let mut services: Vec<(String, Node)> = Vec::new();

    if let Some((pg, image)) = &system.postgres {
        let node = map([
            ("image", Node::from(&image.value)),
            (
                "environment",
                map([
                    ("POSTGRES_USER", Node::from(&pg.user)),
                    ("POSTGRES_DB", Node::from(&pg.database)),
                    (
                        "POSTGRES_PASSWORD_FILE",
                        Node::Str(format!("{SECRETS_DIR}/postgres_password")),
                    ),
                ]),
            ),
            ("secrets", strings(["postgres_password"])),
            ("volumes", strings(["pgdata:/var/lib/postgresql/data"])),
            (
                "networks",
                strings([if front_back { "back" } else { "default" }]),
            ),
            (
                "healthcheck",
                map([
                    (
                        "test",
                        strings([
                            "CMD",
                            "pg_isready",
                            "-U",
                            pg.user.as_str(),
                            "-d",
                            pg.database.as_str(),
                        ]),
                    ),
                    ("interval", duration(5)),
                    ("timeout", duration(5)),
                    ("retries", 10u16.into()),
                    ("start_period", duration(30)),
                ]),
            ),
            ("stop_grace_period", duration(60)),
            (
                "deploy",
                map([
                    ("replicas", 1u16.into()),
                    ("endpoint_mode", "dnsrr".into()),
                    (
                        "placement",
                        map([(
                            "constraints",
                            strings([format!("node.labels.{} == true", db_node_label(name))]),
                        )]),
                    ),
                    ("update_config", stop_first_update("rollback")),
                    ("rollback_config", stop_first_update("pause")),
                    (
                        "restart_policy",
                        map([("condition", "any".into()), ("delay", duration(5))]),
                    ),
                    ("resources", resources("1", "1G", "0.25", "256M")),
                ]),
            ),
        ]);
        services.push(("db".into(), node));
    }

    for job in &system.jobs {
        let Some(service) = system.service(&job.service) else {
            continue;
        };
        let networks = if front_back {
            strings(["back"])
        } else {
            strings(["default"])
        };
        let node = app_service(system, service, &job.name, Some(&job.command))
            .with("networks", networks)
            .with(
                "deploy",
                map([
                    ("replicas", 1u16.into()),
                    (
                        "restart_policy",
                        map([
                            ("condition", "on-failure".into()),
                            ("delay", duration(5)),
                            ("max_attempts", 3u16.into()),
                        ]),
                    ),
                    // A one-off exits when done; Swarm would count that as a failed update.
                    (
                        "update_config",
                        map([("failure_action", "continue".into())]),
                    ),
                    ("resources", resources("1", "512M", "0.1", "64M")),
                ]),
            );
        services.push((job.name.clone(), node));
    }

    for service in &system.services {
        let plan = &service.plan;
        let db_client = system
            .postgres
            .as_ref()
            .is_some_and(|(pg, _)| pg.clients.contains(&service.name));
        let networks = match (front_back, db_client) {
            (true, true) => strings(["front", "back"]),
            (true, false) => strings(["front"]),
            (false, _) => strings(["default"]),
        };
        let mut node = app_service(system, service, &service.name, None);
        if target.single {
            let port = plan.port.value;
            node = node.with(
                "ports",
                Node::List(vec![map([
                    ("target", port.into()),
                    ("published", Node::Str(format!("${{HOST_PORT:-{port}}}"))),
                    ("protocol", "tcp".into()),
                    ("mode", "host".into()),
                ])]),
            );
        }
        node = node.with("networks", networks);
        if let Some(check) = plan.healthcheck_probe() {
            let mut test = vec!["CMD".to_string()];
            test.extend(check.command);
            node = node.with(
                "healthcheck",
                map([
                    ("test", strings(test)),
                    ("interval", duration(5)),
                    ("timeout", duration(4)),
                    ("retries", 3u16.into()),
                    ("start_period", duration(20)),
                ]),
            );
        }
        node = node.with("stop_grace_period", duration(30));
        // A single service publishes its port on the node: two tasks can't share it there.
        let (update, rollback) = if target.single {
            (stop_first_update("rollback"), stop_first_update("pause"))
        } else {
            (
                start_first_update(),
                map([
                    ("parallelism", 1u16.into()),
                    ("order", "start-first".into()),
                    ("failure_action", "pause".into()),
                    ("monitor", duration(30)),
                ]),
            )
        };
        let replicas = if target.single { 1 } else { service.replicas };
        node = node.with(
            "deploy",
            map([
                ("replicas", replicas.into()),
                ("endpoint_mode", "dnsrr".into()),
                ("update_config", update),
                ("rollback_config", rollback),
                (
                    "restart_policy",
                    map([
                        ("condition", "any".into()),
                        ("delay", duration(5)),
                        ("window", duration(30)),
                    ]),
                ),
                ("resources", resources("1", "512M", "0.1", "128M")),
            ]),
        );
        services.push((service.name.clone(), node));
    }

    if let Some((gateway, image)) = &system.gateway {
        let probe = "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET /nginx-health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3";
        let node = map([
            ("image", Node::from(&image.value)),
            (
                "configs",
                Node::List(vec![map([
                    ("source", "gateway_conf".into()),
                    ("target", "/etc/nginx/conf.d/default.conf".into()),
                ])]),
            ),
            (
                "ports",
                Node::List(vec![map([
                    ("target", 80u16.into()),
                    (
                        "published",
                        Node::Str(format!("${{{}:-{}}}", gateway.port_env, gateway.port)),
                    ),
                    ("protocol", "tcp".into()),
                    ("mode", "host".into()),
                ])]),
            ),
            (
                "networks",
                strings([if front_back { "front" } else { "default" }]),
            ),
            (
                "healthcheck",
                map([
                    ("test", strings(["CMD", "bash", "-c", probe])),
                    ("interval", duration(5)),
                    ("timeout", duration(4)),
                    ("retries", 3u16.into()),
                ]),
            ),
            ("stop_grace_period", duration(15)),
            (
                "deploy",
                map([
                    ("replicas", 1u16.into()),
                    ("endpoint_mode", "dnsrr".into()),
                    ("update_config", stop_first_update("rollback")),
                    ("rollback_config", stop_first_update("pause")),
                    (
                        "restart_policy",
                        map([("condition", "any".into()), ("delay", duration(5))]),
                    ),
                    ("resources", resources("0.5", "128M", "0.05", "32M")),
                ]),
            ),
        ]);
        services.push(("gateway".into(), node));
    }

    let overlay = || map([("driver", "overlay".into())]);
    let networks = if front_back {
        map([("front", overlay()), ("back", overlay())])
    } else {
        map([("default", overlay())])
    };
    let mut doc = map([
        ("version", "3.8".into()),
        ("services", Node::Map(services)),
        ("networks", networks),
    ]);
    let mut volumes: Vec<(String, Node)> = Vec::new();
    if has_db {
        volumes.push(("pgdata".into(), Node::Map(vec![])));
    }
    for service in &system.services {
        for v in &service.plan.volumes.value {
            volumes.push((
                format!("{}-{}", service.name, volume_name(&v.path)),
                Node::Map(vec![]),
            ));
        }
    }
    if !volumes.is_empty() {
        doc = doc.with("volumes", Node::Map(volumes));
    }
    let secrets = stack_secrets(system);
    if !secrets.is_empty() {
        doc = doc.with(
            "secrets",
            map(secrets.iter().map(|s| {
                (
                    s.key.clone(),
                    map([
                        ("external", true.into()),
                        ("name", Node::Str(format!("{name}_{}", s.key))),
                    ]),
                )
            })),
        );
    }
    if system.gateway.is_some() {
        doc = doc.with(
            "configs",
            map([(
                "gateway_conf",
                map([
                    ("file", Node::Str(format!("./{GATEWAY_CONF}"))),
                    (
                        "name",
                        Node::Str(format!("{name}_gateway_${{{GATEWAY_CONF_VARIABLE}:-1}}")),
                    ),
                ]),
            )]),
        );
    }

    let mut out = String::new();
    out.push_str(&format!(
        "# The {name} system as a Docker Swarm stack, written by `terrarium deploy swarm`. You own this file.\n"
    ));
    out.push_str("#   terrarium deploy swarm            build the images, create the secrets from .env, deploy, wait\n");
    out.push_str("#   terrarium deploy swarm --status   replicas, health and the last update of each service\n");
    let images = system
        .services
        .iter()
        .map(|s| image_variable(&s.name))
        .collect::<Vec<_>>()
        .join(", ");
    if secrets.is_empty() {
        out.push_str(&format!(
            "# By hand: build and push the images, set {images}, then `docker stack deploy -c {STACK_FILE} {name}`.\n"
        ));
    } else {
        out.push_str(&format!(
            "# By hand: build and push the images, set {images}, create the secrets\n# ({}), then `docker stack deploy -c {STACK_FILE} {name}`.\n",
            secrets
                .iter()
                .map(|s| format!("{name}_{}", s.key))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str("# Services are found by DNS round robin (endpoint_mode: dnsrr) and published in host mode, so no\n");
    if system.gateway.is_some() {
        out.push_str("# IPVS is needed; the gateway balances and retries per replica. Secrets are Swarm secrets, never values here.\n");
    } else {
        out.push_str("# IPVS is needed; the port is published on the node the service runs on.\n");
    }
    out.push_str(&crate::yaml::to_string(&doc));
    out
}

/// The nginx variable holding a service's `name:port` (prefixed, so no service name can shadow
/// one of nginx's own variables such as `$host`).
fn upstream_variable(service: &str) -> String {
    format!("svc_{}", env_name(service).to_ascii_lowercase())
}

/// nginx for Swarm: names resolved through Docker's DNS at request time (every replica, and
/// replicas that come and go during a rolling update), a failed connection retried on the next
/// replica before any byte was sent.
pub fn gateway_conf(system: &SystemPlan) -> String {
    let mut out = format!(
        "# Reverse proxy for {} on Docker Swarm, written by `terrarium deploy swarm`. Each service name\n\
         # resolves to all of its replicas (DNS round robin), re-read every 2 s so replicas that start\n\
         # or stop during a rolling update are seen; a connection that fails goes to the next replica.\n\
         # Paths not listed here are not reachable from outside.\n",
        system.name
    );
    out.push_str("resolver 127.0.0.11 valid=2s ipv6=off;\n\nserver {\n    listen 80;\n\n");
    for service in &system.services {
        out.push_str(&format!(
            "    set ${} {}:{};\n",
            upstream_variable(&service.name),
            service.name,
            service.plan.port.value
        ));
    }
    out.push_str("\n    proxy_connect_timeout 2s;\n    proxy_next_upstream error timeout;\n    proxy_next_upstream_tries 3;\n");
    out.push_str("    proxy_set_header Host $host;\n    proxy_set_header X-Real-IP $remote_addr;\n    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    proxy_set_header X-Forwarded-Proto $scheme;\n\n");
    out.push_str("    location = /nginx-health {\n        access_log off;\n        return 200 \"ok\\n\";\n    }\n");
    for service in &system.services {
        if let Some(path) = &service.plan.healthcheck.value {
            out.push_str(&format!(
                "\n    location = /health/{} {{\n        proxy_pass http://${}{};\n    }}\n",
                service.name,
                upstream_variable(&service.name),
                path
            ));
        }
    }
    if let Some((gateway, _)) = &system.gateway {
        for route in &gateway.routes {
            out.push_str(&format!(
                "\n    location {} {{\n        proxy_pass http://${};\n    }}\n",
                route.prefix,
                upstream_variable(&route.service)
            ));
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_holds_no_secret_and_publishes_only_the_gateway() {
        let (_dir, target) = crate::test_system();
        let files = render_stack(&target);
        let stack = &files[0].contents;
        assert_eq!(files[1].path, PathBuf::from(GATEWAY_CONF));
        assert_eq!(stack.matches("published:").count(), 1, "{stack}");
        assert!(
            stack.contains(
                "published: \"${GATEWAY_PORT:-8080}\"\n      protocol: tcp\n      mode: host"
            ),
            "{stack}"
        );
        for key in ["api_token", "postgres_password", "database_url"] {
            assert!(
                stack.contains(&format!(
                    "  {key}:\n    external: true\n    name: shop_{key}\n"
                )),
                "{key}: {stack}"
            );
        }
        assert!(stack.contains("POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password"));
        assert!(
            stack.contains("- source: api_token\n      target: API_TOKEN"),
            "{stack}"
        );
        assert!(
            stack.contains("\"node.labels.terrarium.shop.db == true\""),
            "{stack}"
        );
        assert!(stack.contains("    deploy:\n      replicas: 3\n      endpoint_mode: dnsrr\n      update_config:\n        parallelism: 1\n        delay: 5s\n        order: start-first\n        failure_action: rollback"), "{stack}");
        // Only what holds a secret starts through the launcher.
        let web = stack.split("\n  web:\n").nth(1).expect("web");
        let web = web.split("\n  gateway:\n").next().expect("web block");
        assert!(!web.contains("command:"), "{web}");
        assert!(
            web.contains("API_URL: \"${API_URL:-http://api:8000/v1}\""),
            "{web}"
        );
    }

    #[test]
    fn the_gateway_resolves_replicas_at_request_time() {
        let (_dir, target) = crate::test_system();
        let conf = gateway_conf(&target.system);
        assert!(conf.contains("resolver 127.0.0.11 valid=2s ipv6=off;"));
        assert!(conf.contains("set $svc_api api:8000;"), "{conf}");
        assert!(
            conf.contains("location / {\n        proxy_pass http://$svc_web;"),
            "{conf}"
        );
        assert!(
            conf.contains("location = /health/api {\n        proxy_pass http://$svc_api/health;"),
            "{conf}"
        );
    }

    #[test]
    fn secrets_come_once_each() {
        let (_dir, target) = crate::test_system();
        let keys: Vec<String> = stack_secrets(&target.system)
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(keys, ["postgres_password", "api_token", "database_url"]);
    }
}
