//! Multi-service projects: a `terrarium.toml` with `[services.NAME]` tables names the Python
//! services (each its own project directory), one-off jobs (migrations), a gateway (a reverse
//! proxy in its own container, L03) and PostgreSQL. Facts only, like [`Project`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{DetectError, line_of, read_text, toml_error};
use crate::{Project, Source, detect};

/// A Python service of a system.
#[derive(Debug, Clone)]
pub struct SystemService {
    /// Its name (the compose service name).
    pub name: String,
    /// Its directory, relative to the system root.
    pub path: PathBuf,
    /// Settings given to it in terrarium.toml (they win over its code's defaults).
    pub env: BTreeMap<String, String>,
    /// How many copies run on an orchestrator (Swarm, Kubernetes); compose runs one.
    pub replicas: u16,
    /// The service's own project.
    pub project: Project,
}

/// A one-off command run to completion before services start (schema migrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its name.
    pub name: String,
    /// The service whose image it runs in.
    pub service: String,
    /// The command, exec form.
    pub command: Vec<String>,
    /// The services that wait for it to succeed.
    pub before: Vec<String>,
    /// Where it was declared.
    pub source: Source,
}

/// One route of the gateway: a path prefix and the service it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The path prefix (`/api/rewards`).
    pub prefix: String,
    /// The service.
    pub service: String,
}

/// The reverse proxy in front of the services: the only published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The default host port (on 127.0.0.1).
    pub port: u16,
    /// The environment variable that moves the host port.
    pub port_env: String,
    /// Routes, in the order written.
    pub routes: Vec<Route>,
    /// An image instead of the pinned default.
    pub image: Option<String>,
}

/// The PostgreSQL service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgres {
    /// The database name.
    pub database: String,
    /// The user.
    pub user: String,
    /// The services and jobs that get `DATABASE_URL`.
    pub clients: Vec<String>,
    /// An image instead of the pinned default.
    pub image: Option<String>,
}

/// A multi-service project.
#[derive(Debug, Clone)]
pub struct System {
    /// The directory holding terrarium.toml.
    pub root: PathBuf,
    /// The system's name (compose project name).
    pub name: String,
    /// The Python services.
    pub services: Vec<SystemService>,
    /// One-off jobs.
    pub jobs: Vec<Job>,
    /// The gateway, if any.
    pub gateway: Option<Gateway>,
    /// PostgreSQL, if any.
    pub postgres: Option<Postgres>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    name: Option<String>,
    services: BTreeMap<String, Spanned<RawService>>,
    #[serde(default)]
    jobs: BTreeMap<String, Spanned<RawJob>>,
    gateway: Option<Spanned<RawGateway>>,
    postgres: Option<Spanned<RawPostgres>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    path: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    replicas: Option<u16>,
}

/// Replicas of a service when terrarium.toml doesn't say: two, so one can be replaced while the
/// other serves (L20).
pub const DEFAULT_REPLICAS: u16 = 2;
/// The most replicas a service may ask for; more is a typo rather than a plan.
const MAX_REPLICAS: u16 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    service: String,
    command: Vec<String>,
    before: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGateway {
    #[serde(default = "default_gateway_port")]
    port: u16,
    port_env: Option<String>,
    routes: Vec<RawRoute>,
    image: Option<String>,
}

fn default_gateway_port() -> u16 {
    8080
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: String,
    service: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    database: Option<String>,
    user: Option<String>,
    #[serde(default)]
    services: Vec<String>,
    image: Option<String>,
}

#[derive(Deserialize)]
struct Probe {
    services: Option<toml::Value>,
}

const FIX: &str = "a system's terrarium.toml has `name`, [services.NAME] (path, env, replicas), [jobs.NAME] (service, command, before), [gateway] (port, port-env, routes, image) and [postgres] (database, user, services, image)";

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A relative path that does not climb above its starting directory.
fn stays_inside(path: &Path) -> bool {
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return false,
        }
    }
    true
}

/// Read a multi-service project: `None` when `root` has no terrarium.toml with `[services]`.
pub fn detect_system(root: &Path) -> Result<Option<System>, DetectError> {
    let rel = Path::new("terrarium.toml");
    let path = root.join(rel);
    if !path.is_file() {
        return Ok(None);
    }
    let text = read_text(root, rel).map_err(|err| err.under(root))?;
    let probe: Probe = toml::from_str(&text).map_err(|err| toml_error(&path, &text, &err, FIX))?;
    if probe.services.is_none() {
        return Ok(None);
    }
    let raw: RawSystem =
        toml::from_str(&text).map_err(|err| toml_error(&path, &text, &err, FIX))?;
    let at = |span: std::ops::Range<usize>| Some(line_of(&text, span.start));
    let bad = |line: Option<usize>, message: String, fix: &str| {
        DetectError::malformed(&path, line, message, fix)
    };

    if raw.services.is_empty() {
        return Err(bad(
            None,
            "[services] names no service".into(),
            "add [services.NAME] with path = \"DIR\"",
        ));
    }
    let mut services = Vec::new();
    for (name, service) in &raw.services {
        let line = at(service.span());
        if !valid_name(name) {
            return Err(bad(
                line,
                format!("service name `{name}` is not a valid compose service name"),
                "use lowercase letters, digits, - and _",
            ));
        }
        if !stays_inside(Path::new(&service.get_ref().path)) {
            return Err(bad(
                line,
                format!(
                    "service `{name}`: path `{}` leaves the system's directory",
                    service.get_ref().path
                ),
                "give a path relative to terrarium.toml, inside its directory (like \"api\")",
            ));
        }
        let dir = root.join(&service.get_ref().path);
        if !dir.is_dir() {
            return Err(bad(
                line,
                format!(
                    "service `{name}`: path `{}` is not a directory",
                    service.get_ref().path
                ),
                "point path at the service's project directory, relative to terrarium.toml",
            ));
        }
        let replicas = service.get_ref().replicas.unwrap_or(DEFAULT_REPLICAS);
        if !(1..=MAX_REPLICAS).contains(&replicas) {
            return Err(bad(
                line,
                format!("service `{name}`: replicas = {replicas} is out of range"),
                "give a number of copies from 1 to 100",
            ));
        }
        let project = detect(&dir)?;
        services.push(SystemService {
            name: name.clone(),
            path: PathBuf::from(&service.get_ref().path),
            env: service.get_ref().env.clone(),
            replicas,
            project,
        });
    }
    let service_names: Vec<&str> = raw.services.keys().map(String::as_str).collect();
    let known = |n: &str| service_names.contains(&n);

    let mut jobs = Vec::new();
    for (name, job) in &raw.jobs {
        let line = at(job.span());
        let raw_job = job.get_ref();
        if !valid_name(name) || known(name) {
            return Err(bad(
                line,
                format!("job name `{name}` is invalid or also a service"),
                "give the job its own lowercase name",
            ));
        }
        if !known(&raw_job.service) {
            return Err(bad(
                line,
                format!(
                    "job `{name}` runs in service `{}`, which is not declared",
                    raw_job.service
                ),
                "name one of the [services] tables",
            ));
        }
        if raw_job.command.is_empty() {
            return Err(bad(
                line,
                format!("job `{name}` has an empty command"),
                "write it as a list, like [\"python\", \"-m\", \"app.migrate\"]",
            ));
        }
        let before = raw_job
            .before
            .clone()
            .unwrap_or_else(|| service_names.iter().map(|s| s.to_string()).collect());
        if let Some(unknown) = before.iter().find(|b| !known(b)) {
            return Err(bad(
                line,
                format!("job `{name}` runs before `{unknown}`, which is not a service"),
                "list services in `before`",
            ));
        }
        jobs.push(Job {
            name: name.clone(),
            service: raw_job.service.clone(),
            command: raw_job.command.clone(),
            before,
            source: Source::line(rel, line.unwrap_or(1)),
        });
    }

    let gateway = match &raw.gateway {
        Some(g) => {
            let line = at(g.span());
            let raw_gateway = g.get_ref();
            if raw_gateway.routes.is_empty() {
                return Err(bad(
                    line,
                    "[gateway] has no routes".into(),
                    "add routes = [{ path = \"/api/\", service = \"NAME\" }]",
                ));
            }
            let mut routes = Vec::new();
            for route in &raw_gateway.routes {
                if !route.path.starts_with('/')
                    || route.path.contains(char::is_whitespace)
                    || route.path.contains(['{', '}', ';'])
                {
                    return Err(bad(
                        line,
                        format!("gateway route `{}` is not a path prefix", route.path),
                        "start it with / and use no spaces, braces or semicolons",
                    ));
                }
                if !known(&route.service) {
                    return Err(bad(
                        line,
                        format!(
                            "gateway route `{}` goes to `{}`, which is not a service",
                            route.path, route.service
                        ),
                        "name one of the [services] tables",
                    ));
                }
                routes.push(Route {
                    prefix: route.path.clone(),
                    service: route.service.clone(),
                });
            }
            let port_env = raw_gateway
                .port_env
                .clone()
                .unwrap_or_else(|| "GATEWAY_PORT".to_string());
            Some(Gateway {
                port: raw_gateway.port,
                port_env,
                routes,
                image: raw_gateway.image.clone(),
            })
        }
        None => None,
    };

    let system_name = raw.name.clone().unwrap_or_else(|| {
        std::fs::canonicalize(root)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
            .unwrap_or_else(|| "system".into())
    });
    let postgres = match &raw.postgres {
        Some(p) => {
            let line = at(p.span());
            let raw_pg = p.get_ref();
            if let Some(unknown) = raw_pg
                .services
                .iter()
                .find(|s| !known(s) && !raw.jobs.contains_key(*s))
            {
                return Err(bad(
                    line,
                    format!(
                        "[postgres] gives DATABASE_URL to `{unknown}`, which is neither a service nor a job"
                    ),
                    "list services and jobs in `services`",
                ));
            }
            let database = raw_pg
                .database
                .clone()
                .unwrap_or_else(|| system_name.clone());
            Some(Postgres {
                user: raw_pg.user.clone().unwrap_or_else(|| database.clone()),
                database,
                clients: raw_pg.services.clone(),
                image: raw_pg.image.clone(),
            })
        }
        None => None,
    };

    Ok(Some(System {
        root: root.to_path_buf(),
        name: system_name,
        services,
        jobs,
        gateway,
        postgres,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(toml_text: &str) -> Result<Option<System>, DetectError> {
        let dir = tempfile::tempdir().unwrap();
        for service in ["api", "web"] {
            std::fs::create_dir(dir.path().join(service)).unwrap();
            std::fs::write(
                dir.path().join(service).join("app.py"),
                "from flask import Flask\napp = Flask(__name__)\n",
            )
            .unwrap();
            std::fs::write(
                dir.path().join(service).join("requirements.txt"),
                "flask==3.1.2\n",
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("terrarium.toml"), toml_text).unwrap();
        let result = detect_system(dir.path());
        drop(dir);
        result
    }

    #[test]
    fn reads_services_jobs_gateway_and_postgres() {
        let s = system(
            "name = \"shop\"\n[services.api]\npath = \"api\"\nenv = { A = \"1\" }\n[services.web]\npath = \"web\"\n[jobs.migrate]\nservice = \"api\"\ncommand = [\"python\", \"-m\", \"api.migrate\"]\nbefore = [\"api\"]\n[gateway]\nport-env = \"SHOP_PORT\"\nroutes = [{ path = \"/api/\", service = \"api\" }, { path = \"/\", service = \"web\" }]\n[postgres]\nservices = [\"api\", \"migrate\"]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.name, "shop");
        assert_eq!(s.services.len(), 2);
        assert_eq!(s.services[0].env["A"], "1");
        assert_eq!(s.services[0].replicas, DEFAULT_REPLICAS);
        assert_eq!(s.jobs[0].before, ["api"]);
        let gateway = s.gateway.unwrap();
        assert_eq!(
            (gateway.port, gateway.port_env.as_str()),
            (8080, "SHOP_PORT")
        );
        assert_eq!(gateway.routes[1].prefix, "/");
        let pg = s.postgres.unwrap();
        assert_eq!((pg.database.as_str(), pg.user.as_str()), ("shop", "shop"));
    }

    #[test]
    fn a_plain_terrarium_toml_is_not_a_system() {
        assert!(system("port = 9000\n").unwrap().is_none());
    }

    #[test]
    fn mistakes_name_the_line() {
        let err = system("[services.api]\npath = \"api\"\n[gateway]\nroutes = [{ path = \"/x\", service = \"nope\" }]\n").unwrap_err().to_string();
        assert!(
            err.contains("terrarium.toml:3") && err.contains("`nope`, which is not a service"),
            "{err}"
        );
        for outside in ["/", "..", "api/../..", "/tmp"] {
            let err = system(&format!("[services.api]\npath = {outside:?}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("terrarium.toml:1") && err.contains("leaves the system's directory"),
                "{err}"
            );
        }
        let three = system("[services.api]\npath = \"api\"\nreplicas = 3\n")
            .unwrap()
            .unwrap();
        assert_eq!(three.services[0].replicas, 3);
        let err = system("[services.api]\npath = \"api\"\nreplicas = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("terrarium.toml:1") && err.contains("replicas = 0 is out of range"),
            "{err}"
        );
        let err = system("[services.api]\npath = \"missing\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("terrarium.toml:1") && err.contains("not a directory"),
            "{err}"
        );
        let err = system(
            "[services.api]\npath = \"api\"\n[jobs.m]\nservice = \"ghost\"\ncommand = [\"x\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("terrarium.toml:3") && err.contains("`ghost`"),
            "{err}"
        );
        let err = system("[services.api]\npath = \"api\"\nport = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("terrarium.toml:") && err.contains("port"),
            "{err}"
        );
    }
}
