//! Where an image goes: `REGISTRY/REPOSITORY:TAG`, with Docker's defaults for short names.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The registry short names (`app`, `team/app`) resolve to, as Docker does.
pub const DOCKER_HUB: &str = "docker.io";

/// A push target: registry host (with port), repository and tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: String,
}

impl Reference {
    /// The registry as written (`localhost:5000`, `ghcr.io`, `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository inside the registry (`team/app`; `library/app` on Docker Hub).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The same registry and repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        format!("{}/{}:{tag}", self.registry, self.repository).parse()
    }

    /// `REGISTRY/REPOSITORY`, the name a digest is appended to (`…@sha256:…`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

fn valid_component(part: &str) -> bool {
    // Lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-` (the distribution
    // spec's path component grammar, slightly simplified: no leading or trailing separator).
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
        && !part.contains("..")
        && !part.contains("___")
}

/// Whether `repository` is a valid repository path (`team/app`).
pub(crate) fn valid_repository(repository: &str) -> bool {
    repository.split('/').all(valid_component)
}

fn valid_registry(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || name.starts_with('[') => (name, Some(port)),
        _ => (host, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b));
    port_ok && name_ok
}

impl FromStr for Reference {
    type Err = Error;

    /// `[REGISTRY/]REPOSITORY[:TAG]`. The first part is a registry when it has a `.` or `:` or
    /// is `localhost` (Docker's rule); otherwise the registry is Docker Hub and a one-part name
    /// gets `library/`. The tag defaults to `latest`; digests (`@sha256:`) are not push targets.
    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadReference {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.contains('@') {
            return Err(bad("a push target takes a tag, not a digest"));
        }
        let (first, rest) = match text.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first), rest)
            }
            _ => (None, text),
        };
        let (path, tag) = match rest.rsplit_once(':') {
            Some((path, tag)) => (path, tag),
            None => (rest, "latest"),
        };
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !tag_ok {
            return Err(bad(
                "the tag must be 1-128 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`",
            ));
        }
        if !path.split('/').all(valid_component) {
            return Err(bad(
                "the repository must be lowercase letters, digits and `.`, `_`, `-` between `/`-separated parts",
            ));
        }
        let registry = match first {
            Some(host) if valid_registry(host) => host.to_owned(),
            Some(_) => {
                return Err(bad(
                    "the registry must be a host name with an optional :port",
                ));
            }
            None => DOCKER_HUB.to_owned(),
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            registry,
            repository,
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (String, String, String) {
        let r: Reference = text.parse().unwrap();
        (
            r.registry().to_owned(),
            r.repository().to_owned(),
            r.tag().to_owned(),
        )
    }

    #[test]
    fn parses_registry_repository_and_tag() {
        let s = |x: &str| x.to_owned();
        assert_eq!(
            parts("localhost:5000/team/app:v1.2"),
            (s("localhost:5000"), s("team/app"), s("v1.2"))
        );
        assert_eq!(
            parts("127.0.0.1:5001/app"),
            (s("127.0.0.1:5001"), s("app"), s("latest"))
        );
        assert_eq!(
            parts("ghcr.io/org/app:1"),
            (s("ghcr.io"), s("org/app"), s("1"))
        );
        assert_eq!(parts("app:2"), (s("docker.io"), s("library/app"), s("2")));
        assert_eq!(
            parts("team/app"),
            (s("docker.io"), s("team/app"), s("latest"))
        );
        assert_eq!(parts("localhost/app").0, "localhost");
        let r: Reference = "localhost:5000/a/b:t".parse().unwrap();
        assert_eq!(r.name(), "localhost:5000/a/b");
        assert_eq!(r.to_string(), "localhost:5000/a/b:t");
        assert_eq!(r.with_tag("x").unwrap().to_string(), "localhost:5000/a/b:x");
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "App:1",
            "app:",
            "app:-x",
            "a b",
            "localhost:5000/app@sha256:00",
            "localhost:99999/app",
            "host.io/-app",
            "host.io//app",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }
}
