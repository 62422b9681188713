//! Kubernetes: Kustomize manifests for the system, `k8s/base/` plus `k8s/overlays/dev|prod/`.
//!
//! Per service a Deployment (rolling updates that never go below the replicas asked for, the
//! restricted Pod Security profile, `httpGet` probes that need no shell in the image, a preStop
//! pause so endpoints drain), a Service, a PodDisruptionBudget and a CPU HorizontalPodAutoscaler;
//! settings in a generated ConfigMap, secrets from a `secretGenerator` fed by a `secrets.env`
//! that stays out of version control; PostgreSQL as a StatefulSet with its volume claim, one-off
//! jobs as Jobs, the gateway's routes as an Ingress, and NetworkPolicies that let in only what
//! the system's own wiring needs.

use std::path::PathBuf;

use terrarium_plan::{ServicePlan, SystemPlan, volume_name};
use terrarium_render::RenderedFile;

use crate::yaml::{Node, documents, map, strings};
use crate::{DotEnv, Setting, Target, callers_of, dns_name, settings};

/// The namespace the cluster's ingress controller runs in: allowed to reach the services.
pub const INGRESS_NAMESPACE: &str = "ingress-nginx";
/// The environments written under `k8s/overlays/`.
pub const OVERLAYS: [&str; 2] = ["dev", "prod"];
/// The file each overlay's secretGenerator reads; never committed.
pub const SECRETS_FILE: &str = "secrets.env";
/// The UID and GID PostgreSQL's official image runs as.
const POSTGRES_UID: u32 = 999;

fn file(path: String, contents: String) -> RenderedFile {
    RenderedFile {
        path: PathBuf::from(path),
        contents,
        secret: false,
        merge: None,
    }
}

/// A Kubernetes object's head: `apiVersion`, `kind` and `metadata`.
fn object(api_version: &str, kind: &str, metadata: Node) -> Node {
    map([
        ("apiVersion", Node::from(api_version)),
        ("kind", Node::from(kind)),
        ("metadata", metadata),
    ])
}

fn header(system: &SystemPlan, what: &str) -> String {
    format!(
        "# {what} of the {} system, written by `terrarium k8s`. You own this file.\n",
        system.name
    )
}

/// The labels of one component (`app.kubernetes.io/*`).
fn labels(system: &SystemPlan, name: &str, component: &str) -> Node {
    map([
        ("app.kubernetes.io/name", Node::from(name)),
        ("app.kubernetes.io/instance", Node::from(&system.name)),
        ("app.kubernetes.io/component", Node::from(component)),
    ])
}

fn selector(system: &SystemPlan, name: &str) -> Node {
    map([
        ("app.kubernetes.io/name", Node::from(name)),
        ("app.kubernetes.io/instance", Node::from(&system.name)),
    ])
}

fn metadata(system: &SystemPlan, name: &str, component: &str) -> Node {
    map([
        ("name", Node::from(name)),
        ("labels", labels(system, name, component)),
    ])
}

/// The name of the Secret the overlays generate.
fn secret_name(system: &SystemPlan) -> String {
    format!("{}-secrets", dns_name(&system.name))
}

/// The image's name, which the overlays' `images:` match (without a registry: yours goes there).
fn image_name(system: &SystemPlan, service: &ServicePlan) -> String {
    format!("{}/{}", dns_name(&system.name), dns_name(&service.name))
}

/// The image in the base: tagged with the project's version when it has one.
fn image(system: &SystemPlan, service: &ServicePlan) -> String {
    match &service.plan.version {
        Some(version) => format!("{}:{version}", image_name(system, service)),
        None => image_name(system, service),
    }
}

fn pod_security(uid: u32, gid: u32) -> Node {
    map([
        ("runAsNonRoot", true.into()),
        ("runAsUser", uid.into()),
        ("runAsGroup", gid.into()),
        ("fsGroup", gid.into()),
        ("seccompProfile", map([("type", "RuntimeDefault".into())])),
    ])
}

fn container_security(uid: u32, gid: u32) -> Node {
    map([
        ("allowPrivilegeEscalation", false.into()),
        ("privileged", false.into()),
        ("readOnlyRootFilesystem", true.into()),
        ("runAsNonRoot", true.into()),
        ("runAsUser", uid.into()),
        ("runAsGroup", gid.into()),
        ("capabilities", map([("drop", strings(["ALL"]))])),
        ("seccompProfile", map([("type", "RuntimeDefault".into())])),
    ])
}

fn resources(cpu: &str, memory: &str, cpu_limit: &str, memory_limit: &str) -> Node {
    map([
        (
            "requests",
            map([("cpu", cpu.into()), ("memory", memory.into())]),
        ),
        (
            "limits",
            map([("cpu", cpu_limit.into()), ("memory", memory_limit.into())]),
        ),
    ])
}

fn secret_ref(system: &SystemPlan, name: &str, optional: bool) -> Node {
    let mut key_ref = map([
        ("name", Node::Str(secret_name(system))),
        ("key", Node::from(name)),
    ]);
    if optional {
        key_ref = key_ref.with("optional", true);
    }
    map([
        ("name", Node::from(name)),
        ("valueFrom", map([("secretKeyRef", key_ref)])),
    ])
}

/// The environment entries that come from the Secret (and `DATABASE_URL` built from it).
fn secret_env(system: &SystemPlan, service: &ServicePlan, client: &str) -> Vec<Node> {
    let mut env = Vec::new();
    for setting in settings(system, service, client) {
        match setting {
            Setting::Secret { name, required } => env.push(secret_ref(system, &name, !required)),
            Setting::Required { name } => env.push(secret_ref(system, &name, false)),
            Setting::DatabaseUrl => {
                if let Some((pg, _)) = &system.postgres {
                    env.push(secret_ref(system, "POSTGRES_PASSWORD", false));
                    env.push(map([
                        ("name", "DATABASE_URL".into()),
                        (
                            "value",
                            Node::Str(format!(
                                "postgresql://{}:$(POSTGRES_PASSWORD)@db:5432/{}",
                                pg.user, pg.database
                            )),
                        ),
                    ]));
                }
            }
            Setting::Value { .. } => {}
        }
    }
    env
}

/// The ConfigMap literals of a service: every plain setting.
fn config_literals(system: &SystemPlan, service: &ServicePlan) -> Vec<String> {
    settings(system, service, &service.name)
        .into_iter()
        .filter_map(|s| match s {
            Setting::Value { name, value } => Some(format!("{name}={value}")),
            _ => None,
        })
        .collect()
}

fn config_name(service: &ServicePlan) -> String {
    format!("{}-config", dns_name(&service.name))
}

fn tmp_volume() -> Node {
    map([
        ("name", "tmp".into()),
        ("emptyDir", map([("sizeLimit", "64Mi".into())])),
    ])
}

/// The container of a service or of a job in its image.
fn app_container(
    system: &SystemPlan,
    service: &ServicePlan,
    client: &str,
    job_command: Option<&[String]>,
) -> Node {
    let plan = &service.plan;
    let name = dns_name(client);
    let mut container = map([
        ("name", Node::Str(name)),
        ("image", Node::Str(image(system, service))),
        ("imagePullPolicy", "IfNotPresent".into()),
    ]);
    if let Some(command) = job_command {
        container = container.with("command", strings(command));
    } else {
        container = container.with(
            "ports",
            Node::List(vec![map([
                ("name", "http".into()),
                ("containerPort", plan.port.value.into()),
                ("protocol", "TCP".into()),
            ])]),
        );
    }
    container = container.with(
        "envFrom",
        Node::List(vec![map([(
            "configMapRef",
            map([("name", Node::Str(config_name(service)))]),
        )])]),
    );
    let env = secret_env(system, service, client);
    if !env.is_empty() {
        container = container.with("env", Node::List(env));
    }
    container = container.with(
        "resources",
        if job_command.is_some() {
            resources("50m", "64Mi", "500m", "256Mi")
        } else {
            resources("100m", "128Mi", "1", "512Mi")
        },
    );
    let user = &plan.user.value;
    container = container.with("securityContext", container_security(user.uid, user.gid));
    if job_command.is_none() {
        let probe = |period: u16, failures: u16| {
            let action = match &plan.healthcheck.value {
                Some(path) => (
                    "httpGet",
                    map([("path", Node::from(path)), ("port", "http".into())]),
                ),
                None => ("tcpSocket", map([("port", Node::from("http"))])),
            };
            map([
                action,
                ("periodSeconds", period.into()),
                ("timeoutSeconds", 4u16.into()),
                ("failureThreshold", failures.into()),
            ])
        };
        container = container
            .with("startupProbe", probe(2, 30))
            .with("readinessProbe", probe(5, 3))
            .with("livenessProbe", probe(10, 6))
            .with(
                "lifecycle",
                map([(
                    "preStop",
                    map([("sleep", map([("seconds", Node::Int(5))]))]),
                )]),
            );
    }
    let mut mounts = vec![map([("name", "tmp".into()), ("mountPath", "/tmp".into())])];
    if job_command.is_none() {
        mounts.extend(plan.volumes.value.iter().map(|v| {
            map([
                ("name", Node::Str(volume_name(&v.path))),
                ("mountPath", Node::from(&v.path)),
            ])
        }));
    }
    container.with("volumeMounts", Node::List(mounts))
}

fn pod_spec(service: &ServicePlan, containers: Vec<Node>, volumes: Vec<Node>) -> Node {
    let user = &service.plan.user.value;
    map([
        ("automountServiceAccountToken", false.into()),
        ("enableServiceLinks", false.into()),
        ("securityContext", pod_security(user.uid, user.gid)),
        ("containers", Node::List(containers)),
        ("volumes", Node::List(volumes)),
    ])
}

/// Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler of one service.
fn service_documents(target: &Target, service: &ServicePlan) -> Vec<Node> {
    let system = &target.system;
    let name = dns_name(&service.name);
    let replicas = service.replicas;
    let mut volumes = vec![tmp_volume()];
    let mut claims = Vec::new();
    for v in &service.plan.volumes.value {
        let claim = format!("{name}-{}", volume_name(&v.path));
        volumes.push(map([
            ("name", Node::Str(volume_name(&v.path))),
            (
                "persistentVolumeClaim",
                map([("claimName", Node::Str(claim.clone()))]),
            ),
        ]));
        claims.push(
            object(
                "v1",
                "PersistentVolumeClaim",
                metadata(system, &claim, "data"),
            )
            .with(
                "spec",
                map([
                    ("accessModes", strings(["ReadWriteOnce"])),
                    (
                        "resources",
                        map([("requests", map([("storage", "1Gi".into())]))]),
                    ),
                ]),
            ),
        );
    }
    let mut spec = pod_spec(
        service,
        vec![app_container(system, service, &service.name, None)],
        volumes,
    );
    // Longer than the preStop pause plus the server's own graceful shutdown.
    spec = spec.with("terminationGracePeriodSeconds", 40u16);
    let deployment = object("apps/v1", "Deployment", metadata(system, &name, "server")).with(
        "spec",
        map([
            ("replicas", replicas.into()),
            ("revisionHistoryLimit", 5u16.into()),
            ("selector", map([("matchLabels", selector(system, &name))])),
            (
                "strategy",
                map([
                    ("type", "RollingUpdate".into()),
                    (
                        "rollingUpdate",
                        map([("maxUnavailable", 0u16.into()), ("maxSurge", 1u16.into())]),
                    ),
                ]),
            ),
            (
                "template",
                map([
                    (
                        "metadata",
                        map([("labels", labels(system, &name, "server"))]),
                    ),
                    ("spec", spec),
                ]),
            ),
        ]),
    );
    let svc = object("v1", "Service", metadata(system, &name, "server")).with(
        "spec",
        map([
            ("type", "ClusterIP".into()),
            ("selector", selector(system, &name)),
            (
                "ports",
                Node::List(vec![map([
                    ("name", "http".into()),
                    ("port", service.plan.port.value.into()),
                    ("targetPort", "http".into()),
                    ("protocol", "TCP".into()),
                ])]),
            ),
        ]),
    );
    let pdb = object(
        "policy/v1",
        "PodDisruptionBudget",
        metadata(system, &name, "server"),
    )
    .with(
        "spec",
        map([
            ("maxUnavailable", 1u16.into()),
            ("selector", map([("matchLabels", selector(system, &name))])),
        ]),
    );
    let hpa = object(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        metadata(system, &name, "server"),
    )
    .with(
        "spec",
        map([
            (
                "scaleTargetRef",
                map([
                    ("apiVersion", "apps/v1".into()),
                    ("kind", "Deployment".into()),
                    ("name", Node::Str(name.clone())),
                ]),
            ),
            ("minReplicas", replicas.into()),
            ("maxReplicas", (replicas.saturating_mul(3)).max(3).into()),
            (
                "metrics",
                Node::List(vec![map([
                    ("type", "Resource".into()),
                    (
                        "resource",
                        map([
                            ("name", "cpu".into()),
                            (
                                "target",
                                map([
                                    ("type", "Utilization".into()),
                                    ("averageUtilization", 70u16.into()),
                                ]),
                            ),
                        ]),
                    ),
                ])]),
            ),
        ]),
    );
    let mut docs = vec![deployment, svc, pdb, hpa];
    docs.extend(claims);
    docs
}

fn job_document(system: &SystemPlan, job: &terrarium_project::Job) -> Option<Node> {
    let service = system.service(&job.service)?;
    let name = dns_name(&job.name);
    let spec = pod_spec(
        service,
        vec![app_container(
            system,
            service,
            &job.name,
            Some(&job.command),
        )],
        vec![tmp_volume()],
    )
    .with("restartPolicy", "OnFailure");
    Some(
        object("batch/v1", "Job", metadata(system, &name, "migrations")).with(
            "spec",
            map([
                ("backoffLimit", 4u16.into()),
                ("ttlSecondsAfterFinished", 600u16.into()),
                (
                    "template",
                    map([
                        (
                            "metadata",
                            map([("labels", labels(system, &name, "migrations"))]),
                        ),
                        ("spec", spec),
                    ]),
                ),
            ]),
        ),
    )
}

fn postgres_documents(system: &SystemPlan) -> Vec<Node> {
    let Some((pg, image)) = &system.postgres else {
        return Vec::new();
    };
    let ready = strings([
        "pg_isready",
        "-U",
        pg.user.as_str(),
        "-d",
        pg.database.as_str(),
    ]);
    let probe = |period: u16, failures: u16| {
        map([
            ("exec", map([("command", ready.clone())])),
            ("periodSeconds", period.into()),
            ("timeoutSeconds", 5u16.into()),
            ("failureThreshold", failures.into()),
        ])
    };
    let mount =
        |name: &str, path: &str| map([("name", Node::from(name)), ("mountPath", Node::from(path))]);
    let container = map([
        ("name", "postgres".into()),
        ("image", Node::from(&image.value)),
        ("imagePullPolicy", "IfNotPresent".into()),
        (
            "ports",
            Node::List(vec![map([
                ("name", "postgres".into()),
                ("containerPort", 5432u16.into()),
                ("protocol", "TCP".into()),
            ])]),
        ),
        (
            "env",
            Node::List(vec![
                map([
                    ("name", "POSTGRES_USER".into()),
                    ("value", Node::from(&pg.user)),
                ]),
                map([
                    ("name", "POSTGRES_DB".into()),
                    ("value", Node::from(&pg.database)),
                ]),
                secret_ref(system, "POSTGRES_PASSWORD", false),
                // A directory below the mount: a fresh volume's root may hold lost+found.
                map([
                    ("name", "PGDATA".into()),
                    ("value", "/var/lib/postgresql/data/pgdata".into()),
                ]),
            ]),
        ),
        ("resources", resources("250m", "256Mi", "1", "1Gi")),
        (
            "securityContext",
            container_security(POSTGRES_UID, POSTGRES_UID),
        ),
        ("startupProbe", probe(2, 60)),
        ("readinessProbe", probe(5, 3)),
        ("livenessProbe", probe(10, 6)),
        (
            "volumeMounts",
            Node::List(vec![
                mount("data", "/var/lib/postgresql/data"),
                mount("run", "/var/run/postgresql"),
                mount("tmp", "/tmp"),
            ]),
        ),
    ]);
    let spec = map([
        ("automountServiceAccountToken", false.into()),
        ("enableServiceLinks", false.into()),
        ("securityContext", pod_security(POSTGRES_UID, POSTGRES_UID)),
        ("terminationGracePeriodSeconds", 60u16.into()),
        ("containers", Node::List(vec![container])),
        (
            "volumes",
            Node::List(vec![
                map([
                    ("name", "run".into()),
                    ("emptyDir", map([("sizeLimit", "16Mi".into())])),
                ]),
                tmp_volume(),
            ]),
        ),
    ]);
    let statefulset = object("apps/v1", "StatefulSet", metadata(system, "db", "database")).with(
        "spec",
        map([
            ("serviceName", "db".into()),
            ("replicas", 1u16.into()),
            ("selector", map([("matchLabels", selector(system, "db"))])),
            (
                "template",
                map([
                    (
                        "metadata",
                        map([("labels", labels(system, "db", "database"))]),
                    ),
                    ("spec", spec),
                ]),
            ),
            (
                "volumeClaimTemplates",
                Node::List(vec![map([
                    ("metadata", map([("name", "data".into())])),
                    (
                        "spec",
                        map([
                            ("accessModes", strings(["ReadWriteOnce"])),
                            (
                                "resources",
                                map([("requests", map([("storage", "5Gi".into())]))]),
                            ),
                        ]),
                    ),
                ])]),
            ),
        ]),
    );
    let service = object("v1", "Service", metadata(system, "db", "database")).with(
        "spec",
        map([
            ("clusterIP", "None".into()),
            ("selector", selector(system, "db")),
            (
                "ports",
                Node::List(vec![map([
                    ("name", "postgres".into()),
                    ("port", 5432u16.into()),
                    ("targetPort", "postgres".into()),
                    ("protocol", "TCP".into()),
                ])]),
            ),
        ]),
    );
    vec![statefulset, service]
}

/// The gateway's routes (or, for a single service, everything) as an Ingress.
fn ingress(target: &Target) -> Node {
    let system = &target.system;
    let backend = |service: &str| {
        map([(
            "service",
            map([
                ("name", Node::Str(dns_name(service))),
                ("port", map([("name", "http".into())])),
            ]),
        )])
    };
    let path = |prefix: &str, service: &str| {
        map([
            ("path", Node::from(prefix)),
            ("pathType", "Prefix".into()),
            ("backend", backend(service)),
        ])
    };
    let paths: Vec<Node> = match &system.gateway {
        Some((gateway, _)) => gateway
            .routes
            .iter()
            .map(|r| path(&r.prefix, &r.service))
            .collect(),
        None => system
            .services
            .iter()
            .map(|s| path("/", &s.name))
            .take(1)
            .collect(),
    };
    object(
        "networking.k8s.io/v1",
        "Ingress",
        metadata(system, "gateway", "gateway"),
    )
    .with(
        "spec",
        map([(
            "rules",
            Node::List(vec![map([("http", map([("paths", Node::List(paths))]))])]),
        )]),
    )
}

fn policy(system: &SystemPlan, name: &str, pod: &str, from: Vec<Node>, port: Node) -> Node {
    object(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        metadata(system, name, "network-policy"),
    )
    .with(
        "spec",
        map([
            ("podSelector", map([("matchLabels", selector(system, pod))])),
            ("policyTypes", strings(["Ingress"])),
            (
                "ingress",
                Node::List(vec![map([
                    ("from", Node::List(from)),
                    ("ports", Node::List(vec![map([("port", port)])])),
                ])]),
            ),
        ]),
    )
}

fn pods(system: &SystemPlan, name: &str) -> Node {
    map([(
        "podSelector",
        map([("matchLabels", selector(system, &dns_name(name)))]),
    )])
}

/// Deny all ingress, then let the ingress controller reach the routed services, each service
/// the services that call it, and PostgreSQL its clients.
fn network_policies(target: &Target) -> Vec<Node> {
    let system = &target.system;
    let mut docs = vec![
        object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            metadata(system, "default-deny-ingress", "network-policy"),
        )
        .with(
            "spec",
            map([
                ("podSelector", Node::Map(vec![])),
                ("policyTypes", strings(["Ingress"])),
            ]),
        ),
    ];
    for service in &system.services {
        let routed = match &system.gateway {
            Some((gateway, _)) => gateway.routes.iter().any(|r| r.service == service.name),
            None => true,
        };
        let mut from = Vec::new();
        if routed {
            from.push(map([(
                "namespaceSelector",
                map([(
                    "matchLabels",
                    map([("kubernetes.io/metadata.name", Node::from(INGRESS_NAMESPACE))]),
                )]),
            )]));
        }
        from.extend(
            callers_of(system, &service.name)
                .iter()
                .map(|c| pods(system, c)),
        );
        if from.is_empty() {
            continue;
        }
        let name = dns_name(&service.name);
        docs.push(policy(
            system,
            &format!("{name}-ingress"),
            &name,
            from,
            "http".into(),
        ));
    }
    if let Some((pg, _)) = &system.postgres {
        let from: Vec<Node> = pg.clients.iter().map(|c| pods(system, c)).collect();
        docs.push(policy(system, "db-ingress", "db", from, "postgres".into()));
    }
    docs
}

fn kustomization_base(target: &Target, resources: &[String]) -> String {
    let system = &target.system;
    let generators: Vec<Node> = system
        .services
        .iter()
        .map(|s| {
            map([
                ("name", Node::Str(config_name(s))),
                ("literals", strings(config_literals(system, s))),
            ])
        })
        .collect();
    let doc = map([
        ("apiVersion", "kustomize.config.k8s.io/v1beta1".into()),
        ("kind", "Kustomization".into()),
        (
            "labels",
            Node::List(vec![map([
                (
                    "pairs",
                    map([
                        ("app.kubernetes.io/part-of", Node::from(&system.name)),
                        ("app.kubernetes.io/managed-by", "terrarium".into()),
                    ]),
                ),
                ("includeTemplates", true.into()),
            ])]),
        ),
        ("resources", strings(resources)),
        ("configMapGenerator", Node::List(generators)),
    ]);
    format!(
        "{}# Settings live in the generated ConfigMaps below; secrets come from each overlay's {SECRETS_FILE}.\n{}",
        header(system, "Kustomize base"),
        crate::yaml::to_string(&doc)
    )
}

/// The namespace of an overlay: the system's name, with `-dev` for the development one.
fn namespace_name(system: &SystemPlan, env: &str) -> String {
    if env == "prod" {
        dns_name(&system.name)
    } else {
        format!("{}-{env}", dns_name(&system.name))
    }
}

fn overlay(target: &Target, env: &str) -> String {
    let system = &target.system;
    let namespace = namespace_name(system, env);
    let images: Vec<Node> = system
        .services
        .iter()
        .map(|s| {
            let tag = match (env, &s.plan.version) {
                ("prod", Some(version)) => version.clone(),
                _ => "deploy".to_string(),
            };
            map([
                ("name", Node::Str(image_name(system, s))),
                ("newTag", Node::Str(tag)),
            ])
        })
        .collect();
    let mut doc = map([
        ("apiVersion", "kustomize.config.k8s.io/v1beta1".into()),
        ("kind", "Kustomization".into()),
        ("namespace", Node::Str(namespace)),
        ("resources", strings(["namespace.yaml", "../../base"])),
        (
            "secretGenerator",
            Node::List(vec![map([
                ("name", Node::Str(secret_name(system))),
                ("envs", strings([SECRETS_FILE])),
            ])]),
        ),
        ("images", Node::List(images)),
    ]);
    if env == "dev" {
        doc = doc.with(
            "replicas",
            Node::List(
                system
                    .services
                    .iter()
                    .map(|s| {
                        map([
                            ("name", Node::Str(dns_name(&s.name))),
                            ("count", Node::Int(1)),
                        ])
                    })
                    .collect(),
            ),
        );
        doc = doc.with(
            "patches",
            Node::List(
                system
                    .services
                    .iter()
                    .map(|s| {
                        map([
                            (
                                "target",
                                map([
                                    ("kind", "HorizontalPodAutoscaler".into()),
                                    ("name", Node::Str(dns_name(&s.name))),
                                ]),
                            ),
                            (
                                "patch",
                                "- op: replace\n  path: /spec/minReplicas\n  value: 1\n".into(),
                            ),
                        ])
                    })
                    .collect(),
            ),
        );
    }
    let what = if env == "prod" {
        "Production overlay: the replicas of terrarium.toml, images by version (set a digest with `kustomize edit set image NAME@sha256:…`)"
    } else {
        "Development overlay: one replica each, the images `terrarium deploy swarm` builds (`:deploy`)"
    };
    format!(
        "{}# {what}.\n# Secrets: {SECRETS_FILE} beside this file (NAME=value lines, never committed).\n{}",
        header(system, "Kustomize overlay"),
        crate::yaml::to_string(&doc)
    )
}

fn namespace(target: &Target, env: &str) -> String {
    let system = &target.system;
    let name = namespace_name(system, env);
    let doc = object(
        "v1",
        "Namespace",
        map([
            ("name", Node::Str(name)),
            (
                "labels",
                map([
                    ("pod-security.kubernetes.io/enforce", "restricted".into()),
                    ("pod-security.kubernetes.io/audit", "restricted".into()),
                    ("pod-security.kubernetes.io/warn", "restricted".into()),
                ]),
            ),
        ]),
    );
    format!(
        "{}# The restricted Pod Security profile is enforced for every pod in it.\n{}",
        header(system, "Namespace"),
        crate::yaml::to_string(&doc)
    )
}

/// The variables the Secret holds: every secret and operator-given setting of the system.
pub fn secret_variables(system: &SystemPlan) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut push = |name: &str, required: bool| {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), required));
        }
    };
    if system.postgres.is_some() {
        push("POSTGRES_PASSWORD", true);
    }
    for (client, service) in crate::swarm::clients(system) {
        for setting in settings(system, service, &client) {
            match setting {
                Setting::Secret { name, required } => push(&name, required),
                Setting::Required { name } => push(&name, true),
                _ => {}
            }
        }
    }
    out
}

/// An overlay's `secrets.env`: dev takes the values of the system's `.env`; anything missing
/// that terrarium may generate (a secret by its name) gets a fresh random value, the rest an
/// empty line to fill in.
fn secrets_env(system: &SystemPlan, env: &DotEnv, overlay: &str) -> String {
    let mut out = format!(
        "# Secrets and operator settings of the {} system for the {overlay} overlay, read by its\n\
         # secretGenerator. Never commit this file.\n",
        system.name
    );
    for (name, _) in secret_variables(system) {
        let value = match (overlay, env.file_value(&name)) {
            ("dev", Some(value)) => value.to_string(),
            _ if terrarium_plan::is_secret(&name) => random_hex(),
            _ => String::new(),
        };
        out.push_str(&format!("{name}={value}\n"));
    }
    out
}

fn random_hex() -> String {
    let mut bytes = [0u8; 18];
    match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        // Never a weak secret: empty, so the pod fails to start until it is set.
        Err(_) => String::new(),
    }
}

/// Every file of `k8s/`: the base's manifests and kustomization, each overlay's kustomization,
/// namespace and `secrets.env` (mode 0600, never overwritten), and a `.gitignore` for those.
pub fn render(target: &Target, env: &DotEnv) -> Vec<RenderedFile> {
    let system = &target.system;
    let mut files = Vec::new();
    let mut resources = Vec::new();
    for service in &system.services {
        let name = format!("{}.yaml", dns_name(&service.name));
        files.push(file(
            format!("k8s/base/{name}"),
            header(system, &format!("The {} service", service.name))
                + &documents(&service_documents(target, service)),
        ));
        resources.push(name);
    }
    let postgres = postgres_documents(system);
    if !postgres.is_empty() {
        files.push(file(
            "k8s/base/db.yaml".into(),
            header(system, "PostgreSQL") + &documents(&postgres),
        ));
        resources.push("db.yaml".into());
    }
    for job in &system.jobs {
        if let Some(doc) = job_document(system, job) {
            let name = format!("{}.yaml", dns_name(&job.name));
            files.push(file(
                format!("k8s/base/{name}"),
                header(system, &format!("The one-off job {}", job.name))
                    + "# A Job runs once; to run it again after an image change: kubectl delete job NAME, then apply.\n"
                    + &crate::yaml::to_string(&doc),
            ));
            resources.push(name);
        }
    }
    files.push(file(
        "k8s/base/ingress.yaml".into(),
        header(system, "The gateway")
            + "# Routes to the services; the ingress controller is the only way in from outside.\n"
            + &crate::yaml::to_string(&ingress(target)),
    ));
    resources.push("ingress.yaml".into());
    files.push(file(
        "k8s/base/network-policy.yaml".into(),
        header(system, "Network policies")
            + &format!("# Nothing reaches a pod unless listed: the ingress controller (namespace {INGRESS_NAMESPACE}) the routed\n# services, a service the services that call it, PostgreSQL its clients.\n")
            + &documents(&network_policies(target)),
    ));
    resources.push("network-policy.yaml".into());
    files.push(file(
        "k8s/base/kustomization.yaml".into(),
        kustomization_base(target, &resources),
    ));
    for overlay_name in OVERLAYS {
        files.push(file(
            format!("k8s/overlays/{overlay_name}/kustomization.yaml"),
            overlay(target, overlay_name),
        ));
        files.push(file(
            format!("k8s/overlays/{overlay_name}/namespace.yaml"),
            namespace(target, overlay_name),
        ));
        files.push(RenderedFile {
            path: PathBuf::from(format!("k8s/overlays/{overlay_name}/{SECRETS_FILE}")),
            contents: secrets_env(system, env, overlay_name),
            secret: true,
            merge: None,
        });
    }
    files.push(file(
        "k8s/.gitignore".into(),
        format!("# Secrets for the overlays' secretGenerators: never committed.\n{SECRETS_FILE}\n"),
    ));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Vec<RenderedFile> {
        let (dir, target) = crate::test_system();
        let env = DotEnv::parse(
            "POSTGRES_PASSWORD=pw-from-dotenv\nAPI_TOKEN=token-from-dotenv\n",
            &dir.path().join(".env"),
        )
        .expect("env");
        render(&target, &env)
    }

    fn contents<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
        &files
            .iter()
            .find(|f| f.path == std::path::Path::new(path))
            .unwrap_or_else(|| panic!("{path}"))
            .contents
    }

    #[test]
    fn secrets_only_in_the_overlays_secrets_files() {
        let files = rendered();
        for file in &files {
            let is_secrets = file.path.ends_with(SECRETS_FILE);
            assert_eq!(file.secret, is_secrets, "{}", file.path.display());
            if !is_secrets {
                assert!(
                    !file.contents.contains("-from-dotenv"),
                    "{}",
                    file.path.display()
                );
            }
        }
        let dev = contents(&files, "k8s/overlays/dev/secrets.env");
        assert!(dev.contains("POSTGRES_PASSWORD=pw-from-dotenv\nAPI_TOKEN=token-from-dotenv\n"));
        let prod = contents(&files, "k8s/overlays/prod/secrets.env");
        assert!(!prod.contains("-from-dotenv"));
        assert!(
            prod.lines()
                .any(|l| l.starts_with("API_TOKEN=") && l.len() == 46),
            "{prod}"
        );
    }

    #[test]
    fn wiring_becomes_network_policies() {
        let files = rendered();
        let policies = contents(&files, "k8s/base/network-policy.yaml");
        let api = policies
            .split("---\n")
            .find(|d| d.contains("name: api-ingress"))
            .expect("api policy");
        assert!(api.contains("app.kubernetes.io/name: web"), "{api}");
        assert!(!api.contains(INGRESS_NAMESPACE), "api is not routed: {api}");
        let db = policies
            .split("---\n")
            .find(|d| d.contains("name: db-ingress"))
            .expect("db policy");
        assert!(db.contains("app.kubernetes.io/name: migrate"), "{db}");
        let api_yaml = contents(&files, "k8s/base/api.yaml");
        assert!(
            api_yaml.contains("value: \"postgresql://shop:$(POSTGRES_PASSWORD)@db:5432/shop\"")
        );
        assert!(api_yaml.contains("  replicas: 3\n"));
        let dev = contents(&files, "k8s/overlays/dev/kustomization.yaml");
        assert!(
            dev.contains("replicas:\n- name: api\n  count: 1\n"),
            "{dev}"
        );
    }
}
