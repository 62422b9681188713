//! Compose rules: the lessons as they apply to services.

use super::detect::{
    dev_server, has_url_password, is_database, is_database_port, is_debug_setting,
    is_literal_value, is_secret_name,
};
use super::supply::unpinned_message;
use super::{ComposeContext, Emitter, Rule, is_dev_name};
use crate::compose::{MountKind, Service};
use crate::finding::{LessonId, Severity};
use crate::shell;

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "compose-root-user",
        lesson: Some(LessonId::new(11)),
        severity: Severity::Error,
        summary: "a service runs as root (`user: root` or `user: \"0\"`)",
        rationale: "It overrides a non-root USER from the image and runs the process as root.",
        bad: "services:\n  app:\n    user: root",
        good: "services:\n  app:\n    user: \"65532:65532\"",
        fix: "remove `user: root` or set a non-root UID",
        dockerfile: None,
        compose: Some(root_user),
        kubernetes: None,
    },
    Rule {
        id: "compose-privileged",
        lesson: Some(LessonId::new(11)),
        severity: Severity::Error,
        summary: "a service is privileged or gets all capabilities",
        rationale: "A privileged container can do everything root on the host can.",
        bad: "services:\n  app:\n    privileged: true",
        good: "services:\n  app:\n    cap_drop: [ALL]",
        fix: "remove `privileged: true` / `cap_add: [ALL, SYS_ADMIN]`; add only the capability needed",
        dockerfile: None,
        compose: Some(privileged),
        kubernetes: None,
    },
    Rule {
        id: "docker-socket",
        lesson: Some(LessonId::new(11)),
        severity: Severity::Error,
        summary: "the Docker socket is mounted into a service",
        rationale: "Access to the Docker socket is root on the host.",
        bad: "volumes:\n  - /var/run/docker.sock:/var/run/docker.sock",
        good: "# talk to the service's API over the network instead",
        fix: "do not mount the Docker socket",
        dockerfile: None,
        compose: Some(docker_socket),
        kubernetes: None,
    },
    Rule {
        id: "compose-dev-server",
        lesson: Some(LessonId::new(2)),
        severity: Severity::Warning,
        summary: "a service runs a development server or debug mode outside a dev compose file",
        rationale: "compose.yaml is the prod-like description; dev servers and debug flags \
                    belong in compose.override.yaml / compose.dev.yaml or a dev service. A plain \
                    compose.yaml or docker-compose.yml with a production file beside it \
                    (docker-compose.prod.yml, compose.production.yaml) is the dev file and is \
                    exempt.",
        bad: "services:\n  app:\n    command: flask run --host 0.0.0.0",
        good: "services:\n  app:\n    command: [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"app:app\"]",
        fix: "run a production server here; move the dev command to compose.override.yaml",
        dockerfile: None,
        compose: Some(dev_server_rule),
        kubernetes: None,
    },
    Rule {
        id: "compose-public-port",
        lesson: Some(LessonId::new(16)),
        severity: Severity::Warning,
        summary: "a database or dev server port is published on all host interfaces",
        rationale: "`5432:5432` publishes on 0.0.0.0: anyone on the network reaches the \
                    database (and Docker bypasses host firewalls). Publish on 127.0.0.1.",
        bad: "ports:\n  - \"5432:5432\"",
        good: "ports:\n  - \"127.0.0.1:5432:5432\"",
        fix: "prefix the port with 127.0.0.1: (or do not publish it at all)",
        dockerfile: None,
        compose: Some(public_port),
        kubernetes: None,
    },
    Rule {
        id: "compose-stateful-no-volume",
        lesson: Some(LessonId::new(9)),
        severity: Severity::Warning,
        summary: "a database service has no volume for its data (info for Redis-style caches)",
        rationale: "Containers are ephemeral: without a volume the data is gone when the \
                    container is recreated.",
        bad: "db:\n  image: postgres:17",
        good: "db:\n  image: postgres:17\n  volumes:\n    - pgdata:/var/lib/postgresql/data",
        fix: "mount a named volume at the database's data directory",
        dockerfile: None,
        compose: Some(stateful_no_volume),
        kubernetes: None,
    },
    Rule {
        id: "compose-missing-healthcheck",
        lesson: Some(LessonId::new(18)),
        severity: Severity::Warning,
        summary: "a service has no healthcheck (warning for services built here, info otherwise)",
        rationale: "`depends_on: condition: service_healthy` and restarts need a health check.",
        bad: "app:\n  build: .",
        good: "app:\n  build: .\n  healthcheck:\n    test: [\"CMD\", \"python\", \"-c\", \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')\"]",
        fix: "add a `healthcheck:`",
        dockerfile: None,
        compose: Some(missing_healthcheck),
        kubernetes: None,
    },
    Rule {
        id: "compose-literal-secret",
        lesson: Some(LessonId::new(22)),
        severity: Severity::Error,
        summary: "a secret is written as a literal environment value",
        rationale: "Compose files are committed: a literal password is in git history forever.",
        bad: "environment:\n  POSTGRES_PASSWORD: hunter2",
        good: "environment:\n  POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}",
        fix: "use `${VAR}` from the environment or an env_file that is not committed",
        dockerfile: None,
        compose: Some(literal_secret),
        kubernetes: None,
    },
    Rule {
        id: "compose-floating-image",
        lesson: Some(LessonId::new(13)),
        severity: Severity::Warning,
        summary: "a service image has no tag, `latest` or another tag with no version (`redis:alpine`)",
        rationale: "The same compose file starts different software next week. A tag with no \
                    version in it (`alpine`, `slim`, `stable`) floats like `latest`.",
        bad: "image: postgres",
        good: "image: postgres:17.2-bookworm",
        fix: "pin a version tag",
        dockerfile: None,
        compose: Some(floating_image),
        kubernetes: None,
    },
    Rule {
        id: "compose-config-mount",
        lesson: Some(LessonId::new(10)),
        severity: Severity::Info,
        summary: "a configuration file is bind-mounted into a service",
        rationale: "Configuration through environment variables travels better; a mounted \
                    config file ties the service to a host path. Common (and fine) for proxies. \
                    Dev files and dev services are exempt: mounting source and settings for \
                    live reload is what they are for.",
        bad: "volumes:\n  - ./settings.py:/app/settings.py",
        good: "environment:\n  DATABASE_URL: ${DATABASE_URL}",
        fix: "prefer environment variables; keep mounted config files read-only",
        dockerfile: None,
        compose: Some(config_mount),
        kubernetes: None,
    },
    Rule {
        id: "compose-no-restart",
        lesson: Some(LessonId::new(20)),
        severity: Severity::Info,
        summary: "a service has no restart policy",
        rationale: "Without one a crashed service stays down.",
        bad: "app:\n  build: .",
        good: "app:\n  build: .\n  restart: unless-stopped",
        fix: "add `restart: unless-stopped`",
        dockerfile: None,
        compose: Some(no_restart),
        kubernetes: None,
    },
    Rule {
        id: "compose-no-limits",
        lesson: Some(LessonId::new(20)),
        severity: Severity::Info,
        summary: "a service has no resource limits",
        rationale: "One runaway service can starve the others on the host.",
        bad: "app:\n  build: .",
        good: "app:\n  build: .\n  deploy:\n    resources:\n      limits:\n        memory: 512M",
        fix: "add deploy.resources.limits",
        dockerfile: None,
        compose: Some(no_limits),
        kubernetes: None,
    },
    Rule {
        id: "compose-host-path",
        lesson: Some(LessonId::new(21)),
        severity: Severity::Info,
        summary: "a bind mount uses an absolute host path",
        rationale: "Absolute host paths only exist on one machine; use paths relative to the \
                    compose file or named volumes.",
        bad: "volumes:\n  - /home/alice/data:/data",
        good: "volumes:\n  - appdata:/data",
        fix: "use a named volume or a path relative to the compose file",
        dockerfile: None,
        compose: Some(host_path),
        kubernetes: None,
    },
    Rule {
        id: "compose-ssh",
        lesson: Some(LessonId::new(15)),
        severity: Severity::Warning,
        summary: "a service runs or publishes SSH",
        rationale: "Debug with `docker compose exec`, not SSH.",
        bad: "ports:\n  - \"2222:22\"",
        good: "# docker compose exec app sh",
        fix: "remove the SSH port and server",
        dockerfile: None,
        compose: Some(ssh),
        kubernetes: None,
    },
    Rule {
        id: "compose-process-manager",
        lesson: Some(LessonId::new(1)),
        severity: Severity::Warning,
        summary: "a service command runs a process manager or backgrounds processes",
        rationale: "One process per container: split the processes into services.",
        bad: "command: sh -c \"celery worker & gunicorn app:app\"",
        good: "app:\n  command: [\"gunicorn\", \"app:app\"]\nworker:\n  command: [\"celery\", \"-A\", \"app\", \"worker\"]",
        fix: "give each process its own service",
        dockerfile: None,
        compose: Some(process_manager),
        kubernetes: None,
    },
];

fn is_dev_service(cx: &ComposeContext<'_>, service: &Service) -> bool {
    cx.dev_file || service.name.value.split(['-', '_']).any(is_dev_name)
}

fn commands(service: &Service) -> Vec<(crate::span::Location, shell::Script)> {
    [&service.entrypoint, &service.command]
        .into_iter()
        .flatten()
        .map(|node| {
            let mut script = shell::parse(&node.value, &|i| i);
            script.expand_shell_c();
            (node.at, script)
        })
        .collect()
}

fn root_user(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        if let Some(user) = &s.user {
            let name = user.value.split(':').next().unwrap_or("");
            if name == "root" || name == "0" {
                out.at(user.at, format!("service `{}` runs as root", s.name.value));
            }
        }
    }
}

fn privileged(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        if let Some(p) = s.privileged.as_ref().filter(|p| p.value) {
            out.at(p.at, format!("service `{}` is privileged", s.name.value));
        }
        for cap in &s.cap_add {
            if matches!(
                cap.value.to_ascii_uppercase().trim_start_matches("CAP_"),
                "ALL" | "SYS_ADMIN"
            ) {
                out.at(
                    cap.at,
                    format!("service `{}` gets capability {}", s.name.value, cap.value),
                );
            }
        }
    }
}

fn docker_socket(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        for m in &s.volumes {
            if m.source
                .as_deref()
                .is_some_and(|src| src.ends_with("docker.sock"))
            {
                out.at(
                    m.at,
                    format!("service `{}` mounts the Docker socket", s.name.value),
                );
            }
        }
    }
}

fn dev_server_rule(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in cx.file.services.iter().filter(|s| !is_dev_service(cx, s)) {
        for (at, script) in commands(s) {
            if let Some(what) = script.commands.iter().find_map(dev_server) {
                out.at(
                    at,
                    format!(
                        "service `{}` runs the development server (`{what}`)",
                        s.name.value
                    ),
                );
            }
        }
        for env in &s.environment {
            if env
                .value
                .as_deref()
                .is_some_and(|v| is_debug_setting(&env.key, v))
            {
                out.at(
                    env.at,
                    format!("service `{}` sets `{}` (debug mode)", s.name.value, env.key),
                );
            }
        }
    }
}

fn all_interfaces(host_ip: Option<&str>) -> bool {
    matches!(host_ip, None | Some("0.0.0.0" | "::" | ""))
}

fn public_port(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        let db = s.image.as_ref().is_some_and(|i| is_database(&i.value));
        let dev = commands(s)
            .iter()
            .any(|(_, sc)| sc.commands.iter().any(|c| dev_server(c).is_some()));
        for p in &s.ports {
            if p.published.is_none() || !all_interfaces(p.host_ip.as_deref()) {
                continue;
            }
            if db || is_database_port(&p.target) {
                out.at(
                    p.at,
                    format!(
                        "database port {} of `{}` is published on all interfaces",
                        p.target, s.name.value
                    ),
                );
            } else if dev {
                out.at(
                    p.at,
                    format!(
                        "the dev server of `{}` is published on all interfaces",
                        s.name.value
                    ),
                );
            }
        }
    }
}

fn stateful_no_volume(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        let Some(image) = &s.image else { continue };
        let has_volume = s
            .volumes
            .iter()
            .any(|m| matches!(m.kind, MountKind::Volume | MountKind::Bind));
        if !is_database(&image.value) || has_volume || image.value.contains("memcached") {
            continue;
        }
        // Redis-style stores are often used as caches or brokers whose data may be lost.
        let cache = ["redis", "valkey", "keydb"]
            .iter()
            .any(|c| image.value.contains(c));
        let severity = if cache {
            Severity::Info
        } else {
            Severity::Warning
        };
        out.at_with(
            s.name.at,
            severity,
            format!(
                "database service `{}` keeps its data only in the container",
                s.name.value
            ),
        );
    }
}

fn missing_healthcheck(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    // A one-off job (another service waits for it to complete) has nothing to probe.
    let is_job = |name: &str| {
        cx.file
            .services
            .iter()
            .any(|other| other.awaits_completion_of.iter().any(|j| j == name))
    };
    for s in cx
        .file
        .services
        .iter()
        .filter(|s| !s.healthcheck && !is_job(&s.name.value))
    {
        let severity = if s.build && !is_dev_service(cx, s) {
            Severity::Warning
        } else {
            Severity::Info
        };
        out.at_with(
            s.name.at,
            severity,
            format!("service `{}` has no healthcheck", s.name.value),
        );
    }
}

fn literal_secret(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        for env in &s.environment {
            let literal = env.value.as_deref().is_some_and(|v| {
                (is_secret_name(&env.key) && is_literal_value(v) && !v.contains("${"))
                    || has_url_password(v)
            });
            if literal {
                out.at(
                    env.at,
                    format!(
                        "`{}` of service `{}` is a literal secret",
                        env.key, s.name.value
                    ),
                );
            }
        }
    }
}

fn floating_image(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in cx.file.services.iter().filter(|s| !s.build) {
        let Some(image) = &s.image else { continue };
        if image.value.contains('$') {
            continue;
        }
        if let Some(message) = unpinned_message(&image.value) {
            out.at(image.at, message);
        }
    }
}

fn config_mount(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    const EXTS: [&str; 10] = [
        ".conf",
        ".cfg",
        ".ini",
        ".yaml",
        ".yml",
        ".json",
        ".toml",
        ".env",
        ".py",
        ".properties",
    ];
    for s in cx.file.services.iter().filter(|s| !is_dev_service(cx, s)) {
        for m in s.volumes.iter().filter(|m| m.kind == MountKind::Bind) {
            let Some(src) = &m.source else { continue };
            if EXTS.iter().any(|e| src.ends_with(e)) {
                out.at(
                    m.at,
                    format!(
                        "`{src}` is a configuration file mounted into `{}`",
                        s.name.value
                    ),
                );
            }
        }
    }
}

fn no_restart(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in cx
        .file
        .services
        .iter()
        .filter(|s| !s.restart && !is_dev_service(cx, s))
    {
        out.at(
            s.name.at,
            format!("service `{}` has no restart policy", s.name.value),
        );
    }
}

fn no_limits(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in cx
        .file
        .services
        .iter()
        .filter(|s| !s.limits && !is_dev_service(cx, s))
    {
        out.at(
            s.name.at,
            format!("service `{}` has no resource limits", s.name.value),
        );
    }
}

fn host_path(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        for m in s.volumes.iter().filter(|m| m.kind == MountKind::Bind) {
            let Some(src) = &m.source else { continue };
            if (src.starts_with('/') || src.starts_with('~')) && !src.ends_with("docker.sock") {
                out.at(m.at, format!("`{src}` is an absolute host path"));
            }
        }
    }
}

fn ssh(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        for p in s.ports.iter().filter(|p| p.target == "22") {
            out.at(p.at, format!("service `{}` publishes SSH", s.name.value));
        }
        for (at, script) in commands(s) {
            if script
                .commands
                .iter()
                .any(|c| matches!(c.program_name(), Some("sshd" | "dropbear")))
            {
                out.at(at, format!("service `{}` runs an SSH server", s.name.value));
            }
        }
    }
}

fn process_manager(cx: &ComposeContext<'_>, out: &mut Emitter<'_>) {
    for s in &cx.file.services {
        for (at, script) in commands(s) {
            let manager = script.commands.iter().find_map(|c| {
                c.program_name().filter(|p| {
                    matches!(
                        *p,
                        "supervisord"
                            | "runsvdir"
                            | "s6-svscan"
                            | "cron"
                            | "crond"
                            | "honcho"
                            | "circusd"
                    )
                })
            });
            if let Some(m) = manager {
                out.at(
                    at,
                    format!("service `{}` runs the process manager `{m}`", s.name.value),
                );
            } else if script.commands.iter().any(|c| c.background) {
                out.at(
                    at,
                    format!("service `{}` backgrounds a process with `&`", s.name.value),
                );
            }
        }
    }
}
