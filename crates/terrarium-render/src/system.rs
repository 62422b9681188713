//! The files of a multi-service project: each service's Dockerfile, Dockerfile.dev and
//! .dockerignore in its own directory, and one compose.yaml for the whole system with the
//! gateway's nginx config, PostgreSQL, one-off jobs and a `.env` of generated secrets.

use std::fmt::Write as _;
use std::path::PathBuf;

use terrarium_plan::{ServicePlan, SystemPlan};

use crate::compose::{self, Database, ServiceBlock};
use crate::{Merge, RenderedFile, dockerfile, ignore};

fn context(service: &ServicePlan) -> String {
    format!("./{}", service.path.display())
}

fn overrides(system: &SystemPlan, service: &ServicePlan, client: &str) -> Vec<(String, String)> {
    let mut overrides: Vec<(String, String)> = service
        .env
        .iter()
        .map(|(k, v)| (k.clone(), format!("${{{k}:-{v}}}")))
        .collect();
    if let Some((pg, _)) = &system.postgres
        && pg.clients.iter().any(|c| c == client)
    {
        let database = Database {
            user: pg.user.clone(),
            name: pg.database.clone(),
        };
        overrides.retain(|(k, _)| k != "DATABASE_URL");
        overrides.push(("DATABASE_URL".into(), database.url()));
    }
    overrides
}

fn db_wait(system: &SystemPlan, client: &str) -> Vec<(String, &'static str)> {
    match &system.postgres {
        Some((pg, _)) if pg.clients.iter().any(|c| c == client) => {
            vec![("db".into(), "service_healthy")]
        }
        _ => Vec::new(),
    }
}

/// Every file `terrarium init` writes for a system.
pub fn render_system(system: &SystemPlan) -> Vec<RenderedFile> {
    let mut files = Vec::new();
    for service in &system.services {
        let at = |name: &str| PathBuf::from(&service.path).join(name);
        files.push(RenderedFile {
            path: at("Dockerfile"),
            contents: dockerfile::production(&service.plan),
            secret: false,
            merge: None,
        });
        files.push(RenderedFile {
            path: at("Dockerfile.dev"),
            contents: dockerfile::development(&service.plan),
            secret: false,
            merge: None,
        });
        files.push(RenderedFile {
            path: at(".dockerignore"),
            contents: ignore::dockerignore(&service.plan),
            secret: false,
            merge: Some(Merge::DockerIgnore),
        });
    }
    files.push(RenderedFile {
        path: PathBuf::from("compose.yaml"),
        contents: compose_file(system),
        secret: false,
        merge: None,
    });
    if let Some((gateway, _)) = &system.gateway {
        let upstreams: Vec<(String, u16)> = system
            .services
            .iter()
            .map(|s| (s.name.clone(), s.plan.port.value))
            .collect();
        let routes: Vec<(String, String)> = gateway
            .routes
            .iter()
            .map(|r| (r.prefix.clone(), r.service.clone()))
            .collect();
        let health: Vec<(String, String)> = system
            .services
            .iter()
            .filter_map(|s| {
                s.plan
                    .healthcheck
                    .value
                    .clone()
                    .map(|path| (s.name.clone(), path))
            })
            .collect();
        files.push(RenderedFile {
            path: PathBuf::from("gateway/nginx.conf"),
            contents: compose::nginx_conf(&system.name, &upstreams, &routes, &health),
            secret: false,
            merge: None,
        });
    }
    let mut secrets: Vec<&str> = Vec::new();
    if system.postgres.is_some() {
        secrets.push("POSTGRES_PASSWORD");
    }
    for service in &system.services {
        for setting in service
            .plan
            .env
            .value
            .iter()
            // Fresh random values only for secrets by name: a URL whose default carried a
            // password must be set by the user, not replaced by noise.
            .filter(|e| e.secret && e.required && terrarium_plan::is_secret(&e.name))
        {
            if !secrets.contains(&setting.name.as_str()) && !service.env.contains_key(&setting.name)
            {
                secrets.push(&setting.name);
            }
        }
    }
    if !secrets.is_empty() {
        files.push(RenderedFile {
            path: PathBuf::from(".env"),
            contents: compose::dotenv(&secrets),
            secret: true,
            merge: None,
        });
    }
    files
}

fn compose_file(system: &SystemPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# The {} system, written by `terrarium init` from terrarium.toml. You own this file.",
        system.name
    );
    out.push_str("#   terrarium up        (or: docker compose up --build)\n");
    match &system.gateway {
        Some((gateway, _)) => {
            let _ = writeln!(
                out,
                "# Only the gateway is published, on 127.0.0.1:${{{}:-{}}}; services talk to each other by name.",
                gateway.port_env, gateway.port
            );
        }
        None => out.push_str("# Ports are published on 127.0.0.1 only.\n"),
    }
    out.push_str(
        "# Settings come from the environment or .env (L10); secrets are passed through (L22).\n",
    );
    out.push_str("services:\n");
    let mut blocks: Vec<String> = Vec::new();
    if let Some((pg, image)) = &system.postgres {
        let mut block = String::new();
        compose::postgres_block(
            &mut block,
            &image.value,
            &Database {
                user: pg.user.clone(),
                name: pg.database.clone(),
            },
        );
        blocks.push(block);
    }
    for job in &system.jobs {
        let Some(service) = system.service(&job.service) else {
            continue;
        };
        let mut block = String::new();
        compose::service_block(
            &mut block,
            &ServiceBlock {
                name: &job.name,
                plan: &service.plan,
                context: &context(service),
                publish_env: None,
                overrides: overrides(system, service, &job.name),
                job_command: Some(&job.command),
                depends_on: db_wait(system, &job.name),
                volume_prefix: Some(&service.name),
            },
        );
        blocks.push(block);
    }
    for service in &system.services {
        let mut waits = db_wait(system, &service.name);
        waits.extend(
            system
                .jobs
                .iter()
                .filter(|j| j.before.contains(&service.name))
                .map(|j| (j.name.clone(), "service_completed_successfully")),
        );
        let publish = format!(
            "{}_PORT",
            service.name.to_ascii_uppercase().replace('-', "_")
        );
        let mut block = String::new();
        compose::service_block(
            &mut block,
            &ServiceBlock {
                name: &service.name,
                plan: &service.plan,
                context: &context(service),
                publish_env: system.gateway.is_none().then_some(publish.as_str()),
                overrides: overrides(system, service, &service.name),
                job_command: None,
                depends_on: waits,
                volume_prefix: Some(&service.name),
            },
        );
        blocks.push(block);
    }
    if let Some((gateway, image)) = &system.gateway {
        let mut block = String::new();
        let names: Vec<String> = system.services.iter().map(|s| s.name.clone()).collect();
        compose::proxy_block(
            &mut block,
            "gateway",
            &image.value,
            &gateway.port_env,
            gateway.port,
            "./gateway/nginx.conf",
            &names,
        );
        blocks.push(block);
    }
    out.push_str(&blocks.join("\n"));
    let mut volumes = Vec::new();
    if system.postgres.is_some() {
        volumes.push("pgdata".to_string());
    }
    for service in &system.services {
        volumes.extend(
            service
                .plan
                .volumes
                .value
                .iter()
                .map(|v| format!("{}-{}", service.name, terrarium_plan::volume_name(&v.path))),
        );
    }
    compose::named_volumes(&mut out, &volumes);
    out
}
