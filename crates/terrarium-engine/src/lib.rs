//! Talking to a Docker engine for terrarium's workflow (`dev`, `shell`, `run`, `logs`, `ps`,
//! `stop`) and to Docker Compose for several services (`up`, `down`, `logs SERVICE`).
//!
//! terrarium drives the user's own `docker` client rather than the engine API: TTYs for
//! shells, contexts, credentials and BuildKit all come with it, and there is one less thing to
//! configure. It never re-implements an orchestrator: compose files go to Compose.

mod compose;
mod docker;
mod error;
mod load;
mod workflow;

pub use compose::{Compose, ServiceState, compose_file};
pub use docker::{BuildRequest, ContainerInfo, Engine, ensure_port_free};
pub use error::EngineError;
pub use load::LoadOutcome;
pub use workflow::{
    LABEL_PROJECT, LABEL_ROLE, ProjectRef, Role, RunSpec, build_dev_image, build_prod_image,
    default_shell, dev_spec, host_user, project_containers, run_and_follow, run_spec, shell_spec,
};
