//! compose.yaml: the app with its health check, restart policy, settings from the environment,
//! named volumes and ports on 127.0.0.1; optionally an nginx proxy in front (L03) and PostgreSQL.

use std::fmt::Write as _;

use terrarium_plan::Plan;

use crate::{RenderOptions, healthcheck_command, json_array, json_string};

const DB_USER: &str = "${POSTGRES_USER:-app}";
const DB_NAME: &str = "${POSTGRES_DB:-app}";
const DB_PASSWORD: &str = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}";

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn quoted(s: &str) -> String {
    json_string(s)
}

/// The named volume for a container path: its last component (`/data/uploads` → `uploads`).
fn volume_name(path: &str) -> String {
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("data");
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "data".to_string()
    } else {
        name
    }
}

/// The compose file for `plan`.
pub(crate) fn compose(plan: &Plan, options: RenderOptions) -> String {
    let port = plan.port.value;
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
    out.push_str("services:\n  app:\n    build:\n      context: .\n      dockerfile: Dockerfile\n");
    if options.proxy {
        let _ = writeln!(out, "    expose:\n      - \"{port}\"");
    } else {
        let _ = writeln!(
            out,
            "    ports:\n      - \"127.0.0.1:${{HOST_PORT:-{port}}}:{port}\""
        );
    }
    let mut env_lines = Vec::new();
    for setting in &plan.env.value {
        let name = &setting.name;
        let line = match (&setting.default, setting.secret, setting.required) {
            // The server binds this port and the health check probes it: not a knob here.
            (Some(default), _, _) if name == "PORT" => format!("{name}={default}"),
            (_, true, true) => {
                format!("{name}=${{{name}:?set {name} in your environment or .env}}")
            }
            (_, true, false) => name.to_string(),
            (Some(default), false, _) => format!("{name}=${{{name}:-{default}}}"),
            (None, false, _) => {
                format!("{name}=${{{name}:?set {name} in your environment or .env}}")
            }
        };
        if options.postgres && name == "DATABASE_URL" {
            continue;
        }
        env_lines.push(line);
    }
    if options.postgres {
        env_lines.push(format!(
            "DATABASE_URL=postgresql://{DB_USER}:{DB_PASSWORD}@db:5432/{DB_NAME}"
        ));
    }
    if !env_lines.is_empty() {
        out.push_str("    environment:\n");
        for line in env_lines {
            let _ = writeln!(out, "      - {}", quoted(&line));
        }
    }
    if !plan.volumes.value.is_empty() {
        out.push_str("    volumes:\n");
        for volume in &plan.volumes.value {
            let _ = writeln!(out, "      - {}:{}", volume_name(&volume.path), volume.path);
        }
    }
    out.push_str("    read_only: true\n    tmpfs:\n      - /tmp\n");
    if let Some(check) = healthcheck_command(plan) {
        let mut test = vec!["CMD".to_string()];
        test.extend(check);
        let _ = writeln!(
            out,
            "    healthcheck:\n      test: {}\n      interval: 10s\n      timeout: 5s\n      retries: 5\n      start_period: 10s",
            json_array(&test)
        );
    }
    if options.postgres {
        out.push_str("    depends_on:\n      db:\n        condition: service_healthy\n");
    }
    out.push_str("    restart: unless-stopped\n");

    if options.proxy {
        let _ = writeln!(out, "\n  proxy:\n    image: {}", plan.proxy_image.value);
        out.push_str("    ports:\n      - \"127.0.0.1:${PROXY_PORT:-8080}:80\"\n");
        out.push_str(
            "    volumes:\n      - ./proxy/nginx.conf:/etc/nginx/conf.d/default.conf:ro\n",
        );
        out.push_str("    healthcheck:\n");
        out.push_str(&format!(
            "      test: {}\n      interval: 10s\n      timeout: 5s\n      retries: 5\n",
            json_array(&[
                "CMD".into(),
                "bash".into(),
                "-c".into(),
                "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET /nginx-health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3".into(),
            ])
        ));
        out.push_str("    depends_on:\n      app:\n        condition: service_healthy\n");
        out.push_str("    restart: unless-stopped\n");
    }
    if options.postgres {
        let _ = writeln!(out, "\n  db:\n    image: {}", plan.postgres_image.value);
        out.push_str("    environment:\n");
        for line in [
            format!("POSTGRES_USER={DB_USER}"),
            format!("POSTGRES_DB={DB_NAME}"),
            format!("POSTGRES_PASSWORD={DB_PASSWORD}"),
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

    let mut named: Vec<String> = plan
        .volumes
        .value
        .iter()
        .map(|v| volume_name(&v.path))
        .collect();
    if options.postgres {
        named.push("pgdata".into());
    }
    if !named.is_empty() {
        out.push_str("\nvolumes:\n");
        for name in named {
            let _ = writeln!(out, "  {name}:");
        }
    }
    out
}

/// The proxy's nginx configuration: forward everything to the app, answer its own health route.
pub(crate) fn nginx_conf(plan: &Plan) -> String {
    format!(
        "# Reverse proxy for {name}, written by `terrarium init`: nginx runs in its own container\n\
         # and forwards to the app service (L03); scale the app behind it (L20).\n\
         upstream app {{\n    server app:{port};\n}}\n\n\
         server {{\n    listen 80;\n\n\
         \x20   location = /nginx-health {{\n        access_log off;\n        return 200 \"ok\\n\";\n    }}\n\n\
         \x20   location / {{\n        proxy_pass http://app;\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n}}\n",
        name = plan.name,
        port = plan.port.value
    )
}

/// `.env` with a fresh random database password; never committed (it is in .dockerignore and
/// belongs in .gitignore).
pub(crate) fn dotenv() -> String {
    let mut bytes = [0u8; 18];
    let password: String = match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        // Never a weak password: left empty, compose's `:?` check stops `up` with a clear message.
        Err(_) => String::new(),
    };
    format!(
        "# Local settings for `docker compose` / `terrarium up`, written by `terrarium init`.\n\
         # Keep this file out of version control.\n\
         POSTGRES_PASSWORD={password}\n"
    )
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
    fn dotenv_passwords_are_random_and_long() {
        let a = dotenv();
        let b = dotenv();
        assert_ne!(a, b);
        let password = a
            .lines()
            .find_map(|l| l.strip_prefix("POSTGRES_PASSWORD="))
            .unwrap();
        assert_eq!(password.len(), 36);
    }
}
