//! The plan of a multi-service project: one [`Plan`] per Python service, the jobs, and the
//! images of the gateway and PostgreSQL.

use std::collections::BTreeMap;
use std::path::PathBuf;

use terrarium_project::{Gateway, Job, Postgres, System};

use crate::decide::{PlanOptions, plan};
use crate::{Decision, Origin, Plan, PlanError, tools};

/// One Python service of a system and its plan.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// The compose service name.
    pub name: String,
    /// Its directory, relative to the system root.
    pub path: PathBuf,
    /// Settings given to it in terrarium.toml.
    pub env: BTreeMap<String, String>,
    /// How many copies an orchestrator runs (Swarm, Kubernetes).
    pub replicas: u16,
    /// Its plan.
    pub plan: Plan,
}

/// Every decision for a multi-service project.
#[derive(Debug, Clone)]
pub struct SystemPlan {
    /// The system's name (compose project name).
    pub name: String,
    /// The directory holding terrarium.toml.
    pub root: PathBuf,
    /// The Python services.
    pub services: Vec<ServicePlan>,
    /// One-off jobs, run before the services that wait for them.
    pub jobs: Vec<Job>,
    /// The gateway and its image.
    pub gateway: Option<(Gateway, Decision<String>)>,
    /// PostgreSQL and its image.
    pub postgres: Option<(Postgres, Decision<String>)>,
}

impl SystemPlan {
    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services.iter().find(|s| s.name == name)
    }
}

fn image(
    flag: &Option<String>,
    configured: &Option<String>,
    default: &str,
    reason: &str,
) -> Decision<String> {
    match (flag, configured) {
        (Some(image), _) => Decision {
            value: image.clone(),
            reason: "given on the command line".into(),
            origin: Origin::Config,
            sources: vec![],
        },
        (None, Some(image)) => Decision {
            value: image.clone(),
            reason: "set in terrarium.toml".into(),
            origin: Origin::Config,
            sources: vec![],
        },
        (None, None) => Decision {
            value: default.to_string(),
            reason: reason.to_string(),
            origin: Origin::Default,
            sources: vec![],
        },
    }
}

/// Plan every service of `system`; command-line options apply to all of them.
pub fn plan_system(system: &System, options: &PlanOptions) -> Result<SystemPlan, PlanError> {
    let mut services = Vec::new();
    for service in &system.services {
        services.push(ServicePlan {
            name: service.name.clone(),
            path: service.path.clone(),
            env: service.env.clone(),
            replicas: service.replicas,
            plan: plan(&service.project, options)?,
        });
    }
    Ok(SystemPlan {
        name: system.name.clone(),
        root: system.root.clone(),
        services,
        jobs: system.jobs.clone(),
        gateway: system.gateway.clone().map(|g| {
            let decision = image(
                &options.proxy_image,
                &g.image,
                tools::NGINX_IMAGE,
                "nginx, pinned, in its own container in front of the services (L03)",
            );
            (g, decision)
        }),
        postgres: system.postgres.clone().map(|p| {
            let decision = image(
                &options.postgres_image,
                &p.image,
                tools::POSTGRES_IMAGE,
                "PostgreSQL, pinned, with its data in a named volume (L09)",
            );
            (p, decision)
        }),
    })
}
