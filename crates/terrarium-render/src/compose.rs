//! compose.yaml: each Python service with its health check, restart policy, settings from the
//! environment, named volumes, read-only root and ports on 127.0.0.1; optionally a reverse proxy
//! in its own container (L03, L20), PostgreSQL, and one-off jobs (migrations).

use std::fmt::Write as _;
use std::path::Path;

use terrarium_plan::{Plan, volume_name};

use crate::{RenderOptions, json_array, json_string};

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn quoted(s: &str) -> String {
    json_string(s)
}

/// PostgreSQL's settings as compose interpolations, with defaults.
pub(crate) struct Database {
    pub user: String,
    pub name: String,
}

impl Database {
    fn user(&self) -> String {
        format!("${{POSTGRES_USER:-{}}}", self.user)
    }

    fn name(&self) -> String {
        format!("${{POSTGRES_DB:-{}}}", self.name)
    }

    fn password() -> &'static str {
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    }

    /// `DATABASE_URL` for a client service.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{}:{}@db:5432/{}",
            self.user(),
            Self::password(),
            self.name()
        )
    }
}

/// One Python service, or a one-off job in a service's image.
pub(crate) struct ServiceBlock<'a> {
    /// The compose service name.
    pub name: &'a str,
    /// The service's plan.
    pub plan: &'a Plan,
    /// The build context, relative to the compose file (`.`, `./points`).
    pub context: &'a str,
    /// Publish the port on 127.0.0.1, host side from this variable; otherwise only expose it.
    pub publish_env: Option<&'a str>,
    /// Settings that replace the plan's (name, value as written in compose).
    pub overrides: Vec<(String, String)>,
    /// A job's command: it runs once and exits; no port, no health check, no restart.
    pub job_command: Option<&'a [String]>,
    /// Services this one waits for, and the condition.
    pub depends_on: Vec<(String, &'static str)>,
    /// Prefix for its named volumes, so two services' `/data` stay apart.
    pub volume_prefix: Option<&'a str>,
}

impl ServiceBlock<'_> {
    /// The named volume of one of its data directories.
    pub fn volume(&self, path: &str) -> String {
        match self.volume_prefix {
            Some(prefix) => format!("{prefix}-{}", volume_name(path)),
            None => volume_name(path),
        }
    }
}

/// Write one service block.
pub(crate) fn service_block(out: &mut String, block: &ServiceBlock<'_>) {
    let plan = block.plan;
    let port = plan.port.value;
    let _ = writeln!(out, "  {}:", block.name);
    // A uv workspace member is built from the workspace root, where its lock is.
    let (context, dockerfile) = match plan.workspace() {
        Some(workspace) => (
            match block.context {
                "." => workspace.root.display().to_string(),
                context => Path::new(context)
                    .join(&workspace.root)
                    .display()
                    .to_string(),
            },
            format!("{}/Dockerfile", workspace.member.display()),
        ),
        None => (block.context.to_string(), "Dockerfile".to_string()),
    };
    let _ = writeln!(
        out,
        "    build:\n      context: {context}\n      dockerfile: {dockerfile}"
    );
    if let Some(command) = block.job_command {
        let _ = writeln!(out, "    command: {}", json_array(command));
    } else if let Some(var) = block.publish_env {
        let _ = writeln!(
            out,
            "    ports:\n      - \"127.0.0.1:${{{var}:-{port}}}:{port}\""
        );
    } else {
        let _ = writeln!(out, "    expose:\n      - \"{port}\"");
    }
    let mut env_lines = Vec::new();
    for setting in &plan.env.value {
        let name = &setting.name;
        if block.overrides.iter().any(|(n, _)| n == name) {
            continue;
        }
        env_lines.push(match (&setting.default, setting.secret, setting.required) {
            // The server binds this port and the health check probes it: not a knob here.
            (Some(default), _, _) if name == "PORT" => format!("{name}={default}"),
            (_, true, true) => {
                format!("{name}=${{{name}:?set {name} in your environment or .env}}")
            }
            (_, true, false) => name.clone(),
            (Some(default), false, _) => format!("{name}=${{{name}:-{default}}}"),
            (None, false, true) => {
                format!("{name}=${{{name}:?set {name} in your environment or .env}}")
            }
            (None, false, false) => name.clone(),
        });
    }
    env_lines.extend(
        block
            .overrides
            .iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    if !env_lines.is_empty() {
        out.push_str("    environment:\n");
        for line in env_lines {
            let _ = writeln!(out, "      - {}", quoted(&line));
        }
    }
    if !plan.volumes.value.is_empty() && block.job_command.is_none() {
        out.push_str("    volumes:\n");
        for volume in &plan.volumes.value {
            let _ = writeln!(
                out,
                "      - {}:{}",
                block.volume(&volume.path),
                volume.path
            );
        }
    }
    out.push_str("    read_only: true\n    tmpfs:\n      - /tmp\n");
    if block.job_command.is_none()
        && let Some(check) = plan.healthcheck_probe()
    {
        let mut test = vec!["CMD".to_string()];
        test.extend(check.command);
        let _ = writeln!(
            out,
            "    healthcheck:\n      test: {}\n      interval: 10s\n      timeout: 5s\n      retries: 5\n      start_period: 10s",
            json_array(&test)
        );
    }
    depends_on(out, &block.depends_on);
    let restart = if block.job_command.is_some() {
        "\"no\""
    } else {
        "unless-stopped"
    };
    let _ = writeln!(out, "    restart: {restart}");
}

fn depends_on(out: &mut String, services: &[(String, &'static str)]) {
    if services.is_empty() {
        return;
    }
    out.push_str("    depends_on:\n");
    for (service, condition) in services {
        let _ = writeln!(out, "      {service}:\n        condition: {condition}");
    }
}

/// The reverse proxy: nginx with the generated config mounted read-only, the only published port.
pub(crate) fn proxy_block(
    out: &mut String,
    name: &str,
    image: &str,
    port_env: &str,
    port: u16,
    conf: &str,
    waits_for: &[String],
) {
    let _ = writeln!(out, "  {name}:\n    image: {image}");
    let _ = writeln!(
        out,
        "    ports:\n      - \"127.0.0.1:${{{port_env}:-{port}}}:80\""
    );
    let _ = writeln!(
        out,
        "    volumes:\n      - {conf}:/etc/nginx/conf.d/default.conf:ro"
    );
    out.push_str("    healthcheck:\n");
    let _ = writeln!(
        out,
        "      test: {}\n      interval: 10s\n      timeout: 5s\n      retries: 5",
        json_array(&[
            "CMD".into(),
            "bash".into(),
            "-c".into(),
            "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET /nginx-health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3".into(),
        ])
    );
    let waits: Vec<(String, &'static str)> = waits_for
        .iter()
        .map(|s| (s.clone(), "service_healthy"))
        .collect();
    depends_on(out, &waits);
    out.push_str("    restart: unless-stopped\n");
}

/// PostgreSQL with a named volume and a health check.
pub(crate) fn postgres_block(out: &mut String, image: &str, database: &Database) {
    let _ = writeln!(out, "  db:\n    image: {image}");
    out.push_str("    environment:\n");
    for line in [
        format!("POSTGRES_USER={}", database.user()),
        format!("POSTGRES_DB={}", database.name()),
        format!("POSTGRES_PASSWORD={}", Database::password()),
    ] {
        let _ = writeln!(out, "      - {}", quoted(&line));
    }
    out.push_str("    volumes:\n      - pgdata:/var/lib/postgresql/data\n");
    out.push_str("    healthcheck:\n");
    let _ = writeln!(
        out,
        "      test: {}\n      interval: 5s\n      timeout: 5s\n      retries: 10",
        json_array(&[
            "CMD-SHELL".into(),
            "pg_isready -U \"$${POSTGRES_USER}\" -d \"$${POSTGRES_DB}\"".into()
        ])
    );
    out.push_str("    restart: unless-stopped\n");
}

/// The top-level `volumes:` section.
pub(crate) fn named_volumes(out: &mut String, names: &[String]) {
    if names.is_empty() {
        return;
    }
    out.push_str("\nvolumes:\n");
    for name in names {
        let _ = writeln!(out, "  {name}:");
    }
}

/// The compose file for a single project.
pub(crate) fn compose(plan: &Plan, options: RenderOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Services of {}, written by `terrarium init`. You own this file.",
        plan.name
    );
    out.push_str("#   docker compose up --build     (or: terrarium up)\n");
    out.push_str(
        "# Ports are published on 127.0.0.1 only (HOST_PORT / PROXY_PORT pick the host side).\n",
    );
    out.push_str("# Settings come from the environment or .env (L10);\n");
    out.push_str("# secrets are passed through, never written here (L22).\n");
    out.push_str("services:\n");
    let database = Database {
        user: "app".into(),
        name: "app".into(),
    };
    let mut overrides = Vec::new();
    let mut waits = Vec::new();
    if options.postgres {
        overrides.push(("DATABASE_URL".to_string(), database.url()));
        waits.push(("db".to_string(), "service_healthy"));
    }
    service_block(
        &mut out,
        &ServiceBlock {
            name: "app",
            plan,
            context: ".",
            publish_env: (!options.proxy).then_some("HOST_PORT"),
            overrides,
            job_command: None,
            depends_on: waits,
            volume_prefix: None,
        },
    );
    if options.proxy {
        out.push('\n');
        proxy_block(
            &mut out,
            "proxy",
            &plan.proxy_image.value,
            "PROXY_PORT",
            8080,
            "./proxy/nginx.conf",
            &["app".to_string()],
        );
    }
    if options.postgres {
        out.push('\n');
        postgres_block(&mut out, &plan.postgres_image.value, &database);
    }
    let mut names: Vec<String> = plan
        .volumes
        .value
        .iter()
        .map(|v| volume_name(&v.path))
        .collect();
    if options.postgres {
        names.push("pgdata".into());
    }
    named_volumes(&mut out, &names);
    out
}

/// nginx's configuration: routes (path prefix → upstream service:port), each service's health
/// route under /health/NAME, and the proxy's own /nginx-health.
pub(crate) fn nginx_conf(
    title: &str,
    upstreams: &[(String, u16)],
    routes: &[(String, String)],
    health: &[(String, String)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Reverse proxy for {title}, written by `terrarium init`: nginx runs in its own container"
    );
    out.push_str("# and forwards to the services (L03); scale them behind it (L20). Paths not listed here are\n");
    out.push_str("# not reachable from outside.\n");
    for (service, port) in upstreams {
        let _ = writeln!(
            out,
            "upstream {service} {{\n    server {service}:{port};\n}}\n"
        );
    }
    out.push_str("server {\n    listen 80;\n\n");
    out.push_str("    location = /nginx-health {\n        access_log off;\n        return 200 \"ok\\n\";\n    }\n");
    for (service, path) in health {
        let _ = writeln!(
            out,
            "\n    location = /health/{service} {{\n        proxy_pass http://{service}{path};\n    }}"
        );
    }
    for (prefix, service) in routes {
        let _ = writeln!(
            out,
            "\n    location {prefix} {{\n        proxy_pass http://{service};\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n    }}"
        );
    }
    out.push_str("}\n");
    out
}

/// `.env` with fresh random values for the given secrets; never committed (it is in
/// .dockerignore and belongs in .gitignore).
pub(crate) fn dotenv(secrets: &[&str]) -> String {
    let mut out = String::from(
        "# Local settings for `docker compose` / `terrarium up`, written by `terrarium init`.\n\
         # Keep this file out of version control.\n",
    );
    for name in secrets {
        let mut bytes = [0u8; 18];
        let value: String = match getrandom::fill(&mut bytes) {
            Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            // Never a weak secret: left empty, compose's `:?` check stops `up` with a clear message.
            Err(_) => String::new(),
        };
        let _ = writeln!(out, "{name}={value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        assert_eq!(volume_name("/data"), "data");
        assert_eq!(volume_name("/data/uploads/"), "uploads");
        assert_eq!(volume_name("/var/lib/my app"), "my-app");
    }

    #[test]
    fn dotenv_secrets_are_random_and_long() {
        let a = dotenv(&["POSTGRES_PASSWORD", "WEBHOOK_SECRET"]);
        let b = dotenv(&["POSTGRES_PASSWORD", "WEBHOOK_SECRET"]);
        assert_ne!(a, b);
        for name in ["POSTGRES_PASSWORD", "WEBHOOK_SECRET"] {
            let value = a
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap();
            assert_eq!(value.len(), 36);
        }
    }

    #[test]
    fn nginx_routes_and_health() {
        let conf = nginx_conf(
            "shop",
            &[("api".into(), 8000)],
            &[("/api/".into(), "api".into())],
            &[("api".into(), "/health".into())],
        );
        assert!(conf.contains("upstream api {\n    server api:8000;\n}"));
        assert!(conf.contains("location /api/ {\n        proxy_pass http://api;"));
        assert!(conf.contains("location = /health/api {\n        proxy_pass http://api/health;"));
    }
}
