//! What `terrarium test DIR` tests: the project in DIR, or in a `terrarium.toml` system each
//! service in turn (or the one named), with the services each suite needs: the project's
//! `[test] services`, and PostgreSQL for a system service that the system's `[postgres]` serves.

use std::path::Path;

use terrarium_project::{DetectError, Project, System};

/// One suite to run.
#[derive(Debug, Clone)]
pub struct Target {
    /// The system service's name (None for a single project).
    pub service: Option<String>,
    /// The project.
    pub project: Project,
    /// The services to start beside the tests.
    pub services: Vec<String>,
    /// The system's PostgreSQL image, when it sets one.
    pub postgres_image: Option<String>,
}

/// Why the targets could not be found.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The project could not be read.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// `--service` named no service of the system.
    #[error(
        "{root}: the system has no service `{service}` (its services: {known})\n  fix: name one of them"
    )]
    UnknownService {
        /// The system's directory.
        root: String,
        /// What was named.
        service: String,
        /// Its services.
        known: String,
    },
    /// `--service` without a system.
    #[error(
        "{dir}: --service needs a terrarium.toml system with [services]\n  fix: drop --service"
    )]
    NotASystem {
        /// The directory.
        dir: String,
    },
}

/// The suites of `dir`; `service` picks one service of a system.
pub fn targets(dir: &Path, service: Option<&str>) -> Result<Vec<Target>, TargetError> {
    if let Some(system) = terrarium_project::detect_system(dir)? {
        let chosen: Vec<_> = system
            .services
            .iter()
            .filter(|s| service.is_none_or(|name| s.name == name))
            .collect();
        if chosen.is_empty() {
            return Err(TargetError::UnknownService {
                root: dir.display().to_string(),
                service: service.unwrap_or_default().to_string(),
                known: system
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        return Ok(chosen
            .into_iter()
            .map(|s| target(s.project.clone(), Some((&system, s.name.as_str()))))
            .collect());
    }
    if service.is_some() {
        return Err(TargetError::NotASystem {
            dir: dir.display().to_string(),
        });
    }
    let project = terrarium_project::detect(dir)?;
    // A service directory of a system (`examples/loyalty/points`): the system's settings
    // count for its suite too.
    let parent = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf));
    if let Some(parent) = parent
        && let Ok(Some(system)) = terrarium_project::detect_system(&parent)
        && let Some(own) = system.services.iter().find(|s| {
            std::fs::canonicalize(system.root.join(&s.path)).ok() == std::fs::canonicalize(dir).ok()
        })
    {
        let name = own.name.clone();
        return Ok(vec![target(project, Some((&system, name.as_str())))]);
    }
    Ok(vec![target(project, None)])
}

fn target(project: Project, system: Option<(&System, &str)>) -> Target {
    let mut services: Vec<String> = project
        .config
        .test_services
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_default();
    let mut postgres_image = None;
    if let Some((system, name)) = system
        && let Some(postgres) = &system.postgres
        && postgres.clients.iter().any(|c| c == name)
    {
        if !services.iter().any(|s| s == "postgres") {
            services.push("postgres".into());
        }
        postgres_image = postgres.image.clone();
    }
    Target {
        service: system.map(|(_, name)| name.to_string()),
        project,
        services,
        postgres_image,
    }
}
