//! A typed view of a Compose file (the parts the rules read), built from a YAML tree with
//! positions so every finding points at the right line.

use std::borrow::Cow;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::span::Location;

/// A value from the file with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<T> {
    /// The value.
    pub value: T,
    /// Where it is.
    pub at: Location,
}

/// A parsed Compose file.
#[derive(Debug, Clone, Default)]
pub struct ComposeFile {
    /// The services, in file order.
    pub services: Vec<Service>,
}

/// A YAML error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeError {
    /// Where.
    pub at: Location,
    /// What.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// One service.
#[derive(Debug, Clone)]
pub struct Service {
    /// The service's key.
    pub name: Node<String>,
    /// `image:`
    pub image: Option<Node<String>>,
    /// Whether the service has `build:` (its image is built from the project).
    pub build: bool,
    /// `user:`
    pub user: Option<Node<String>>,
    /// `privileged: true`
    pub privileged: Option<Node<bool>>,
    /// `cap_add:` entries.
    pub cap_add: Vec<Node<String>>,
    /// `command:` as one shell line.
    pub command: Option<Node<String>>,
    /// `entrypoint:` as one shell line.
    pub entrypoint: Option<Node<String>>,
    /// `ports:`
    pub ports: Vec<Port>,
    /// `volumes:`
    pub volumes: Vec<Mount>,
    /// `environment:`
    pub environment: Vec<EnvVar>,
    /// `healthcheck:` present (and not disabled).
    pub healthcheck: bool,
    /// `restart:` or `deploy.restart_policy` present.
    pub restart: bool,
    /// Resource limits present (`deploy.resources.limits`, `mem_limit`, `cpus`).
    pub limits: bool,
    /// Services this one waits to complete (`depends_on: X: condition:
    /// service_completed_successfully`): those are one-off jobs, not long-running services.
    pub awaits_completion_of: Vec<String>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Host interface, if given.
    pub host_ip: Option<String>,
    /// Host port, if published.
    pub published: Option<String>,
    /// Container port.
    pub target: String,
    /// Where the entry is.
    pub at: Location,
}

/// What a volume entry mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A host path.
    Bind,
    /// A named volume.
    Volume,
    /// An anonymous volume (only a container path).
    Anonymous,
    /// tmpfs.
    Tmpfs,
}

/// A `volumes:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Bind, named, anonymous or tmpfs.
    pub kind: MountKind,
    /// Host path or volume name.
    pub source: Option<String>,
    /// Path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Where the entry is.
    pub at: Location,
}

/// An `environment:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// Variable name.
    pub key: String,
    /// Its literal value (`None` when passed through from the host).
    pub value: Option<String>,
    /// Where the entry is.
    pub at: Location,
}

/// Parse Compose YAML.
pub fn parse(source: &str) -> Result<ComposeFile, ComposeError> {
    let docs = MarkedYaml::load_from_str(source).map_err(|e| ComposeError {
        at: Location::point(e.marker().line().max(1), e.marker().col() + 1),
        message: format!("invalid YAML: {}", e.info()),
        fix: "fix the YAML syntax at this position (indentation, quotes, colons)".to_string(),
    })?;
    let Some(root) = docs.first() else {
        return Ok(ComposeFile::default());
    };
    if matches!(root.data, YamlData::Value(Scalar::Null)) {
        return Ok(ComposeFile::default());
    }
    let Some(root_map) = mapping(root) else {
        return Err(ComposeError {
            at: loc(root),
            message: "a Compose file must be a mapping with a `services:` key".to_string(),
            fix: "start the file with `services:`".to_string(),
        });
    };
    let mut file = ComposeFile::default();
    let Some(services) = get(root_map, "services") else {
        return Ok(file);
    };
    let Some(services_map) = mapping(services) else {
        if matches!(services.data, YamlData::Value(Scalar::Null)) {
            return Ok(file);
        }
        return Err(ComposeError {
            at: loc(services),
            message: "`services` must be a mapping of service names to services".to_string(),
            fix: "write each service as `name:` followed by its indented settings".to_string(),
        });
    };
    for (key, value) in services_map {
        let name = Node {
            value: scalar(key).unwrap_or_default().into_owned(),
            at: loc(key),
        };
        let Some(map) = mapping(value) else {
            return Err(ComposeError {
                at: loc(value),
                message: format!("service `{}` must be a mapping", name.value),
                fix: "indent the service's settings under its name".to_string(),
            });
        };
        file.services.push(service(name, map));
    }
    Ok(file)
}

/// A YAML mapping with positions.
pub(crate) type Map<'a> = saphyr::AnnotatedMapping<'a, MarkedYaml<'a>>;

pub(crate) fn mapping<'a, 'b>(node: &'b MarkedYaml<'a>) -> Option<&'b Map<'a>> {
    match &node.data {
        YamlData::Mapping(m) => Some(m),
        YamlData::Tagged(_, inner) => mapping(inner),
        _ => None,
    }
}

pub(crate) fn sequence<'a, 'b>(node: &'b MarkedYaml<'a>) -> &'b [MarkedYaml<'a>] {
    match &node.data {
        YamlData::Sequence(s) => s,
        _ => &[],
    }
}

pub(crate) fn scalar<'b>(node: &'b MarkedYaml<'_>) -> Option<Cow<'b, str>> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(Cow::Borrowed(s.as_ref())),
        YamlData::Value(Scalar::Integer(i)) => Some(Cow::Owned(i.to_string())),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(Cow::Owned(f.to_string())),
        YamlData::Value(Scalar::Boolean(b)) => Some(Cow::Owned(b.to_string())),
        YamlData::Representation(s, _, _) => Some(Cow::Borrowed(s.as_ref())),
        _ => None,
    }
}

pub(crate) fn get<'a, 'b>(map: &'b Map<'a>, key: &str) -> Option<&'b MarkedYaml<'a>> {
    map.iter()
        .find(|(k, _)| scalar(k).is_some_and(|s| s == key))
        .map(|(_, v)| v)
}

pub(crate) fn loc(node: &MarkedYaml<'_>) -> Location {
    let (s, e) = (node.span.start, node.span.end);
    let mut at = Location {
        line: s.line().max(1),
        column: s.col() + 1,
        end_line: e.line().max(1),
        end_column: e.col() + 1,
    };
    if at.end_line < at.line || (at.end_line == at.line && at.end_column <= at.column) {
        at.end_line = at.line;
        at.end_column = at.column + 1;
    }
    at
}

pub(crate) fn truthy(node: &MarkedYaml<'_>) -> bool {
    match &node.data {
        YamlData::Value(Scalar::Boolean(b)) => *b,
        _ => scalar(node).is_some_and(|s| matches!(s.as_ref(), "true" | "True" | "yes")),
    }
}

/// A string or list command as one shell line.
fn command_line(node: &MarkedYaml<'_>) -> Option<String> {
    if let Some(s) = scalar(node) {
        return Some(s.into_owned());
    }
    let items = sequence(node);
    if items.is_empty() {
        return None;
    }
    Some(
        items
            .iter()
            .filter_map(scalar)
            .map(|s| {
                if s.contains(char::is_whitespace) {
                    format!("'{s}'")
                } else {
                    s.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn service(name: Node<String>, map: &Map<'_>) -> Service {
    let string = |key: &str| {
        get(map, key).and_then(|v| {
            scalar(v).map(|s| Node {
                value: s.into_owned(),
                at: loc(v),
            })
        })
    };
    let deploy = get(map, "deploy").and_then(mapping);
    let limits = deploy
        .and_then(|d| get(d, "resources"))
        .and_then(mapping)
        .is_some_and(|r| get(r, "limits").is_some())
        || ["mem_limit", "cpus", "cpu_quota", "memswap_limit"]
            .iter()
            .any(|k| get(map, k).is_some());
    let healthcheck = get(map, "healthcheck")
        .is_some_and(|h| mapping(h).is_some_and(|m| !get(m, "disable").is_some_and(truthy)));
    Service {
        image: string("image"),
        build: get(map, "build").is_some(),
        user: string("user"),
        privileged: get(map, "privileged").map(|v| Node {
            value: truthy(v),
            at: loc(v),
        }),
        cap_add: get(map, "cap_add")
            .map(|v| {
                sequence(v)
                    .iter()
                    .filter_map(|c| {
                        scalar(c).map(|s| Node {
                            value: s.into_owned(),
                            at: loc(c),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        command: get(map, "command").and_then(|v| {
            command_line(v).map(|c| Node {
                value: c,
                at: loc(v),
            })
        }),
        entrypoint: get(map, "entrypoint").and_then(|v| {
            command_line(v).map(|c| Node {
                value: c,
                at: loc(v),
            })
        }),
        ports: get(map, "ports")
            .map(|v| sequence(v).iter().filter_map(port).collect())
            .unwrap_or_default(),
        volumes: get(map, "volumes")
            .map(|v| sequence(v).iter().filter_map(mount).collect())
            .unwrap_or_default(),
        environment: get(map, "environment").map(environment).unwrap_or_default(),
        healthcheck,
        restart: get(map, "restart").is_some()
            || deploy.is_some_and(|d| get(d, "restart_policy").is_some()),
        limits,
        awaits_completion_of: get(map, "depends_on")
            .and_then(mapping)
            .map(|deps| {
                deps.iter()
                    .filter(|(_, v)| {
                        mapping(v)
                            .and_then(|m| get(m, "condition"))
                            .and_then(scalar)
                            .is_some_and(|c| c == "service_completed_successfully")
                    })
                    .filter_map(|(k, _)| scalar(k).map(Cow::into_owned))
                    .collect()
            })
            .unwrap_or_default(),
        name,
    }
}

fn port(node: &MarkedYaml<'_>) -> Option<Port> {
    let at = loc(node);
    if let Some(map) = mapping(node) {
        let field = |k: &str| get(map, k).and_then(scalar).map(Cow::into_owned);
        return Some(Port {
            host_ip: field("host_ip"),
            published: field("published"),
            target: field("target")?,
            at,
        });
    }
    let text = scalar(node)?;
    let text = text.split('/').next().unwrap_or_default();
    let (host_ip, rest) = if let Some(stripped) = text.strip_prefix('[') {
        let (ip, rest) = stripped.split_once("]:")?;
        (Some(ip.to_string()), rest.to_string())
    } else {
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() == 3 {
            (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            )
        } else {
            (None, text.to_string())
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p.to_string()).filter(|p| !p.is_empty()), t.to_string()),
        None => (None, rest),
    };
    Some(Port {
        host_ip,
        published,
        target,
        at,
    })
}

fn mount(node: &MarkedYaml<'_>) -> Option<Mount> {
    let at = loc(node);
    if let Some(map) = mapping(node) {
        let field = |k: &str| get(map, k).and_then(scalar).map(Cow::into_owned);
        let kind = match field("type").as_deref() {
            Some("bind") => MountKind::Bind,
            Some("tmpfs") => MountKind::Tmpfs,
            _ if field("source").is_none() => MountKind::Anonymous,
            _ => MountKind::Volume,
        };
        return Some(Mount {
            kind,
            source: field("source"),
            target: field("target").unwrap_or_default(),
            read_only: get(map, "read_only").is_some_and(truthy),
            at,
        });
    }
    let text = scalar(node)?;
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => (Some(*source), *target, ""),
        [source, target, mode, ..] => (Some(*source), *target, *mode),
        [] => return None,
    };
    let kind = match source {
        None => MountKind::Anonymous,
        Some(s) if s.starts_with(['.', '/', '~', '$']) => MountKind::Bind,
        Some(_) => MountKind::Volume,
    };
    Some(Mount {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: mode.split(',').any(|m| m == "ro"),
        at,
    })
}

fn environment(node: &MarkedYaml<'_>) -> Vec<EnvVar> {
    if let Some(map) = mapping(node) {
        return map
            .iter()
            .filter_map(|(k, v)| {
                Some(EnvVar {
                    key: scalar(k)?.into_owned(),
                    value: scalar(v).map(Cow::into_owned),
                    at: loc(k),
                })
            })
            .collect();
    }
    sequence(node)
        .iter()
        .filter_map(|item| {
            let text = scalar(item)?;
            let (key, value) = match text.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (text.into_owned(), None),
            };
            Some(EnvVar {
                key,
                value,
                at: loc(item),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_services() {
        let src = "services:\n  web:\n    build: .\n    ports:\n      - \"127.0.0.1:8000:8000\"\n      - 5432:5432\n    volumes:\n      - ./nginx.conf:/etc/nginx/nginx.conf:ro\n      - data:/data\n    environment:\n      A: \"1\"\n      B:\n";
        let file = parse(src).expect("valid");
        let web = &file.services[0];
        assert_eq!(web.name.value, "web");
        assert_eq!(web.name.at.line, 2);
        assert!(web.build);
        assert_eq!(web.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(web.ports[1].host_ip, None);
        assert_eq!(web.ports[1].at.line, 6);
        assert_eq!(web.volumes[0].kind, MountKind::Bind);
        assert!(web.volumes[0].read_only);
        assert_eq!(web.volumes[1].kind, MountKind::Volume);
        assert_eq!(web.environment[1].value, None);
    }

    #[test]
    fn reports_yaml_errors_with_position() {
        let err = parse("services:\n  web:\n    image: [unclosed\n").expect_err("invalid");
        assert!(err.at.line >= 3, "{err:?}");
        assert!(parse("- a\n- b\n").is_err());
    }
}
