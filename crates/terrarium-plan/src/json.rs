//! The plan as a list of uniform decision records: printed as text by `terrarium plan` and as
//! the stable JSON document of `terrarium plan --json` (schema `terrarium.plan/v2`).

use serde::Serialize;
use serde_json::{Value, json};
use terrarium_project::{DependencySource, Source};

use crate::{Decision, Origin, Plan, Server, Unsettled};

/// The JSON schema identifier; bumped on any incompatible change.
pub const SCHEMA: &str = "terrarium.plan/v2";

/// One decision in a uniform shape.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// The decision's key (`python`, `command`, …), which is also its `[tool.terrarium]` key
    /// when it can be configured.
    pub key: &'static str,
    /// The value as JSON.
    pub value: Value,
    /// The value as one line of text.
    #[serde(skip)]
    pub text: String,
    /// Why.
    pub reason: String,
    /// Detected, default or configured.
    pub origin: Origin,
    /// The files and lines it rests on.
    pub sources: Vec<Source>,
}

fn record<T>(key: &'static str, d: &Decision<T>, value: Value, text: String) -> DecisionRecord {
    DecisionRecord {
        key,
        value,
        text,
        reason: d.reason.clone(),
        origin: d.origin.clone(),
        sources: d.sources.clone(),
    }
}

fn argv_text(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.contains([' ', '(', ')', '"']) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn dependencies_value(source: &DependencySource) -> Value {
    let (kind, locked, hashed) = match source {
        DependencySource::Requirements { lock, .. } => {
            ("requirements", lock.is_some(), lock.is_some())
        }
        DependencySource::Locked { lock, .. } => (
            match lock.format {
                terrarium_project::LockFormat::Requirements => "requirements",
                terrarium_project::LockFormat::UvLock => "uv.lock",
                terrarium_project::LockFormat::PoetryLock => "poetry.lock",
                terrarium_project::LockFormat::Pylock => "pylock.toml",
                terrarium_project::LockFormat::PipfileLock => "Pipfile.lock",
            },
            true,
            lock.fully_hashed(),
        ),
        DependencySource::Unlocked { .. } => ("unlocked", false, false),
        DependencySource::None => ("none", false, false),
    };
    json!({
        "kind": kind,
        "files": source.files(),
        "locked": locked,
        "hashed": hashed,
        "packages": source.lock().map(|l| l.packages.len()),
    })
}

impl Plan {
    /// Every decision, in the order `terrarium plan` prints them.
    pub fn decisions(&self) -> Vec<DecisionRecord> {
        let env_text = self
            .env
            .value
            .iter()
            .map(|e| match (&e.default, e.secret, e.required) {
                (_, true, true) => format!("{} (secret, required)", e.name),
                (_, true, false) => format!("{} (secret)", e.name),
                (Some(d), _, _) => format!("{}={d}", e.name),
                (None, _, true) => format!("{} (required)", e.name),
                (None, _, false) => format!("{} (optional)", e.name),
            })
            .collect::<Vec<_>>()
            .join(" ");
        let server_text = match &self.server.value {
            Server::Gunicorn {
                worker_class: Some(w),
            } => format!("gunicorn ({w})"),
            Server::Gunicorn { worker_class: None } => "gunicorn".into(),
            Server::Uvicorn => "uvicorn".into(),
            Server::Hypercorn => "hypercorn".into(),
            Server::ConsoleScript { name } => format!("console script {name}"),
            Server::Configured => "configured command".into(),
        };
        let or_none = |s: String| if s.is_empty() { "none".to_string() } else { s };
        vec![
            record(
                "python",
                &self.python,
                json!(self.python.value.to_string()),
                self.python.value.to_string(),
            ),
            record(
                "exclude-newer",
                &self.exclude_newer,
                match self.exclude_newer.value {
                    Some(moment) => json!(moment.to_string()),
                    None => Value::Null,
                },
                match self.exclude_newer.value {
                    Some(moment) => moment.to_string(),
                    None => "none".into(),
                },
            ),
            record(
                "base",
                &self.base_image,
                json!(self.base_image.value),
                self.base_image.value.clone(),
            ),
            record(
                "build-base",
                &self.build_base,
                json!(self.build_base.value),
                self.build_base
                    .value
                    .clone()
                    .unwrap_or_else(|| "none (Debian runtime)".into()),
            ),
            record(
                "runtime",
                &self.runtime,
                match self.runtime.value {
                    Some(distro) => json!({
                        "distro": distro.codename(),
                        "python": distro.python_version(),
                    }),
                    None => Value::Null,
                },
                match self.runtime.value {
                    Some(distro) => format!(
                        "Debian {} (CPython {})",
                        distro.codename(),
                        distro.python_version()
                    ),
                    None => "none".into(),
                },
            ),
            record(
                "platforms",
                &self.platforms,
                json!(
                    self.platforms
                        .value
                        .iter()
                        .map(|p| p.platform())
                        .collect::<Vec<_>>()
                ),
                self.platforms
                    .value
                    .iter()
                    .map(|p| p.platform())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            record(
                "dependencies",
                &self.dependencies,
                dependencies_value(&self.dependencies.value),
                self.dependencies.value.describe(),
            ),
            record(
                "added-packages",
                &self.added_packages,
                json!(self.added_packages.value),
                or_none(self.added_packages.value.join(" ")),
            ),
            record(
                "server",
                &self.server,
                serde_json::to_value(&self.server.value).unwrap_or(Value::Null),
                server_text,
            ),
            record(
                "command",
                &self.command,
                json!(self.command.value),
                argv_text(&self.command.value),
            ),
            record(
                "dev-command",
                &self.dev_command,
                json!(self.dev_command.value),
                argv_text(&self.dev_command.value),
            ),
            record(
                "port",
                &self.port,
                json!(self.port.value),
                self.port.value.to_string(),
            ),
            record(
                "user",
                &self.user,
                json!(self.user.value.to_string()),
                self.user.value.to_string(),
            ),
            record(
                "env",
                &self.env,
                serde_json::to_value(&self.env.value).unwrap_or(Value::Null),
                env_text,
            ),
            record(
                "volumes",
                &self.volumes,
                serde_json::to_value(&self.volumes.value).unwrap_or(Value::Null),
                or_none(
                    self.volumes
                        .value
                        .iter()
                        .map(|v| v.path.clone())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ),
            record(
                "healthcheck",
                &self.healthcheck,
                json!(self.healthcheck.value),
                self.healthcheck
                    .value
                    .clone()
                    .unwrap_or_else(|| "none".into()),
            ),
            record(
                "system-packages",
                &self.system_packages,
                json!(self.system_packages.value),
                or_none(self.system_packages.value.join(" ")),
            ),
            record(
                "build-packages",
                &self.build_packages,
                json!(self.build_packages.value),
                or_none(self.build_packages.value.join(" ")),
            ),
            record(
                "install-project",
                &self.install_project,
                serde_json::to_value(&self.install_project.value).unwrap_or(Value::Null),
                match &self.install_project.value {
                    Some(install) => format!(
                        "{} {} from {}",
                        install.distribution, install.version, install.import_root
                    ),
                    None => "no".into(),
                },
            ),
            record(
                "build-steps",
                &self.build_steps,
                json!(self.build_steps.value),
                or_none(
                    self.build_steps
                        .value
                        .iter()
                        .map(|s| argv_text(s))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            ),
            record(
                "context",
                &self.context,
                json!(self.context.value),
                format!("{} .dockerignore rules", self.context.value.len()),
            ),
            record(
                "proxy-image",
                &self.proxy_image,
                json!(self.proxy_image.value),
                self.proxy_image.value.clone(),
            ),
            record(
                "postgres-image",
                &self.postgres_image,
                json!(self.postgres_image.value),
                self.postgres_image.value.clone(),
            ),
        ]
    }
}

/// The plan as the documented JSON document.
pub fn to_json(plan: &Plan) -> Value {
    #[derive(Serialize)]
    struct Document<'a> {
        schema: &'static str,
        project: Value,
        decisions: Vec<DecisionRecord>,
        unsettled: &'a [Unsettled],
    }
    serde_json::to_value(Document {
        schema: SCHEMA,
        project: json!({ "name": plan.name, "root": plan.root }),
        decisions: plan.decisions(),
        unsettled: &plan.unsettled,
    })
    .unwrap_or(Value::Null)
}
