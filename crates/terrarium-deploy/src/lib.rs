//! The same system on real orchestrators (L20): a Docker Swarm stack file deployed through the
//! user's own `docker stack`, and Kustomize manifests for Kubernetes. terrarium writes what the
//! orchestrators read and drives their CLIs; it never schedules anything itself.
//!
//! Both start from the plans `terrarium init` renders compose from: a [`SystemPlan`] from a
//! terrarium.toml with `[services]`, or a single project as a system of one service.

mod env;
pub mod k8s;
pub mod swarm;
mod yaml;

use std::path::PathBuf;

use terrarium_plan::{Plan, ServicePlan, SystemPlan};

pub use env::{DotEnv, EnvError};
pub use swarm::{
    DeployError, DeployReport, ServiceStatus, Swarm, SwarmOptions, render_stack, stack_exists,
};

/// What to deploy: a system from terrarium.toml, or one project as a system of one service.
#[derive(Debug, Clone)]
pub struct Target {
    /// The system (for a single project: one service, no gateway, no database).
    pub system: SystemPlan,
    /// True when the system is a single project: its service is published itself.
    pub single: bool,
}

impl Target {
    /// A system from terrarium.toml.
    pub fn system(system: SystemPlan) -> Target {
        Target {
            system,
            single: false,
        }
    }

    /// A single project: one service named after it, in the project directory.
    pub fn single(plan: Plan) -> Target {
        let name = dns_name(&plan.name);
        Target {
            system: SystemPlan {
                name: name.clone(),
                root: plan.root.clone(),
                services: vec![ServicePlan {
                    name,
                    path: PathBuf::from("."),
                    env: Default::default(),
                    replicas: terrarium_project::DEFAULT_REPLICAS,
                    plan,
                }],
                jobs: Vec::new(),
                gateway: None,
                postgres: None,
            },
            single: true,
        }
    }
}

/// A name usable as a DNS label (Kubernetes objects, Swarm services): lowercase letters,
/// digits and `-`, starting with a letter, at most 63 characters.
pub fn dns_name(name: &str) -> String {
    let mut out: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let mut out = out.trim_matches('-').to_string();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "app-");
    }
    out.truncate(63);
    out.trim_end_matches('-').to_string()
}

/// An environment variable name from a service name (`rewards-api` -> `REWARDS_API`).
pub fn env_name(name: &str) -> String {
    name.to_ascii_uppercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// How one setting of a service reaches it on an orchestrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// A plain value: the code's default or terrarium.toml's.
    Value {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
    },
    /// Must be given by the operator (no default); not a secret.
    Required {
        /// The variable.
        name: String,
    },
    /// A secret, from the operator's `.env` or environment; never written into a file.
    Secret {
        /// The variable.
        name: String,
        /// The service fails without it.
        required: bool,
    },
    /// `DATABASE_URL` for a client of the system's PostgreSQL: carries its password.
    DatabaseUrl,
}

impl Setting {
    /// The variable's name.
    pub fn name(&self) -> &str {
        match self {
            Setting::Value { name, .. }
            | Setting::Required { name }
            | Setting::Secret { name, .. } => name,
            Setting::DatabaseUrl => "DATABASE_URL",
        }
    }
}

/// The settings of `service` when it runs as `client` (itself, or a job in its image).
pub fn settings(system: &SystemPlan, service: &ServicePlan, client: &str) -> Vec<Setting> {
    let database_client = system
        .postgres
        .as_ref()
        .is_some_and(|(pg, _)| pg.clients.iter().any(|c| c == client));
    let mut out = Vec::new();
    for setting in &service.plan.env.value {
        let name = &setting.name;
        if database_client && name == "DATABASE_URL" || service.env.contains_key(name) {
            continue;
        }
        out.push(match (&setting.default, setting.secret) {
            (_, true) => Setting::Secret {
                name: name.clone(),
                required: setting.required,
            },
            (Some(default), false) => Setting::Value {
                name: name.clone(),
                value: default.clone(),
            },
            (None, false) => Setting::Required { name: name.clone() },
        });
    }
    for (name, value) in &service.env {
        if database_client && name == "DATABASE_URL" {
            continue;
        }
        out.push(Setting::Value {
            name: name.clone(),
            value: value.clone(),
        });
    }
    if database_client {
        out.push(Setting::DatabaseUrl);
    }
    out
}

/// The services another service calls, read from the URLs in its settings
/// (`POINTS_URL = "http://points:8000"`): they must let it in.
pub fn callers_of(system: &SystemPlan, callee: &str) -> Vec<String> {
    system
        .services
        .iter()
        .filter(|s| s.name != callee)
        .filter(|s| {
            s.env.values().any(|v| {
                v.split("://").nth(1).is_some_and(|rest| {
                    let host = rest.split(['/', ':', '?']).next().unwrap_or_default();
                    host == callee
                })
            })
        })
        .map(|s| s.name.clone())
        .collect()
}

/// The first 12 hex digits of the SHA-256 of `bytes`: a short content version.
pub fn short_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small system for the unit tests: `api` (Flask, with a secret setting and a health route)
/// called by `web` through its URL, a migration job, a gateway and PostgreSQL.
#[cfg(test)]
pub(crate) fn test_system() -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (service, code) in [
        (
            "api",
            "import os\nfrom flask import Flask\napp = Flask(__name__)\nSECRET = os.environ[\"API_TOKEN\"]\nLEVEL = os.environ.get(\"LOG_LEVEL\", \"INFO\")\n@app.get(\"/health\")\ndef health():\n    return \"ok\"\n",
        ),
        ("web", "from flask import Flask\napp = Flask(__name__)\n"),
    ] {
        std::fs::create_dir(dir.path().join(service)).expect("mkdir");
        std::fs::write(dir.path().join(service).join("app.py"), code).expect("write");
        std::fs::write(
            dir.path().join(service).join("requirements.txt"),
            "flask==3.1.2\n",
        )
        .expect("write");
    }
    std::fs::write(
        dir.path().join("terrarium.toml"),
        "name = \"shop\"\n[services.api]\npath = \"api\"\nreplicas = 3\n[services.web]\npath = \"web\"\nenv = { API_URL = \"http://api:8000/v1\" }\n[jobs.migrate]\nservice = \"api\"\ncommand = [\"python\", \"-m\", \"api.migrate\"]\n[gateway]\nroutes = [{ path = \"/\", service = \"web\" }]\n[postgres]\nservices = [\"api\", \"migrate\"]\n",
    )
    .expect("write");
    let system = terrarium_project::detect_system(dir.path())
        .expect("detect")
        .expect("a system");
    let plan = terrarium_plan::plan_system(&system, &Default::default()).expect("plan");
    (dir, Target::system(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_split_values_secrets_and_the_database_url() {
        let (_dir, target) = test_system();
        let system = &target.system;
        let api = system.service("api").expect("api");
        let api_settings = settings(system, api, "api");
        assert!(api_settings.contains(&Setting::Secret {
            name: "API_TOKEN".into(),
            required: true
        }));
        assert!(api_settings.contains(&Setting::Value {
            name: "LOG_LEVEL".into(),
            value: "INFO".into()
        }));
        assert!(api_settings.contains(&Setting::DatabaseUrl));
        let web = system.service("web").expect("web");
        assert!(!settings(system, web, "web").contains(&Setting::DatabaseUrl));
        assert_eq!(callers_of(system, "api"), ["web"]);
        assert!(callers_of(system, "web").is_empty());
    }

    #[test]
    fn dns_names() {
        assert_eq!(dns_name("flask_requirements"), "flask-requirements");
        assert_eq!(dns_name("My.App"), "my-app");
        assert_eq!(dns_name("3d"), "app-3d");
        assert_eq!(env_name("rewards-api"), "REWARDS_API");
    }
}
