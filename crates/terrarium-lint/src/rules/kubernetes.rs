//! Kubernetes rules: the lessons as they apply to the pods of manifests.

use super::supply::unpinned_message;
use super::{Emitter, KubernetesContext, Rule};
use crate::finding::{LessonId, Severity};
use crate::kubernetes::{Container, Workload};

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "k8s-root",
        lesson: Some(LessonId::new(11)),
        severity: Severity::Warning,
        summary: "a container may run as root: no `runAsNonRoot: true`, or `runAsUser: 0`",
        rationale: "Without `runAsNonRoot: true` (or a non-zero `runAsUser`) the container runs \
                    as whatever user the image says, often root; the restricted Pod Security \
                    profile refuses such pods.",
        bad: "spec:\n  containers:\n  - name: app\n    image: app:1.0",
        good: "spec:\n  securityContext:\n    runAsNonRoot: true\n    runAsUser: 65532\n  containers:\n  - name: app\n    image: app:1.0",
        fix: "set `securityContext.runAsNonRoot: true` and a non-zero `runAsUser` on the pod",
        dockerfile: None,
        compose: None,
        kubernetes: Some(root),
    },
    Rule {
        id: "k8s-privileged",
        lesson: Some(LessonId::new(11)),
        severity: Severity::Error,
        summary: "a pod is privileged, may escalate privileges, or shares the host's namespaces",
        rationale: "`privileged: true`, `allowPrivilegeEscalation: true` and `hostNetwork`, \
                    `hostPID` or `hostIPC` give the container what root on the node has.",
        bad: "containers:\n- name: app\n  securityContext:\n    privileged: true",
        good: "containers:\n- name: app\n  securityContext:\n    allowPrivilegeEscalation: false\n    capabilities:\n      drop: [ALL]",
        fix: "remove it; set `allowPrivilegeEscalation: false` and drop all capabilities",
        dockerfile: None,
        compose: None,
        kubernetes: Some(privileged),
    },
    Rule {
        id: "k8s-no-probes",
        lesson: Some(LessonId::new(18)),
        severity: Severity::Warning,
        summary: "a long-running container has neither a readiness nor a liveness probe",
        rationale: "Without probes Kubernetes sends traffic to a pod that is still starting and \
                    keeps a hung one; a rolling update can't wait for the new pods to be ready.",
        bad: "containers:\n- name: app\n  image: app:1.0",
        good: "containers:\n- name: app\n  image: app:1.0\n  readinessProbe:\n    httpGet:\n      path: /health\n      port: 8000",
        fix: "add a `readinessProbe` and a `livenessProbe` (`httpGet` needs no shell in the image)",
        dockerfile: None,
        compose: None,
        kubernetes: Some(no_probes),
    },
    Rule {
        id: "k8s-no-limits",
        lesson: Some(LessonId::new(20)),
        severity: Severity::Info,
        summary: "a container has no resource limits",
        rationale: "One runaway pod can starve the others on its node.",
        bad: "containers:\n- name: app\n  image: app:1.0",
        good: "containers:\n- name: app\n  image: app:1.0\n  resources:\n    limits:\n      memory: 512Mi",
        fix: "add `resources.limits` (and requests)",
        dockerfile: None,
        compose: None,
        kubernetes: Some(no_limits),
    },
    Rule {
        id: "k8s-floating-image",
        lesson: Some(LessonId::new(13)),
        severity: Severity::Warning,
        summary: "a container's image has no tag, `latest`, or a tag with no version",
        rationale: "A floating tag makes every restart a possible upgrade: two pods of the same \
                    Deployment can run different code.",
        bad: "image: registry.example.com/app:latest",
        good: "image: registry.example.com/app:1.4.2   # or @sha256:…",
        fix: "pin a version tag or a digest (kustomize: `images:` in the overlay)",
        dockerfile: None,
        compose: None,
        kubernetes: Some(floating_image),
    },
    Rule {
        id: "k8s-host-path",
        lesson: Some(LessonId::new(21)),
        severity: Severity::Warning,
        summary: "a pod mounts a path of the node (`hostPath`)",
        rationale: "A node's paths exist on that node only and give the pod the node's files; \
                    use a PersistentVolumeClaim.",
        bad: "volumes:\n- name: data\n  hostPath:\n    path: /srv/data",
        good: "volumes:\n- name: data\n  persistentVolumeClaim:\n    claimName: data",
        fix: "use a PersistentVolumeClaim (or an emptyDir for scratch space)",
        dockerfile: None,
        compose: None,
        kubernetes: Some(host_path),
    },
];

fn label(workload: &Workload, container: &Container) -> String {
    format!(
        "{} `{}`, container `{}`",
        workload.kind, workload.name, container.name.value
    )
}

fn root(cx: &KubernetesContext<'_>, out: &mut Emitter<'_>) {
    for w in &cx.file.workloads {
        for c in &w.containers {
            let user = c.run_as_user.as_ref().or(w.run_as_user.as_ref());
            if let Some(user) = user.filter(|u| u.value == 0) {
                out.at_with(
                    user.at,
                    Severity::Error,
                    format!("{} runs as UID 0", label(w, c)),
                );
                continue;
            }
            let non_root = c.run_as_non_root.or(w.run_as_non_root) == Some(true);
            if !non_root && user.is_none() {
                out.at(
                    c.name.at,
                    format!(
                        "{} may run as root: nothing sets `runAsNonRoot: true` or `runAsUser`",
                        label(w, c)
                    ),
                );
            }
        }
    }
}

fn privileged(cx: &KubernetesContext<'_>, out: &mut Emitter<'_>) {
    for w in &cx.file.workloads {
        for shared in &w.host_namespaces {
            out.at(
                shared.at,
                format!(
                    "{} `{}` shares the node's namespace: `{}: true`",
                    w.kind, w.name, shared.value
                ),
            );
        }
        for c in &w.containers {
            if let Some(p) = c.privileged.as_ref().filter(|p| p.value) {
                out.at(p.at, format!("{} is privileged", label(w, c)));
            }
            if let Some(e) = c.allow_privilege_escalation.as_ref().filter(|e| e.value) {
                out.at(e.at, format!("{} allows privilege escalation", label(w, c)));
            }
        }
    }
}

fn no_probes(cx: &KubernetesContext<'_>, out: &mut Emitter<'_>) {
    for w in cx.file.workloads.iter().filter(|w| w.long_running) {
        for c in w.containers.iter().filter(|c| !c.init && !c.probes) {
            out.at(
                c.name.at,
                format!("{} has no readiness or liveness probe", label(w, c)),
            );
        }
    }
}

fn no_limits(cx: &KubernetesContext<'_>, out: &mut Emitter<'_>) {
    for w in &cx.file.workloads {
        for c in w.containers.iter().filter(|c| !c.limits) {
            out.at(c.name.at, format!("{} has no resource limits", label(w, c)));
        }
    }
}

fn floating_image(cx: &KubernetesContext<'_>, out: &mut Emitter<'_>) {
    for w in &cx.file.workloads {
        for c in &w.containers {
            let Some(image) = &c.image else { continue };
            if let Some(message) = unpinned_message(&image.value) {
                out.at(image.at, format!("{}: {message}", label(w, c)));
            }
        }
    }
}

fn host_path(cx: &KubernetesContext<'_>, out: &mut Emitter<'_>) {
    for w in &cx.file.workloads {
        for path in &w.host_paths {
            out.at(
                path.at,
                format!("{} `{}` mounts the node's `{}`", w.kind, w.name, path.value),
            );
        }
    }
}
