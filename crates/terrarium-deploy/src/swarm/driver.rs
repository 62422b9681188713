//! Driving Docker Swarm through the user's own `docker` client: build each service's image from
//! its Dockerfile and tag it by content, create the Swarm secrets from `.env`, pin the database
//! to a node, `docker stack deploy`, then watch the rollout until every service runs its new
//! image healthy, or Swarm rolled it back.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use terrarium_engine::{BuildRequest, Engine, EngineError};

use super::{
    GATEWAY_CONF, GATEWAY_CONF_VARIABLE, STACK_FILE, SecretSource, db_node_label, image_variable,
    stack_secrets,
};
use crate::{DotEnv, EnvError, Target, short_digest};

/// Label on the secrets terrarium creates: the stack they belong to.
const LABEL_STACK: &str = "io.terrarium.stack";
/// Label on the secrets terrarium creates: a digest of the value, to notice a changed `.env`.
const LABEL_FINGERPRINT: &str = "io.terrarium.fingerprint";
/// Label Swarm puts on everything of a stack.
const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";

/// Why a Swarm deployment failed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The engine is not a Swarm manager.
    #[error(
        "the Docker engine is not a Swarm manager (swarm state: {state})\n  fix: `docker swarm init --advertise-addr 127.0.0.1` for a single-node swarm on this machine, or point DOCKER_HOST at a manager"
    )]
    NotManager {
        /// What `docker info` said.
        state: String,
    },
    /// A service has no Dockerfile to build its image from.
    #[error("{}: no Dockerfile for service `{service}`\n  fix: run `terrarium init` to write it", path.display())]
    NoDockerfile {
        /// The service.
        service: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Secrets the stack needs are not set.
    #[error(
        "the stack needs {} and neither the environment nor {} sets {}\n  fix: add {} to .env (`terrarium init` writes generated ones)",
        names.join(", "), dir.join(".env").display(), if names.len() == 1 { "it" } else { "them" },
        names.iter().map(|n| format!("{n}=...")).collect::<Vec<_>>().join(", ")
    )]
    MissingSecrets {
        /// The system directory.
        dir: PathBuf,
        /// The variables.
        names: Vec<String>,
    },
    /// A Swarm secret exists with another value; secrets can't change in place.
    #[error(
        "Swarm secret `{name}` already exists with a different value than {variable} has now; Swarm secrets can't change in place\n  fix: `terrarium deploy swarm --rm` (data volumes stay), then deploy again"
    )]
    SecretChanged {
        /// The secret.
        name: String,
        /// The variable its value came from.
        variable: String,
    },
    /// Swarm rolled an update back.
    #[error(
        "{service}: the update failed and Swarm rolled it back ({message}); the previous version is serving\n  fix: look at `docker service ps --no-trunc {service}` and `docker service logs {service}`"
    )]
    RolledBack {
        /// The Swarm service.
        service: String,
        /// Swarm's message.
        message: String,
    },
    /// An update or a job failed without a rollback.
    #[error(
        "{service}: {message}\n  fix: look at `docker service ps --no-trunc {service}` and `docker service logs {service}`"
    )]
    Failed {
        /// The Swarm service.
        service: String,
        /// What went wrong.
        message: String,
    },
    /// The rollout did not finish in time.
    #[error("the rollout did not finish after {seconds} s: {}\n  fix: look at `terrarium deploy swarm --status` and `docker service ps --no-trunc SERVICE`", .waiting.join("; "))]
    Timeout {
        /// How long terrarium waited.
        seconds: u64,
        /// The services still converging and why.
        waiting: Vec<String>,
    },
    /// The stack is not deployed.
    #[error("no stack `{0}` is deployed on this swarm\n  fix: `terrarium deploy swarm` deploys it")]
    NoStack(String),
    /// Docker's output was not what was expected.
    #[error("unexpected output from `docker {command}`: {detail}")]
    Output {
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// `.env` can't be read.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A docker command failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl DeployError {
    /// Whether the user's input is at fault (exit code 2) rather than the engine.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            DeployError::NoDockerfile { .. }
                | DeployError::MissingSecrets { .. }
                | DeployError::SecretChanged { .. }
                | DeployError::Env(_)
        )
    }
}

/// How to deploy.
#[derive(Debug, Clone)]
pub struct SwarmOptions {
    /// How long to wait for the rollout.
    pub timeout: Duration,
}

/// What one deploy did.
#[derive(Debug, Clone, Default)]
pub struct DeployReport {
    /// Each service's image reference (`loyalty/points:3f2a…`).
    pub images: Vec<(String, String)>,
    /// Secrets created (existing ones with the same value are kept).
    pub secrets_created: Vec<String>,
    /// The node the database was pinned to, when terrarium labelled one.
    pub db_node_labelled: Option<String>,
    /// Every service once converged.
    pub services: Vec<ServiceStatus>,
}

/// One Swarm service of the stack, as `--status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The Swarm service (`loyalty_points`).
    pub name: String,
    /// Running tasks of the current image.
    pub running: usize,
    /// Desired replicas (`None` for a one-off job that completed).
    pub desired: Option<u64>,
    /// Healthy containers on this node.
    pub healthy: usize,
    /// The last update's state (`completed`, `rollback_completed`, …), if any.
    pub update: Option<String>,
    /// The image.
    pub image: String,
}

/// A system deployed as a Swarm stack, through the `docker` client.
#[derive(Debug)]
pub struct Swarm {
    engine: Engine,
    target: Target,
    dir: PathBuf,
}

/// What `docker service inspect` says about one service.
#[derive(Debug, Clone)]
struct Inspected {
    name: String,
    image: String,
    replicas: Option<u64>,
    update_state: Option<String>,
    update_started: Option<String>,
    update_message: String,
}

/// One task as `docker service ps` shows it.
#[derive(Debug, Clone, serde::Deserialize)]
struct TaskLine {
    #[serde(rename = "Image")]
    image: String,
    #[serde(rename = "DesiredState")]
    desired: String,
    #[serde(rename = "CurrentState")]
    current: String,
    #[serde(rename = "Error", default)]
    error: String,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// Whether a stack of this name has services on the swarm.
pub fn stack_exists(engine: &Engine, name: &str) -> Result<bool, DeployError> {
    let out = engine.output(&args(&[
        "service",
        "ls",
        "--quiet",
        "--filter",
        &format!("label={LABEL_NAMESPACE}={name}"),
    ]))?;
    Ok(!out.trim().is_empty())
}

impl Swarm {
    /// The stack for `target`, whose files live in `dir`.
    pub fn new(engine: Engine, target: Target, dir: &Path) -> Swarm {
        Swarm {
            engine,
            target,
            dir: dir.to_path_buf(),
        }
    }

    /// The stack's name: the system's.
    pub fn name(&self) -> &str {
        &self.target.system.name
    }

    fn service_name(&self, service: &str) -> String {
        format!("{}_{service}", self.name())
    }

    /// The engine must be a swarm manager; returns this node's id.
    fn manager(&self) -> Result<String, DeployError> {
        let info = self.engine.output(&args(&[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}",
        ]))?;
        let parts: Vec<&str> = info.split_whitespace().collect();
        match parts.as_slice() {
            ["active", "true", node] => Ok((*node).to_string()),
            _ => Err(DeployError::NotManager {
                state: parts.first().unwrap_or(&"unknown").to_string(),
            }),
        }
    }

    /// Build, create secrets, deploy and wait for the rollout. `progress` gets one line per step.
    pub fn deploy(
        &self,
        options: &SwarmOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<DeployReport, DeployError> {
        let node = self.manager()?;
        let system = &self.target.system;
        let env = DotEnv::load(&self.dir)?;
        let mut report = DeployReport::default();

        let secrets = self.secret_values(&env)?;
        let mut variables: Vec<(String, String)> = Vec::new();
        for service in &system.services {
            let context = self.dir.join(&service.path);
            let dockerfile = context.join("Dockerfile");
            if !dockerfile.is_file() {
                return Err(DeployError::NoDockerfile {
                    service: service.name.clone(),
                    path: dockerfile,
                });
            }
            progress(&format!("building {}", service.name));
            let repository = format!("{}/{}", system.name, service.name);
            let moving = format!("{repository}:deploy");
            self.engine.build(&BuildRequest {
                context: &context,
                dockerfile: &dockerfile,
                tag: &moving,
                build_args: Vec::new(),
                labels: vec![(LABEL_STACK.into(), system.name.clone())],
            })?;
            let id = self.engine.inspect(&moving, "{{.Id}}")?;
            let digest = id.trim().trim_start_matches("sha256:");
            let tag = format!("{repository}:{}", &digest[..digest.len().min(12)]);
            self.engine
                .output(&args(&["tag", &moving, &tag]))
                .map(|_| ())?;
            variables.push((image_variable(&service.name), tag.clone()));
            report.images.push((service.name.clone(), tag));
        }
        if system.gateway.is_some() {
            let path = self.dir.join(GATEWAY_CONF);
            let text = std::fs::read(&path).map_err(|source| DeployError::Io {
                path: path.clone(),
                source,
            })?;
            variables.push((GATEWAY_CONF_VARIABLE.into(), short_digest(&text)));
        }

        for (key, variable, value) in &secrets {
            if self.ensure_secret(key, variable, value)? {
                report.secrets_created.push(self.secret_name(key));
            }
        }
        if system.postgres.is_some() {
            report.db_node_labelled = self.pin_database(&node)?;
        }

        let before = self.inspect_all()?;
        progress(&format!("docker stack deploy {}", system.name));
        let deploy_args = args(&[
            "stack",
            "deploy",
            "--prune",
            "--resolve-image",
            "never",
            "--compose-file",
            STACK_FILE,
            &system.name,
        ]);
        let output = self
            .engine
            .command()
            .args(&deploy_args)
            .envs(variables.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| EngineError::Spawn {
                command: format!("docker {}", deploy_args.join(" ")),
                source,
            })?;
        if !output.status.success() {
            return Err(EngineError::Command {
                command: format!("docker {}", deploy_args.join(" ")),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
            .into());
        }
        progress(&format!(
            "waiting for the rollout (up to {} s)",
            options.timeout.as_secs()
        ));
        report.services = self.wait(&before, options.timeout)?;
        Ok(report)
    }

    fn secret_name(&self, key: &str) -> String {
        format!("{}_{key}", self.name())
    }

    /// Each secret's key, the variable it comes from, and its value (empty for an optional one
    /// not given).
    fn secret_values(&self, env: &DotEnv) -> Result<Vec<(String, String, String)>, DeployError> {
        let system = &self.target.system;
        let mut missing = Vec::new();
        let mut out = Vec::new();
        for secret in stack_secrets(system) {
            let (variable, value) = match &secret.source {
                SecretSource::Variable(name) => (name.clone(), env.get(name)),
                SecretSource::DatabaseUrl => (
                    "POSTGRES_PASSWORD".to_string(),
                    system.postgres.as_ref().and_then(|(pg, _)| {
                        env.get("POSTGRES_PASSWORD").map(|password| {
                            format!(
                                "postgresql://{}:{}@db:5432/{}",
                                pg.user,
                                percent_encode(&password),
                                pg.database
                            )
                        })
                    }),
                ),
            };
            match value {
                Some(value) => out.push((secret.key.clone(), variable, value)),
                None if secret.required => {
                    if !missing.contains(&variable) {
                        missing.push(variable);
                    }
                }
                None => out.push((secret.key.clone(), variable, String::new())),
            }
        }
        if !missing.is_empty() {
            return Err(DeployError::MissingSecrets {
                dir: self.dir.clone(),
                names: missing,
            });
        }
        Ok(out)
    }

    /// Create the secret unless it exists with the same value; true when created.
    fn ensure_secret(&self, key: &str, variable: &str, value: &str) -> Result<bool, DeployError> {
        let name = self.secret_name(key);
        let fingerprint = short_digest(format!("terrarium-secret\0{name}\0{value}").as_bytes());
        let existing = self.engine.output(&args(&[
            "secret",
            "ls",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Name}}",
        ]))?;
        if existing.lines().any(|l| l.trim() == name) {
            let label = self.engine.output(&args(&[
                "secret",
                "inspect",
                "--format",
                &format!("{{{{index .Spec.Labels \"{LABEL_FINGERPRINT}\"}}}}"),
                &name,
            ]))?;
            if label.trim() == fingerprint {
                return Ok(false);
            }
            return Err(DeployError::SecretChanged {
                name,
                variable: variable.to_string(),
            });
        }
        let create = args(&[
            "secret",
            "create",
            "--label",
            &format!("{LABEL_STACK}={}", self.name()),
            "--label",
            &format!("{LABEL_FINGERPRINT}={fingerprint}"),
            &name,
            "-",
        ]);
        let spawn_error = |source| EngineError::Spawn {
            command: format!("docker {}", create.join(" ")),
            source,
        };
        let mut child = self
            .engine
            .command()
            .args(&create)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(value.as_bytes()).map_err(spawn_error)?;
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if !output.status.success() {
            return Err(EngineError::Command {
                command: format!("docker {}", create.join(" ")),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
            .into());
        }
        Ok(true)
    }

    /// Label this node for the database unless some node has the label; returns the node
    /// labelled.
    fn pin_database(&self, node: &str) -> Result<Option<String>, DeployError> {
        let label = db_node_label(self.name());
        let nodes = self.engine.output(&args(&[
            "node",
            "ls",
            "--quiet",
            "--filter",
            &format!("node.label={label}=true"),
        ]))?;
        if !nodes.trim().is_empty() {
            return Ok(None);
        }
        self.engine.output(&args(&[
            "node",
            "update",
            "--label-add",
            &format!("{label}=true"),
            node,
        ]))?;
        Ok(Some(node.to_string()))
    }

    fn inspect_all(&self) -> Result<Vec<Inspected>, DeployError> {
        let names = self.engine.output(&args(&[
            "service",
            "ls",
            "--filter",
            &format!("label={LABEL_NAMESPACE}={}", self.name()),
            "--format",
            "{{.Name}}",
        ]))?;
        let names: Vec<String> = names
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut command = args(&["service", "inspect"]);
        command.extend(names);
        let text = self.engine.output(&command)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|err| DeployError::Output {
                command: "service inspect".into(),
                detail: err.to_string(),
            })?;
        let mut out: Vec<Inspected> = value
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| Inspected {
                name: s["Spec"]["Name"].as_str().unwrap_or_default().to_string(),
                image: s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                replicas: s["Spec"]["Mode"]["Replicated"]["Replicas"].as_u64(),
                update_state: s["UpdateStatus"]["State"].as_str().map(str::to_string),
                update_started: s["UpdateStatus"]["StartedAt"].as_str().map(str::to_string),
                update_message: s["UpdateStatus"]["Message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn tasks(&self, service: &str) -> Result<Vec<TaskLine>, DeployError> {
        let text = self.engine.output(&args(&[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{json .}}",
            service,
        ]))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|err| DeployError::Output {
                    command: "service ps".into(),
                    detail: format!("{l:?}: {err}"),
                })
            })
            .collect()
    }

    fn is_job(&self, service: &str) -> bool {
        self.target
            .system
            .jobs
            .iter()
            .any(|j| self.service_name(&j.name) == service)
    }

    fn healthy_here(&self) -> Result<Vec<(String, bool)>, DeployError> {
        let text = self.engine.output(&args(&[
            "ps",
            "--filter",
            &format!("label={LABEL_NAMESPACE}={}", self.name()),
            "--format",
            "{{.Label \"com.docker.swarm.service.name\"}}|{{.Status}}",
        ]))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(service, status)| (service.to_string(), status.contains("(healthy)")))
            .collect())
    }

    fn status_of(
        &self,
        service: &Inspected,
        tasks: &[TaskLine],
        healthy: &[(String, bool)],
    ) -> ServiceStatus {
        let running = tasks
            .iter()
            .filter(|t| {
                t.desired == "Running"
                    && t.current.starts_with("Running")
                    && t.image == service.image
            })
            .count();
        let job_done = self.is_job(&service.name)
            && tasks
                .iter()
                .any(|t| t.image == service.image && t.current.starts_with("Complete"));
        ServiceStatus {
            name: service.name.clone(),
            running,
            desired: if job_done { None } else { service.replicas },
            healthy: healthy
                .iter()
                .filter(|(s, ok)| *s == service.name && *ok)
                .count(),
            update: service.update_state.clone(),
            image: service.image.clone(),
        }
    }

    /// Replicas, health and the last update of each service.
    pub fn status(&self) -> Result<Vec<ServiceStatus>, DeployError> {
        self.manager()?;
        let services = self.inspect_all()?;
        if services.is_empty() {
            return Err(DeployError::NoStack(self.name().to_string()));
        }
        let healthy = self.healthy_here()?;
        services
            .iter()
            .map(|s| Ok(self.status_of(s, &self.tasks(&s.name)?, &healthy)))
            .collect()
    }

    /// Wait until every service runs its current image with all replicas (jobs: completed), or
    /// fail as soon as Swarm rolled one back or a job gave up.
    fn wait(
        &self,
        before: &[Inspected],
        timeout: Duration,
    ) -> Result<Vec<ServiceStatus>, DeployError> {
        let start = Instant::now();
        loop {
            let services = self.inspect_all()?;
            let healthy = self.healthy_here()?;
            let mut waiting = Vec::new();
            let mut statuses = Vec::new();
            for service in &services {
                let tasks = self.tasks(&service.name)?;
                let previous = before.iter().find(|b| b.name == service.name);
                let new_update = service.update_started.is_some()
                    && previous.is_none_or(|p| p.update_started != service.update_started);
                let state = service.update_state.as_deref().unwrap_or("");
                if new_update {
                    match state {
                        "rollback_completed" | "rollback_paused" => {
                            return Err(DeployError::RolledBack {
                                service: service.name.clone(),
                                message: service.update_message.clone(),
                            });
                        }
                        "paused" => {
                            return Err(DeployError::Failed {
                                service: service.name.clone(),
                                message: format!("the update paused: {}", service.update_message),
                            });
                        }
                        _ => {}
                    }
                }
                let status = self.status_of(service, &tasks, &healthy);
                if self.is_job(&service.name) {
                    let failed = tasks
                        .iter()
                        .filter(|t| {
                            t.image == service.image
                                && (t.current.starts_with("Failed")
                                    || t.current.starts_with("Rejected"))
                        })
                        .count();
                    let running = tasks.iter().any(|t| t.desired == "Running");
                    if status.desired.is_none() {
                        statuses.push(status);
                        continue;
                    }
                    if failed > 3 && !running {
                        let error = tasks
                            .iter()
                            .find(|t| !t.error.is_empty())
                            .map(|t| t.error.clone())
                            .unwrap_or_else(|| "it exited with an error".into());
                        return Err(DeployError::Failed {
                            service: service.name.clone(),
                            message: format!("the one-off job failed {failed} times: {error}"),
                        });
                    }
                    waiting.push(format!("{} has not completed", service.name));
                    statuses.push(status);
                    continue;
                }
                let updating = matches!(state, "updating" | "rollback_started");
                let desired = service.replicas.unwrap_or(1) as usize;
                let stale = tasks
                    .iter()
                    .filter(|t| t.desired == "Running" && t.image != service.image)
                    .count();
                if updating || status.running < desired || stale > 0 {
                    waiting.push(format!(
                        "{} has {}/{} replicas of {}{}",
                        service.name,
                        status.running,
                        desired,
                        service.image,
                        if updating { ", updating" } else { "" }
                    ));
                }
                statuses.push(status);
            }
            if waiting.is_empty() && !services.is_empty() {
                return Ok(statuses);
            }
            if start.elapsed() >= timeout {
                return Err(DeployError::Timeout {
                    seconds: timeout.as_secs(),
                    waiting,
                });
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// `docker stack rm`, then the secrets terrarium created for it; named volumes stay.
    /// Returns the volumes kept.
    pub fn remove(&self) -> Result<Vec<String>, DeployError> {
        self.manager()?;
        if !stack_exists(&self.engine, self.name())? {
            return Err(DeployError::NoStack(self.name().to_string()));
        }
        self.engine
            .output(&args(&["stack", "rm", self.name()]))
            .map(|_| ())?;
        let start = Instant::now();
        let secrets = self.engine.output(&args(&[
            "secret",
            "ls",
            "--quiet",
            "--filter",
            &format!("label={LABEL_STACK}={}", self.name()),
        ]))?;
        for secret in secrets.lines().map(str::trim).filter(|l| !l.is_empty()) {
            // A secret stays in use until the last task's container is gone.
            loop {
                match self.engine.output(&args(&["secret", "rm", secret])) {
                    Ok(_) => break,
                    Err(_) if start.elapsed() < Duration::from_secs(90) => {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
        let volumes = self.engine.output(&args(&[
            "volume",
            "ls",
            "--quiet",
            "--filter",
            &format!("label={LABEL_NAMESPACE}={}", self.name()),
        ]))?;
        Ok(volumes
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }
}

/// Percent-encode what a URL's userinfo can't hold as is.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_encoded_in_urls() {
        assert_eq!(percent_encode("a1-b"), "a1-b");
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }
}
