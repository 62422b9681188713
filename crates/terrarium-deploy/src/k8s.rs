//! Kubernetes: Kustomize manifests for the system.

use terrarium_render::RenderedFile;

use crate::{DotEnv, Target};

/// Every file of `k8s/`.
pub fn render(_target: &Target, _env: &DotEnv) -> Vec<RenderedFile> {
    Vec::new()
}
