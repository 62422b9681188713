//! A typed view of Kubernetes manifests (the parts the rules read): every workload of a
//! multi-document YAML file with its pod spec and containers, each value with its position.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::compose::{ComposeError, Map, Node, get, loc, mapping, scalar, sequence, truthy};
use crate::span::Location;

/// The workloads of a manifest file (other objects are not needed by the rules).
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Pods and the objects with a pod template, in file order.
    pub workloads: Vec<Workload>,
}

/// An object that runs pods.
#[derive(Debug, Clone)]
pub struct Workload {
    /// `kind:` (`Deployment`, `Job`, …).
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// Runs until stopped (not a Job or CronJob): it needs probes.
    pub long_running: bool,
    /// The pod's `securityContext.runAsNonRoot`.
    pub run_as_non_root: Option<bool>,
    /// The pod's `securityContext.runAsUser`.
    pub run_as_user: Option<Node<i64>>,
    /// `hostNetwork`, `hostPID`, `hostIPC` set to true.
    pub host_namespaces: Vec<Node<String>>,
    /// `hostPath` volumes: their paths.
    pub host_paths: Vec<Node<String>>,
    /// Containers and init containers.
    pub containers: Vec<Container>,
}

/// One container of a pod.
#[derive(Debug, Clone)]
pub struct Container {
    /// Its name, where the container is.
    pub name: Node<String>,
    /// An init container (runs to completion before the others).
    pub init: bool,
    /// `image:`
    pub image: Option<Node<String>>,
    /// `securityContext.privileged`.
    pub privileged: Option<Node<bool>>,
    /// `securityContext.allowPrivilegeEscalation`.
    pub allow_privilege_escalation: Option<Node<bool>>,
    /// `securityContext.runAsNonRoot`.
    pub run_as_non_root: Option<bool>,
    /// `securityContext.runAsUser`.
    pub run_as_user: Option<Node<i64>>,
    /// A `readinessProbe` or `livenessProbe`.
    pub probes: bool,
    /// `resources.limits`.
    pub limits: bool,
}

/// Whether `source` looks like Kubernetes manifests: top-level `apiVersion:` and `kind:`.
pub fn looks_like(source: &str) -> bool {
    source.lines().any(|l| l.starts_with("apiVersion:"))
        && source.lines().any(|l| l.starts_with("kind:"))
}

/// Parse a (multi-document) manifest file.
pub fn parse(source: &str) -> Result<Manifests, ComposeError> {
    let docs = MarkedYaml::load_from_str(source).map_err(|e| ComposeError {
        at: Location::point(e.marker().line().max(1), e.marker().col() + 1),
        message: format!("invalid YAML: {}", e.info()),
        fix: "fix the YAML syntax at this position (indentation, quotes, colons)".to_string(),
    })?;
    let mut out = Manifests::default();
    for doc in &docs {
        let Some(root) = mapping(doc) else { continue };
        let text = |map: &Map<'_>, key: &str| {
            get(map, key)
                .and_then(scalar)
                .map(|s| s.into_owned())
                .unwrap_or_default()
        };
        let kind = text(root, "kind");
        let name = get(root, "metadata")
            .and_then(mapping)
            .map(|m| text(m, "name"))
            .unwrap_or_default();
        let spec = get(root, "spec").and_then(mapping);
        let pod = match kind.as_str() {
            "Pod" => spec,
            "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "Job" => spec.and_then(template),
            "CronJob" => spec
                .and_then(|s| get(s, "jobTemplate"))
                .and_then(mapping)
                .and_then(|j| get(j, "spec"))
                .and_then(mapping)
                .and_then(template),
            _ => None,
        };
        let Some(pod) = pod else { continue };
        out.workloads.push(workload(kind, name, pod));
    }
    Ok(out)
}

/// The pod spec of an object's `template`.
fn template<'a, 'b>(spec: &'b Map<'a>) -> Option<&'b Map<'a>> {
    get(spec, "template")
        .and_then(mapping)
        .and_then(|t| get(t, "spec"))
        .and_then(mapping)
}

fn boolean(node: &MarkedYaml<'_>) -> Node<bool> {
    Node {
        value: truthy(node),
        at: loc(node),
    }
}

fn integer(node: &MarkedYaml<'_>) -> Option<Node<i64>> {
    match &node.data {
        YamlData::Value(Scalar::Integer(i)) => Some(Node {
            value: *i,
            at: loc(node),
        }),
        _ => scalar(node).and_then(|s| s.parse().ok()).map(|value| Node {
            value,
            at: loc(node),
        }),
    }
}

fn security<'a, 'b>(map: &'b Map<'a>) -> Option<&'b Map<'a>> {
    get(map, "securityContext").and_then(mapping)
}

fn workload(kind: String, name: String, pod: &Map<'_>) -> Workload {
    let pod_security = security(pod);
    let host_namespaces = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter_map(|key| {
            get(pod, key).filter(|v| truthy(v)).map(|v| Node {
                value: (*key).to_string(),
                at: loc(v),
            })
        })
        .collect();
    let host_paths = get(pod, "volumes")
        .map(sequence)
        .unwrap_or_default()
        .iter()
        .filter_map(mapping)
        .filter_map(|v| get(v, "hostPath"))
        .map(|h| Node {
            value: mapping(h)
                .and_then(|m| get(m, "path"))
                .and_then(scalar)
                .map(|s| s.into_owned())
                .unwrap_or_default(),
            at: loc(h),
        })
        .collect();
    let mut containers = Vec::new();
    for (key, init) in [("initContainers", true), ("containers", false)] {
        for item in get(pod, key).map(sequence).unwrap_or_default() {
            let Some(map) = mapping(item) else { continue };
            let sc = security(map);
            let name = get(map, "name")
                .and_then(scalar)
                .map(|s| s.into_owned())
                .unwrap_or_default();
            containers.push(Container {
                name: Node {
                    value: name,
                    at: loc(item),
                },
                init,
                image: get(map, "image").and_then(|v| {
                    scalar(v).map(|s| Node {
                        value: s.into_owned(),
                        at: loc(v),
                    })
                }),
                privileged: sc.and_then(|s| get(s, "privileged")).map(boolean),
                allow_privilege_escalation: sc
                    .and_then(|s| get(s, "allowPrivilegeEscalation"))
                    .map(boolean),
                run_as_non_root: sc.and_then(|s| get(s, "runAsNonRoot")).map(truthy),
                run_as_user: sc.and_then(|s| get(s, "runAsUser")).and_then(integer),
                probes: get(map, "readinessProbe").is_some() || get(map, "livenessProbe").is_some(),
                limits: get(map, "resources")
                    .and_then(mapping)
                    .and_then(|r| get(r, "limits"))
                    .and_then(mapping)
                    .is_some_and(|l| !l.is_empty()),
            });
        }
    }
    Workload {
        long_running: !matches!(kind.as_str(), "Job" | "CronJob"),
        kind,
        name,
        run_as_non_root: pod_security
            .and_then(|s| get(s, "runAsNonRoot"))
            .map(truthy),
        run_as_user: pod_security
            .and_then(|s| get(s, "runAsUser"))
            .and_then(integer),
        host_namespaces,
        host_paths,
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_workloads_of_every_document() {
        let manifests = parse(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 1000\n      hostNetwork: true\n      volumes:\n      - name: logs\n        hostPath:\n          path: /var/log\n      containers:\n      - name: app\n        image: app:1.0\n        securityContext:\n          allowPrivilegeEscalation: false\n        resources:\n          limits:\n            memory: 1Gi\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: job\n            image: app\n",
        )
        .unwrap();
        assert_eq!(manifests.workloads.len(), 2);
        let web = &manifests.workloads[0];
        assert_eq!(
            (web.kind.as_str(), web.name.as_str()),
            ("Deployment", "web")
        );
        assert_eq!(web.run_as_user.as_ref().map(|u| u.value), Some(1000));
        assert_eq!(web.host_namespaces[0].value, "hostNetwork");
        assert_eq!(web.host_paths[0].value, "/var/log");
        assert_eq!(web.host_paths[0].at.line, 19);
        let app = &web.containers[0];
        assert_eq!(app.name.value, "app");
        assert_eq!(app.name.at.line, 21);
        assert!(app.limits && !app.probes);
        assert_eq!(
            app.allow_privilege_escalation.as_ref().map(|v| v.value),
            Some(false)
        );
        assert!(!manifests.workloads[1].long_running);
        assert!(looks_like("apiVersion: v1\nkind: Pod\n"));
        assert!(!looks_like("services:\n  app:\n    image: x\n"));
    }
}
